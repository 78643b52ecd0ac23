"""Model reports: PSI by hand, portfolio tables, figures, and a real report end to end.

The end-to-end tests train on the small book with a real MLflow SQLite store, write
the report with ``pipelines.report.run_report`` and read it back as text and in
headless Chromium (Debian's ``chromium`` package, installed here if missing).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from postloan import reporting as reports
from postloan.data.features import FEATURE_NAMES
from postloan.errors import DataValidationError, ModelNotFoundError, PostloanError
from postloan.models.training import Lgbm, ModelConfig, Splits, TrainConfig
from postloan.operations import monitoring
from postloan.reporting import figures as plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPS = monitoring.PSI_EPS


# --------------------------------------------------------------------------- PSI
def test_psi_matches_a_hand_computation():
    # Reference 1..10 with 2 bins: one cut at the median 5.5 -> shares 0.5 / 0.5.
    # Current: 7 values <= 5.5, 3 above -> 0.7 / 0.3.
    ref = np.arange(1, 11)
    cur = [1, 2, 3, 4, 5, 2, 3, 6, 7, 8]
    by_hand = (0.7 - 0.5) * math.log(0.7 / 0.5) + (0.3 - 0.5) * math.log(0.3 / 0.5)
    assert monitoring.psi(ref, cur, n_bins=2) == pytest.approx(by_hand, abs=1e-12)
    assert by_hand == pytest.approx(0.1694595, abs=1e-6)


def test_psi_gives_an_empty_bin_the_epsilon_share():
    ref = np.arange(1, 11)
    cur = np.ones(10)  # everything in the lower bin: the upper bin is empty
    by_hand = (1.0 - 0.5) * math.log(1.0 / 0.5) + (EPS - 0.5) * math.log(EPS / 0.5)
    assert monitoring.psi(ref, cur, n_bins=2) == pytest.approx(by_hand, abs=1e-12)
    b = monitoring.psi_bins(ref, cur, n_bins=2)
    assert b["cur_share"].tolist() == [1.0, 0.0]  # raw shares stay raw in the table


def test_psi_ten_bins_by_hand():
    # 1..100 in 10 quantile bins of 10 values; the current sample doubles the top bin.
    ref = np.arange(1, 101)
    cur = np.r_[np.arange(1, 91), np.arange(91, 101), np.arange(91, 101)]
    b = monitoring.psi_bins(ref, cur, n_bins=10)
    assert len(b) == 10 and np.allclose(b["ref_share"], 0.1)
    q = np.r_[np.full(9, 10 / 110), 20 / 110]
    by_hand = float(np.sum((q - 0.1) * np.log(q / 0.1)))
    assert monitoring.psi(ref, cur) == pytest.approx(by_hand, abs=1e-12)


def test_value_on_a_cut_point_stays_in_the_lower_bin():
    b = monitoring.psi_bins(np.arange(1, 11), [5.5, 5.5, 5.6], n_bins=2)
    assert b["cur_share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert b["bin"].tolist() == ["(-inf, 5.5]", "(5.5, inf]"]


def test_values_outside_the_reference_range_land_in_the_outer_bins():
    b = monitoring.psi_bins(np.arange(1, 11), [-100.0, 1e9], n_bins=2)
    assert b["cur_share"].tolist() == [0.5, 0.5]


def test_psi_categorical_by_hand_with_a_new_category():
    ref = ["a"] * 5 + ["b"] * 5
    cur = ["a"] * 8 + ["c"] * 2  # "b" vanished, "c" is new
    by_hand = ((0.8 - 0.5) * math.log(0.8 / 0.5) + (EPS - 0.5) * math.log(EPS / 0.5)
               + (0.2 - EPS) * math.log(0.2 / EPS))
    assert monitoring.psi(ref, cur, categorical=True) == pytest.approx(by_hand, abs=1e-12)


def test_missing_values_get_their_own_bin():
    # Reference [1, 2, nan, nan]: cut at 1.5 -> (0.25, 0.25, missing 0.5).
    # Current [1, 2, 3, nan]  -> (0.25, 0.5, missing 0.25).
    ref, cur = [1.0, 2.0, np.nan, np.nan], [1.0, 2.0, 3.0, np.nan]
    b = monitoring.psi_bins(ref, cur, n_bins=2)
    assert b["bin"].tolist()[-1] == monitoring.MISSING_BIN
    by_hand = 0.0 + (0.5 - 0.25) * math.log(2) + (0.25 - 0.5) * math.log(0.5)
    assert monitoring.psi(ref, cur, n_bins=2) == pytest.approx(by_hand, abs=1e-12)


def test_a_constant_reference_still_gives_a_finite_psi():
    assert monitoring.psi(np.zeros(50), np.zeros(50)) == 0.0
    moved = monitoring.psi(np.zeros(50), np.ones(50))  # all mass moves to the upper bin
    assert np.isfinite(moved) and moved > 0.25


@settings(max_examples=60, deadline=None, derandomize=True)
@given(ref=hs.lists(hs.one_of(hs.floats(-1e6, 1e6), hs.just(float("nan"))), min_size=1,
                    max_size=60),
       cur=hs.lists(hs.one_of(hs.floats(-1e6, 1e6), hs.just(float("nan"))), min_size=1,
                    max_size=60),
       n_bins=hs.integers(1, 12))
def test_psi_is_never_negative_and_zero_against_itself(ref, cur, n_bins):
    assert monitoring.psi(ref, cur, n_bins) >= 0.0
    assert monitoring.psi(ref, ref, n_bins) == 0.0
    b = monitoring.psi_bins(ref, cur, n_bins)
    assert b["ref_share"].sum() == pytest.approx(1.0) and b["cur_share"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_psi_follows_the_size_of_a_shift(seed):
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=20_000)
    same = monitoring.psi(ref, rng.normal(size=20_000))
    small = monitoring.psi(ref, rng.normal(0.2, 1.0, 20_000))
    large = monitoring.psi(ref, rng.normal(1.0, 1.0, 20_000))
    cfg = monitoring.load_monitoring_config()
    assert same < 0.01 < small < cfg.psi_watch < cfg.psi_shifted < large
    assert monitoring.status(same) == "stable" and monitoring.status(large) == "shifted"


def test_psi_errors_are_clear():
    with pytest.raises(DataValidationError, match="reference sample is empty"):
        monitoring.psi([], [1.0])
    with pytest.raises(DataValidationError, match="current sample is empty"):
        monitoring.psi([1.0], [])
    with pytest.raises(DataValidationError, match="numeric"):
        monitoring.psi(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="n_bins"):
        monitoring.psi([1.0], [1.0], n_bins=0)
    with pytest.raises(DataValidationError, match="column missing"):
        monitoring.psi_table(pd.DataFrame({"x": [1.0]}), pd.DataFrame({"y": [1.0]}), ["x"])


def test_psi_status_bands():
    assert [monitoring.status(v) for v in (0.0, 0.099, 0.1, 0.25, 0.2501, float("nan"))] == \
        ["stable", "stable", "watch", "watch", "shifted", "n/a"]


def test_psi_table_reports_each_column():
    ref = pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    cur = pd.DataFrame({"x": np.arange(100.0) + 50, "c": ["a"] * 100})
    t = monitoring.psi_table(ref, cur, ["x", "c"], categorical=["c"])
    assert t["variable"].tolist() == ["x", "c"]
    assert t.loc[1, "n_bins"] == 2 and t.loc[1, "psi"] == pytest.approx(
        (1 - 0.5) * math.log(2) + (EPS - 0.5) * math.log(EPS / 0.5))
    assert (t["status"] == "shifted").all()


# --------------------------------------------------------------------------- portfolio
def _panel(loan_id: int, months: list[str], dpd: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"loan_id": loan_id, "statement_date": pd.to_datetime(months),
                         "dpd": dpd, "balance": 100.0})


def test_roll_rate_matrix_by_hand():
    jan, feb, mar = "2023-01-31", "2023-02-28", "2023-03-31"
    loans = pd.DataFrame({"loan_id": [1, 2, 3],
                          "close_reason": ["prepaid", "charged_off", None]})
    rep = pd.concat([_panel(1, [jan, feb, mar], [0, 0, 15]),    # cur->cur, cur->1-29, ->paid
                     _panel(2, [jan, feb, mar], [35, 65, 95]),  # 30->60, 60->90, ->charged
                     _panel(3, [jan, mar], [0, 0])])            # gap, then still open
    m = reports.roll_rate_matrix(loans, rep)
    assert m.loc["current", "current"] == 0.5 and m.loc["current", "1-29"] == 0.5
    assert m.loc["1-29", "paid off"] == 1.0
    assert m.loc["30-59", "60-89"] == 1.0 and m.loc["60-89", "90+"] == 1.0
    assert m.loc["90+", "charged off"] == 1.0
    assert m["n"].tolist() == [2, 1, 1, 1, 1]


def test_vintage_curves_by_hand():
    months = pd.date_range("2023-01-31", periods=6, freq="ME").strftime("%Y-%m-%d").tolist()
    loans = pd.DataFrame({"loan_id": [1, 2, 3, 4], "origination_date": pd.to_datetime(
        ["2023-01-10", "2023-01-20", "2023-02-05", "2022-11-01"])})
    rep = pd.concat([_panel(1, months, [0, 0, 30, 60, 0, 0]),   # bad at MOB 2
                     _panel(2, months, [0] * 6),                # never bad
                     _panel(3, months[1:], [0, 0, 45, 0, 0]),   # bad at MOB 2
                     _panel(4, months, [40] * 6)])              # before the panel: left out
    v = reports.vintage_curves(loans, rep, dpd_min=30, freq="M")
    assert v.index.tolist() == ["2023-01", "2023-02"]
    assert v.loc["2023-01", [0, 1, 2, 3, 4, 5]].tolist() == [0, 0, 0.5, 0.5, 0.5, 0.5]
    assert v.loc["2023-02", [0, 1, 2, 3, 4]].tolist() == [0, 0, 1, 1, 1]
    assert np.isnan(v.loc["2023-02", 5])  # a 5-month-old loan is not observed yet
    assert v["n_loans"].tolist() == [2, 1]


def test_portfolio_tables_on_the_small_book(small_tables):
    loans, rep = small_tables["loans"], small_tables["repayments"]
    roll = reports.roll_rate_matrix(loans, rep)
    shares = roll.drop(columns="n")
    assert np.allclose(shares[roll["n"] > 0].sum(axis=1), 1.0)
    v = reports.vintage_curves(loans, rep, dpd_min=90)
    curves = v.drop(columns="n_loans")
    assert (curves.T.diff().fillna(0) >= -1e-12).all().all()  # cumulative: never falls
    for weight in ("loans", "balance"):
        d = reports.dpd_distribution(rep, weight=weight)
        assert list(d.columns) == list(reports.DPD_BUCKETS)
        assert np.allclose(d.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="weight"):
        reports.dpd_distribution(rep, weight="customers")
    # Their figures draw the same numbers: one line per cohort, one area per bucket.
    vf = plots.vintage_figure(v)
    lines = vf.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == v.index.tolist()
    np.testing.assert_array_equal(lines[0].get_ydata(), curves.iloc[0].to_numpy(float))
    dist = reports.dpd_distribution(rep)
    areas = plots.dpd_distribution_figure(dist).axes[0].collections
    assert [a.get_label() for a in areas] == list(reports.DPD_BUCKETS[1:])  # no "current"


# --------------------------------------------------------------------------- figures
def test_waterfall_bars_add_up_to_the_raw_score():
    rng = np.random.default_rng(0)
    feats = list(FEATURE_NAMES[:15])
    contrib = pd.Series(rng.normal(0, 0.3, 15), index=feats)
    contrib["bias"] = -2.0
    contrib["region"] = 5.0  # the largest contribution: shown first, with its category name
    values = pd.Series(rng.normal(size=15), index=feats)
    values["region"] = 2.0
    fig = plots.waterfall_figure(contrib, values, title="one customer", top=5,
                                   probability=0.123)
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == 6  # five features and "10 other features"
    end = bars[-1].get_x() + bars[-1].get_width()
    assert end == pytest.approx(-2.0 + contrib.drop("bias").sum())
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "10 other features" in labels and "calibrated p=0.123" in ax.get_title()
    assert labels[-1] == "region = east"  # y ticks run bottom-up: the first bar is on top


def test_dependence_figure_names_categories_and_counts_missing():
    X = pd.DataFrame({"region": [0.0, 1.0, 2.0, 1.0], "age": [30.0, np.nan, 50.0, 60.0]})
    contrib = pd.DataFrame({"region": [0.1, -0.2, 0.3, -0.1], "age": [0.2, 0.0, -0.1, -0.3],
                            "bias": -1.0})
    fig = plots.dependence_figure(contrib, X, "region")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["north", "south", "east"]
    assert "1 missing" in plots.dependence_figure(contrib, X, "age").axes[0].get_title()
    with pytest.raises(DataValidationError):
        plots.dependence_figure(contrib, X, "nope")
    png = plots.figure_png(fig)
    assert png.startswith(PNG_MAGIC) and isinstance(fig, Figure)


# --------------------------------------------------------------------------- rendering
class _Page(HTMLParser):
    """Section ids, image sources and external references of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section" and a.get("id"):
            self.sections.append(a["id"])
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href", "action", "data"):
            if a.get(key):
                self.refs.append(a[key])


def _parse(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    return p


def _assert_self_contained(text: str) -> _Page:
    page = _parse(text)
    assert page.sections == list(reports.SECTION_IDS)
    assert not re.search(r"https?://", text), "the page names a network resource"
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert "url(" not in text
    for ref in page.refs:  # only in-page anchors and data URIs
        assert ref.startswith("#") or ref.startswith("data:image/png;base64,"), ref
    for src in page.images:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    return page


def test_render_with_minimal_inputs_keeps_every_section_and_escapes_text():
    inp = reports.ReportInputs(
        model="churn", version="3", metadata={"label": "churn_6m", "splits": {
            "train": ["2024-01-31"], "valid": ["2024-04-30"], "oot": ["2024-07-31"]}},
        run_id="abc", metrics={"oot_auc": 0.7, "baseline_oot_auc": 0.65},
        tags={"git_commit": "<script>alert(1)</script>"},
        notes=["book & model differ <b>"])
    text = reports.render_report(inp)
    page = _assert_self_contained(text)
    assert page.images == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "book &amp; model" in text
    assert "Stability was not computed" in text and "Plot not available: ROC curve" in text
    assert "No truth table" in text


# --------------------------------------------------------------------------- end to end
FAST = TrainConfig(shap_sample=300, splits=Splits(n_train=6),
                   models={"default_risk": ModelConfig(
                       lgbm=Lgbm(learning_rate=0.1, max_rounds=200, early_stopping_rounds=20),
                       monotone=TrainConfig().models["default_risk"].monotone)})
WEAK = TrainConfig(shap_sample=200, splits=Splits(n_train=6), models={
    "default_risk": ModelConfig(lgbm=Lgbm(max_rounds=1, num_leaves=2, early_stopping_rounds=1))})


@pytest.fixture(scope="module")
def trained(small_book, tmp_path_factory):
    """default_risk v1 (champion) and a weaker v2 kept out by the gate, in a real store."""
    from pipelines.report import Book
    from pipelines.train import run_train

    root = tmp_path_factory.mktemp("reports")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    v1 = run_train(small_book, ["default_risk"], FAST, uri, root / "mlartifacts", None, root)[0]
    v2 = run_train(small_book, ["default_risk"], WEAK, uri, root / "mlartifacts", None, root)[0]
    assert v1["promoted"] and not v2["promoted"]
    return {"uri": uri, "root": root, "v1": v1, "v2": v2, "book": Book(small_book)}


@pytest.fixture(scope="module")
def champion_report(trained):
    from pipelines.report import run_report

    path = run_report("default_risk", tracking_uri=trained["uri"],
                      models_dir=trained["root"] / "models", book=trained["book"])
    return path


integration = pytest.mark.integration


@integration
def test_report_has_every_section_and_embedded_images(champion_report, trained):
    v1 = trained["v1"]
    assert champion_report == trained["root"] / "models" / "default_risk" / "v1" / "report.html"
    text = champion_report.read_text(encoding="utf-8")
    page = _assert_self_contained(text)
    # ROC, KS, lift, calibration, SHAP summary and bar, 6 dependence plots, PSI bars.
    assert len(page.images) == 13
    for marker in ("Intended use", "Limits", "default_12m", "Monotone constraints",
                   "bureau_score", "logistic baseline", "oracle ratio", "Calibration table",
                   "Disparity summary", "age_band", "Dependence plots", "Reason-code",
                   "中文", "Score PSI", "Champion history", "worse than champion"):
        assert marker in text, marker
    assert f"OOT AUC {v1['metrics']['oot_auc']:.4f}" in text
    assert trained["book"].manifest["content_hash"] in text


@integration
def test_report_is_logged_to_the_version_run(champion_report, trained):
    client = MlflowClient(trained["uri"])
    arts = [a.path for a in client.list_artifacts(trained["v1"]["run_id"], "report")]
    assert arts == ["report/report.html"]


@integration
def test_stability_and_dependence_come_from_the_book(trained):
    from pipelines.report import gather

    inp = gather("default_risk", version="1", tracking_uri=trained["uri"], book=trained["book"])
    stab = inp.stability
    assert stab["variable"].iloc[0] == monitoring.SCORE
    assert stab["variable"].iloc[1:].tolist() == inp.metadata["top_features"][:10]
    assert np.isfinite(stab["psi"]).all() and (stab["psi"] >= 0).all()
    # The same book at later dates: the score should not have moved much.
    assert stab["psi"].iloc[0] < monitoring.load_monitoring_config().psi_shifted
    assert list(inp.dependence) == inp.metadata["top_features"][:6]
    assert inp.stability_dates["current"] == inp.metadata["splits"]["oot"]
    assert not inp.notes  # the book is the one the model was trained on


@integration
def test_report_of_a_challenger_by_version(trained, tmp_path):
    from pipelines.report import run_report

    out = run_report("default_risk", version="2", out=tmp_path / "v2.html",
                     tracking_uri=trained["uri"], book=trained["book"], log_to_run=False)
    text = out.read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert "Model report: postloan-default-risk v2" in text
    assert re.search(r'<tr class="this"><td>v2</td><td>challenger</td>', text)
    assert "worse than champion v1" in text


@integration
def test_missing_models_versions_and_aliases_are_clear_errors(trained, tmp_path):
    from pipelines.report import run_report

    kw = {"tracking_uri": trained["uri"], "book": trained["book"]}
    with pytest.raises(ModelNotFoundError, match=r"has no version 99; registered versions: 1, 2"):
        run_report("default_risk", version="99", out=tmp_path / "x.html", **kw)
    with pytest.raises(ModelNotFoundError, match="has no alias 'staging'"):
        run_report("default_risk", alias="staging", out=tmp_path / "x.html", **kw)
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        run_report("fraud", out=tmp_path / "x.html", **kw)
    with pytest.raises(ModelNotFoundError, match="no registered model 'postloan-churn'"):
        run_report("churn", out=tmp_path / "x.html", **kw)
    with pytest.raises(PostloanError, match="either a version or an alias"):
        run_report("default_risk", version="1", alias="champion", out=tmp_path / "x.html", **kw)
    assert not (tmp_path / "x.html").exists()


@integration
def test_a_different_book_is_flagged_in_the_report(trained, small_book):
    from pipelines.report import Book, gather

    other = Book(small_book)
    other.manifest = {**other.manifest, "content_hash": "0" * 64}
    other._snaps = trained["book"]._snaps  # same tables: reuse the snapshots
    inp = gather("default_risk", version="1", tracking_uri=trained["uri"], book=other)
    assert len(inp.notes) == 1 and "is not the book this model was trained on" in inp.notes[0]
    assert inp.notes[0] in reports.render_report(inp).replace("&#x27;", "'")


# --------------------------------------------------------------------------- browser
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run")
# Written into the page copy once everything (images included) has loaded.
CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = {
    images: imgs.length,
    decoded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    shown: imgs.filter(function (i) { return i.getBoundingClientRect().width > 0; }).length,
    sections: Array.prototype.map.call(document.querySelectorAll('section[id]'),
                                       function (s) { return s.id; }),
    headings: Array.prototype.map.call(document.querySelectorAll('section > h2'),
                                       function (h) { return h.textContent; })
  };
  var pre = document.createElement('pre');
  pre.id = 'postloan-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def _install_chromium() -> str:
    """Try Debian's chromium package; return why it failed ('' on success)."""
    apt = shutil.which("apt-get")
    if apt is None:
        return "no chromium on PATH and no apt-get to install Debian's chromium package"
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            return "no chromium on PATH; apt-get needs root and sudo is missing"
        prefix = [sudo, "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, apt, "install", "-y", "--no-install-recommends", "chromium"]
    try:
        r = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
        if r.returncode != 0:  # stale or empty package lists: update once and retry
            subprocess.run([*prefix, apt, "update"], capture_output=True, text=True,
                           timeout=600, env=env)
            r = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
    except (OSError, subprocess.SubprocessError) as e:
        return f"apt-get install chromium failed: {e}"
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return f"apt-get install chromium failed ({r.returncode}): {' | '.join(tail)}"
    return ""


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _find_chromium()
    if path is None:
        reason = _install_chromium()
        path = _find_chromium()
        if path is None:
            pytest.skip(f"headless Chromium unavailable: {reason or 'not found after install'}")
    return path


@integration
def test_report_renders_in_headless_chromium(champion_report, chromium, tmp_path):
    text = champion_report.read_text(encoding="utf-8")
    # The page forbids scripts; the copy allows only our inline check, still no network.
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    assert csp in text
    page = text.replace(csp, csp + "; script-src 'unsafe-inline'").replace(
        "</body>", CHECK_SCRIPT + "</body>")
    copy = tmp_path / "check.html"
    copy.write_text(page, encoding="utf-8")
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1280,2000", "--virtual-time-budget=10000", "--dump-dom",
           copy.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="postloan-check">(.*?)</pre>', r.stdout, re.S)
    assert m, f"the check script did not run; stderr: {r.stderr[-1000:]}"
    out = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert out["sections"] == list(reports.SECTION_IDS)
    assert len(out["headings"]) == len(reports.SECTION_IDS)
    assert out["images"] == 13 and out["decoded"] == 13 and out["shown"] == 13

    shot = tmp_path / "shot.png"
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
           "--window-size=1280,1600", f"--screenshot={shot}", champion_report.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.read_bytes().startswith(PNG_MAGIC), r.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(str(shot))
    assert pixels.std() > 0.05  # not a blank page
