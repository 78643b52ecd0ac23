"""Figure builders return labelled figures; save_figure writes PNGs atomically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from postloan import plots
from postloan.errors import DataValidationError
from postloan.evaluation import ks_statistic

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
