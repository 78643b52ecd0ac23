"""Accuracy before the labels mature: confidence-based performance estimation (CBPE).

A default label needs 12 months to mature, so realised AUC says nothing about the
most recent year. If a model's probabilities are calibrated, each customer's
probability *is* the expected value of their label, and the expected confusion
matrix at every threshold (hence the expected ROC curve and AUC) follows from the
probabilities alone. That is NannyML's CBPE (the "confidence-based performance
estimation" of its documentation); here it is a few vectorised lines:

* expected event rate = mean(p);
* expected AUC = expected correctly ordered (positive, negative) pairs over expected
  pairs: ``sum_{i != j} p_i (1 - p_j) [s_i > s_j] / sum_{i != j} p_i (1 - p_j)``, ties
  counted one half, where ``s`` is the ranking score (the probability itself unless
  given);
* intervals: labels are drawn from the probabilities (``y_i ~ Bernoulli(p_i)``) many
  times and the realised AUC and event rate of each draw give the percentile interval
  of what the realised figures will be once the labels mature, if the model's
  calibration still holds.

Calibration is the estimate's one assumption, so it is measured on a labelled
reference the model never saw (NannyML fits its calibrator on its reference for the
same reason; rows the model was fitted on are ranked too well, and a calibration map
fitted on them makes the probabilities over-confident and the estimate too high).
:func:`estimate_from_reference` recalibrates on that reference and its interval
carries calibration's uncertainty as well as the labels' sampling noise. Each label
draw is made from one of several plausible calibration maps: when the reference spans
several months, maps drawn from the spread of the maps fitted on each month alone (a
new month's calibration is another draw from the same month-to-month drift: the
economy moves default rates and how sharply scores separate them); on a single month,
maps refitted on bootstrap resamples of its rows. In
``benchmarks/performance_estimation.py`` intervals of label noise alone covered the
realised AUC in 7 of 10 covariate-shift months, these in 10 of 10.

The estimate holds only while the relation between features and outcome holds
(covariate shift is fine: it moves the probabilities with the population). Under a
concept shift (a macro shock changes how features relate to default) it misses;
drift checks (:mod:`postloan.operations.monitoring`) must catch what it misses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from postloan.data import schema as S
from postloan.errors import DataValidationError
from postloan.models import evaluation as ev
from postloan.models.calibration import Calibrator, _logit, fit_calibrator

TABLE = "performance_estimation"


@dataclass(frozen=True)
class PerformanceEstimate:
    """Estimated AUC and event rate of one period, with percentile intervals.

    Attributes:
        n: rows scored.
        event_rate: expected event rate (mean probability).
        event_rate_low: lower end of the event rate's interval.
        event_rate_high: upper end.
        auc: expected AUC.
        auc_low: lower end of the AUC's interval.
        auc_high: upper end.
        level: interval level (e.g. 0.95).
        n_samples: label draws behind the intervals.
    """

    n: int
    event_rate: float
    event_rate_low: float
    event_rate_high: float
    auc: float
    auc_low: float
    auc_high: float
    level: float
    n_samples: int

    def to_dict(self) -> dict:
        return asdict(self)


def _probabilities(p: object, name: str = "p") -> np.ndarray:
    v = ev.validate_scores(p, score_name=name, table=TABLE)
    if len(v) < 2:
        raise DataValidationError(TABLE, "need at least two rows to estimate an AUC", name)
    return v


def expected_auc(p: object, scores: object | None = None) -> float:
    """The AUC expected if every label is drawn from its probability.

    Args:
        p: calibrated probabilities of the event.
        scores: ranking scores (default: `p`; a monotone map of `p` gives the same AUC).

    Returns:
        The expected AUC (NaN when the probabilities admit no positive-negative pair).

    Raises:
        DataValidationError: probabilities outside [0, 1], not finite, or fewer than two.
    """
    p = _probabilities(p)
    s = p if scores is None else ev.validate_scores(scores, probabilities=False,
                                                    score_name="scores", table=TABLE)
    if len(s) != len(p):
        raise DataValidationError(TABLE, f"{len(s)} scores for {len(p)} probabilities", "scores")
    order = np.argsort(s, kind="stable")
    s_sorted, p_sorted = s[order], p[order]
    # Group tied scores: within a group every pair counts one half.
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    pos = np.add.reduceat(p_sorted, starts)
    neg = np.add.reduceat(1.0 - p_sorted, starts)
    neg_below = np.cumsum(neg) - neg
    self_pairs = float(np.sum(p * (1.0 - p)))  # i == j is never a pair
    num = float(np.sum(pos * (neg_below + 0.5 * neg))) - 0.5 * self_pairs
    den = float(pos.sum() * neg.sum()) - self_pairs
    return num / den if den > 0 else float("nan")


def estimate_performance(p: object, scores: object | None = None, n_samples: int = 400,
                         level: float = 0.95, seed: int = 0, chunk: int = 50,
                         p_draws: np.ndarray | None = None) -> PerformanceEstimate:
    """Estimate AUC and event rate from calibrated probabilities, with intervals.

    Args:
        p: calibrated probabilities of the event for one period's rows.
        scores: ranking scores (default: `p`).
        n_samples: label draws for the intervals.
        level: interval level.
        seed: seed of the label draws (same seed, same intervals).
        chunk: draws computed at once (bounds memory: chunk x rows booleans).
        p_draws: plausible alternatives to `p` (one row per refitted calibration, as
            many columns as `p`): label draw ``i`` is made from row ``i mod k``, so the
            intervals carry the calibration's uncertainty too. None: `p` only.

    Returns:
        The estimate.

    Raises:
        DataValidationError: bad probabilities (see :func:`expected_auc`).
        ValueError: `n_samples` < 10 or `level` outside (0, 1).
    """
    if n_samples < 10:
        raise ValueError(f"n_samples must be at least 10, got {n_samples}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    p = _probabilities(p)
    auc = expected_auc(p, scores)
    s = p if scores is None else np.asarray(scores, dtype="float64")
    draws = p[None, :] if p_draws is None else np.asarray(p_draws, dtype="float64")
    if draws.ndim != 2 or draws.shape[1] != len(p):
        raise DataValidationError(TABLE, f"p_draws must have {len(p)} columns, got shape "
                                  f"{draws.shape}", "p_draws")
    ranks = rankdata(s)  # average ranks: ties count one half, as in the AUC
    rng = np.random.default_rng(seed)
    aucs, rates = [], []
    for start in range(0, n_samples, chunk):
        k = min(chunk, n_samples - start)
        rows = draws[np.arange(start, start + k) % len(draws)]
        y = rng.random((k, len(p))) < rows  # one row of labels per draw
        n_pos = y.sum(axis=1).astype("float64")
        n_neg = len(p) - n_pos
        rank_sum = y.astype("float64") @ ranks
        with np.errstate(divide="ignore", invalid="ignore"):
            aucs.append((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
        rates.append(n_pos / len(p))
    aucs_a, rates_a = np.concatenate(aucs), np.concatenate(rates)
    aucs_a = aucs_a[np.isfinite(aucs_a)]
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    auc_lo, auc_hi = ((float(np.quantile(aucs_a, lo)), float(np.quantile(aucs_a, hi)))
                      if len(aucs_a) else (float("nan"), float("nan")))
    return PerformanceEstimate(
        n=int(len(p)), event_rate=float(p.mean()),
        event_rate_low=float(np.quantile(rates_a, lo)),
        event_rate_high=float(np.quantile(rates_a, hi)),
        auc=auc, auc_low=auc_lo, auc_high=auc_hi, level=level, n_samples=n_samples)


def reference_calibrator(p_reference: object, y_reference: object,
                         method: str = "platt") -> Calibrator:
    """Recalibrate the model's probabilities on the latest matured (labelled) months.

    CBPE trusts calibration, and NannyML fits its own calibrator on a labelled
    reference for that reason. The expected AUC is most sensitive to the probability
    level of the many low-score customers, where an isotonic fit on a few hundred
    positives has none and sets the probability to ~0 (the estimate then comes out too
    high: on the simulator by 0.02 to 0.09); a two-parameter logistic (Platt) map
    stays smooth there. ``benchmarks/performance_estimation.py`` measures the choice.

    Args:
        p_reference: the model's probabilities on the reference rows (e.g. the last 12
            as-of months whose labels have matured).
        y_reference: their matured labels (0/1).
        method: ``platt`` (default) or ``isotonic``.

    Returns:
        A :class:`~postloan.models.calibration.Calibrator` from the model's probability to the
        reference's event frequency.
    """
    return fit_calibrator(np.asarray(p_reference, dtype="float64"),
                          np.asarray(y_reference, dtype="float64"), method=method)


def estimable(snapshot: pd.DataFrame, label: str) -> np.ndarray:
    """The rows of a snapshot whose label will be defined once it matures.

    CBPE stands in for the realised AUC, which is computed on labelled rows only. A
    default label is never defined for a customer already in default at the as-of date
    (:func:`postloan.data.snapshot.build_labels`); they have the highest scores, and
    counting them as sure positives put the demo's default-risk estimate too high.

    Args:
        snapshot: snapshot rows at one as-of date (``dpd_current``).
        label: the model's label column.

    Returns:
        A boolean mask over the rows.
    """
    if label == "default_12m" and "dpd_current" in snapshot.columns:
        return (snapshot["dpd_current"].fillna(0.0) < S.DEFAULT_DPD).to_numpy()
    return np.ones(len(snapshot), dtype=bool)


def calibration_dates(metadata: dict, current: object | None = None) -> list[pd.Timestamp]:
    """The as-of dates on which CBPE recalibrates a model: its out-of-time dates.

    Their labels were observed when the model was trained and the model was not fitted
    on them (nor early-stopped or calibrated on them), so they show its calibration
    out of sample, as NannyML's reference (a labelled test period) does. A date the
    model was fitted on is ranked too well: recalibrating on it makes the probabilities
    over-confident and the estimate too high (the demo's default risk: 0.941 estimated
    for 0.913 realised, recalibrated on one of its training dates).

    Args:
        metadata: the bundle's training metadata (``splits``: ``oot`` dates as text).
        current: the date being estimated: never one of its own calibration months (its
            labels are what the estimate stands in for).

    Returns:
        The dates, oldest first; empty when the metadata has no splits.
    """
    dates = sorted(pd.Timestamp(d) for d in (metadata.get("splits") or {}).get("oot", []))
    return [d for d in dates if current is None or d != pd.Timestamp(current)]


def estimate_from_reference(p_current: object, p_reference: object, y_reference: object,
                            reference_periods: object | None = None,
                            scores: object | None = None, method: str = "platt",
                            n_samples: int = 400, n_calibrations: int = 100,
                            level: float = 0.95, seed: int = 0) -> PerformanceEstimate:
    """CBPE recalibrated on a labelled reference, its interval carrying calibration's
    uncertainty as well as the labels' noise.

    Args:
        p_current: the model's probabilities for the period estimated.
        p_reference: its probabilities on the reference rows: matured labels, and rows
            the model was not fitted on (its training and validation rows are ranked
            too well: recalibrating on them makes the estimate too high).
        y_reference: their labels (0/1).
        reference_periods: each reference row's period (as-of date). With two or more,
            the interval's calibration maps are drawn from the spread of the maps fitted
            on one period each (the drift between months); otherwise refitted on
            bootstrap resamples of the rows.
        scores: ranking scores of the current rows (default: `p_current`).
        method: recalibration map (``platt`` or ``isotonic``).
        n_samples: label draws for the interval.
        n_calibrations: calibration maps drawn for the interval.
        level: interval level.
        seed: seed of the resamples and label draws.

    Returns:
        The estimate: expected AUC and event rate under the reference's calibration, with
        intervals over both sources of error.

    Raises:
        DataValidationError: bad probabilities or labels, or a reference with one class.
    """
    p_ref = _probabilities(p_reference, "p_reference")
    y_ref = np.asarray(y_reference, dtype="float64")
    p_cur = _probabilities(p_current, "p_current")
    if len(y_ref) != len(p_ref):
        raise DataValidationError(TABLE, f"{len(y_ref)} labels for {len(p_ref)} reference "
                                  "rows", "y_reference")
    cal = reference_calibrator(p_ref, y_ref, method)
    p = cal.transform(p_cur)
    rng = np.random.default_rng(seed)
    # A calibration map is fitted on weighted reference rows: one period's rows (weight
    # 1, the others 0), or a bootstrap resample (how often each row was drawn).
    codes = (None if reference_periods is None
             else pd.factorize(pd.Series(np.asarray(reference_periods)))[0])
    by_period = codes is not None and codes.max() >= 1
    if by_period:
        weights = [(codes == k).astype("float64") for k in range(codes.max() + 1)]
    else:
        weights = [rng.multinomial(len(p_ref), np.full(len(p_ref), 1.0 / len(p_ref)))
                   .astype("float64") for _ in range(n_calibrations)]
    weights = [w for w in weights if w[y_ref == 1].sum() > 0 and w[y_ref == 0].sum() > 0]
    if cal.method == "platt":
        params = np.array([_weighted_platt(p_ref[w > 0], y_ref[w > 0], w[w > 0], cal.coef_,
                                           cal.intercept_) for w in weights]).reshape(-1, 2)
        if by_period and len(params) >= 2:
            # A new month is one more draw of the month-to-month drift: its (slope,
            # intercept) from a normal around the pooled fit with the months' covariance,
            # widened by (1 + 1/k) for a mean estimated on k months; a dozen months'
            # own maps alone would never reach beyond their range.
            cov = np.cov(params.T, ddof=1) * (1 + 1 / len(params))
            params = rng.multivariate_normal([cal.coef_, cal.intercept_], cov,
                                             n_calibrations)
        z = _logit(p_cur)
        draws = [np.clip(1.0 / (1.0 + np.exp(-(a * z + b))), cal.floor, cal.ceiling)
                 for a, b in params]
    else:
        draws = [reference_calibrator(p_ref[idx], y_ref[idx], method).transform(p_cur)
                 for idx in (np.repeat(np.arange(len(p_ref)), w.astype(int))
                             for w in weights)]
    return estimate_performance(p, scores=p_cur if scores is None else scores,
                                n_samples=n_samples, level=level, seed=seed,
                                p_draws=np.vstack(draws) if draws else None)


def _weighted_platt(p: np.ndarray, y: np.ndarray, w: np.ndarray, coef: float,
                    intercept: float, n_iter: int = 8) -> tuple[float, float]:
    """Platt's fit (Platt's smoothed targets, as :mod:`postloan.models.calibration`) on weighted
    rows, by Newton's method from a nearby fit: a bootstrap refit in milliseconds where
    a general solver takes a second."""
    n_pos, n_neg = w[y == 1].sum(), w[y == 0].sum()
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    z = _logit(p)
    beta = np.array([coef, intercept], dtype="float64")
    for _ in range(n_iter):
        q = 1.0 / (1.0 + np.exp(-(beta[0] * z + beta[1])))
        r, h = w * (q - t), w * q * (1 - q)
        grad = np.array([np.dot(r, z), r.sum()])
        hess = np.array([[np.dot(h, z * z), np.dot(h, z)], [np.dot(h, z), h.sum()]])
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-6:  # far below the bootstrap's own spread
            break
    return float(beta[0]), float(beta[1])


def estimate_by_period(periods: object, p: object, y: object | None = None,
                       min_labelled_share: float = 0.9, n_samples: int = 400,
                       level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Estimated (and, where labels have matured, realised) AUC and event rate per period.

    Args:
        periods: the period of each row (e.g. the as-of date).
        p: calibrated probabilities.
        y: labels, NaN where not yet matured (None: no labels at all).
        min_labelled_share: a period's realised figures are shown only when at least
            this share of its rows has a label.
        n_samples: label draws per period for the intervals.
        level: interval level.
        seed: seed of the draws.

    Returns:
        One row per period, in order: ``period``, ``n``, the estimate's fields
        (``auc``, ``auc_low``, ``auc_high``, ``event_rate``, ...), ``labelled_share``,
        ``realised_auc``, ``realised_event_rate`` (NaN until matured) and
        ``auc_error`` = estimate - realised.
    """
    p_arr = _probabilities(p)
    per = pd.Series(np.asarray(periods))
    if len(per) != len(p_arr):
        raise DataValidationError(TABLE, f"{len(per)} periods for {len(p_arr)} rows", "periods")
    lab = (np.full(len(p_arr), np.nan) if y is None
           else pd.to_numeric(pd.Series(np.asarray(y)), errors="coerce").to_numpy("float64"))
    rows = []
    for period in sorted(per.unique()):
        m = (per == period).to_numpy()
        est = estimate_performance(p_arr[m], n_samples=n_samples, level=level, seed=seed)
        yl = lab[m]
        known = ~np.isnan(yl)
        share = float(known.mean())
        realised_auc = realised_rate = float("nan")
        if share >= min_labelled_share and len(np.unique(yl[known])) == 2:
            realised_auc = ev.binary_metrics(yl[known], p_arr[m][known])["auc"]
            realised_rate = float(yl[known].mean())
        rows.append({"period": period, **est.to_dict(), "labelled_share": share,
                     "realised_auc": realised_auc, "realised_event_rate": realised_rate,
                     "auc_error": est.auc - realised_auc})
    return pd.DataFrame(rows)
