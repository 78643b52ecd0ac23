"""The figure toolkit and the models' own figures.

The toolkit: the figures' language (:func:`language`, English or Chinese with a CJK
font), :func:`figure_png` (PNG bytes for HTML pages) and :func:`save_figure` (a PNG
written atomically). The models' figures: quality (ROC, KS, calibration, lift) and
explanations (SHAP bar and summary, dependence, one customer's waterfall). Figures of
other domains live with them (:mod:`postloan.operations.figures`: stability, score
history, stress; :mod:`postloan.reporting.figures`: the portfolio, and every figure
under one name for the pages).

Builders return a :class:`matplotlib.figure.Figure` and do no file I/O. Figures are
built with the object-oriented API (``Figure(...)``), not pyplot: nothing is
registered in pyplot's global figure list (no leak when a caller never closes a
figure, safe in threads and Dask workers) and no GUI backend is needed, because
``Figure.savefig`` renders PNG with Agg. So this module does not call
``matplotlib.use("Agg")`` either, which would switch the backend of a notebook that
imports it. In Jupyter a returned Figure displays inline as usual.
"""

from __future__ import annotations

import io as _bytes_io
import logging
import math
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from sklearn.metrics import roc_auc_score, roc_curve

from postloan.data import io
from postloan.data import schema as S
from postloan.data.features import CATEGORICAL_FEATURES
from postloan.errors import DataValidationError
from postloan.models.evaluation import (
    TABLE,
    calibration_table,
    expected_calibration_error,
    lift_table,
    validate_predictions,
)
from postloan.models.explain import BIAS

log = logging.getLogger(__name__)

Scores = np.ndarray | pd.Series | Mapping[str, np.ndarray]

# ----------------------------------------------------------------- language of the figures
# The fixed words of the figures in Chinese (the glossary's terms). Figures built inside
# `with language("zh"):` say them in Chinese and draw with a CJK font; elsewhere English.
PLOT_ZH = {
    "random": "随机", "ROC curve": "ROC曲线",
    "False positive rate (share of goods flagged)": "假正率（被标记的正常客户占比）",
    "True positive rate (share of bads caught)": "真正率（识别出的违约客户占比）",
    "bads (label 1)": "坏客户（标签1）", "goods (label 0)": "好客户（标签0）",
    "KS = {ks} at score {thr}": "KS = {ks}，分数阈值 {thr}",
    "KS: cumulative score distributions": "KS：分数累积分布",
    "Customers ranked by score (share scoring below)": "按分数排序的客户（分数更低者占比）",
    "Cumulative share scoring below": "累积占比",
    "perfectly calibrated": "完美校准", " (log scale)": "（对数刻度）",
    "Calibration by score decile": "按分数十分位的校准",
    "Mean predicted probability": "平均预测概率", "Observed rate": "实际发生率",
    "no lift": "无提升", "Lift by score decile": "按分数十分位的提升度",
    "Score decile (1 = highest scores)": "分数十分位（1 = 最高分）",
    "Lift (decile bad rate / overall)": "提升度（该十分位坏账率/总体）",
    "Mean |SHAP|": "平均 |SHAP|",
    "Mean |contribution| (log-odds)": "平均 |贡献|（对数几率）",
    "missing": "缺失", "{n} other features": "其余{n}个特征",
    "base value": "基准值", "this customer's raw score": "该客户原始分",
    "base {bias} -> raw score {margin} (p={p} before calibration)":
        "基准 {bias} -> 原始分 {margin}（校准前 p={p}）",
    "calibrated p={p}": "校准后 p={p}", "Log-odds": "对数几率", "SHAP waterfall": "SHAP瀑布图",
    "watch": "关注", "shifted": "偏移", "Population stability (PSI)": "群体稳定性（PSI）",
    "As-of date": "观察日", "Score": "分数",
}
_LANG: ContextVar[str] = ContextVar("postloan_plots_lang", default="en")
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC",
                "Source Han Sans SC", "WenQuanYi Zen Hei")
"""Font families tried, in order, for Chinese figures (Debian: ``fonts-noto-cjk``)."""


def _t(text: str) -> str:
    """`text` in the language of the figures being built (English unless zh is set)."""
    return PLOT_ZH.get(text, text) if _LANG.get() == "zh" else text


def cjk_font_families() -> list[str]:
    """The CJK font families matplotlib can use (empty when none is installed).

    Registers Noto CJK files found under ``/usr/share/fonts`` that matplotlib's font
    cache, built before the fonts were installed, does not know.
    """
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    if not known & set(CJK_FAMILIES):
        for path in sorted(Path("/usr/share/fonts").glob("**/NotoSansCJK-Regular.tt[cf]")):
            font_manager.fontManager.addfont(str(path))
        known = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in CJK_FAMILIES if f in known]


@contextmanager
def language(lang: str) -> Iterator[None]:
    """Build (and render) figures in `lang` (``en`` or ``zh``).

    In Chinese, labels come from :data:`PLOT_ZH` and text is drawn with a CJK font
    (glyphs missing from DejaVu fall back to it); without one installed a warning is
    logged and Chinese glyphs show as boxes (``make fonts`` installs fonts-noto-cjk).
    Render the figure (:func:`figure_png`) inside the block: fonts resolve at draw time.
    """
    rc: dict[str, object] = {}
    if lang == "zh":
        cjk = cjk_font_families()
        if not cjk:
            log.warning("no CJK font found: Chinese figure text will not render "
                        "(install Debian's fonts-noto-cjk)")
        rc = {"font.family": "sans-serif",
              "font.sans-serif": [*cjk, *matplotlib.rcParams["font.sans-serif"]],
              "axes.unicode_minus": False}
    token = _LANG.set(lang)
    try:
        with matplotlib.rc_context(rc):
            yield
    finally:
        _LANG.reset(token)



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
        DataValidationError: see :func:`postloan.models.evaluation.validate_predictions`.
    """
    fig, ax = _new_figure((6, 5.5))
    for name, s in _series(scores, label).items():
        yy, p = validate_predictions(y, s, probabilities=False, score_name=f"scores[{name!r}]")
        fpr, tpr, _ = roc_curve(yy, p)
        auc = roc_auc_score(yy, p)
        ax.plot(fpr, tpr, lw=2, label=f"{name} (AUC {auc:.3f}, Gini {2 * auc - 1:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label=_t("random"))
    ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal", title=_t(title),
           xlabel=_t("False positive rate (share of goods flagged)"),
           ylabel=_t("True positive rate (share of bads caught)"))
    ax.legend(loc="lower right")
    return fig


def ks_figure(y: object, score: object, title: str = "KS: cumulative score distributions"
              ) -> Figure:
    """Cumulative score distributions of bads and goods with the KS gap marked.

    The curves come from the ROC curve, so the gap drawn is exactly the KS of
    :func:`postloan.models.evaluation.ks_statistic`. The x axis is the share of all customers
    scoring below each threshold, not the raw score: PDs crowd near 0, and on a score
    axis most of both curves would sit in a sliver at the left edge.

    Args:
        y: labels, 1 = bad.
        score: scores, higher = riskier.
        title: figure title.

    Returns:
        The figure.

    Raises:
        DataValidationError: see :func:`postloan.models.evaluation.validate_predictions`.
    """
    yy, p = validate_predictions(y, score, probabilities=False, score_name="score")
    fpr, tpr, thr = roc_curve(yy, p, drop_intermediate=False)
    # Threshold t_i (descending; the first one is +inf): share of bads scoring below
    # t_i is 1 - tpr_i, of goods 1 - fpr_i, of everyone the two weighted by count.
    thr = np.where(np.isfinite(thr), thr, p.max())
    bad_cdf, good_cdf = 1 - tpr, 1 - fpr
    n_bad = float(np.sum(yy))
    below = 1 - (tpr * n_bad + fpr * (len(yy) - n_bad)) / len(yy)
    i = int(np.argmax(tpr - fpr))
    ks = float(tpr[i] - fpr[i])
    fig, ax = _new_figure((6.5, 5))
    ax.plot(below, bad_cdf, lw=2, label=_t("bads (label 1)"))
    ax.plot(below, good_cdf, lw=2, label=_t("goods (label 0)"))
    ax.vlines(below[i], bad_cdf[i], good_cdf[i], colors="red", lw=2,
              label=_t("KS = {ks} at score {thr}").format(ks=f"{ks:.3f}", thr=f"{thr[i]:.4g}"))
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title=_t(title),
           xlabel=_t("Customers ranked by score (share scoring below)"),
           ylabel=_t("Cumulative share scoring below"))
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
        DataValidationError: see :func:`postloan.models.evaluation.validate_predictions`.
    """
    fig, ax = _new_figure((6, 5.5))
    top, bottom = 0.0, 1.0
    for name, s in _series(scores, label).items():
        t = calibration_table(y, s, n_bins)
        ece = expected_calibration_error(y, s, n_bins)
        ax.plot(t["mean_pred"], t["observed_rate"], marker="o", lw=1.5,
                label=f"{name} (ECE {ece:.4f})")
        top = max(top, float(t["mean_pred"].max()), float(t["observed_rate"].max()))
        seen = np.r_[t["mean_pred"].to_numpy(float), t["observed_rate"].to_numpy(float)]
        bottom = min(bottom, float(seen[seen > 0].min(initial=1.0)))
    lim = min(1.0, top * 1.05) or 1.0
    if top / bottom > 30:
        # Probabilities spanning orders of magnitude (a PD's deciles run from 0.1% to
        # 30%) bunch the low deciles, where most customers are, in a corner of a linear
        # plot: log axes give every decile room. A zero observed rate is drawn at the
        # bottom edge.
        low = bottom / 2
        ax.set_xscale("log", nonpositive="clip")
        ax.set_yscale("log", nonpositive="clip")
        ax.plot([low, lim], [low, lim], ls="--", c="grey", lw=1, label=_t("perfectly calibrated"))
        ax.set(xlim=(low, lim), ylim=(low, lim))
        scale = _t(" (log scale)")
        for axis in (ax.xaxis, ax.yaxis):
            # Percent with the digits each decade needs (0.001%, 0.1%, 10%): a fixed
            # number of decimals would print the small decades all as "0.0%".
            axis.set_major_formatter(lambda v, _: f"{100 * v:.3g}%")
    else:
        ax.plot([0, lim], [0, lim], ls="--", c="grey", lw=1, label=_t("perfectly calibrated"))
        ax.set(xlim=(0, lim), ylim=(0, lim))
        scale = ""
    ax.set(aspect="equal", title=_t(title), xlabel=_t("Mean predicted probability") + scale,
           ylabel=_t("Observed rate") + scale)
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
        DataValidationError: see :func:`postloan.models.evaluation.validate_predictions`.
    """
    series = _series(scores, label)
    fig, ax = _new_figure((7, 5))
    width = 0.8 / len(series)
    for i, (name, s) in enumerate(series.items()):
        t = lift_table(y, s, n_bins)
        ax.bar(t["decile"] - 0.4 + width * (i + 0.5), t["lift"], width=width, label=name)
    ax.axhline(1.0, c="grey", ls="--", lw=1, label=_t("no lift"))
    ax.set_xticks(range(1, n_bins + 1))
    ax.set(title=_t(title), xlabel=_t("Score decile (1 = highest scores)"),
           ylabel=_t("Lift (decile bad rate / overall)"))
    ax.legend(loc="upper right")
    return fig


def shap_bar_figure(importance: pd.DataFrame, top: int = 20, title: str = "Mean |SHAP|"
                    ) -> Figure:
    """Horizontal bars of global importance.

    Args:
        importance: ``feature`` and ``mean_abs_shap`` columns, most important first
            (:func:`postloan.models.explain.global_importance`).
        top: number of features shown.
        title: figure title.

    Returns:
        The figure.
    """
    imp = importance.head(top).iloc[::-1]
    fig, ax = _new_figure((7, 0.3 * len(imp) + 1.5))
    ax.barh(imp["feature"], imp["mean_abs_shap"])
    ax.set(title=_t(title), xlabel=_t("Mean |contribution| (log-odds)"))
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


# --------------------------------------------------------------------------- explanations
def _category_label(feature: str, code: float) -> str:
    vocab = S.CATEGORY_VOCABULARIES.get(feature, ())
    i = int(code)
    return vocab[i] if 0 <= i < len(vocab) else str(code)


def dependence_figure(contrib: pd.DataFrame, X: pd.DataFrame, feature: str,
                      title: str | None = None) -> Figure:
    """SHAP dependence plot: each dot a customer, feature value against its contribution.

    Categorical features are drawn at their category positions (jittered) with the
    category names as ticks. Rows where the feature is missing are left out and
    counted in the title, because LightGBM routes them to one side of each split.

    Args:
        contrib: TreeSHAP contributions (log-odds) of the rows of `X`.
        X: feature values.
        feature: the feature to plot.
        title: figure title (default: the feature name).

    Returns:
        The figure.

    Raises:
        DataValidationError: `feature` is not a column of both frames.
    """
    if feature not in X.columns or feature not in contrib.columns:
        raise DataValidationError("explanations", "unknown feature", feature)
    x = X[feature].to_numpy(dtype="float64")
    c = contrib[feature].to_numpy(dtype="float64")
    ok = ~np.isnan(x)
    fig, ax = _new_figure((5.2, 3.8))
    if feature in CATEGORICAL_FEATURES:
        rng = np.random.default_rng(0)  # jitter only; fixed for a reproducible figure
        ax.scatter(x[ok] + rng.uniform(-0.25, 0.25, ok.sum()), c[ok], s=5, alpha=0.4)
        codes = sorted(set(x[ok].astype(int).tolist()))
        ax.set_xticks(codes, [_category_label(feature, k) for k in codes], rotation=30,
                      ha="right")
    else:
        xs = x[ok]
        if len(np.unique(xs)) <= 12 and np.all(xs == np.round(xs)):
            # A count with few values (complaints, calls) would stack every customer
            # on a handful of points: spread them sideways so the mass shows.
            xs = xs + np.random.default_rng(0).uniform(-0.15, 0.15, len(xs))
        ax.scatter(xs, c[ok], s=5, alpha=0.4)
    ax.axhline(0, c="grey", lw=1)
    n_missing = int((~ok).sum())
    head = title or feature
    if n_missing:
        head += f" ({n_missing} missing not shown)"
    ax.set(title=head, xlabel=f"{feature} (value)", ylabel="Contribution to log-odds")
    return fig


def waterfall_figure(contrib: pd.Series, values: pd.Series, title: str = "SHAP waterfall",
                     top: int = 10, probability: float | None = None) -> Figure:
    """One customer's SHAP waterfall: from the model's base value to its raw score.

    Bars run from the base value (``bias``, the average log-odds) through the `top`
    largest contributions (by absolute size; the rest summed in one bar) to the
    customer's raw margin. Red pushes the score up, blue down.

    Args:
        contrib: one row of :func:`postloan.models.explain.contributions` (with ``bias``).
        values: the customer's feature values (same feature names).
        title: figure title.
        top: contributions shown one by one.
        probability: the calibrated probability, added to the title when given.

    Returns:
        The figure.
    """
    bias = float(contrib[BIAS])
    parts = contrib.drop(BIAS).astype("float64")
    order = parts.abs().sort_values(ascending=False, kind="stable").index
    shown = list(order[:top])
    rest = float(parts.drop(shown).sum())
    labels, deltas = [], []
    for f in shown:
        v = values.get(f, np.nan)
        if pd.isna(v):
            text = _t("missing")
        elif f in CATEGORICAL_FEATURES:
            text = _category_label(f, v)
        else:
            text = f"{float(v):,.0f}" if abs(float(v)) >= 10_000 else f"{float(v):.4g}"
        labels.append(f"{f} = {text}")
        deltas.append(float(parts[f]))
    if len(order) > top:
        labels.append(_t("{n} other features").format(n=len(order) - top))
        deltas.append(rest)
    n = len(deltas)
    fig, ax = _new_figure((7.5, 0.42 * n + 2.3))
    start = bias
    for i, d in enumerate(deltas):
        y = n - 1 - i
        ax.barh(y, d, left=start, color="#c0392b" if d > 0 else "#2e6fba", height=0.6)
        ax.text(start + d, y, f" {d:+.3f}", va="center", ha="left" if d > 0 else "right",
                fontsize=8)
        start += d
    margin = start
    ax.axvline(bias, c="grey", lw=1, ls="--", label=_t("base value"))
    ax.axvline(margin, c="black", lw=1, label=_t("this customer's raw score"))
    # Room on both sides (bars stick to the limits, so margins() would not do): the
    # base line would sit on the frame and the outer value labels run past it.
    ends = np.r_[bias, bias + np.cumsum(deltas)]
    pad = 0.15 * max(float(ends.max() - ends.min()), 1e-6)
    ax.set_xlim(float(ends.min()) - pad, float(ends.max()) + pad)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    ax.set_yticks(range(n), list(reversed(labels)))
    raw_p = 1.0 / (1.0 + math.exp(-margin))
    sub = _t("base {bias} -> raw score {margin} (p={p} before calibration)").format(
        bias=f"{bias:+.3f}", margin=f"{margin:+.3f}", p=f"{raw_p:.3f}")
    if probability is not None:
        sub += "\n" + _t("calibrated p={p}").format(p=f"{probability:.3f}")
    ax.set(title=f"{_t(title)}\n{sub}", xlabel=_t("Log-odds"))
    ax.title.set_fontsize(9)
    return fig


# --------------------------------------------------------------------------- output
def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A figure rendered as PNG bytes (nothing written to disk), then closed."""
    buf = _bytes_io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    # Figures from this module are not known to pyplot and need no closing; one a
    # caller made with pyplot would stay in its figure list, so close it there.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    return buf.getvalue()


def save_figure(fig: Figure, path: Path | str, dpi: int = 110) -> Path:
    """Write `fig` as a PNG atomically (:func:`postloan.data.io.write_bytes_atomic`) and close it.

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
    io.write_bytes_atomic(figure_png(fig, dpi), path)
    log.debug("wrote %s", path)
    return path


__all__ = [
    "CJK_FAMILIES", "PLOT_ZH", "calibration_figure", "cjk_font_families", "dependence_figure",
    "figure_png", "ks_figure", "language", "lift_figure", "roc_figure", "save_figure",
    "shap_bar_figure", "shap_summary_figure", "waterfall_figure",
]
