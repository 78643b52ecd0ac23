"""Figures reviewers would rather look at than read: ROC, KS, calibration, lift, SHAP.

Builders return a matplotlib Figure and do no file I/O; :func:`save_figure` writes
a PNG atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from postloan.evaluation import calibration_table, lift_table  # noqa: E402


def roc_figure(y, scores: dict[str, np.ndarray], title: str = "ROC (out of time)"):
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def ks_figure(y, score, title: str = "KS: cumulative bads vs goods"):
    y = np.asarray(y)
    s = np.asarray(score)
    grid = np.quantile(s, np.linspace(0, 1, 201))
    bad = np.searchsorted(np.sort(s[y == 1]), grid, side="right") / max((y == 1).sum(), 1)
    good = np.searchsorted(np.sort(s[y == 0]), grid, side="right") / max((y == 0).sum(), 1)
    i = int(np.argmax(np.abs(good - bad)))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(grid, bad, label="bads")
    ax.plot(grid, good, label="goods")
    ax.vlines(grid[i], bad[i], good[i], colors="red", label=f"KS {abs(good[i] - bad[i]):.3f}")
    ax.set(xlabel="score", ylabel="cumulative share", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def calibration_figure(y, scores: dict[str, np.ndarray], title: str = "Calibration by decile"):
    fig, ax = plt.subplots(figsize=(5.5, 5))
    top = 0.0
    for name, s in scores.items():
        t = calibration_table(y, s)
        ax.plot(t["mean_pred"], t["observed_rate"], marker="o", label=name)
        top = max(top, t["mean_pred"].max(), t["observed_rate"].max())
    ax.plot([0, top], [0, top], ls="--", c="grey", lw=1, label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def lift_figure(y, scores: dict[str, np.ndarray], title: str = "Lift by decile"):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    width = 0.8 / max(len(scores), 1)
    for i, (name, s) in enumerate(scores.items()):
        t = lift_table(y, s)
        ax.bar(t["decile"] + i * width - 0.4 + width / 2, t["lift"], width=width, label=name)
    ax.axhline(1.0, c="grey", ls="--", lw=1)
    ax.set(xlabel="score decile (1 = highest)", ylabel="lift", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def shap_bar_figure(importance: pd.DataFrame, top: int = 20, title: str = "Mean |SHAP|"):
    imp = importance.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(imp) + 1.2))
    ax.barh(imp["feature"], imp["mean_abs_shap"])
    ax.set(xlabel="mean |contribution| (log-odds)", title=title)
    fig.tight_layout()
    return fig


def shap_summary_figure(contrib: pd.DataFrame, X: pd.DataFrame, top: int = 15,
                        title: str = "SHAP summary"):
    """Beeswarm-style summary: each dot a customer, colour = feature value rank."""
    feats = contrib.drop(columns=["bias"]).abs().mean().sort_values(ascending=False).index[:top]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(feats) + 1.5))
    rng = np.random.default_rng(0)
    for i, f in enumerate(reversed(list(feats))):
        c = contrib[f].to_numpy()
        v = X[f].rank(pct=True).to_numpy()
        jitter = rng.uniform(-0.3, 0.3, len(c))
        sc = ax.scatter(c, i + jitter, c=np.nan_to_num(v, nan=0.5), cmap="coolwarm", s=4,
                        alpha=0.6, vmin=0, vmax=1)
    ax.set_yticks(range(len(feats)), list(reversed(list(feats))))
    ax.axvline(0, c="grey", lw=1)
    ax.set(xlabel="contribution to log-odds", title=title)
    fig.colorbar(sc, ax=ax, label="feature value (rank)")
    fig.tight_layout()
    return fig


def save_figure(fig, path: Path) -> Path:
    """Write a PNG atomically (temp file + rename) and close the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return path
