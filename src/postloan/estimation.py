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

The estimate holds only while the relation between features and outcome holds
(covariate shift is fine: it moves the probabilities with the population). Under a
concept shift (a macro shock changes how features relate to default) it misses;
drift checks (:mod:`postloan.monitoring`) must catch what it misses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from postloan import evaluation as ev
from postloan.calibration import Calibrator, fit_calibrator
from postloan.errors import DataValidationError

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
                         level: float = 0.95, seed: int = 0, chunk: int = 50
                         ) -> PerformanceEstimate:
    """Estimate AUC and event rate from calibrated probabilities, with intervals.

    Args:
        p: calibrated probabilities of the event for one period's rows.
        scores: ranking scores (default: `p`).
        n_samples: label draws for the intervals.
        level: interval level.
        seed: seed of the label draws (same seed, same intervals).
        chunk: draws computed at once (bounds memory: chunk x rows booleans).

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
    ranks = rankdata(s)  # average ranks: ties count one half, as in the AUC
    rng = np.random.default_rng(seed)
    aucs, rates = [], []
    for start in range(0, n_samples, chunk):
        k = min(chunk, n_samples - start)
        y = rng.random((k, len(p))) < p  # one row of labels per draw
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
        A :class:`~postloan.calibration.Calibrator` from the model's probability to the
        reference's event frequency.
    """
    return fit_calibrator(np.asarray(p_reference, dtype="float64"),
                          np.asarray(y_reference, dtype="float64"), method=method)


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
