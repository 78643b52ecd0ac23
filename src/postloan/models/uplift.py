"""Uplift models: what a contact changes for each customer, learned from the randomised logs.

One model per contact action (``postloan-uplift-<action>``) holds one effect model per
outcome that matters (``default_12m``, ``churn_6m``, ``dissatisfied_3m``): the
estimated effect ``tau(x) = P(outcome | contacted, x) - P(outcome | not contacted,
x)`` (negative = fewer defaults / churners / unhappy customers), on the one feature
function :func:`postloan.data.features.build_features` of the point-in-time snapshot the
contact was decided on.

Two learners (``UpliftParams.learner``):

- ``risk`` (default), **risk-based**: one outcome model ``f(x)`` (LightGBM logit)
  and one constant log odds ratio ``theta`` per action and outcome,
  ``P(y | x, t) = sigmoid(f(x) + a + theta t)``, so
  ``tau(x) = sigmoid(f(x) + a + theta) - sigmoid(f(x) + a)``: the effect varies with
  the customer's baseline risk, the strongest thing the features know. This is the
  "risk modelling" approach of the PATH statement (Kent et al., Ann Intern Med 2020)
  for randomised data too small to learn effect modifiers: two parameters from
  thousands of contacts, with a robust interval, instead of a tree model of a noisy
  pseudo-outcome. On the demo book, where contacts matter most (default for
  reminders and restructuring, churn for retention offers and service calls), its
  held-out Qini against the true effects is 2.5-5 times the DR-learner's
  (docs/benchmarks.md, "Outreach policies replayed").
- ``dr``, **effect modelling** with the DR-learner below, for books with enough
  randomised contacts to learn which traits modify the effect.

**Why learners of our own rather than econml or causalml** (checked with ``pip
install --dry-run`` against this stack's pins, numpy>=2, pandas 3, scikit-learn>=1.5,
lightgbm>=4.3): causalml 0.18 would add xgboost with a 350 MB CUDA library, black and
pathos; econml 0.17 installs cleanly, but its DRLearner fits the propensity with a
model (it has no way to take the **logged** propensity, which is known exactly here)
and its fitted estimators persist only by pickle, which our bundles never use. The
learner itself is short once the propensity is known, and its parts are LightGBM
boosters saved as native text + JSON (docs/uplift.md):

The DR-learner:

1. Outcome model ``mu(x, t)``: one LightGBM classifier with the treatment as a
   feature, cross-fitted (each row is predicted by the model that did not see it).
2. Pseudo-outcome ``psi = mu(x,1) - mu(x,0) + t (y - mu(x,1)) / e - (1 - t) (y -
   mu(x,0)) / (1 - e)`` with ``e`` the logged propensity (known, not modelled).
   ``E[psi | x] = tau(x)`` whenever either ``mu`` or ``e`` is right, and ``e`` is.
3. Effect model: a LightGBM regression of ``psi`` on ``x`` (shallow, regularised:
   the pseudo-outcome is noisy). Its trees are what TreeSHAP explains: which traits
   make a customer respond.

Evaluation on held-out contacts (the latest as-of dates): the **Qini curve** of a
ranking is the inverse-propensity estimate of outcomes avoided if the top ``k``
were contacted, ``Q(k) = -sum_{i<=k} [t_i y_i / e_i - (1 - t_i) y_i / (1 - e_i)]``;
the Qini coefficient is its mean area above the random line, AUUC its mean area,
both per row. On a simulated book the **oracle** ranking (the true effects of
``contact_truth``) gets the same curve, and the truth also gives a noise-free
version (gains = true effects), plus the correlation of estimated and true effects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from postloan.data import schema as S
from postloan.data.features import FEATURE_NAMES, build_features, feature_spec
from postloan.errors import DataValidationError, ModelNotFoundError
from postloan.models.treeshap import TreeExplainer

log = logging.getLogger(__name__)

UPLIFT_LABELS = ("default_12m", "churn_6m", "dissatisfied_3m")
ACTIONS = tuple(S.CONTACT_ACTIONS)
PREFIX = "uplift_"
LEARNERS = ("risk", "dr")
RISK_PRIOR_SD = 2.0  # weak prior on a contact's log odds ratio (risk learner)
PROPENSITY_CLIP = (0.01, 0.99)  # logged propensities are in (0, 1); the clip guards rounding


def model_name(action: str) -> str:
    """Model key of an action's uplift bundle: ``uplift_payment_reminder``."""
    if action not in ACTIONS:
        raise DataValidationError("uplift", f"unknown action; allowed {list(ACTIONS)}",
                                  "action", repr(action))
    return PREFIX + action


@dataclass
class UpliftParams:
    """Settings of the uplift learners (kept light: the demo trains four of them).

    Attributes:
        learner: ``risk`` (baseline risk model + constant log odds ratio) or ``dr``
            (DR-learner); see the module doc.
        outcome_rounds: boosting rounds of the outcome models.
        effect_rounds: boosting rounds of the effect model.
        learning_rate: shrinkage of both.
        num_leaves: leaves per tree of the outcome models.
        effect_leaves: leaves per tree of the effect model (few: psi is noisy).
        min_child_samples: minimum rows per leaf.
        folds: cross-fitting folds of the outcome models.
        seed: every random choice.
        num_threads: CPU threads.
    """

    learner: str = "risk"
    outcome_rounds: int = 150
    effect_rounds: int = 120
    learning_rate: float = 0.05
    num_leaves: int = 15
    effect_leaves: int = 7
    min_child_samples: int = 80
    folds: int = 2
    seed: int = 42
    num_threads: int = 2

    def __post_init__(self) -> None:
        if self.learner not in LEARNERS:
            raise DataValidationError("uplift", f"unknown learner; allowed {list(LEARNERS)}",
                                      "learner", repr(self.learner))

    def _lgb(self, objective: str, leaves: int, n_rows: int) -> dict:
        # Small sets (a rare action) keep at least 20 rows a leaf but can still split.
        leaf_rows = int(min(self.min_child_samples, max(20, n_rows // 20)))
        return {"objective": objective, "learning_rate": self.learning_rate,
                "num_leaves": leaves, "min_child_samples": leaf_rows,
                "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
                "lambda_l2": 5.0, "seed": self.seed, "deterministic": True,
                "force_row_wise": True, "num_threads": self.num_threads, "verbose": -1}


# ------------------------------------------------------------------ training set
def training_set(tables: Mapping[str, pd.DataFrame], outreach: pd.DataFrame,
                 dates: Sequence[pd.Timestamp] | None = None) -> pd.DataFrame:
    """Logged treatments beside the snapshot they were decided on and its labels.

    Args:
        tables: the book.
        outreach: :func:`outreach_log` of its interactions.
        dates: as-of dates to use (default: every logged one).

    Returns:
        The snapshot rows (fields + labels) of eligible customer-months with
        ``as_of``, ``action``, ``treated`` and ``propensity``; rows whose labels are
        all unobserved, and rows that were not randomised (propensity 0 or 1), are
        dropped.
    """
    from postloan.data.snapshot import build_snapshot

    dates = sorted(pd.Timestamp(d) for d in (dates if dates is not None
                                              else outreach["as_of"].unique()))
    parts = []
    for d in dates:
        rows = outreach[outreach["as_of"] == d]
        if rows.empty:
            continue
        snap = build_snapshot(tables, d)
        snap = snap.drop(columns=[c for c in ("as_of",) if c in snap.columns])
        parts.append(rows[["customer_id", "as_of", "action", "treated", "propensity"]]
                     .merge(snap, on="customer_id", how="inner"))
    if not parts:
        raise DataValidationError("interactions", "no logged outreach rows at the dates "
                                  "asked (generate the book with a contact policy)",
                                  "kind", "outreach")
    out = pd.concat(parts, ignore_index=True)
    out["action"] = out["action"].astype(object)
    keep = out[list(UPLIFT_LABELS)].notna().any(axis=1)
    # Rows not randomised (contacted or passed over for certain: propensity 0 or 1, e.g.
    # the monthly cycle's over-capacity customers) carry no contrast to learn from.
    e = out["propensity"].to_numpy(float)
    keep &= (e > 0.0) & (e < 1.0)
    return out[keep].reset_index(drop=True)


# ------------------------------------------------------------------ the DR-learner
def _fit(params: dict, X: np.ndarray, y: np.ndarray, rounds: int,
         weight: np.ndarray | None = None) -> lgb.Booster:
    ds = lgb.Dataset(X, y, weight=weight, feature_name=[*FEATURE_NAMES, "treated"][:X.shape[1]],
                     free_raw_data=True)
    return lgb.train(params, ds, num_boost_round=rounds)


def dr_pseudo_outcome(y: np.ndarray, t: np.ndarray, e: np.ndarray, mu0: np.ndarray,
                      mu1: np.ndarray) -> np.ndarray:
    """The doubly robust pseudo-outcome whose conditional mean is the effect ``tau(x)``."""
    e = np.clip(e, *PROPENSITY_CLIP)
    return mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)


def _check(y: np.ndarray, t: np.ndarray, e: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, t, e = (np.asarray(v, float) for v in (y, t, e))
    if t.min() == t.max():
        raise DataValidationError("uplift training set", "needs contacted and control rows",
                                  "treated", f"all {int(t[0])}")
    bad = ~((e > 0) & (e < 1))
    if bad.any():
        raise DataValidationError("uplift training set", "propensity must be in (0, 1)",
                                  "propensity", str(e[bad][:5]))
    return y, t, e


def fit_effect(X: pd.DataFrame, y: np.ndarray, t: np.ndarray, e: np.ndarray,
               params: UpliftParams | None = None) -> lgb.Booster:
    """Fit the DR-learner of one outcome; return the effect model (a regression booster).

    Args:
        X: features (:data:`FEATURE_NAMES`).
        y: the outcome (0/1).
        t: 1 when contacted, 0 in the randomised control.
        e: the logged propensity of being contacted.
        params: learner settings.

    Raises:
        DataValidationError: no treated or no control rows, or a propensity outside (0, 1).
    """
    p = params or UpliftParams()
    y, t, e = _check(y, t, e)
    Xv = X[list(FEATURE_NAMES)].to_numpy(float)
    n = len(y)
    fold = np.random.default_rng(p.seed).integers(0, p.folds, n)
    mu0, mu1 = np.empty(n), np.empty(n)
    out_params = p._lgb("binary", p.num_leaves, n)
    for k in range(p.folds):
        fit_rows, pred_rows = fold != k, fold == k
        booster = _fit(out_params, np.column_stack([Xv[fit_rows], t[fit_rows]]), y[fit_rows],
                       p.outcome_rounds)
        Xp = Xv[pred_rows]
        mu0[pred_rows] = booster.predict(np.column_stack([Xp, np.zeros(len(Xp))]))
        mu1[pred_rows] = booster.predict(np.column_stack([Xp, np.ones(len(Xp))]))
    psi = dr_pseudo_outcome(y, t, e, mu0, mu1)
    return _fit(p._lgb("regression", p.effect_leaves, n), Xv, psi, p.effect_rounds)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def fit_risk_shift(X: pd.DataFrame, y: np.ndarray, t: np.ndarray, e: np.ndarray,
                   params: UpliftParams | None = None) -> tuple[lgb.Booster, dict]:
    """Fit the risk-based learner of one outcome: a baseline risk model and the contact's
    constant log odds ratio.

    ``f(x)``: a LightGBM logit of the outcome on the features (both arms; the contact
    is randomised, so it is independent of ``x`` within an as-of date). Then
    ``P(y | x, t) = sigmoid(f_oof(x) + a + theta t)`` by maximum likelihood, with
    ``f_oof`` cross-fitted (no row is predicted by a model that saw it) and stabilised
    inverse-propensity weights (the logged propensity varies with the month's
    capacity). Newton's method on two parameters, with a weak normal prior on the log
    odds ratio (sd :data:`RISK_PRIOR_SD`: an odds ratio beyond e^4 is implausible for a
    phone call) so a tiny or separated sample still gives a finite estimate.

    Returns:
        The baseline booster and ``{"a", "log_odds_ratio", "se", "n", "n_treated"}``
        (``se`` the robust, sandwich standard error of the log odds ratio).

    Raises:
        DataValidationError: as :func:`fit_effect`.
    """
    p = params or UpliftParams()
    y, t, e = _check(y, t, e)
    Xv = X[list(FEATURE_NAMES)].to_numpy(float)
    n = len(y)
    fold = np.random.default_rng(p.seed).integers(0, p.folds, n)
    out_params = p._lgb("binary", p.num_leaves, n)
    f = np.empty(n)
    for k in range(p.folds):
        fit_rows, pred_rows = fold != k, fold == k
        booster = _fit(out_params, Xv[fit_rows], y[fit_rows], p.outcome_rounds)
        f[pred_rows] = booster.predict(Xv[pred_rows], raw_score=True)
    e = np.clip(e, *PROPENSITY_CLIP)
    w = np.where(t > 0, t.mean() / e, (1 - t.mean()) / (1 - e))
    D = np.column_stack([np.ones(n), t])
    prior = np.diag([1e-9, 1.0 / RISK_PRIOR_SD ** 2])
    beta = np.zeros(2)
    for _ in range(50):
        pr = _sigmoid(f + D @ beta)
        hess = (D * (w * pr * (1 - pr))[:, None]).T @ D + prior
        step = np.linalg.solve(hess, D.T @ (w * (y - pr)) - prior @ beta)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    # Sandwich (robust) variance: the weights are not frequencies.
    pr = _sigmoid(f + D @ beta)
    score = D * (w * (y - pr))[:, None]
    bread = np.linalg.inv(hess)
    cov = bread @ (score.T @ score) @ bread
    full = _fit(out_params, Xv, y, p.outcome_rounds)
    return full, {"a": float(beta[0]), "log_odds_ratio": float(beta[1]),
                  "se": float(np.sqrt(cov[1, 1])), "n": int(n), "n_treated": int(t.sum())}


def risk_shift_effect(f: np.ndarray, shift: Mapping[str, float]) -> np.ndarray:
    """``tau = sigmoid(f + a + theta) - sigmoid(f + a)`` for baseline logits `f`."""
    base = np.asarray(f, float) + shift["a"]
    return _sigmoid(base + shift["log_odds_ratio"]) - _sigmoid(base)


# ------------------------------------------------------------------ the bundle
@dataclass
class UpliftBundle:
    """An action's effect models on the three outcomes, without pickle.

    Attributes:
        action: the contact action (a value of ``schema.CONTACT_ACTIONS``).
        boosters: outcome label -> effect model (predicts ``tau``; negative = fewer).
        metadata: training facts and metrics; JSON-able.
    """

    action: str
    boosters: dict[str, lgb.Booster]
    metadata: dict = field(default_factory=dict)

    @property
    def model(self) -> str:
        return model_name(self.action)

    @property
    def learner(self) -> str:
        """``risk`` or ``dr`` (bundles written before the risk learner are ``dr``)."""
        return self.metadata.get("learner", "dr")

    def _file(self, lab: str) -> str:
        return f"{'effect' if self.learner == 'dr' else 'risk'}_{lab}.txt"

    def effects_features(self, X: pd.DataFrame | np.ndarray, interval: bool = False
                         ) -> pd.DataFrame:
        """Estimated effect per outcome (``effect_<label>``) from a feature frame.

        With `interval`, also ``effect_<label>_lo`` / ``_hi``: the effect at the ends of
        the 95% interval of the contact's log odds ratio (risk learner; NaN for the
        DR-learner, which gives none).
        """
        Xv = X[list(FEATURE_NAMES)].to_numpy(float) if isinstance(X, pd.DataFrame) else X
        return pd.DataFrame(self.effect_arrays(Xv, interval))

    def effect_arrays(self, Xv: np.ndarray, interval: bool = False) -> dict[str, np.ndarray]:
        """:meth:`effects_features` as arrays by column name, without pandas (the service
        decides for one customer at a time, where a frame costs more than the trees)."""
        labs = list(self.boosters)
        margins = np.stack([TreeExplainer.from_booster(self.boosters[lab]).margin(Xv)
                            for lab in labs])  # (outcomes, rows)
        out: dict[str, np.ndarray] = {}
        if self.learner == "dr":
            for lab, m in zip(labs, np.clip(margins, -1.0, 1.0), strict=True):
                out[f"effect_{lab}"] = m
                if interval:
                    out[f"effect_{lab}_lo"] = out[f"effect_{lab}_hi"] = np.full(len(m), np.nan)
            return out
        a, lor, se = (np.array([[self.metadata["shift"][lab][k]] for lab in labs])
                      for k in ("a", "log_odds_ratio", "se"))
        base = margins + a
        moved = [base, base + lor]
        if interval:
            moved += [base + lor - 1.96 * se, base + lor + 1.96 * se]
        p = _sigmoid(np.stack(moved))  # one pass over every outcome and end
        for i, lab in enumerate(labs):
            out[f"effect_{lab}"] = p[1, i] - p[0, i]
            if interval:
                out[f"effect_{lab}_lo"] = p[2, i] - p[0, i]
                out[f"effect_{lab}_hi"] = p[3, i] - p[0, i]
        return out

    def odds_ratios(self) -> dict[str, tuple[float, float, float]]:
        """Outcome -> the contact's odds ratio and its 95% interval (risk learner only)."""
        if self.learner != "risk":
            return {}
        out = {}
        for lab, sh in self.metadata["shift"].items():
            lor, se = sh["log_odds_ratio"], sh["se"]
            out[lab] = (float(np.exp(lor)), float(np.exp(lor - 1.96 * se)),
                        float(np.exp(lor + 1.96 * se)))
        return out

    @property
    def decision_gate(self) -> dict:
        """The decision gate's record (``postloan.decisions.strategy.gate``); empty when the bundle
        was never judged against the constants (it then does not decide)."""
        return dict(self.metadata.get("decision_gate") or {})

    def effects(self, snapshot: pd.DataFrame) -> pd.DataFrame:
        """Estimated effect per outcome for snapshot rows (the one feature function)."""
        out = self.effects_features(build_features(snapshot))
        out.index = snapshot.index
        return out

    def predict(self, snapshot: pd.DataFrame) -> pd.DataFrame:
        """Same as :meth:`effects` (the pyfunc entry point)."""
        return self.effects(snapshot)

    def save(self, folder: Path) -> Path:
        """Write the boosters as LightGBM text (``risk_<label>.txt``, or ``effect_<label>.txt``
        for the DR-learner), ``uplift.json`` (with the log odds ratios) and the spec."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for lab, b in self.boosters.items():
            (folder / self._file(lab)).write_text(b.model_to_string(), encoding="utf-8")
        (folder / "feature_spec.json").write_text(
            json.dumps({**feature_spec(), "model": self.model}, indent=1, ensure_ascii=False),
            encoding="utf-8")
        (folder / "uplift.json").write_text(json.dumps(
            {"model": self.model, "action": self.action, "labels": list(self.boosters),
             **self.metadata}, indent=1, sort_keys=True, default=str), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: Path) -> UpliftBundle:
        """Load a folder written by :meth:`save`.

        Raises:
            ModelNotFoundError: a file is missing or unreadable, or other features.
        """
        folder = Path(folder)
        try:
            meta = json.loads((folder / "uplift.json").read_text(encoding="utf-8"))
            spec = json.loads((folder / "feature_spec.json").read_text(encoding="utf-8"))
            kind = "effect" if meta.get("learner", "dr") == "dr" else "risk"
            boosters = {lab: lgb.Booster(model_str=(folder / f"{kind}_{lab}.txt").read_text(
                encoding="utf-8")) for lab in meta["labels"]}
        except Exception as e:  # missing file, corrupt JSON or LightGBM text
            raise ModelNotFoundError(f"uplift bundle {folder} cannot be loaded: {e}") from e
        if [f["name"] for f in spec["features"]] != list(FEATURE_NAMES):
            raise ModelNotFoundError(f"uplift bundle {folder} was trained on other features "
                                     "than this version of postloan builds; retrain it")
        if meta.get("learner", "dr") == "risk" and not all(
                lab in meta.get("shift", {}) for lab in meta["labels"]):
            raise ModelNotFoundError(f"uplift bundle {folder}: uplift.json lacks the log odds "
                                     "ratio of an outcome ('shift'); retrain it")
        action = meta.pop("action")
        for k in ("model", "labels"):
            meta.pop(k, None)
        return cls(action=action, boosters=boosters, metadata=meta)


def outcomes_seen_until(bundle: UpliftBundle) -> pd.Timestamp | None:
    """The last date whose outcomes a bundle's training and gate have seen: its latest
    training or held-out as-of date plus the longest label's horizon (12 months).

    A replay from an earlier as-of judges such a model on a future it has learned from
    (docs/uplift.md, "Training windows"). None when the bundle records no dates.
    """
    splits = bundle.metadata.get("splits") or {}
    dates = [*splits.get("train", []), *splits.get("heldout", [])]
    if not dates:
        return None
    return max(pd.Timestamp(d) for d in dates) + pd.offsets.MonthEnd(12)


# ------------------------------------------------------------------ evaluation
def qini_curve(score: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Cumulative gain of the top-k by `score` (ties broken by position), k = 1..n."""
    order = np.argsort(-np.asarray(score, float), kind="stable")
    return np.cumsum(np.asarray(gain, float)[order])


def ipw_gain(y: np.ndarray, t: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Per row, the inverse-propensity estimate of outcomes a contact avoids (unbiased)."""
    e = np.clip(np.asarray(e, float), *PROPENSITY_CLIP)
    y, t = np.asarray(y, float), np.asarray(t, float)
    return -(t * y / e - (1 - t) * y / (1 - e))


def qini_auuc(score: np.ndarray, gain: np.ndarray) -> tuple[float, float]:
    """(Qini coefficient, AUUC) of a ranking: mean area above the random line, mean area,
    both per row of the set (so sets of different size compare)."""
    q = qini_curve(score, gain)
    n = q.size
    if n == 0:
        return float("nan"), float("nan")
    rand = q[-1] * np.arange(1, n + 1) / n
    return float(np.mean(q - rand) / n), float(np.mean(q) / n)


def qini_auuc_se(score: np.ndarray, gain: np.ndarray, n_boot: int = 200, seed: int = 0
                 ) -> tuple[float, float]:
    """Bootstrap standard errors of (Qini, AUUC): rows resampled with replacement
    `n_boot` times (seeded). A held-out set of a few hundred contacts gives a Qini whose
    sign is mostly noise; the gate reads it with this error."""
    score, gain = np.asarray(score, float), np.asarray(gain, float)
    n = score.size
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = np.array([qini_auuc(score[i], gain[i])
                      for i in (rng.integers(0, n, n) for _ in range(n_boot))])
    return float(draws[:, 0].std(ddof=1)), float(draws[:, 1].std(ddof=1))


def evaluate(bundle_effects: pd.DataFrame, held: pd.DataFrame,
             truth: pd.DataFrame | None = None) -> dict[str, float]:
    """Held-out metrics of one action's effects, per outcome.

    Args:
        bundle_effects: ``effect_<label>`` per row of `held`.
        held: held-out rows (``treated``, ``propensity``, labels, ``customer_id``,
            ``as_of``).
        truth: ``contact_truth`` (simulated books): adds the oracle comparison.

    Returns:
        ``<label>_qini``, ``<label>_auuc`` (realised, inverse-propensity) with their
        bootstrap standard errors ``<label>_qini_se``, ``<label>_auuc_se``, and with the
        truth ``<label>_qini_oracle``, ``<label>_qini_ratio`` (learned / oracle on the
        realised outcomes), ``<label>_qini_true``, ``<label>_qini_true_oracle``,
        ``<label>_qini_true_ratio`` (noise-free: gains are the true effects) and
        ``<label>_effect_corr`` (Pearson, estimated vs true effect).
    """
    m: dict[str, float] = {"n_heldout": float(len(held)),
                           "n_heldout_treated": float(held["treated"].sum())}
    true = None
    action = held["action"].iloc[0] if len(held) else None
    if truth is not None and action is not None:
        cols = [f"effect_{action}_{lab}" for lab in UPLIFT_LABELS]
        tt = truth[["customer_id", "as_of", *cols]].copy()
        tt["as_of"] = pd.to_datetime(tt["as_of"]).astype("datetime64[ns]")
        key = held[["customer_id", "as_of"]].astype({"as_of": "datetime64[ns]"})
        true = key.merge(tt, on=["customer_id", "as_of"], how="left")
    for lab in UPLIFT_LABELS:
        ok = held[lab].notna().to_numpy()
        if ok.sum() < 50:
            continue
        score = -bundle_effects[f"effect_{lab}"].to_numpy()[ok]  # higher = more avoided
        gain = ipw_gain(held[lab].to_numpy(float)[ok], held["treated"].to_numpy()[ok],
                        held["propensity"].to_numpy()[ok])
        m[f"{lab}_qini"], m[f"{lab}_auuc"] = qini_auuc(score, gain)
        m[f"{lab}_qini_se"], m[f"{lab}_auuc_se"] = qini_auuc_se(score, gain)
        if true is None:
            continue
        te = true[f"effect_{action}_{lab}"].to_numpy(float)[ok]
        have = ~np.isnan(te)
        if have.sum() < 50:
            continue
        m[f"{lab}_qini_oracle"] = qini_auuc(-te[have], gain[have])[0]
        q_model_t = qini_auuc(score[have], -te[have])[0]
        q_oracle_t = qini_auuc(-te[have], -te[have])[0]
        m[f"{lab}_qini_true"], m[f"{lab}_qini_true_oracle"] = q_model_t, q_oracle_t
        m[f"{lab}_qini_ratio"] = (qini_auuc(score[have], gain[have])[0]
                                  / m[f"{lab}_qini_oracle"]
                                  if m[f"{lab}_qini_oracle"] > 0 else float("nan"))
        m[f"{lab}_qini_true_ratio"] = q_model_t / q_oracle_t if q_oracle_t > 0 else float("nan")
        est = bundle_effects[f"effect_{lab}"].to_numpy()[ok][have]
        m[f"{lab}_effect_corr"] = (float(np.corrcoef(est, te[have])[0, 1])
                                   if est.std() > 0 and te[have].std() > 0 else float("nan"))
    return m


def drivers(booster: lgb.Booster, X: pd.DataFrame, k: int = 8,
            shift: Mapping[str, float] | None = None) -> list[dict]:
    """Which traits move a customer's estimated effect most, top `k`.

    DR-learner: mean |TreeSHAP| of the effect model. Risk-based learner (`shift`
    given): the traits move the effect through the baseline risk, so each logit
    contribution is scaled by ``d tau / d f`` at the customer's own risk (the effect's
    first-order change), then averaged in absolute value.
    """
    from postloan.models.explain import contributions_array

    Xv = X[list(FEATURE_NAMES)].to_numpy(float)
    contrib = np.asarray(contributions_array(booster, Xv))
    bias = contrib[:, len(FEATURE_NAMES)]
    contrib = contrib[:, :len(FEATURE_NAMES)]
    if shift is not None:
        base = contrib.sum(axis=1) + bias + shift["a"]
        p1, p0 = _sigmoid(base + shift["log_odds_ratio"]), _sigmoid(base)
        contrib = contrib * (p1 * (1 - p1) - p0 * (1 - p0))[:, None]
    imp = np.abs(contrib).mean(axis=0)
    order = np.argsort(-imp, kind="stable")[:k]
    return [{"feature": FEATURE_NAMES[i], "mean_abs_effect": float(imp[i])} for i in order]


@dataclass
class UpliftOutput:
    """One action's trained bundle, its held-out metrics and drivers."""

    bundle: UpliftBundle
    metrics: dict[str, float]
    drivers: dict[str, list[dict]]
    splits: dict[str, list[str]]


def train_action(data: pd.DataFrame, action: str, test_dates: Sequence[pd.Timestamp],
                 params: UpliftParams | None = None, truth: pd.DataFrame | None = None
                 ) -> UpliftOutput:
    """Train one action's effect models on earlier as-of dates, evaluate on `test_dates`.

    Args:
        data: :func:`training_set` rows.
        action: the contact action.
        test_dates: held-out as-of dates (later than the training ones).
        params: learner settings.
        truth: ``contact_truth`` for the oracle comparison (optional).
    """
    params = params or UpliftParams()
    rows = data[data["action"] == action]
    test = rows["as_of"].isin(pd.DatetimeIndex(test_dates)).to_numpy()
    train, held = rows[~test], rows[test]
    if train.empty or held.empty:
        which = "training" if train.empty else "held-out"
        raise DataValidationError("uplift training set", f"no {which} rows for the action",
                                  "action", action)
    Xtr = build_features(train)
    boosters, shift = {}, {}
    for lab in UPLIFT_LABELS:
        ok = train[lab].notna().to_numpy()
        args = (Xtr[ok], train[lab].to_numpy(float)[ok], train["treated"].to_numpy()[ok],
                train["propensity"].to_numpy()[ok], params)
        if params.learner == "dr":
            boosters[lab] = fit_effect(*args)
        else:
            boosters[lab], shift[lab] = fit_risk_shift(*args)
    meta = {"params": asdict(params), "learner": params.learner}
    if shift:
        meta["shift"] = shift
    bundle = UpliftBundle(action, boosters, meta)
    Xh = build_features(held)
    eff = bundle.effects_features(Xh)
    metrics = evaluate(eff, held.reset_index(drop=True), truth)
    metrics["n_train"] = float(len(train))
    metrics["n_train_treated"] = float(train["treated"].sum())
    for lab in UPLIFT_LABELS:
        metrics[f"{lab}_mean_effect"] = float(eff[f"effect_{lab}"].mean())
        if lab in shift:  # the contact's odds ratio on the outcome, with its 95% interval
            lor, se = shift[lab]["log_odds_ratio"], shift[lab]["se"]
            metrics[f"{lab}_odds_ratio"] = float(np.exp(lor))
            metrics[f"{lab}_odds_ratio_lo"] = float(np.exp(lor - 1.96 * se))
            metrics[f"{lab}_odds_ratio_hi"] = float(np.exp(lor + 1.96 * se))
    drv = {lab: drivers(b, Xh, shift=shift.get(lab)) for lab, b in boosters.items()}
    splits = {"train": sorted({f"{d:%Y-%m-%d}" for d in train["as_of"]}),
              "heldout": sorted({f"{d:%Y-%m-%d}" for d in held["as_of"]})}
    bundle.metadata.update(metrics=metrics, drivers=drv, splits=splits)
    return UpliftOutput(bundle, metrics, drv, splits)


def outreach_log(interactions: pd.DataFrame) -> pd.DataFrame:
    """The logged outreach as treatments aligned to snapshot as-of dates.

    Each ``outreach`` row (one eligible customer-month of the contact policy) is
    dated at the month end before its event: the as-of of the snapshot the decision
    was taken on, so features come from ``build_snapshot(tables, as_of)`` and the
    outcomes are that snapshot's labels. On a simulated book the rows match
    ``contact_truth`` on ``customer_id`` and ``as_of``.

    Args:
        interactions: the interactions table (rows of other kinds are ignored).

    Returns:
        ``customer_id``, ``as_of``, ``action``, ``eligibility``, ``assignment``,
        ``treated`` (1 when contacted; holdout and over-capacity rows are the
        control), ``reached`` (1 when the contact got through) and ``propensity``.
    """
    o = interactions[interactions["kind"] == "outreach"]
    as_of = o["event_date"] - pd.offsets.MonthEnd(1)  # the previous month end
    out = pd.DataFrame({
        "customer_id": o["customer_id"].to_numpy(),
        "as_of": as_of.to_numpy().astype("datetime64[ns]"),
        "action": o["action"].to_numpy(), "eligibility": o["eligibility"].to_numpy(),
        "assignment": o["assignment"].to_numpy(),
        "treated": (o["assignment"] == "contacted").to_numpy().astype(np.int8),
        "reached": (o["outcome"] == "reached").to_numpy().astype(np.int8),
        "propensity": o["propensity"].to_numpy(dtype=float),
    })
    return out.sort_values(["as_of", "customer_id"], kind="stable").reset_index(drop=True)


__all__ = ["ACTIONS", "LEARNERS", "UPLIFT_LABELS", "UpliftBundle", "UpliftOutput",
           "UpliftParams", "dr_pseudo_outcome", "drivers", "evaluate", "fit_effect",
           "fit_risk_shift", "ipw_gain", "model_name", "outcomes_seen_until", "outreach_log",
           "qini_auuc", "qini_auuc_se", "qini_curve", "risk_shift_effect", "train_action", "training_set"]
