"""SHAP figures: global importance bar chart and a beeswarm-style summary."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


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
