"""The figures of monitoring and stress: stability (PSI and CSI bars, score
distributions by reference decile), metrics and scores over time, and stress
(before/after by segment). Built with the toolkit of :mod:`postloan.models.figures`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from postloan.models.figures import _new_figure, _t
from postloan.operations.monitoring import (
    MonitoringConfig,
    default_monitoring_config,
    psi_bins,
    status,
)

# --------------------------------------------------------------------------- stability
STATUS_COLOURS = {"stable": "#2e8b57", "watch": "#e0a100", "shifted": "#c0392b",
                  "n/a": "grey"}
"""Bar colour per PSI status, the same in every stability figure."""


def _stability_bars(names: pd.Series, values: pd.Series, statuses: pd.Series, title: str,
                    xlabel: str, cfg: MonitoringConfig) -> Figure:
    fig, ax = _new_figure((6.5, 0.32 * len(names) + 1.6))
    ax.barh(names, values.fillna(0.0), color=[STATUS_COLOURS[s] for s in statuses])
    ax.axvline(cfg.psi_watch, c=STATUS_COLOURS["watch"], ls="--", lw=1,
               label=f"{_t('watch')} ({cfg.psi_watch})")
    ax.axvline(cfg.psi_shifted, c=STATUS_COLOURS["shifted"], ls="--", lw=1,
               label=f"{_t('shifted')} ({cfg.psi_shifted})")
    top = float(values.max()) if values.notna().any() else 0.0
    ax.set(title=_t(title), xlabel=xlabel, xlim=(0, max(cfg.psi_shifted * 1.2, top * 1.1)))
    ax.legend(loc="lower right")
    return fig


def psi_figure(table: pd.DataFrame, title: str = "Population stability (PSI)",
               cfg: MonitoringConfig | None = None) -> Figure:
    """Horizontal PSI bars coloured by status, with the watch and shifted bands.

    Args:
        table: :func:`postloan.operations.monitoring.psi_table` output (``variable``, ``psi``,
            ``status``), drawn top to bottom in its order.
        title: figure title.
        cfg: the thresholds drawn (default: the shipped monitoring config).

    Returns:
        The figure.
    """
    t = table.iloc[::-1]
    return _stability_bars(t["variable"], t["psi"], t["status"], title, "PSI",
                           cfg or default_monitoring_config())


def csi_figure(drift: pd.DataFrame, cfg: MonitoringConfig | None = None, top: int = 15,
               title: str | None = None) -> Figure:
    """Horizontal CSI bars of the most shifted customer features.

    Args:
        drift: :func:`postloan.operations.monitoring.feature_drift` output (most shifted first;
            macro features, judged by level, are left out).
        cfg: the thresholds drawn (default: the shipped monitoring config).
        top: features shown.
        title: figure title.

    Returns:
        The figure.
    """
    t = drift[drift["kind"] == "customer"].head(top).iloc[::-1]
    return _stability_bars(t["feature"], t["csi"], t["status"],
                           title or f"Feature stability (CSI, top {top})", "CSI",
                           cfg or default_monitoring_config())


def _range_labels(lo: np.ndarray, hi: np.ndarray) -> list[str]:
    """Score bins as percentage ranges a reviewer can read (e.g. ``0.31%-0.52%``).

    Uses the fewest significant digits (2 to 5) that keep neighbouring cut points
    apart, so two bins never read alike (``12%-12%``).
    """
    cuts = np.unique(np.r_[lo, hi][np.isfinite(np.r_[lo, hi])])
    for digits in range(2, 6):
        if len({f"{100 * c:.{digits}g}" for c in cuts}) == len(cuts):
            break

    def pct(x: float) -> str:
        return f"{100 * x:.{digits}g}%"

    out = []
    for a, b in zip(lo, hi, strict=True):
        if np.isnan(a) and np.isnan(b):
            out.append("missing")
        elif not np.isfinite(a):
            out.append(f"<= {pct(b)}" if np.isfinite(b) else "all")
        elif not np.isfinite(b):
            out.append(f"> {pct(a)}")
        else:
            out.append(f"{pct(a)}-{pct(b)}")
    return out


def score_distribution_figure(reference: object, current: object, title: str = "Score",
                              n_bins: int = 10, cfg: MonitoringConfig | None = None
                              ) -> Figure:
    """Share of customers per reference score decile, reference against current.

    Scores such as a PD crowd near 0 with a long tail, so a histogram on a linear or
    log axis leaves most bars in an unreadable sliver. Bins cut at the reference's
    deciles hold a tenth of the reference each; the current bars show at once where
    the population moved. The bins and shares are those of
    :func:`postloan.operations.monitoring.psi_bins`, so the figure shows the PSI in its title.

    Args:
        reference: reference scores (e.g. probabilities at the reference date).
        current: current scores.
        title: figure title (the PSI is appended).
        n_bins: reference quantile bins.
        cfg: thresholds naming the PSI's band in the title (default: the shipped
            config).

    Returns:
        The figure: two bar series (``reference``, ``current``) whose heights are the
        shares of customers per bin (each series sums to 1), x ticks the score ranges.

    Raises:
        DataValidationError: a sample is empty or not numeric.
    """
    b = psi_bins(reference, current, n_bins)
    value = float(b["term"].sum())
    x = np.arange(len(b))
    fig, ax = _new_figure((7, 4))
    ax.bar(x - 0.2, b["ref_share"], width=0.4, color="#9aa5b1", label="reference")
    ax.bar(x + 0.2, b["cur_share"], width=0.4, color="#1f5f99", label="current")
    labels = _range_labels(b["lo"].to_numpy(), b["hi"].to_numpy())
    ax.set_xticks(x, labels, rotation=40, ha="right", fontsize=8)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    # Head room so the legend never hides a bar.
    ax.set_ylim(0, 1.25 * float(max(b["ref_share"].max(), b["cur_share"].max())))
    ax.set(title=f"{title}: PSI {value:.3f} ({status(value, cfg)})",
           xlabel="Score range (bins at the reference's deciles)",
           ylabel="Share of customers")
    ax.legend(loc="upper center", ncols=2)
    return fig


# --------------------------------------------------------------------------- stress
def stress_figure(table: pd.DataFrame, scenario: object) -> Figure:
    """Expected loss and orange/red warnings by segment, before and after a scenario.

    Args:
        table: :func:`postloan.operations.stress.compare` output (``group``, ``when``,
            ``expected_loss``, ``orange_or_red``; the ``all`` row is left out).
        scenario: the scenario (its ``name``), or its name.

    Returns:
        The figure (two panels).
    """
    t = table[table["group"] != "all"]
    groups = list(dict.fromkeys(t["group"]))
    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric, title, ylabel in (
            (axes[0], "expected_loss", "expected loss", "Expected loss (book currency)"),
            (axes[1], "orange_or_red", "customers orange or red", "Customers")):
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")  # no "1e6" offset
        ax.set(xlabel="Segment", ylabel=ylabel)
        for i, when in enumerate(("before", "after")):
            vals = t[t["when"] == when].set_index("group").reindex(groups)[metric]
            ax.bar([j + i * 0.4 for j in range(len(groups))], vals, width=0.4, label=when)
        ax.set_xticks([j + 0.2 for j in range(len(groups))], groups)
        ax.set_title(title)
        ax.legend()
    fig.suptitle(f"stress scenario '{getattr(scenario, 'name', scenario)}'")
    return fig


# --------------------------------------------------------------------------- over time
def metrics_by_month_figure(table: pd.DataFrame, metrics: Mapping[str, str],
                            title: str = "", ylabel: str = "") -> Figure:
    """Metrics by as-of date, each with its interval as a band.

    Args:
        table: one row per as-of date: ``as_of`` and, per metric ``m``, columns ``m``,
            ``m_lo``, ``m_hi`` (the interval; optional).
        metrics: column -> legend label, drawn in this order.
        title: figure title.
        ylabel: y-axis label.

    Returns:
        The figure.
    """
    fig, ax = _new_figure((7.5, 4))
    x = pd.to_datetime(table["as_of"])
    for col, label in metrics.items():
        if col not in table.columns or table[col].isna().all():
            continue
        line = ax.plot(x, table[col], marker="o", lw=1.8, label=label)[0]
        if f"{col}_lo" in table.columns:
            ax.fill_between(x, table[f"{col}_lo"], table[f"{col}_hi"], alpha=0.18,
                            color=line.get_color(), lw=0)
    ax.set(title=title, xlabel=_t("As-of date"), ylabel=ylabel)
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    return fig


def score_history_figure(history: pd.DataFrame, series: Mapping[str, str],
                         title: str = "") -> Figure:
    """One customer's scores over as-of dates, one line per model (probabilities).

    Args:
        history: ``as_of`` and one probability column per entry of `series`.
        series: column -> legend label.
        title: figure title.

    Returns:
        The figure.
    """
    fig, ax = _new_figure((7.5, 3.6))
    x = pd.to_datetime(history["as_of"])
    for col, label in series.items():
        if col in history.columns:
            ax.plot(x, history[col], marker="o", lw=1.8, label=label)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set(title=title, xlabel=_t("As-of date"), ylabel=_t("Score"), ylim=(0, None))
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    return fig


__all__ = [
    "STATUS_COLOURS", "csi_figure", "metrics_by_month_figure", "psi_figure",
    "score_distribution_figure", "score_history_figure", "stress_figure",
]
