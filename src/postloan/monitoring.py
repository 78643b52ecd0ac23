"""Drift and stability monitoring: PSI of scores, CSI of features, performance decay.

PSI (population stability index) between a reference and a current sample:
``sum((cur - ref) * ln(cur / ref))`` over bins cut at the reference's quantiles,
with missing values as a bin of their own (a change in how often a value is
missing is drift too) and a small floor on empty bins. CSI is the same index on
one feature. Thresholds (< 0.1 stable, 0.1–0.25 watch, > 0.25 shifted) come from
:class:`MonitoringConfig`.

Macro features (one value per region and month) are not compared by PSI: every
customer of a region moves together, so any month-on-month change would look
like a shift. Their change in level is reported and judged against thresholds in
points instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from postloan import evaluation as ev
from postloan.errors import ConfigError, DataValidationError
from postloan.features import CATEGORICAL_FEATURES

MACRO_FEATURES = ("unemployment_rate", "unemployment_change_6m", "policy_rate", "market_rate")
STATUSES = ("stable", "watch", "shifted")
VERDICTS = ("stable", "watch", "re-validate")


class MonitoringConfig(BaseModel):
    """Thresholds of the drift verdict (validated YAML, defaults from the handbook)."""

    model_config = ConfigDict(extra="forbid")

    psi_watch: float = Field(0.10, gt=0)
    psi_shifted: float = Field(0.25, gt=0)
    n_bins: int = Field(10, ge=2, le=100)
    top_features: int = Field(10, ge=1)
    macro_watch_points: float = Field(0.5, gt=0)
    macro_shifted_points: float = Field(1.5, gt=0)
    auc_drop_watch: float = Field(0.02, ge=0)
    auc_drop_revalidate: float = Field(0.05, ge=0)
    ece_revalidate: float = Field(0.05, gt=0)
    min_labelled_share: float = Field(0.9, gt=0, le=1)
    min_positives: int = Field(200, ge=1)


def load_monitoring_config(path: Path | None = None) -> MonitoringConfig:
    """Read and validate a monitoring YAML (defaults when `path` is None)."""
    if path is None:
        return MonitoringConfig()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return MonitoringConfig(**data)
    except (OSError, yaml.YAMLError, TypeError) as e:
        raise ConfigError(f"cannot read monitoring config {path}: {e}") from e
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ConfigError(f"invalid monitoring config {path}: {errs}") from e


def psi(reference, current, n_bins: int = 10, categorical: bool = False,
        eps: float = 1e-4) -> float:
    """Population stability index of `current` against `reference`.

    Args:
        reference: values of the reference sample (NaN allowed: its own bin).
        current: values of the current sample.
        n_bins: quantile bins of the reference (fewer when values repeat).
        categorical: one bin per distinct value instead of quantile bins.
        eps: floor of a bin's share, so an empty bin gives a large but finite term.

    Returns:
        PSI (0 when the distributions match).
    """
    ref = np.asarray(reference, dtype="float64")
    cur = np.asarray(current, dtype="float64")
    if ref.size == 0 or cur.size == 0:
        raise DataValidationError("monitoring", "PSI needs a non-empty reference and current")
    ref_ok, cur_ok = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if categorical:
        cats = np.unique(np.concatenate([ref_ok, cur_ok]))
        r_idx, c_idx = np.searchsorted(cats, ref_ok), np.searchsorted(cats, cur_ok)
        n = cats.size
    else:
        if ref_ok.size:
            edges = np.unique(np.quantile(ref_ok, np.linspace(0, 1, n_bins + 1)))[1:-1]
        else:
            edges = np.array([])
        r_idx = np.searchsorted(edges, ref_ok, side="right")
        c_idx = np.searchsorted(edges, cur_ok, side="right")
        n = edges.size + 1
    r_counts = np.append(np.bincount(r_idx, minlength=n), np.isnan(ref).sum())
    c_counts = np.append(np.bincount(c_idx, minlength=n), np.isnan(cur).sum())
    r = np.maximum(r_counts / ref.size, eps)
    c = np.maximum(c_counts / cur.size, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def status(value: float, cfg: MonitoringConfig) -> str:
    """stable / watch / shifted for a PSI value."""
    if value > cfg.psi_shifted:
        return "shifted"
    return "watch" if value >= cfg.psi_watch else "stable"


def feature_drift(ref_X: pd.DataFrame, cur_X: pd.DataFrame, cfg: MonitoringConfig
                  ) -> pd.DataFrame:
    """CSI of every feature (macro features: change in mean level, in points)."""
    rows = []
    for f in ref_X.columns:
        if f in MACRO_FEATURES:
            change = float(np.nanmean(cur_X[f]) - np.nanmean(ref_X[f]))
            st = ("shifted" if abs(change) > cfg.macro_shifted_points else
                  "watch" if abs(change) >= cfg.macro_watch_points else "stable")
            rows.append({"feature": f, "kind": "macro", "csi": np.nan, "level_change": change,
                         "status": st})
            continue
        value = psi(ref_X[f], cur_X[f], cfg.n_bins, categorical=f in CATEGORICAL_FEATURES)
        rows.append({"feature": f, "kind": "customer", "csi": value, "level_change": np.nan,
                     "status": status(value, cfg)})
    out = pd.DataFrame(rows)
    order = out["csi"].fillna(-1.0)
    return out.iloc[np.argsort(-order.to_numpy(), kind="stable")].reset_index(drop=True)


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC (Hanley & McNeil, 1982, Radiology 143:29-36)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def performance_decay(y, p, oot_metrics: dict[str, float]) -> dict[str, float]:
    """AUC, KS and ECE now against the model's OOT figures at training time."""
    now = ev.binary_metrics(y, p)
    out = {"auc_now": now["auc"], "ks_now": now["ks"], "ece_now": now["ece"],
           "n_pos": now["n_pos"],
           "auc_se": auc_standard_error(now["auc"], int(now["n_pos"]),
                                        int(now["n"] - now["n_pos"]))}
    for k in ("auc", "ks", "ece"):
        ref = oot_metrics.get(f"oot_{k}")
        out[f"{k}_oot"] = float("nan") if ref is None else float(ref)
        out[f"{k}_change"] = out[f"{k}_now"] - out[f"{k}_oot"]
    return out


def verdict(score_psi: float, drift: pd.DataFrame, top_features: list[str],
            decay: dict[str, float] | None, cfg: MonitoringConfig) -> tuple[str, list[str]]:
    """Verdict per model (stable / watch / re-validate) and the reasons behind it.

    Re-validate: the score has shifted, a top feature or a macro driver has shifted,
    or the AUC dropped / calibration broke beyond the bounds. Watch: any of these
    reached the watch band. Otherwise stable.
    """
    reasons: list[str] = []
    level = 0
    s = status(score_psi, cfg)
    if s != "stable":
        level = max(level, 2 if s == "shifted" else 1)
        reasons.append(f"score PSI {score_psi:.3f} ({s})")
    watched = drift[drift["feature"].isin(top_features) | (drift["kind"] == "macro")]
    for _, r in watched.iterrows():
        if r["status"] == "stable":
            continue
        level = max(level, 2 if r["status"] == "shifted" else 1)
        what = (f"CSI {r['csi']:.3f}" if r["kind"] == "customer"
                else f"level {r['level_change']:+.2f} points")
        reasons.append(f"{r['feature']} {what} ({r['status']})")
    if decay:
        # A drop only counts beyond sampling noise (two standard errors of today's AUC),
        # and calibration only when enough positives fill the bins.
        drop = -decay["auc_change"] - 2 * decay["auc_se"]
        ece_bad = decay["ece_now"] > cfg.ece_revalidate and decay["n_pos"] >= cfg.min_positives
        if drop > cfg.auc_drop_revalidate or ece_bad:
            level = 2
            reasons.append(f"performance: AUC {decay['auc_now']:.3f} (±{decay['auc_se']:.3f}) "
                           f"vs OOT {decay['auc_oot']:.3f}, ECE {decay['ece_now']:.3f}")
        elif drop > cfg.auc_drop_watch:
            level = max(level, 1)
            reasons.append(f"performance: AUC {decay['auc_now']:.3f} (±{decay['auc_se']:.3f}) "
                           f"down from OOT {decay['auc_oot']:.3f}")
    return VERDICTS[level], reasons
