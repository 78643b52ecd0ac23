"""Figures reviewers would rather look at than read: ROC, KS, calibration, lift, SHAP.

Builders return a :class:`matplotlib.figure.Figure` and do no file I/O;
:func:`save_figure` writes a PNG atomically.

Figures are built with the object-oriented API (``Figure(...)``), not pyplot:
nothing is registered in pyplot's global figure list (no leak when a caller never
closes a figure, safe in threads and Dask workers) and no GUI backend is needed,
because ``Figure.savefig`` renders PNG with Agg. So this module does not call
``matplotlib.use("Agg")`` either, which would switch the backend of a notebook
that imports it. In Jupyter a returned Figure displays inline as usual.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from postloan.errors import DataValidationError
from postloan.evaluation import (
    TABLE,
    calibration_table,
    expected_calibration_error,
    lift_table,
    validate_predictions,
)

log = logging.getLogger(__name__)

Scores = np.ndarray | pd.Series | Mapping[str, np.ndarray]


def _series(scores: Scores, label: str) -> dict[str, np.ndarray]:
    """One or several score arrays as ``{legend name: scores}``."""
    if isinstance(scores, Mapping):
        if not scores:
            raise DataValidationError(TABLE, "no score series to plot (empty dict)", "y_score")
        return dict(scores)
    return {label: scores}


def _new_figure(figsize: tuple[float, float]) -> tuple[Figure, object]:
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    return fig, ax


def roc_figure(y: object, scores: Scores, title: str = "ROC curve", *, label: str = "model"
               ) -> Figure:
    """ROC curve of one model, or of several overlaid.

    Args:
        y: labels, 1 = bad.
        scores: one score array, or ``{model name: scores}`` to overlay models.
        title: figure title.
        label: legend name when `scores` is a single array.

    Returns:
        The figure; each legend entry shows the model's AUC and Gini.

    Raises:
        DataValidationError: see :func:`postloan.evaluation.validate_predictions`.
    """
    fig, ax = _new_figure((6, 5.5))
    for name, s in _series(scores, label).items():
        yy, p = validate_predictions(y, s, probabilities=False, score_name=f"scores[{name!r}]")
        fpr, tpr, _ = roc_curve(yy, p)
        auc = roc_auc_score(yy, p)
        ax.plot(fpr, tpr, lw=2, label=f"{name} (AUC {auc:.3f}, Gini {2 * auc - 1:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="random")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal", title=title,
           xlabel="False positive rate (share of goods flagged)",
           ylabel="True positive rate (share of bads caught)")
    ax.legend(loc="lower right")
    return fig


def ks_figure(y: object, score: object, title: str = "KS: cumulative score distributions"
              ) -> Figure:
    """Cumulative score distributions of bads and goods with the KS gap marked.

    The curves come from the ROC curve, so the gap drawn is exactly the KS of
    :func:`postloan.evaluation.ks_statistic`.

    Args:
        y: labels, 1 = bad.
        score: scores, higher = riskier.
        title: figure title.

    Returns:
        The figure.

    Raises:
        DataValidationError: see :func:`postloan.evaluation.validate_predictions`.
    """
    yy, p = validate_predictions(y, score, probabilities=False, score_name="score")
    fpr, tpr, thr = roc_curve(yy, p, drop_intermediate=False)
    # Threshold t_i (descending; the first one is +inf): share of bads scoring below
    # t_i is 1 - tpr_i, of goods 1 - fpr_i. Replace +inf by the top score to plot it.
    thr = np.where(np.isfinite(thr), thr, p.max())
    bad_cdf, good_cdf = 1 - tpr, 1 - fpr
    i = int(np.argmax(tpr - fpr))
    ks = float(tpr[i] - fpr[i])
    fig, ax = _new_figure((6.5, 5))
    ax.step(thr, bad_cdf, where="post", lw=2, label="bads (label 1)")
    ax.step(thr, good_cdf, where="post", lw=2, label="goods (label 0)")
    ax.vlines(thr[i], bad_cdf[i], good_cdf[i], colors="red", lw=2,
              label=f"KS = {ks:.3f} at score {thr[i]:.4g}")
    ax.set(ylim=(0, 1.01), title=title, xlabel="Score",
           ylabel="Cumulative share scoring below")
    ax.legend(loc="lower right")
    return fig


def calibration_figure(y: object, scores: Scores, title: str = "Calibration by score decile",
                       *, label: str = "model", n_bins: int = 10) -> Figure:
    """Reliability diagram: observed rate against mean prediction per score decile.

    Args:
        y: labels.
        scores: predicted probabilities, or ``{model name: probabilities}``.
        title: figure title.
        label: legend name when `scores` is a single array.
        n_bins: number of equal-frequency bins.

    Returns:
        The figure; each legend entry shows the model's ECE.

    Raises:
        DataValidationError: see :func:`postloan.evaluation.validate_predictions`.
    """
    fig, ax = _new_figure((6, 5.5))
    top = 0.0
    for name, s in _series(scores, label).items():
        t = calibration_table(y, s, n_bins)
        ece = expected_calibration_error(y, s, n_bins)
        ax.plot(t["mean_pred"], t["observed_rate"], marker="o", lw=1.5,
                label=f"{name} (ECE {ece:.4f})")
        top = max(top, float(t["mean_pred"].max()), float(t["observed_rate"].max()))
    lim = min(1.0, top * 1.05) or 1.0
    ax.plot([0, lim], [0, lim], ls="--", c="grey", lw=1, label="perfectly calibrated")
    ax.set(xlim=(0, lim), ylim=(0, lim), aspect="equal", title=title,
           xlabel="Mean predicted probability", ylabel="Observed rate")
    ax.legend(loc="upper left")
    return fig


def lift_figure(y: object, scores: Scores, title: str = "Lift by score decile", *,
                label: str = "model", n_bins: int = 10) -> Figure:
    """Lift (decile bad rate / overall bad rate) per score decile, 1 = riskiest.

    Args:
        y: labels, 1 = bad.
        scores: scores, or ``{model name: scores}`` for grouped bars.
        title: figure title.
        label: legend name when `scores` is a single array.
        n_bins: number of equal-frequency bins.

    Returns:
        The figure.

    Raises:
        DataValidationError: see :func:`postloan.evaluation.validate_predictions`.
    """
    series = _series(scores, label)
    fig, ax = _new_figure((7, 5))
    width = 0.8 / len(series)
    for i, (name, s) in enumerate(series.items()):
        t = lift_table(y, s, n_bins)
        ax.bar(t["decile"] - 0.4 + width * (i + 0.5), t["lift"], width=width, label=name)
    ax.axhline(1.0, c="grey", ls="--", lw=1, label="no lift")
    ax.set_xticks(range(1, n_bins + 1))
    ax.set(title=title, xlabel="Score decile (1 = highest scores)",
           ylabel="Lift (decile bad rate / overall)")
    ax.legend(loc="upper right")
    return fig


def shap_bar_figure(importance: pd.DataFrame, top: int = 20, title: str = "Mean |SHAP|"
                    ) -> Figure:
    """Horizontal bars of global importance.

    Args:
        importance: ``feature`` and ``mean_abs_shap`` columns, most important first
            (:func:`postloan.explain.global_importance`).
        top: number of features shown.
        title: figure title.

    Returns:
        The figure.
    """
    imp = importance.head(top).iloc[::-1]
    fig, ax = _new_figure((7, 0.3 * len(imp) + 1.5))
    ax.barh(imp["feature"], imp["mean_abs_shap"])
    ax.set(title=title, xlabel="Mean |contribution| (log-odds)")
    return fig


def shap_summary_figure(contrib: pd.DataFrame, X: pd.DataFrame, top: int = 15,
                        title: str = "SHAP summary") -> Figure:
    """Beeswarm-style summary: one dot per customer, colour = feature value rank.

    Args:
        contrib: TreeSHAP contributions (a ``bias`` column is ignored).
        X: the feature values of the same rows.
        top: number of features shown, by mean |contribution|.
        title: figure title.

    Returns:
        The figure.
    """
    feats = list(contrib.drop(columns=["bias"], errors="ignore").abs().mean()
                 .sort_values(ascending=False).index[:top])
    fig, ax = _new_figure((7.5, 0.35 * len(feats) + 1.8))
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    sc = None
    for i, f in enumerate(reversed(feats)):
        c = contrib[f].to_numpy()
        v = X[f].rank(pct=True).to_numpy(dtype="float64", na_value=np.nan)
        sc = ax.scatter(c, i + rng.uniform(-0.3, 0.3, len(c)), c=np.nan_to_num(v, nan=0.5),
                        cmap="coolwarm", s=4, alpha=0.6, vmin=0, vmax=1)
    ax.set_yticks(range(len(feats)), list(reversed(feats)))
    ax.axvline(0, c="grey", lw=1)
    ax.set(title=title, xlabel="Contribution to log-odds")
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="Feature value (rank)")
    return fig


def save_figure(fig: Figure, path: Path | str, dpi: int = 110) -> Path:
    """Write `fig` as a PNG atomically and close it.

    The PNG is written to a temporary file in the same folder and moved into place
    with ``os.replace``, so readers never see a half-written file and a failure
    leaves no temporary file behind.

    Args:
        fig: the figure.
        path: target file, ending in ``.png``; its folder is created if needed.
        dpi: resolution.

    Returns:
        `path` as a Path.

    Raises:
        ValueError: `path` does not end in ``.png``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_figure writes PNG; path must end in .png, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report PNG is not a secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        # Figures from this module are not known to pyplot and need no closing; one a
        # caller made with pyplot would stay in its figure list, so close it there.
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close(fig)
    log.debug("wrote %s", path)
    return path
