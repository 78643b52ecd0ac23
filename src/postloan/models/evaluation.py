"""Metrics a credit-risk validator reads, from scikit-learn where it has them.

AUC, Gini, KS, Brier, log loss, expected calibration error (ECE), calibration and
lift tables by score decile, top-decile lift and capture, metrics by segment.

Every function is pure: arrays in, numbers or DataFrames out. Inputs are checked
once by :func:`validate_predictions`, which raises
:class:`postloan.errors.DataValidationError` naming the offending column.

Decile binning. Bins are equal-frequency by score and never split a group of tied
scores: each row gets the average 0-based position of its tie group in the
descending order, and bin ``floor(position * n_bins / n)``. Without ties every bin
holds ``n / n_bins`` rows (give or take one); with heavy ties (an isotonic
calibrator outputs a step function) bins can be uneven or empty and empty bins
are left out of the tables. The result depends only on the scores, never on row
order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve

from postloan.errors import DataValidationError

log = logging.getLogger(__name__)

TABLE = "predictions"
# Probabilities are clipped this far from 0 and 1 before the log loss so that one
# confident miss gives a large, finite loss instead of inf.
LOG_LOSS_EPS = 1e-15
TOP_FRACTION = 0.1


def _offending(mask: np.ndarray, values: np.ndarray, name: str, k: int = 5) -> pd.DataFrame:
    """The first `k` offending positions and their values, for the error message."""
    idx = np.flatnonzero(mask)[:k]
    return pd.DataFrame({"position": idx, name: values[idx]})


def _as_float(values: object, name: str, table: str) -> np.ndarray:
    """A 1-D float64 array (NaN for missing) or a DataValidationError naming `name`."""
    try:
        if isinstance(values, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
            arr = np.asarray(values.to_numpy(dtype="float64", na_value=np.nan))
        else:
            arr = np.asarray(values, dtype="float64")
    except (TypeError, ValueError) as e:
        raise DataValidationError(table, f"must be numeric: {e}", name) from e
    if arr.ndim != 1:
        raise DataValidationError(table, f"must be one-dimensional, got shape {arr.shape}", name)
    return arr


def validate_scores(y_score: object, *, probabilities: bool = True, score_name: str = "y_score",
                    table: str = TABLE) -> np.ndarray:
    """Check scores alone (no labels) and return them as a float array.

    Args:
        y_score: scores, 1-D.
        probabilities: also require scores in [0, 1].
        score_name: name of the score column in error messages.
        table: name of the table in error messages.

    Returns:
        float64 array.

    Raises:
        DataValidationError: not numeric or not 1-D, NaN, infinite, or (with
            `probabilities`) outside [0, 1].
    """
    p = _as_float(y_score, score_name, table)
    bad = np.isnan(p)
    if bad.any():
        raise DataValidationError(table, f"{int(bad.sum())} missing (NaN) scores", score_name,
                                  _offending(bad, p, score_name))
    bad = np.isinf(p)
    if bad.any():
        raise DataValidationError(table, f"{int(bad.sum())} infinite scores", score_name,
                                  _offending(bad, p, score_name))
    if probabilities:
        bad = (p < 0) | (p > 1)
        if bad.any():
            raise DataValidationError(
                table, f"scores must be probabilities in [0, 1]; found min {p.min():.6g}, "
                f"max {p.max():.6g}", score_name, _offending(bad, p, score_name))
    return p


def validate_predictions(
    y_true: object,
    y_score: object,
    *,
    probabilities: bool = True,
    require_both_classes: bool = True,
    label_name: str = "y_true",
    score_name: str = "y_score",
    table: str = TABLE,
) -> tuple[np.ndarray, np.ndarray]:
    """Check labels and scores of a binary classifier and return them as float arrays.

    Args:
        y_true: labels, 0 or 1 (bool, int or float; no missing values).
        y_score: scores, higher means more likely 1.
        probabilities: also require scores in [0, 1].
        require_both_classes: require at least one 0 and one 1 (AUC, calibration).
        label_name: name of the label column in error messages.
        score_name: name of the score column in error messages.
        table: name of the table in error messages.

    Returns:
        ``(y, p)``: float64 arrays of equal length.

    Raises:
        DataValidationError: lengths differ, inputs are empty or not 1-D, labels are
            missing or not in {0, 1}, scores are NaN, infinite or (with
            `probabilities`) outside [0, 1], or only one class is present.
    """
    y = _as_float(y_true, label_name, table)
    p = _as_float(y_score, score_name, table)
    if len(y) != len(p):
        raise DataValidationError(
            table, f"length mismatch: {score_name} has {len(p)} values but {label_name} has "
            f"{len(y)}", score_name)
    if len(y) == 0:
        raise DataValidationError(table, "no rows: cannot evaluate an empty sample", label_name)
    bad = np.isnan(y)
    if bad.any():
        raise DataValidationError(table, f"{int(bad.sum())} missing (NaN) labels", label_name,
                                  _offending(bad, y, label_name))
    bad = (y != 0) & (y != 1)
    if bad.any():
        raise DataValidationError(
            table, f"labels must be 0 or 1; found {np.unique(y[bad])[:5].tolist()}",
            label_name, _offending(bad, y, label_name))
    validate_scores(p, probabilities=probabilities, score_name=score_name, table=table)
    if require_both_classes:
        n_pos = int(y.sum())
        if n_pos in (0, len(y)):
            raise DataValidationError(
                table, f"only one class present (all {len(y)} labels are {int(y[0])}): AUC "
                "and calibration need both 0 and 1", label_name)
    return y, p


def _check_n_bins(n_bins: int) -> None:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")


def score_bins(y_score: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Equal-frequency bin of each score, 0 = highest scores, tied scores kept together.

    Args:
        y_score: finite scores.
        n_bins: number of bins.

    Returns:
        Integer array in ``[0, n_bins)``, one per score (see the module docstring).
    """
    _check_n_bins(n_bins)
    p = np.asarray(y_score, dtype="float64")
    n = len(p)
    # np.unique sorts -p ascending, i.e. scores descending; -0.0 == 0.0 so they tie.
    _, inverse, counts = np.unique(-p, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    position = (starts + (counts - 1) / 2.0)[inverse]
    return np.minimum((position * n_bins // n).astype(np.int64), n_bins - 1)


def ks_statistic(y_true: object, y_score: object) -> float:
    """Kolmogorov-Smirnov statistic: max gap between the bads' and goods' score CDFs.

    Computed exactly from the ROC curve: at each threshold the gap between the
    cumulative distributions of bads and goods equals ``tpr - fpr``.

    Args:
        y_true: labels, 1 = bad.
        y_score: scores, higher = riskier (any finite real numbers).

    Returns:
        KS in [0, 1]. One-sided, as ``max(tpr - fpr)``: a model that ranks bads
        below goods scores 0, not a high KS.
    """
    y, p = validate_predictions(y_true, y_score, probabilities=False)
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def expected_calibration_error(y_true: object, y_score: object, n_bins: int = 10) -> float:
    """Expected calibration error over equal-frequency score bins.

    ``sum over bins of (n_bin / n) * |mean predicted - observed rate|``.

    Args:
        y_true: labels.
        y_score: predicted probabilities.
        n_bins: number of bins.

    Returns:
        ECE in [0, 1]; 0 is perfectly calibrated at this resolution.
    """
    t = calibration_table(y_true, y_score, n_bins)
    w = t["n"] / t["n"].sum()
    return float((w * (t["mean_pred"] - t["observed_rate"]).abs()).sum())


def calibration_table(y_true: object, y_score: object, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability versus observed rate per score bin.

    Args:
        y_true: labels.
        y_score: predicted probabilities.
        n_bins: number of equal-frequency bins.

    Returns:
        One row per non-empty bin, ``bin`` 1 = lowest scores up to ``n_bins`` =
        highest, with columns bin, n, score_min, score_max, mean_pred,
        observed_rate, n_pos.

    Raises:
        DataValidationError: see :func:`validate_predictions`.
    """
    y, p = validate_predictions(y_true, y_score)
    # Same bins as lift_table, numbered the other way round: bin k <-> decile n_bins+1-k.
    b = n_bins - score_bins(p, n_bins)
    g = pd.DataFrame({"bin": b, "y": y, "p": p}).groupby("bin", sort=True)
    out = pd.DataFrame({
        "n": g.size(),
        "score_min": g["p"].min(),
        "score_max": g["p"].max(),
        "mean_pred": g["p"].mean(),
        "observed_rate": g["y"].mean(),
        "n_pos": g["y"].sum().astype("int64"),
    }).reset_index()
    out["n"] = out["n"].astype("int64")
    return out


def lift_table(y_true: object, y_score: object, n_bins: int = 10) -> pd.DataFrame:
    """Bad rate, lift and cumulative capture per score decile.

    Args:
        y_true: labels, 1 = bad.
        y_score: scores, higher = riskier (any finite real numbers).
        n_bins: number of equal-frequency bins.

    Returns:
        One row per non-empty bin, ``decile`` 1 = highest scores (riskiest), with
        columns decile, n, n_pos, bad_rate, lift (bad rate / overall bad rate) and
        cum_capture (share of all bads in this and riskier deciles).

    Raises:
        DataValidationError: see :func:`validate_predictions`.
    """
    y, p = validate_predictions(y_true, y_score, probabilities=False)
    d = score_bins(p, n_bins) + 1
    g = pd.DataFrame({"decile": d, "y": y}).groupby("decile", sort=True)["y"]
    out = pd.DataFrame({"n": g.size().astype("int64"),
                        "n_pos": g.sum().astype("int64")}).reset_index()
    out["bad_rate"] = out["n_pos"] / out["n"]
    out["lift"] = out["bad_rate"] / y.mean()
    out["cum_capture"] = out["n_pos"].cumsum() / y.sum()
    return out


def top_fraction_capture(y_true: object, y_score: object, fraction: float = TOP_FRACTION
                         ) -> float:
    """Share of all positives among the top `fraction` of rows by score.

    Exactly ``fraction * n`` rows count, even when that cuts through a group of tied
    scores: the tied group then contributes its positives pro rata, which is the
    expected capture under a random order of the ties.

    Args:
        y_true: labels.
        y_score: scores, higher = riskier.
        fraction: share of rows in (0, 1].

    Returns:
        Capture in [0, 1]; lift of the top fraction is ``capture / fraction``.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    y, p = validate_predictions(y_true, y_score, probabilities=False)
    _, inverse, counts = np.unique(-p, return_inverse=True, return_counts=True)
    pos = np.bincount(inverse, weights=y, minlength=len(counts))
    k = fraction * len(y)
    before = np.cumsum(counts) - counts  # rows ranked above each tie group
    take = np.clip(k - before, 0, counts) / counts  # share of each group inside the top k
    return float((take * pos).sum() / y.sum())


def binary_metrics(y_true: object, y_score: object) -> dict[str, float]:
    """The validator's metric set for one model on one sample.

    Args:
        y_true: labels, 1 = bad.
        y_score: predicted probabilities of 1.

    Returns:
        auc, gini (2 auc - 1), ks, brier, log_loss (probabilities clipped to
        [1e-15, 1 - 1e-15]), ece (10 equal-frequency bins), base_rate, mean_pred,
        n, n_pos, top_decile_lift (bad rate in the top 10% by score / base rate) and
        top_decile_capture (share of all bads in the top 10%), all floats.

    Raises:
        DataValidationError: see :func:`validate_predictions`.
    """
    y, p = validate_predictions(y_true, y_score)
    auc = float(roc_auc_score(y, p))
    capture = top_fraction_capture(y, p, TOP_FRACTION)
    return {
        "auc": auc,
        "gini": 2.0 * auc - 1.0,
        "ks": ks_statistic(y, p),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS))),
        "ece": expected_calibration_error(y, p),
        "base_rate": float(y.mean()),
        "mean_pred": float(p.mean()),
        "n": float(len(y)),
        "n_pos": float(y.sum()),
        "top_decile_lift": capture / TOP_FRACTION,
        "top_decile_capture": capture,
    }


def metrics_by_segment(y_true: object, y_score: object, segments: pd.Series | Sequence,
                       min_count: int = 50) -> pd.DataFrame:
    """AUC, base rate and mean prediction per segment value.

    Rows are matched by position (a Series' index is ignored). Rows whose segment
    is missing are left out.

    Args:
        y_true: labels.
        y_score: predicted probabilities.
        segments: segment value of each row (region, product, age band...).
        min_count: fewest rows for which a segment's AUC is computed.

    Returns:
        One row per segment value (sorted as text) with columns segment (text), n,
        n_pos, base_rate, mean_pred and auc; auc is NaN when the segment has fewer
        than `min_count` rows or a single class.

    Raises:
        DataValidationError: see :func:`validate_predictions` (one class overall is
            allowed), or `segments` has another length than the labels.
    """
    y, p = validate_predictions(y_true, y_score, require_both_classes=False)
    seg = pd.Series(np.asarray(segments, dtype=object))
    if len(seg) != len(y):
        raise DataValidationError(TABLE, f"length mismatch: segments has {len(seg)} values "
                                  f"but y_true has {len(y)}", "segments")
    rows = []
    present = seg.notna().to_numpy()
    for value in sorted(seg[present].unique(), key=str):
        m = (seg == value).to_numpy() & present
        ys, ps = y[m], p[m]
        n, n_pos = int(m.sum()), int(ys.sum())
        ok = n >= min_count and 0 < n_pos < n
        rows.append({"segment": str(value), "n": n, "n_pos": n_pos,
                     "base_rate": float(ys.mean()), "mean_pred": float(ps.mean()),
                     "auc": float(roc_auc_score(ys, ps)) if ok else np.nan})
    if not rows:
        log.warning("metrics_by_segment: every segment value is missing")
    return pd.DataFrame(rows, columns=["segment", "n", "n_pos", "base_rate", "mean_pred", "auc"])


def disparity_summary(table: pd.DataFrame) -> dict[str, float]:
    """Spread across segments of discrimination and of calibration.

    Args:
        table: output of :func:`metrics_by_segment`.

    Returns:
        ``auc_spread``: max - min AUC over segments with an AUC (NaN if fewer than
        one); ``calibration_gap_spread``: max - min of (mean_pred - base_rate).

    Raises:
        DataValidationError: a needed column is missing.
    """
    for col in ("auc", "mean_pred", "base_rate"):
        if col not in table.columns:
            raise DataValidationError("segment_metrics", "column missing", col)
    auc = table["auc"].dropna()
    gap = table["mean_pred"] - table["base_rate"]
    return {"auc_spread": float(auc.max() - auc.min()) if len(auc) else float("nan"),
            "calibration_gap_spread": float(gap.max() - gap.min()) if len(gap) else float("nan")}
