"""Metrics a credit-risk validator reads, from scikit-learn where it has them.

AUC, Gini, KS, Brier, log loss, expected calibration error, calibration and lift
tables by decile, top-decile lift and capture, metrics by segment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve

from postloan.errors import DataValidationError


def _arrays(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(y_score, dtype="float64")
    if y.shape != p.shape:
        raise DataValidationError("predictions", f"{len(p)} scores but {len(y)} labels", "label")
    if np.isnan(p).any() or np.isinf(p).any():
        raise DataValidationError("predictions", "scores contain NaN or inf", "score")
    if np.isnan(y).any() or not np.isin(y, (0, 1)).all():
        raise DataValidationError("predictions", "labels must be 0 or 1 (no NaN)", "label")
    if len(np.unique(y)) < 2:
        raise DataValidationError("predictions", "labels hold one class only: AUC undefined",
                                  "label")
    return y, p


def _deciles(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-frequency bins by score, highest scores in bin 0; ties kept deterministic."""
    order = np.argsort(-p, kind="stable")
    bins = np.empty(len(p), dtype=np.int64)
    bins[order] = np.arange(len(p)) * n_bins // len(p)
    return bins


def ks_statistic(y_true, y_score) -> float:
    """Max gap between the cumulative score distributions of bads and goods."""
    y, p = _arrays(y_true, y_score)
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def expected_calibration_error(y_true, y_score, n_bins: int = 10) -> float:
    """Weighted mean |mean predicted - observed rate| over equal-frequency score bins."""
    y, p = _arrays(y_true, y_score)
    b = _deciles(p, n_bins)
    err = 0.0
    for k in range(n_bins):
        m = b == k
        if m.any():
            err += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(err)


def calibration_table(y_true, y_score, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted versus observed rate per score decile (bin 1 = highest scores)."""
    y, p = _arrays(y_true, y_score)
    b = _deciles(p, n_bins)
    df = pd.DataFrame({"bin": b + 1, "y": y, "p": p})
    g = df.groupby("bin")
    return pd.DataFrame({"n": g.size(), "score_min": g["p"].min(), "score_max": g["p"].max(),
                         "mean_pred": g["p"].mean(), "observed_rate": g["y"].mean(),
                         "n_pos": g["y"].sum().astype(int)}).reset_index()


def lift_table(y_true, y_score, n_bins: int = 10) -> pd.DataFrame:
    """Bad rate, lift and cumulative capture per score decile (decile 1 = riskiest)."""
    y, p = _arrays(y_true, y_score)
    b = _deciles(p, n_bins)
    df = pd.DataFrame({"decile": b + 1, "y": y})
    g = df.groupby("decile")["y"]
    t = pd.DataFrame({"n": g.size(), "n_pos": g.sum().astype(int)}).reset_index()
    t["bad_rate"] = t["n_pos"] / t["n"]
    t["lift"] = t["bad_rate"] / y.mean()
    t["cum_capture"] = t["n_pos"].cumsum() / y.sum()
    return t


def binary_metrics(y_true, y_score) -> dict[str, float]:
    """The validator's metric set for one model on one sample."""
    y, p = _arrays(y_true, y_score)
    auc = float(roc_auc_score(y, p))
    lift = lift_table(y, p)
    return {
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks_statistic(y, p),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15))),
        "ece": expected_calibration_error(y, p),
        "base_rate": float(y.mean()),
        "mean_pred": float(p.mean()),
        "n": float(len(y)),
        "n_pos": float(y.sum()),
        "top_decile_lift": float(lift["lift"].iloc[0]),
        "top_decile_capture": float(lift["cum_capture"].iloc[0]),
    }


def metrics_by_segment(y_true, y_score, segments: pd.Series, min_count: int = 50
                       ) -> pd.DataFrame:
    """AUC, base rate and mean prediction per segment value (AUC NaN if not computable)."""
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(y_score, dtype="float64")
    seg = pd.Series(np.asarray(segments, dtype=object))
    rows = []
    for value in sorted(seg.dropna().unique(), key=str):
        m = (seg == value).to_numpy()
        ys, ps = y[m], p[m]
        auc = float(roc_auc_score(ys, ps)) if m.sum() >= min_count and 0 < ys.sum() < len(ys) \
            else np.nan
        rows.append({"segment": str(value), "n": int(m.sum()), "base_rate": float(ys.mean()),
                     "mean_pred": float(ps.mean()), "auc": auc})
    return pd.DataFrame(rows)


def disparity_summary(table: pd.DataFrame) -> dict[str, float]:
    """Spread across segments: max-min AUC and max-min (mean prediction - base rate)."""
    gap = table["mean_pred"] - table["base_rate"]
    return {"auc_spread": float(table["auc"].max() - table["auc"].min()),
            "calibration_gap_spread": float(gap.max() - gap.min())}
