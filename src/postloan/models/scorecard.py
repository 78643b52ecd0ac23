"""The default-risk challenger as a points scorecard: WOE bins, a logistic fit, points.

The form in which most credit reviewers have read models for decades: every feature
(a *characteristic*) is cut into a few bins, each bin carries a weight of evidence
(WOE) and a number of points, and a customer's score is the base points plus the
points of the bin they fall in for each feature. Higher points mean lower risk.

How it is fitted (:func:`fit_scorecard`), on the training split's feature frame (the
one feature function, :func:`postloan.data.features.build_features`):

1. **Binning, per feature.** Missing values get a bin of their own, and so does each
   configured special value (``special_values``: a sentinel such as ``-1`` = "no bureau
   hit" in a lender's feed); neither ever mixes with real values. Numeric values are
   pre-binned at their distinct values when there are at most ``max_prebins`` of them
   (counts such as DPD buckets), else at ``max_prebins`` quantiles; intervals are
   closed on the right, so a mass point (``0`` missed payments) is a bin of its own.
   Adjacent bins are then pooled until
   the bad rate is strictly monotone (pool-adjacent-violators), no bin holds less than
   ``min_bin_share`` of the rows and there are at most ``max_bins``. The direction is
   the model's monotone constraint when ``config/training.yaml`` gives one (more DPD
   never lowers PD), else the one with the larger information value (IV). Category
   codes are grouped the same way in order of their bad rate.
2. **WOE** = ln(share of goods / share of bads) of the bin (Siddiqi's sign: positive =
   safer than average), shrunk towards 0 by ``prior_rows`` pseudo-rows at the overall
   bad rate so that a tiny missing or special bin cannot carry an extreme value.
3. **Selection and fit.** Features with IV below ``min_iv`` are left out; at most
   ``max_features`` by IV are kept; a logistic regression of the bad flag on the WOE
   columns is fitted (L2, lbfgs: deterministic). A feature whose coefficient contradicts
   its own WOE (collinearity) is dropped and the fit repeated, so every bin's points
   move the same way as its WOE.
4. **Points.** ``factor = pdo / ln 2``, ``offset = base_points - factor ln(base_odds)``:
   a score of ``base_points`` means good:bad odds of ``base_odds``, and every ``pdo``
   more points double the odds. Bin points are ``-factor x coefficient x WOE`` and the
   base (intercept) row holds ``offset - factor x intercept``, each rounded to
   ``points_decimals``. The scorecard's PD is a function of the total points alone,
   ``1 / (1 + base_odds x 2^((points - base_points) / pdo))``: higher points, lower PD,
   by the scaling itself.

Why our own code and not optbinning (``BinningProcess`` + ``Scorecard``): on our pins
``pip install --dry-run optbinning`` adds 13 packages (ortools alone is a 30 MB wheel,
cvxpy 4 MB, highspy 3 MB) and *downgrades* protobuf 7.36 -> 6.33, which MLflow shares
(ortools pins protobuf < 7); and its fitted objects persist only by pickle, which a
postloan bundle never holds. What we need of it (monotone WOE binning with missing and
special bins, a logistic fit on WOE, points scaling) is the short code below: plain
numbers, JSON round trip (:meth:`Scorecard.to_dict`), numpy at scoring time, the same
answer for the same data, and a fit of a few seconds on the demo book.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from postloan.errors import ConfigError, DataValidationError

log = logging.getLogger(__name__)

FILE = "scorecard.json"  # the scorecard's file in a model bundle folder
BASE_ROW = "(base points)"  # the feature name of the intercept row of the points table
MISSING = "Missing"
TABLE_COLUMNS = ("feature", "bin", "woe", "points")


@dataclass(frozen=True)
class ScorecardParams:
    """How a scorecard is binned, fitted and scaled (``scorecard:`` in training.yaml).

    Attributes:
        base_points: the score at which the good:bad odds are ``base_odds``.
        base_odds: good:bad odds at ``base_points`` (e.g. 50 = 1 bad in 51).
        pdo: points to double the odds.
        points_decimals: decimals of each bin's points (0: whole points, the usual form).
        max_prebins: quantile pre-bins per numeric feature.
        max_bins: most bins of real values per feature (missing and specials apart).
        min_bin_share: smallest share of the training rows in a bin of real values.
        prior_rows: pseudo-rows at the overall bad rate that shrink every bin's WOE.
        min_iv: smallest information value of a feature kept in the scorecard.
        max_features: most features kept (highest IV first); None = no limit.
        C: inverse L2 strength of the logistic fit on WOE.
        special_values: feature -> values that get bins of their own.
    """

    base_points: float
    base_odds: float
    pdo: float
    points_decimals: int
    max_prebins: int
    max_bins: int
    min_bin_share: float
    prior_rows: float
    min_iv: float
    max_features: int | None
    C: float
    special_values: Mapping[str, Sequence[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [name for name, ok in (
            ("pdo", self.pdo > 0), ("base_odds", self.base_odds > 0),
            ("max_prebins", self.max_prebins >= 2), ("max_bins", self.max_bins >= 2),
            ("min_bin_share", 0 <= self.min_bin_share < 0.5),
            ("prior_rows", self.prior_rows >= 0), ("min_iv", self.min_iv >= 0),
            ("C", self.C > 0), ("points_decimals", 0 <= self.points_decimals <= 6),
            ("max_features", self.max_features is None or self.max_features >= 1)) if not ok]
        if bad:
            raise ConfigError(f"scorecard: invalid value of {bad[0]}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["special_values"] = {k: [float(v) for v in vs]
                               for k, vs in self.special_values.items()}
        return d


@dataclass
class Bin:
    """One bin of a characteristic (its training counts, WOE and points)."""

    label: str
    n: int
    n_bad: int
    woe: float
    points: float = 0.0


@dataclass
class Term:
    """One characteristic: how its values map to bins, and the bins.

    ``bins`` are in this order: the bins of real values (numeric: the intervals
    ``(edges[i-1], edges[i]]``, open at both ends; categorical: the code ``groups``,
    then one ``other`` bin for codes never seen in training), one bin per special value
    (``specials``), and the missing bin last.
    """

    feature: str
    kind: str  # "numeric" | "categorical"
    coef: float
    iv: float
    direction: int  # +1: the bad rate rises along the bins of real values, -1: falls
    edges: list[float] = field(default_factory=list)
    groups: list[list[float]] = field(default_factory=list)
    specials: list[float] = field(default_factory=list)
    bins: list[Bin] = field(default_factory=list)

    def bin_index(self, v: np.ndarray) -> np.ndarray:
        """The bin of each value (see the class docstring for the order)."""
        n_real = len(self.edges) + 1 if self.kind == "numeric" else len(self.groups) + 1
        if self.kind == "numeric":
            idx = np.searchsorted(np.asarray(self.edges, dtype="float64"), v, side="left")
        else:
            idx = np.full(len(v), n_real - 1)  # "other": a code unseen in training
            for g, codes in enumerate(self.groups):
                idx[np.isin(v, codes)] = g
        for s, value in enumerate(self.specials):
            idx[v == value] = n_real + s
        idx[np.isnan(v)] = len(self.bins) - 1
        return idx


def _rate(n_bad: float, n: float, prior: float, p: float) -> float:
    """Bad rate shrunk towards the overall rate `p` by `prior` pseudo-rows."""
    return (n_bad + prior * p) / (n + prior) if n + prior > 0 else p


def _woe(n_bad: float, n: float, prior: float, p: float) -> float:
    """ln(good share / bad share) of a bin = its log good:bad odds minus the overall."""
    r = _rate(n_bad, n, prior, p)
    return float(math.log((1 - r) / r) - math.log((1 - p) / p))


@dataclass
class _Run:
    """A bin of real values while binning: counts and what it covers."""

    n: float
    bad: float
    low: int  # first pre-bin (numeric) covered
    high: int  # last pre-bin covered
    codes: list[float] = field(default_factory=list)


def _merge(a: _Run, b: _Run) -> _Run:
    return _Run(a.n + b.n, a.bad + b.bad, a.low, b.high, a.codes + b.codes)


def _pool(runs: list[_Run], direction: int, prior: float, p: float) -> list[_Run]:
    """Pool adjacent violators: the bad rate strictly monotone in `direction`."""
    out: list[_Run] = []
    for r in runs:
        out.append(r)
        while len(out) > 1 and direction * (_rate(out[-1].bad, out[-1].n, prior, p)
                                            - _rate(out[-2].bad, out[-2].n, prior, p)) <= 0:
            b = out.pop()
            out.append(_merge(out.pop(), b))
    return out


def _merge_closest(runs: list[_Run], i: int, prior: float, p: float) -> list[_Run]:
    """Merge run i with the neighbour whose bad rate is closer (stays monotone)."""
    rates = [_rate(r.bad, r.n, prior, p) for r in runs]
    if i == 0:
        j = 1
    elif i == len(runs) - 1:
        j = i - 1
    else:
        j = i - 1 if abs(rates[i] - rates[i - 1]) <= abs(rates[i] - rates[i + 1]) else i + 1
    a, b = min(i, j), max(i, j)
    return [*runs[:a], _merge(runs[a], runs[b]), *runs[b + 1:]]


def _shrink(runs: list[_Run], direction: int | None, min_n: float, max_bins: int,
            prior: float, p: float) -> list[_Run]:
    """Monotone (when `direction`), no run under `min_n` rows, at most `max_bins`."""
    while True:
        if direction is not None:
            runs = _pool(runs, direction, prior, p)
        if len(runs) <= 1:
            return runs
        small = [i for i, r in enumerate(runs) if r.n < min_n]
        if small:
            runs = _merge_closest(runs, min(small, key=lambda i: (runs[i].n, i)), prior, p)
        elif len(runs) > max_bins:
            rates = [_rate(r.bad, r.n, prior, p) for r in runs]
            gaps = [abs(b - a) for a, b in zip(rates, rates[1:], strict=False)]
            i = int(np.argmin(gaps))
            runs = [*runs[:i], _merge(runs[i], runs[i + 1]), *runs[i + 2:]]
        else:
            return runs


def _iv(runs_counts: Iterable[tuple[float, float]], n_bad: float, n_good: float,
        prior: float, p: float) -> float:
    iv = 0.0
    for n, bad in runs_counts:
        if n > 0:
            iv += ((n - bad) / n_good - bad / n_bad) * _woe(bad, n, prior, p)
    return float(iv)


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _bin_feature(name: str, v: np.ndarray, y: np.ndarray, categorical: bool,
                 direction: int | None, specials: Sequence[float], prm: ScorecardParams,
                 labels: Sequence[str] | None = None) -> Term:
    """Bin one feature (see the module docstring); coefficient and points come later."""
    n_bad, n_all = float(y.sum()), float(len(y))
    p = n_bad / n_all
    prior = prm.prior_rows
    miss = np.isnan(v)
    special = np.isin(v, list(specials)) & ~miss
    real = ~miss & ~special
    vr, yr = v[real], y[real]
    min_n = prm.min_bin_share * n_all
    term = Term(feature=name, kind="categorical" if categorical else "numeric", coef=0.0,
                iv=0.0, direction=direction or 0, specials=[float(s) for s in specials])
    if categorical:
        codes = np.unique(vr)
        runs = [_Run(float((vr == c).sum()), float(yr[vr == c].sum()), 0, 0, [float(c)])
                for c in codes]
        runs.sort(key=lambda r: (_rate(r.bad, r.n, prior, p), r.codes[0]))
        runs = _shrink(runs, None, min_n, prm.max_bins, prior, p)
        term.groups = [sorted(r.codes) for r in runs]
        term.direction = 1
        names = list(labels) if labels is not None else None

        def code_label(c: float) -> str:
            k = int(c)
            return names[k] if names is not None and 0 <= k < len(names) else _fmt(c)

        real_bins = [Bin(", ".join(code_label(c) for c in g), int(r.n), int(r.bad), 0.0)
                     for g, r in zip(term.groups, runs, strict=True)]
        real_bins.append(Bin("other (not seen in training)", 0, 0, 0.0))
    else:
        distinct = np.unique(vr)
        if len(distinct) <= prm.max_prebins:
            cuts = distinct[:-1]
        else:  # cuts at data values, none at the maximum (no empty last bin)
            q = np.quantile(vr, np.linspace(0, 1, prm.max_prebins + 1)[1:-1], method="lower")
            cuts = np.unique(q)
            cuts = cuts[cuts < distinct[-1]]
        pre = np.searchsorted(cuts, vr, side="left")
        counts = np.bincount(pre, minlength=len(cuts) + 1).astype("float64")
        bads = np.bincount(pre, weights=yr, minlength=len(cuts) + 1)
        runs = [_Run(counts[i], bads[i], i, i) for i in range(len(cuts) + 1) if counts[i] > 0]
        if direction is None:
            best = None
            for d in (1, -1):
                cand = _shrink(list(runs), d, min_n, prm.max_bins, prior, p)
                iv = _iv(((r.n, r.bad) for r in cand), n_bad, n_all - n_bad, prior, p)
                if best is None or iv > best[0] + 1e-12:
                    best = (iv, d, cand)
            _, term.direction, runs = best
        else:
            runs = _shrink(runs, direction, min_n, prm.max_bins, prior, p)
        # A run covers pre-bins low..high: its upper edge is the cut after `high`.
        term.edges = [float(cuts[r.high]) for r in runs[:-1]]
        bounds = [-math.inf, *term.edges, math.inf]
        real_bins = [Bin(f"({_fmt(bounds[i])}, {_fmt(bounds[i + 1])}]", int(r.n), int(r.bad),
                         0.0) for i, r in enumerate(runs)]
        if not runs:  # no real value in training: one empty interval
            real_bins = [Bin("(-inf, inf]", 0, 0, 0.0)]
    spec_bins = [Bin(f"special: {_fmt(s)}", int((v == s).sum()), int(y[v == s].sum()), 0.0)
                 for s in term.specials]
    term.bins = [*real_bins, *spec_bins, Bin(MISSING, int(miss.sum()), int(y[miss].sum()), 0.0)]
    for b in term.bins:  # an empty bin (no training row) is neutral: WOE 0
        b.woe = _woe(b.n_bad, b.n, prior, p) if b.n > 0 else 0.0
    term.iv = _iv(((b.n, b.n_bad) for b in term.bins), n_bad, n_all - n_bad, prior, p)
    return term


@dataclass
class Scorecard:
    """A fitted points scorecard (see the module docstring).

    Attributes:
        features: the input feature names it was fitted on, in column order.
        params: binning, fit and scaling settings.
        intercept: the logistic fit's intercept (log-odds of bad at WOE 0).
        base: the base points (the intercept row of the table).
        terms: the characteristics kept, highest IV first.
        dropped: feature -> why it is not in the scorecard.
        metrics: out-of-time AUCs beside it (``scorecard_auc``, ``logreg_auc``,
            ``lightgbm_auc``), filled by training.
    """

    features: list[str]
    params: ScorecardParams
    intercept: float
    base: float
    terms: list[Term]
    dropped: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def factor(self) -> float:
        return self.params.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.params.base_points - self.factor * math.log(self.params.base_odds)

    def _columns(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        if not isinstance(X, pd.DataFrame):
            raise DataValidationError("features", f"the scorecard needs a feature frame with "
                                      f"named columns, got {type(X).__name__}")
        lacking = [t.feature for t in self.terms if t.feature not in X.columns]
        if lacking:
            raise DataValidationError("features", f"lacks scorecard feature(s) {lacking}",
                                      lacking[0])
        out = {}
        for t in self.terms:
            try:
                v = X[t.feature].to_numpy(dtype="float64", na_value=np.nan)
            except (TypeError, ValueError):
                raise DataValidationError("features", "expected numbers", t.feature,
                                          X[[t.feature]].head(5).to_string()) from None
            out[t.feature] = v
        return out

    def bin_points(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each row's points per characteristic (columns: the terms' features).

        Raises:
            DataValidationError: `X` lacks a scorecard feature or holds non-numbers.
        """
        cols = self._columns(X)
        out = {}
        for t in self.terms:
            pts = np.array([b.points for b in t.bins], dtype="float64")
            out[t.feature] = pts[t.bin_index(cols[t.feature])]
        return pd.DataFrame(out, index=X.index)

    def points(self, X: pd.DataFrame) -> np.ndarray:
        """Total points of each row: the base plus one bin's points per characteristic.

        Raises:
            DataValidationError: `X` lacks a scorecard feature or holds non-numbers.
        """
        per = self.bin_points(X)
        # Rounded sums of rounded points: the total a reviewer adds up by hand.
        return np.round(self.base + per.to_numpy().sum(axis=1), self.params.points_decimals)

    def pd_from_points(self, points: np.ndarray | float) -> np.ndarray:
        """The scorecard's PD of a total: ``1 / (1 + base_odds 2^((points - base) / pdo))``."""
        z = (np.asarray(points, dtype="float64") - self.params.base_points) / self.params.pdo
        return 1.0 / (1.0 + self.params.base_odds * np.exp2(z))

    def probability(self, X: pd.DataFrame) -> np.ndarray:
        """The scorecard's PD of each row (a function of its points alone)."""
        return self.pd_from_points(self.points(X))

    def table(self) -> pd.DataFrame:
        """The points table: ``feature, bin, woe, points, n, share, bad_rate``; the
        first row is the base (intercept) points, then the bins feature by feature."""
        total = sum(b.n for b in self.terms[0].bins) if self.terms else 0
        rows = [{"feature": BASE_ROW, "bin": "", "woe": np.nan, "points": self.base,
                 "n": total, "share": 1.0 if total else np.nan, "bad_rate": np.nan}]
        for t in self.terms:
            for b in t.bins:
                rows.append({"feature": t.feature, "bin": b.label, "woe": b.woe,
                             "points": b.points, "n": b.n,
                             "share": b.n / total if total else np.nan,
                             "bad_rate": b.n_bad / b.n if b.n else np.nan})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        """JSON-able form; :meth:`from_dict` reads it back to identical points."""
        return {"kind": "scorecard", "features": list(self.features),
                "params": self.params.to_dict(), "intercept": float(self.intercept),
                "base": float(self.base),
                "terms": [asdict(t) for t in self.terms], "dropped": dict(self.dropped),
                "metrics": {k: float(v) for k, v in self.metrics.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> Scorecard:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ConfigError: a field is missing or has a wrong type (the message names it).
        """
        try:
            if d.get("kind") != "scorecard":
                raise ValueError(f"field 'kind': expected 'scorecard', got {d.get('kind')!r}")
            terms = []
            for t in d["terms"]:
                t = dict(t)
                t["bins"] = [Bin(**b) for b in t["bins"]]
                terms.append(Term(**t))
            sc = cls(features=[str(f) for f in d["features"]],
                     params=ScorecardParams(**d["params"]), intercept=float(d["intercept"]),
                     base=float(d["base"]), terms=terms, dropped=dict(d.get("dropped", {})),
                     metrics={k: float(v) for k, v in d.get("metrics", {}).items()})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ConfigError(f"scorecard JSON: {type(e).__name__}: {e}") from e
        numbers = [sc.base, *(b.points for t in sc.terms for b in t.bins),
                   *(b.woe for t in sc.terms for b in t.bins), *(e for t in sc.terms
                                                               for e in t.edges)]
        if not all(math.isfinite(v) for v in numbers):
            raise ConfigError("scorecard JSON: every points, WOE and edge value must be finite")
        return sc

    def save(self, folder: Path) -> Path:
        """Write ``scorecard.json`` into `folder`; returns its path."""
        path = Path(folder) / FILE
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False),
                        encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Scorecard:
        """Read a ``scorecard.json`` (or the one in a bundle folder).

        Raises:
            ConfigError: the file is unreadable or not a scorecard.
        """
        path = Path(path)
        if path.is_dir():
            path = path / FILE
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read scorecard {path}: {e}") from e
        return cls.from_dict(d)


def _loss(X: np.ndarray, y: np.ndarray, beta: np.ndarray, pen: np.ndarray) -> float:
    eta = X @ beta
    return float(np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * np.sum(pen * beta * beta))


def _logistic(W: np.ndarray, y: np.ndarray, C: float) -> tuple[float, np.ndarray]:
    """L2 logistic regression by Newton's method (scikit-learn's objective,
    ``C x log-loss + |w|^2 / 2``, intercept unpenalised).

    A handful of Newton steps on a few dozen WOE columns take a fraction of a second
    even on the demo book's 150,000 rows, so refitting after each dropped feature stays
    cheap. BLAS runs on one thread: the same sums in the same order on every machine
    (the same points for the same data), and no oversubscription on a busy machine,
    where threaded BLAS made these small products ten times slower.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _newton(W, y, C)


def _newton(W: np.ndarray, y: np.ndarray, C: float) -> tuple[float, np.ndarray]:
    X = np.column_stack([np.ones(len(y)), W])
    pen = np.r_[0.0, np.full(W.shape[1], 1.0 / C)]
    beta = np.zeros(X.shape[1])
    beta[0] = math.log(y.mean() / (1.0 - y.mean()))
    loss = _loss(X, y, beta, pen)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(X @ beta)))
        grad = X.T @ (p - y) + pen * beta
        hess = (X * (p * (1.0 - p))[:, None]).T @ X + np.diag(pen)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while True:  # backtracking: never a step that raises the loss
            new = beta - t * step
            new_loss = _loss(X, y, new, pen)
            if new_loss <= loss or t < 1e-8:
                break
            t /= 2.0
        beta, done = new, loss - new_loss < 1e-10 * max(1.0, abs(loss))
        loss = new_loss
        if done or np.abs(t * step).max() < 1e-9:
            break
    return float(beta[0]), beta[1:].copy()


def fit_scorecard(X: pd.DataFrame, y: Any, params: ScorecardParams,
                  categorical: Iterable[str] = (), monotone: Mapping[str, int] | None = None,
                  categories: Mapping[str, Sequence[str]] | None = None) -> Scorecard:
    """Bin, select, fit and scale a scorecard (see the module docstring).

    Args:
        X: training features (named columns; NaN = missing).
        y: 0/1 labels, 1 = bad.
        params: settings (``TrainConfig().scorecard`` gives the shipped ones).
        categorical: names of category-code columns.
        monotone: ``{feature: +1 | -1}``: the direction of the bad rate along the
            feature's values (the model's LightGBM constraints); others are chosen by IV.
        categories: category field -> names in code order, for readable bin labels.

    Returns:
        The fitted scorecard.

    Raises:
        DataValidationError: no rows, labels other than 0/1 or one class, a feature
            frame without names, or no feature informative enough to keep.
    """
    if not isinstance(X, pd.DataFrame):
        raise DataValidationError("train", "the scorecard needs a feature frame with named "
                                  "columns")
    yv = np.asarray(y, dtype="float64")
    if len(yv) != len(X) or len(yv) == 0:
        raise DataValidationError("train", f"{len(X)} feature rows and {len(yv)} labels")
    if not np.isin(yv, (0.0, 1.0)).all() or len(np.unique(yv)) < 2:
        raise DataValidationError("train", "the scorecard needs 0/1 labels of both classes")
    unknown = sorted(set(params.special_values) - set(X.columns))
    if unknown:
        raise ConfigError(f"scorecard.special_values: unknown feature(s) {unknown}")
    cats = set(categorical)
    monotone = {k: v for k, v in (monotone or {}).items() if v}
    terms = {}
    for name in X.columns:
        v = X[name].to_numpy(dtype="float64", na_value=np.nan)
        labels = (categories or {}).get(name)
        terms[name] = _bin_feature(str(name), v, yv, name in cats, monotone.get(name),
                                   params.special_values.get(name, ()), params, labels)
    dropped = {f: f"IV {t.iv:.4f} below min_iv {params.min_iv:g}"
               for f, t in terms.items() if t.iv < params.min_iv}
    keep = sorted((f for f in terms if f not in dropped), key=lambda f: (-terms[f].iv, f))
    if params.max_features is not None:
        for f in keep[params.max_features:]:
            dropped[f] = f"IV {terms[f].iv:.4f}: beyond max_features {params.max_features}"
        keep = keep[:params.max_features]
    woe = {f: np.array([b.woe for b in terms[f].bins])[
        terms[f].bin_index(X[f].to_numpy(dtype="float64", na_value=np.nan))] for f in keep}
    while True:
        if not keep:
            raise DataValidationError("train", "no feature is informative enough for a "
                                      f"scorecard (min_iv {params.min_iv:g})")
        intercept, coef = _logistic(np.column_stack([woe[f] for f in keep]), yv, params.C)
        # WOE is "goodness": a coefficient on the bad flag must be negative, else the
        # feature contradicts its own bins (collinearity). Drop the most contrary one
        # and refit: another may recover its sign without it.
        wrong = [(c, f) for c, f in zip(coef, keep, strict=True) if c >= 0]
        if not wrong:
            break
        worst = max(wrong)[1]
        dropped[worst] = "coefficient against its own WOE (collinear with kept features)"
        keep.remove(worst)
    factor = params.pdo / math.log(2.0)
    offset = params.base_points - factor * math.log(params.base_odds)
    d = params.points_decimals
    kept = []
    for f, c in zip(keep, coef, strict=True):
        t = terms[f]
        t.coef = float(c)
        for b in t.bins:
            b.points = float(round(-factor * c * b.woe, d)) + 0.0  # no "-0.0" in the table
        kept.append(t)
    base = float(round(offset - factor * intercept, d)) + 0.0
    log.info("scorecard: %d of %d features kept, base %s points", len(kept), len(terms), base)
    return Scorecard(features=[str(c) for c in X.columns], params=params,
                     intercept=intercept, base=base, terms=kept, dropped=dropped)


def report_table(bundle_folder: Path) -> tuple[pd.DataFrame, dict] | None:
    """The points table and the out-of-time AUCs of a bundle's scorecard, for reports.

    Args:
        bundle_folder: a model bundle folder (``scorecard.json`` beside its model).

    Returns:
        ``(table, aucs)``: the table's columns are ``feature, bin, woe, points`` (first
        row: the base points, feature ``(base points)``); ``aucs`` holds the OOT
        ``scorecard_auc``, ``logreg_auc`` and ``lightgbm_auc`` (NaN when unknown). None
        when the bundle has no scorecard (a model trained without one).

    Raises:
        ConfigError: the scorecard file exists but cannot be read.
    """
    path = Path(bundle_folder) / FILE
    if not path.is_file():
        return None
    sc = Scorecard.load(path)
    aucs = {k: float(sc.metrics.get(k, float("nan")))
            for k in ("scorecard_auc", "logreg_auc", "lightgbm_auc")}
    return sc.table().loc[:, list(TABLE_COLUMNS)], aucs
