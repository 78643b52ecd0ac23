"""Figure builders return labelled figures; save_figure writes PNGs atomically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from postloan.errors import DataValidationError
from postloan.models.evaluation import ks_statistic
from postloan.operations import monitoring
from postloan.reporting import figures as plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def sample() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, 2_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    return y, {"good model": p, "distorted": p**3}


def _texts(fig: Figure) -> tuple[str, str, str, list[str]]:
    ax = fig.axes[0]
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()] if legend else []
    return ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), labels


@pytest.mark.parametrize("builder", [plots.roc_figure, plots.calibration_figure,
                                     plots.lift_figure])
def test_overlay_builders_label_every_model(builder, sample):
    y, scores = sample
    fig = builder(y, scores, "my title")
    title, xlabel, ylabel, legend = _texts(fig)
    assert isinstance(fig, Figure)
    assert title == "my title" and xlabel and ylabel
    for name in scores:
        assert any(t.startswith(name) for t in legend)


@pytest.mark.parametrize("builder", [plots.roc_figure, plots.calibration_figure,
                                     plots.lift_figure])
def test_single_array_uses_label(builder, sample):
    y, scores = sample
    fig = builder(y, scores["good model"], label="LightGBM")
    assert any(t.startswith("LightGBM") for t in _texts(fig)[3])


def test_roc_legend_shows_auc(sample):
    y, scores = sample
    legend = _texts(plots.roc_figure(y, scores))[3]
    assert any("AUC" in t and "Gini" in t for t in legend)


def test_ks_figure_marks_the_exact_ks(sample):
    y, scores = sample
    fig = plots.ks_figure(y, scores["good model"])
    title, xlabel, ylabel, legend = _texts(fig)
    assert title and xlabel and ylabel
    ks = ks_statistic(y, scores["good model"])
    assert any(f"KS = {ks:.3f}" in t for t in legend)


def test_shap_figures():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    contrib = X * [0.5, -1.0, 0.1]
    contrib["bias"] = -2.0
    imp = pd.DataFrame({"feature": ["b", "a", "c"], "mean_abs_shap": [0.8, 0.4, 0.1]})
    bar = plots.shap_bar_figure(imp, top=2)
    assert [t.get_text() for t in bar.axes[0].get_yticklabels()] == ["a", "b"]
    summary = plots.shap_summary_figure(contrib, X, top=2)
    assert [t.get_text() for t in summary.axes[0].get_yticklabels()] == ["a", "b"]


def test_builders_validate_inputs(sample):
    y, scores = sample
    with pytest.raises(DataValidationError, match="length mismatch"):
        plots.ks_figure(y[:-1], scores["good model"])
    with pytest.raises(DataValidationError, match="empty dict"):
        plots.roc_figure(y, {})


def test_figures_stay_out_of_pyplot(sample):
    plt = pytest.importorskip("matplotlib.pyplot")
    before = plt.get_fignums()
    y, scores = sample
    plots.roc_figure(y, scores)
    assert plt.get_fignums() == before


def test_save_figure_writes_a_png_atomically(tmp_path, sample):
    y, scores = sample
    target = tmp_path / "sub" / "roc.png"
    out = plots.save_figure(plots.roc_figure(y, scores), target)
    assert out == target
    assert target.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in target.parent.iterdir()] == ["roc.png"]
    # Overwriting replaces the file and still leaves nothing else behind.
    plots.save_figure(plots.lift_figure(y, scores), target)
    assert target.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in target.parent.iterdir()] == ["roc.png"]


def test_failed_save_keeps_the_old_file_and_no_temp(tmp_path, sample, monkeypatch):
    y, scores = sample
    target = tmp_path / "ks.png"
    target.write_bytes(b"old")
    fig = plots.ks_figure(y, scores["good model"])

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.save_figure(fig, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ks.png"]


def test_save_figure_requires_png_suffix(tmp_path, sample):
    y, scores = sample
    with pytest.raises(ValueError, match=".png"):
        plots.save_figure(plots.roc_figure(y, scores), tmp_path / "roc.jpg")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- stability
def _bar_series(fig: Figure) -> dict[str, np.ndarray]:
    """Bar heights of each labelled bar series of a figure's first axes."""
    return {c.get_label(): np.array([p.get_height() for p in c.patches])
            for c in fig.axes[0].containers}


@pytest.mark.parametrize("seed", range(3))
def test_score_distribution_shows_where_typical_pds_sit(seed):
    # A typical PD distribution: most customers far below 1%, a long tail to ~60%
    # (the old density histogram on a log axis left these in an invisible sliver).
    rng = np.random.default_rng(seed)
    ref = 1 / (1 + np.exp(-rng.normal(-5.5, 1.3, 20_000)))
    cur = 1 / (1 + np.exp(-rng.normal(-5.0, 1.3, 15_000)))
    fig = plots.score_distribution_figure(ref, cur, "default_risk score")
    bars = _bar_series(fig)
    assert set(bars) == {"reference", "current"}
    for name, h in bars.items():
        assert h.sum() == pytest.approx(1.0), name  # shares of customers, not densities
        assert (h > 0.02).sum() >= 5, name  # the data fills many readable bars
    # Reference deciles hold a tenth each; the shift shows as current bars moving right.
    assert np.allclose(bars["reference"], 0.1, atol=0.002)
    assert bars["current"][-3:].sum() > bars["reference"][-3:].sum() + 0.05
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_ylim()[1] <= 1.0
    assert "PSI" in ax.get_title()
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert len(ticks) == 10 and all("%" in t for t in ticks)


def test_score_distribution_counts_missing_scores():
    fig = plots.score_distribution_figure(np.linspace(0, 1, 100), [0.5, np.nan])
    bars = _bar_series(fig)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][-1] == "missing"
    assert bars["current"][-1] == pytest.approx(0.5)


def test_psi_and_csi_figures_colour_by_status():
    cfg = monitoring.load_monitoring_config()
    table = pd.DataFrame({"variable": ["score", "a", "b"], "psi": [0.02, 0.15, 0.4],
                          "status": ["stable", "watch", "shifted"]})
    fig = plots.psi_figure(table, "psi", cfg)
    patches = fig.axes[0].patches
    # Drawn bottom-up in reverse order: b (shifted) first.
    assert [p.get_width() for p in patches] == pytest.approx([0.4, 0.15, 0.02])
    assert patches[0].get_facecolor() == to_rgba(plots.STATUS_COLOURS["shifted"])
    drift = pd.DataFrame({"feature": ["x", "m"], "kind": ["customer", "macro"],
                          "csi": [0.3, np.nan], "status": ["shifted", "watch"]})
    labels = [t.get_text() for t in plots.csi_figure(drift, cfg).axes[0].get_yticklabels()]
    assert labels == ["x"]  # macro features are judged by level, not drawn as CSI


def test_stress_figure_has_before_and_after_per_group():
    table = pd.DataFrame({"group": ["all", "A", "A", "B", "B", "all"],
                          "when": ["before", "before", "after", "before", "after", "after"],
                          "expected_loss": [3.0, 1.0, 2.0, 2.0, 3.0, 5.0],
                          "orange_or_red": [1, 0, 1, 1, 2, 3]})
    fig = plots.stress_figure(table, "severe")
    assert len(fig.axes) == 2 and "severe" in fig.get_suptitle()
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [1.0, 2.0, 2.0, 3.0]  # A, B before; A, B after


def test_figure_png_renders_bytes():
    fig = plots.score_distribution_figure([0.1, 0.2, 0.3], [0.2, 0.3, 0.4])
    assert plots.figure_png(fig).startswith(PNG_MAGIC)


def _typical_pd(seed: int = 0, n: int = 30_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(-4.0, 1.5, n)))  # deciles from ~0.2% to ~20%
    return (rng.uniform(size=n) < p).astype(int), p


def test_calibration_of_a_typical_pd_spreads_its_deciles():
    y, p = _typical_pd()
    ax = plots.calibration_figure(y, p).axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    x = ax.get_lines()[0].get_xdata()
    lo, hi = ax.get_xlim()
    assert lo <= x.min() and x.max() <= hi
    # Each decile gets room: on the log axis no two neighbours sit closer than 2% of
    # the width (on a linear 0-25% axis the five lowest deciles shared under 2%).
    pos = (np.log(x) - np.log(lo)) / (np.log(hi) - np.log(lo))
    assert np.diff(np.sort(pos)).min() > 0.02
    # Probabilities in a narrow band keep linear axes.
    rng = np.random.default_rng(1)
    u = rng.uniform(0.2, 0.8, 3000)
    ax = plots.calibration_figure((rng.uniform(size=u.size) < u).astype(int), u).axes[0]
    assert ax.get_xscale() == "linear"


def test_ks_axis_is_the_share_of_customers():
    y, p = _typical_pd()
    ax = plots.ks_figure(y, p).axes[0]
    bads, goods = ax.get_lines()[:2]
    x = bads.get_xdata()
    assert x.min() >= 0 and x.max() <= 1
    # Half the customers sit left of the middle (on a score axis they crowd at 0).
    assert 0.3 < np.mean(x < 0.5) < 0.7
    gap = ax.collections[0].get_segments()[0]
    assert abs(gap[1][1] - gap[0][1]) == pytest.approx(ks_statistic(y, p), abs=1e-9)
