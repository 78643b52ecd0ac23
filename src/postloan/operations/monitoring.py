"""Drift and stability monitoring: PSI of scores, CSI of features, performance decay.

PSI (population stability index) between a reference and a current sample:
``sum((cur - ref) * ln(cur / ref))`` over bins cut at the reference's quantiles,
with missing values as a bin of their own (a change in how often a value is
missing is drift too) and a small floor on empty bins. CSI is the same index on
one feature. Thresholds (< 0.1 stable, 0.1–0.25 watch, > 0.25 shifted) come from
:class:`MonitoringConfig`, read from the shipped ``config/monitoring.yaml``.

Macro features (one value per region and month) are not compared by PSI: every
customer of a region moves together, so any month-on-month change would look
like a shift. Their change in level is reported and judged against thresholds in
points instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from postloan.config_files import read_mapping, read_text, shipped_text, validate
from postloan.data.features import CATEGORICAL_FEATURES
from postloan.errors import DataValidationError
from postloan.models import evaluation as ev

if TYPE_CHECKING:  # only for hints: the bundle module loads LightGBM and TreeSHAP
    from postloan.models.bundle import ModelBundle

MACRO_FEATURES = ("unemployment_rate", "unemployment_change_6m", "policy_rate", "market_rate")
STATUSES = ("stable", "watch", "shifted")
VERDICTS = ("stable", "watch", "re-validate")


class MonitoringConfig(BaseModel):
    """Thresholds of the drift verdict.

    Every field is required: the values live in the shipped ``config/monitoring.yaml``
    (one place; see :func:`load_monitoring_config`), each explained there.
    """

    model_config = ConfigDict(extra="forbid")

    psi_watch: float = Field(gt=0)
    psi_shifted: float = Field(gt=0)
    n_bins: int = Field(ge=2, le=100)
    top_features: int = Field(ge=1)
    macro_watch_points: float = Field(gt=0)
    macro_shifted_points: float = Field(gt=0)
    auc_drop_watch: float = Field(ge=0)
    auc_drop_revalidate: float = Field(ge=0)
    ece_revalidate: float = Field(gt=0)
    min_labelled_share: float = Field(gt=0, le=1)
    min_positives: int = Field(ge=1)

    @model_validator(mode="after")
    def _bands_in_order(self) -> MonitoringConfig:
        if self.psi_watch >= self.psi_shifted:
            raise ValueError(f"psi_watch ({self.psi_watch}) must be below psi_shifted "
                             f"({self.psi_shifted})")
        if self.macro_watch_points >= self.macro_shifted_points:
            raise ValueError("macro_watch_points must be below macro_shifted_points")
        if self.auc_drop_watch >= self.auc_drop_revalidate:
            raise ValueError("auc_drop_watch must be below auc_drop_revalidate")
        return self


def load_monitoring_config(path: Path | str | None = None) -> MonitoringConfig:
    """The shipped monitoring thresholds, overlaid by a user YAML file.

    Args:
        path: a YAML file whose fields replace the shipped ones (fields it does not
            name keep their shipped values), or None for the shipped
            ``postloan/config/monitoring.yaml`` alone.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: unreadable file, not a mapping, or a field with a wrong name, type
            or value; the message names the file and the field.
    """
    what = "monitoring config"
    src = "postloan:config/monitoring.yaml"
    base = read_mapping(shipped_text("config/monitoring.yaml"), what, src)
    if path is not None:
        src = str(path)
        base = {**base, **read_mapping(read_text(path, what), what, src)}
    return validate(MonitoringConfig, base, what, src)


@lru_cache(maxsize=1)
def default_monitoring_config() -> MonitoringConfig:
    """The shipped thresholds (read once; the model is treated as read-only)."""
    return load_monitoring_config(None)


def _num(x: float) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return f"{x:.4g}"


PSI_EPS = 1e-4
"""Share given to an empty bin so that ln(cur/ref) stays finite (a common choice)."""
MISSING_BIN = "missing"


def _as_values(values: object, name: str) -> pd.Series:
    # Positional (an index is ignored); numbers stay numbers, lists of None become NaN.
    s = pd.Series(values.to_numpy() if isinstance(values, pd.Series) else values)
    if len(s) == 0:
        raise DataValidationError("psi", f"the {name} sample is empty", name)
    return s


def psi_bins(reference: object, current: object, n_bins: int = 10,
             categorical: bool = False) -> pd.DataFrame:
    """The bins of :func:`psi` with each sample's share and each bin's PSI term.

    Numeric values are cut at the reference's interior quantiles
    (``n_bins - 1`` cut points at 1/n_bins, 2/n_bins, ...; duplicates dropped, so a
    feature with few distinct values gets fewer bins), each bin right-closed
    ``(lo, hi]`` with open outer ends, so current values outside the reference range
    land in the outer bins. Categorical values get one bin per value seen in either
    sample. Missing values (NaN / None) get their own bin when either sample has any.

    Args:
        reference: the baseline sample (e.g. training dates).
        current: the sample compared with it (e.g. out-of-time dates).
        n_bins: number of quantile bins for numeric values.
        categorical: treat values as categories instead of numbers.

    Returns:
        One row per bin: ``bin`` (label), ``lo`` and ``hi`` (a numeric bin's bounds,
        -inf/inf at the outer ends; NaN for category and missing bins), ``ref_share``,
        ``cur_share`` (raw shares, 0 for an empty bin) and ``term`` = (cur - ref) x
        ln(cur / ref) after replacing empty shares by :data:`PSI_EPS`.

    Raises:
        DataValidationError: a sample is empty, or numeric values are not numbers.
        ValueError: ``n_bins`` < 1.
    """
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    ref = _as_values(reference, "reference")
    cur = _as_values(current, "current")
    if categorical:
        ref_missing, cur_missing = ref.isna().to_numpy(), cur.isna().to_numpy()
        labels = list(dict.fromkeys([*ref[~ref_missing].map(str), *cur[~cur_missing].map(str)]))
        lo = hi = [np.nan] * len(labels)
        ref_lab = ref.map(lambda v: MISSING_BIN if pd.isna(v) else str(v)).to_numpy()
        cur_lab = cur.map(lambda v: MISSING_BIN if pd.isna(v) else str(v)).to_numpy()
    else:
        try:
            r = ref.to_numpy(dtype="float64", na_value=np.nan)
            c = cur.to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError) as e:
            raise DataValidationError("psi", f"values must be numeric: {e}") from e
        ref_missing, cur_missing = np.isnan(r), np.isnan(c)
        seen = r[~ref_missing]
        cuts = (np.unique(np.quantile(seen, np.arange(1, n_bins) / n_bins))
                if len(seen) and n_bins > 1 else np.array([]))
        # searchsorted(side="left") counts the cut points strictly below x: bin i holds
        # (cuts[i-1], cuts[i]], so a value equal to a cut point stays in the lower bin.
        ref_idx = np.searchsorted(cuts, r[~ref_missing], side="left")
        cur_idx = np.searchsorted(cuts, c[~cur_missing], side="left")
        edges = [-np.inf, *cuts.tolist(), np.inf]
        labels = [f"({_num(edges[i])}, {_num(edges[i + 1])}]" for i in range(len(cuts) + 1)]
        lo, hi = edges[:-1], edges[1:]
        ref_lab = np.full(len(r), MISSING_BIN, dtype=object)
        cur_lab = np.full(len(c), MISSING_BIN, dtype=object)
        ref_lab[~ref_missing] = np.asarray(labels, dtype=object)[ref_idx]
        cur_lab[~cur_missing] = np.asarray(labels, dtype=object)[cur_idx]
    if ref_missing.any() or cur_missing.any():
        labels, lo, hi = [*labels, MISSING_BIN], [*lo, np.nan], [*hi, np.nan]
    ref_share = pd.Series(ref_lab).value_counts().reindex(labels, fill_value=0) / len(ref_lab)
    cur_share = pd.Series(cur_lab).value_counts().reindex(labels, fill_value=0) / len(cur_lab)
    p = np.where(ref_share.to_numpy() == 0, PSI_EPS, ref_share.to_numpy(dtype="float64"))
    q = np.where(cur_share.to_numpy() == 0, PSI_EPS, cur_share.to_numpy(dtype="float64"))
    return pd.DataFrame({"bin": labels, "lo": np.asarray(lo, dtype="float64"),
                         "hi": np.asarray(hi, dtype="float64"),
                         "ref_share": ref_share.to_numpy(dtype="float64"),
                         "cur_share": cur_share.to_numpy(dtype="float64"),
                         "term": (q - p) * np.log(q / p)})


def psi(reference: object, current: object, n_bins: int = 10,
        categorical: bool = False) -> float:
    """Population stability index of `current` against `reference`.

    ``PSI = sum over bins of (cur - ref) x ln(cur / ref)``, with bins from the
    reference's quantiles and empty shares replaced by :data:`PSI_EPS` (see
    :func:`psi_bins`). Every term is >= 0, so PSI >= 0, and 0 means identical
    shares. Bands (glossary): < 0.1 stable, 0.1-0.25 watch, > 0.25 shifted.

    Args:
        reference: baseline sample.
        current: sample compared with it.
        n_bins: quantile bins for numeric values (10 is the industry habit).
        categorical: one bin per category instead of quantile bins.

    Returns:
        The PSI.

    Raises:
        DataValidationError: a sample is empty or not numeric.
    """
    return float(psi_bins(reference, current, n_bins, categorical)["term"].sum())


def psi_table(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str],
              categorical: Iterable[str] = (), n_bins: int = 10,
              cfg: MonitoringConfig | None = None) -> pd.DataFrame:
    """PSI of several columns of two frames.

    Args:
        reference: baseline rows.
        current: rows compared with them.
        columns: columns to compare (present in both frames).
        categorical: the columns among them to bin by category.
        n_bins: quantile bins for numeric columns.
        cfg: thresholds of the ``status`` column (default: the shipped config).

    Returns:
        One row per column in the given order: ``variable``, ``psi``, ``status``,
        ``n_bins`` (bins used), ``ref_missing`` and ``cur_missing`` (shares of missing
        values).

    Raises:
        DataValidationError: a column is missing from a frame, or a frame is empty.
    """
    cats = set(categorical)
    rows = []
    for col in columns:
        for name, frame in (("reference", reference), ("current", current)):
            if col not in frame.columns:
                raise DataValidationError("psi", f"column missing from the {name} frame", col)
        b = psi_bins(reference[col], current[col], n_bins, categorical=col in cats)
        value = float(b["term"].sum())
        missing = b[b["bin"] == MISSING_BIN]
        rows.append({"variable": col, "psi": value, "status": status(value, cfg),
                     "n_bins": len(b),
                     "ref_missing": float(missing["ref_share"].sum()),
                     "cur_missing": float(missing["cur_share"].sum())})
    return pd.DataFrame(rows, columns=["variable", "psi", "status", "n_bins", "ref_missing",
                                       "cur_missing"])


SCORE = "score"
"""Name of a model's score row in :func:`stability_table`."""


def stability_table(bundle: ModelBundle, reference: pd.DataFrame, current: pd.DataFrame,
                    features: Sequence[str], n_bins: int = 10,
                    cfg: MonitoringConfig | None = None) -> pd.DataFrame:
    """PSI of a model's score and of some of its features between two snapshot sets.

    Args:
        bundle: the model.
        reference: snapshot rows at the reference dates (e.g. the training as-of dates).
        current: snapshot rows at the dates compared (e.g. the OOT as-of dates).
        features: feature names to compare besides the score (categorical features are
            binned by category).
        n_bins: quantile bins.
        cfg: thresholds of the ``status`` column (default: the shipped config).

    Returns:
        :func:`psi_table` output whose first row is ``score`` (the calibrated
        probability), followed by `features`.
    """
    X_ref, X_cur = bundle.features(reference), bundle.features(current)
    ref = X_ref[list(features)].assign(**{SCORE: bundle.predict_features(X_ref)})
    cur = X_cur[list(features)].assign(**{SCORE: bundle.predict_features(X_cur)})
    return psi_table(ref, cur, [SCORE, *features],
                     categorical=[f for f in features if f in CATEGORICAL_FEATURES],
                     n_bins=n_bins, cfg=cfg)


def status(value: float | None, cfg: MonitoringConfig | None = None) -> str:
    """The band of a PSI (or CSI) value under the configured thresholds.

    Args:
        value: the index.
        cfg: thresholds (default: the shipped ``config/monitoring.yaml``).

    Returns:
        ``stable`` (below ``psi_watch``), ``watch`` (``psi_watch`` to ``psi_shifted``,
        both included), ``shifted`` (above ``psi_shifted``) or ``n/a`` (None or NaN).
    """
    if value is None or math.isnan(value):
        return "n/a"
    cfg = cfg or default_monitoring_config()
    if value > cfg.psi_shifted:
        return "shifted"
    return "watch" if value >= cfg.psi_watch else "stable"


def feature_drift(ref_X: pd.DataFrame, cur_X: pd.DataFrame, cfg: MonitoringConfig
                  ) -> pd.DataFrame:
    """CSI of every feature (macro features: change in mean level, in points)."""
    rows = []
    for f in ref_X.columns:
        if f in MACRO_FEATURES:
            if ref_X[f].isna().all() or cur_X[f].isna().all():  # a book without macro
                rows.append({"feature": f, "kind": "macro", "csi": np.nan,
                             "level_change": np.nan, "status": "no data"})
                continue
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
        if r["status"] in ("stable", "no data"):  # no data: the book has no macro feed
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


# ---- What to do: three verdicts with their actions (issue 14). A broken feed must not
# pass for drift: re-validating or retraining on it makes the model worse.
DATA_FAULT, PERFORMANCE_DECAY, POPULATION_SHIFT, STABLE = (
    "data fault", "performance decay", "population shift", "stable")
ACTIONS = {
    DATA_FAULT: "fix the feed; do not retrain (a model retrained on a broken feed learns "
                "the fault)",
    PERFORMANCE_DECAY: "retrain: how the features relate to the outcome has changed",
    POPULATION_SHIFT: "watch, and re-validate if it persists: the population has moved",
    STABLE: "none",
}


def diagnose(drift_verdict: str, drift_reasons: list[str], decay: dict[str, float] | None,
             data_faults: list[str], cfg: MonitoringConfig) -> tuple[str, str, list[str]]:
    """The verdict a team acts on, its action and its reasons.

    A data fault wins: while a feed is broken, drift and decay measure the fault, not
    the world. Realised decay (labels matured; AUC down beyond the re-validate bound
    after two standard errors, or calibration broken) means retrain. Any other drift
    (score, top features, macro drivers) is a population shift: the model may still
    rank well, so watch or re-validate. An estimated AUC (CBPE) moves with the
    population, so it informs the reasons, never a retrain.

    Args:
        drift_verdict: :func:`verdict`'s stable / watch / re-validate.
        drift_reasons: its reasons.
        decay: :func:`performance_decay` once labels have matured, else None.
        data_faults: the blocking data-quality rules at the current date.
        cfg: thresholds.

    Returns:
        (verdict, action, reasons): verdict one of ``data fault``, ``performance decay``,
        ``population shift``, ``stable``.
    """
    if data_faults:
        return DATA_FAULT, ACTIONS[DATA_FAULT], [f"data-quality rule {r}" for r in data_faults]
    if decay:
        drop = -decay["auc_change"] - 2 * decay["auc_se"]
        ece_bad = decay["ece_now"] > cfg.ece_revalidate and decay["n_pos"] >= cfg.min_positives
        if drop > cfg.auc_drop_revalidate or ece_bad:
            return PERFORMANCE_DECAY, ACTIONS[PERFORMANCE_DECAY], [
                r for r in drift_reasons if r.startswith("performance")]
    if drift_verdict != "stable":
        return POPULATION_SHIFT, ACTIONS[POPULATION_SHIFT], list(drift_reasons)
    return STABLE, ACTIONS[STABLE], []
