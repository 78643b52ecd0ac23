"""The validation pack, the decision layer's pack and the customer page, in both languages.

Unit tests render from hand-made inputs; the integration tests train on the small book
(a real MLflow store), write the packs with the pipelines, render the Chinese pack in
headless Chromium and check, through the DevTools protocol, that every character on the
page is drawn from a font that has its glyph (no tofu); the PDF is checked page by page
as images (``pdftoppm``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.reporting.test_reports import (  # noqa: F401 - fixtures shared with the model report
    CHROMIUM_FLAGS,
    PNG_MAGIC,
    chromium,
    trained,
)

from postloan import glossary
from postloan import reporting as reports
from postloan.reporting import i18n
from postloan.reporting.customer import customer_tables, render_customer_page

integration = pytest.mark.integration


# --------------------------------------------------------------------------- computations
def _scores(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(x - 2.5 + shift)))
    y = (rng.random(n) < p).astype(float)
    return y, p


@pytest.mark.parametrize("seed", [0, 7, 42])
def test_monthly_performance_intervals_hold_the_estimate_and_are_seeded(seed):
    y1, p1 = _scores(3000, seed)
    y2, p2 = _scores(3000, seed + 1)
    y = np.r_[y1, y2]
    p = np.r_[p1, p2]
    as_of = ["2024-01-31"] * 3000 + ["2024-02-29"] * 3000
    t = reports.monthly_performance(y, p, as_of, oracle=p, n_boot=50, seed=1)
    assert list(t["as_of"]) == ["2024-01-31", "2024-02-29"]
    assert (t["n"] == 3000).all() and (t["n_pos"] == [y1.sum(), y2.sum()]).all()
    for m in ("auc", "ks", "gini"):
        assert ((t[f"{m}_lo"] <= t[m]) & (t[m] <= t[f"{m}_hi"])).all()
        assert (t[f"{m}_hi"] - t[f"{m}_lo"] > 0).all()
    assert np.allclose(t["gini"], 2 * t["auc"] - 1)
    # the oracle here is the model itself: its AUC equals the model's
    assert np.allclose(t["oracle_auc"], t["auc"])
    again = reports.monthly_performance(y, p, as_of, oracle=p, n_boot=50, seed=1)
    pd.testing.assert_frame_equal(t, again)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_auc_ks_match_sklearn_on_repeated_rows(seed):
    from sklearn.metrics import roc_auc_score

    from postloan.models.evaluation import ks_statistic
    from postloan.reporting.pack import weighted_auc_ks

    y, p = _scores(800, seed)
    p = np.round(p, 2)  # ties
    counts = np.random.default_rng(seed).integers(0, 4, size=len(y))
    rep = np.repeat(np.arange(len(y)), counts)
    auc, ks = weighted_auc_ks(y, p, np.vstack([np.ones(len(y)), counts]))
    assert auc[0] == pytest.approx(roc_auc_score(y, p))
    assert ks[0] == pytest.approx(ks_statistic(y, p))
    assert auc[1] == pytest.approx(roc_auc_score(y[rep], p[rep]))
    assert ks[1] == pytest.approx(ks_statistic(y[rep], p[rep]))


def test_monthly_performance_leaves_a_one_class_month_without_metrics():
    y = np.r_[np.zeros(100), np.r_[np.zeros(50), np.ones(50)]]
    p = np.linspace(0.01, 0.99, 200)
    t = reports.monthly_performance(y, p, ["2024-01-31"] * 100 + ["2024-02-29"] * 100,
                                    n_boot=20)
    assert np.isnan(t.loc[0, "auc"]) and t.loc[1, "auc"] == pytest.approx(1.0)
    assert t["oracle_auc"].isna().all()


def test_score_psi_by_month_grows_with_a_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=5000)
    cur = pd.DataFrame({"as_of": ["2024-01-31"] * 4000 + ["2024-02-29"] * 4000,
                        "score": np.r_[rng.normal(size=4000), rng.normal(0.8, 1, 4000)]})
    t = reports.score_psi_by_month(ref, cur)
    assert t.loc[0, "psi"] < 0.02 < 0.25 < t.loc[1, "psi"]
    assert list(t["status"]) == ["stable", "shifted"]


# --------------------------------------------------------------------------- words
def test_every_text_exists_in_both_languages_and_chinese_follows_the_glossary():
    bad = {}
    for key, (en, zh) in i18n.TEXTS.items():
        assert en.strip() and zh.strip(), key
        # the same placeholders in both languages
        assert set(re.findall(r"{(\w+)}", en)) == set(re.findall(r"{(\w+)}", zh)), key
        found = glossary.untranslated(re.sub(r"`[^`]*`|{\w+}", " ", zh))
        if found:
            bad[key] = found
    assert not bad, bad


# --------------------------------------------------------------------------- rendering
def _report_inputs() -> reports.ReportInputs:
    seg = pd.DataFrame({"dimension": ["region", "region", "age_band"],
                        "segment": ["north", "south", "<30"], "n": [500, 400, 300],
                        "n_pos": [20, 15, 9], "auc": [0.8, 0.75, np.nan],
                        "base_rate": [0.04, 0.037, 0.03], "mean_pred": [0.041, 0.035, 0.03]})
    imp = pd.DataFrame({"feature": ["dpd_current", "bureau_score", "region"],
                        "mean_abs_shap": [0.5, 0.3, 0.1]})
    return reports.ReportInputs(
        model="default_risk", version="3",
        metadata={"label": "default_12m", "splits": {"train": ["2024-01-31"],
                                                     "valid": ["2024-04-30"],
                                                     "oot": ["2024-07-31", "2024-08-31"]},
                  "n_rows": {"train": 1000, "valid": 300, "oot": 600},
                  "monotone": {"dpd_current": 1}, "params": {"num_leaves": 31}},
        run_id="abc123", metrics={"oot_auc": 0.81, "baseline_oot_auc": 0.83, "oot_ece": 0.2,
                                  "oot_auc_spread_region": 0.08},
        tags={"data_content_hash": "h" * 16, "git_commit": "<script>x</script>"},
        tables={"segments_oot": seg, "shap_importance": imp},
        manifest={"content_hash": "h" * 16, "generator": "postloan.simulation",
                  "tables": {"loans": {"rows": 10}}})


def _pack(scorecard=None) -> reports.PackInputs:
    y, p = _scores(4000, 3)
    as_of = ["2024-07-31"] * 2000 + ["2024-08-31"] * 2000
    monthly = reports.monthly_performance(y, p, as_of, n_boot=20)
    psi_t = pd.DataFrame({"as_of": ["2024-07-31", "2024-08-31"], "psi": [0.02, 0.3],
                          "status": ["stable", "shifted"]})
    csi = pd.DataFrame({"feature": ["dpd_current"] * 2, "as_of": ["2024-07-31", "2024-08-31"],
                        "psi": [0.01, 0.12], "status": ["stable", "watch"]})
    stress = pd.DataFrame({"scenario": ["severe"], "description": ["x"], "mean_before": [0.03],
                           "mean_after": [0.05], "change": [0.66], "p90_after": [0.1],
                           "share_up": [0.2]})
    return reports.PackInputs(report=_report_inputs(), monthly=monthly, oot_y=y.astype(int),
                              oot_p=p, score_psi=psi_t, csi=csi, stress=stress,
                              stress_as_of="2024-08-31", scorecard=scorecard,
                              training_config={"gate.max_ece": 0.05, "seed": 42},
                              reference_dates=["2024-01-31"])


def _structure(text: str) -> dict:
    return {"sections": re.findall(r'<section id="([\w-]+)"', text),
            "tables": text.count("<table"), "figures": text.count("<figure"),
            "headings": len(re.findall(r"<h[123]", text))}


def _assert_offline(text: str) -> None:
    from postloan.reporting.html import CSP

    assert CSP in text
    assert not re.search(r"https?://", text)
    assert "<script" not in text and "<link" not in text and "url(" not in text


def test_pack_has_every_section_table_and_figure_in_both_languages():
    card = (pd.DataFrame({"feature": ["dpd_current", "dpd_current"], "bin": ["<1", ">=1"],
                          "woe": [-0.3, 1.2], "points": [40, 5]}),
            {"scorecard_auc": 0.79, "logreg_auc": 0.8})
    p = _pack(card)
    en, zh = reports.render_pack(p, "en"), reports.render_pack(p, "zh")
    assert _structure(en) == _structure(zh)
    assert _structure(en)["sections"] == list(reports.MODEL_SECTIONS)
    assert _structure(en)["figures"] >= 7  # monthly, ROC, KS, lift, calibration, PSI, SHAP
    for text in (en, zh):
        _assert_offline(text)
        assert "&lt;script&gt;x&lt;/script&gt;" in text  # escaped
        assert "<code>dpd_current</code>" in text and "0.790" in text  # the scorecard row
    assert '<html lang="zh-CN">' in zh and "Noto Sans CJK SC" in zh
    assert glossary.untranslated(glossary.visible_text(zh)) == []
    assert "跨时间表现（逐月）" in zh and "签批" in zh and "评分卡分值表" in zh
    # findings computed from the numbers: the shifted month, the logistic challenger at
    # least as good, the ECE over the gate's bound, the segment spread, the stress
    assert "2024-08-31: score PSI 0.300 (shifted)" in en
    assert "logistic regression reaches AUC 0.830" in en
    assert "exceeds the gate&#x27;s bound 0.05" in en
    assert "AUC spread 0.080" in en and "mean score rises 66%" in en
    assert "<code>dpd_current</code>: CSI 0.120" in en


def test_pack_without_a_scorecard_says_so_in_both_languages():
    p = _pack(None)
    en, zh = reports.render_pack(p, "en"), reports.render_pack(p, "zh")
    assert "Scorecard not trained" in en and "No scorecard challenger was trained" in en
    assert "评分卡未训练" in zh
    assert glossary.untranslated(glossary.visible_text(zh)) == []


def test_pack_rejects_an_unknown_language():
    with pytest.raises(Exception, match="unknown language 'fr'"):
        reports.render_pack(_pack(), "fr")


def test_decision_pack_in_both_languages():
    import yaml

    from postloan.config_files import shipped_text
    uplift = pd.DataFrame({"action": ["retention_offer"] * 2,
                           "outcome": ["churn_6m", "default_12m"], "version": ["2", "2"],
                           "learner": ["risk", "risk"], "odds_ratio": [0.7, 1.0],
                           "odds_ratio_lo": [0.55, 0.8], "odds_ratio_hi": [0.9, 1.25],
                           "qini": [0.02, 0.001], "qini_se": [0.005, 0.004],
                           "auuc": [0.1, 0.0]})
    replay = pd.DataFrame({"policy": ["learned", "pd_only"], "net_value": [1200.0, 800.0]})
    gates = pd.DataFrame({"action": ["retention_offer"], "decision_basis": ["constants"],
                          "difference": [118.1], "se": [1242.1],
                          "reason": ["learned effects not shown to decide better"],
                          "reason_zh": ["未能证明按学习所得效应决策优于策略常数"]})
    d = reports.DecisionInputs(uplift=uplift, replay=replay, replay_as_of="2025-06-30",
                               strategy=yaml.safe_load(shipped_text("config/strategy.yaml")),
                               gates=gates)
    en, zh = reports.render_decision_pack(d, "en"), reports.render_decision_pack(d, "zh")
    # the decision gate's verdict per action, in the reader's language
    assert "not shown to decide better" in en and "未能证明按学习所得效应决策优于策略常数" in zh
    assert "Decision gate" in en and "决策闸门" in zh
    assert _structure(en) == _structure(zh)
    assert _structure(en)["sections"] == list(reports.DECISION_SECTIONS)
    assert "0.700 [0.550, 0.900]" in en and "挽留优惠" in zh and "服务补救回访" in zh
    assert "test_pressure_rule_in_the_batch_and_early_warning_response" in en
    assert "45%" in en  # the pressure rule's threshold, from strategy.yaml
    # the default outcome's Qini is within noise: an open finding
    assert "0.0010 ± 0.0040" in en and "0.0200" not in en.split("findings")[-1]
    assert glossary.untranslated(glossary.visible_text(zh)) == []
    empty = reports.render_decision_pack(reports.DecisionInputs(), "zh")
    assert "未注册增量效应模型" in empty and "postloan evaluate-policy" in empty


def _content() -> dict:
    feats = {"dpd_current": 1.2, "bureau_score": 0.4, "region": -0.1, "age": 0.05}
    score = {"probability": 0.3, "version": "1", "base_value": -3.0, "raw_score": -1.45,
             "contributions": feats,
             "values": {"dpd_current": 45.0, "bureau_score": 520.0, "region": 0.0, "age": None},
             "reasons": {"up": [{"feature": "dpd_current", "contribution": 1.2,
                                 "text_en": "45 days past due now", "text_zh": "当前逾期45天"}],
                         "down": []}}
    return {"customer_id": 7, "as_of": "2025-06-30",
            "scores": {"default_risk": score, "churn": {**score, "probability": 0.1}},
            "signals": {"en": ["past due (45 days)"], "zh": ["还款已逾期（45天）"]},
            "decision": {"warning_level": "orange", "recommended_action": "restructuring_offer",
                         "net_benefit": 752.5, "decision_basis": "constants",
                         "pressure_rule": "", "unknown_field": 3.0,
                         "actions": {"restructuring_offer": {"basis": "constants",
                                                             "net_benefit": 752.5},
                                     "payment_reminder": {"basis": "learned_uplift",
                                                          "net_benefit": None}},
                         "action_reasons": ["risk: ..."],
                         "action_reasons_zh": ["风险：……"]},
            "history": [{"as_of": f"2025-0{m}-28", "pd_12m": 0.05 * m, "p_churn_6m": 0.1}
                        for m in range(1, 7)]}


def test_customer_page_in_both_languages():
    en = render_customer_page(_content(), "en")
    zh = render_customer_page(_content(), "zh")
    assert _structure(en) == _structure(zh)
    assert _structure(en)["figures"] == 3  # two waterfalls and the history
    assert "restructuring / flexible-repayment offer" in en and "重组/灵活还款方案" in zh
    assert "橙色" in zh and "752.50" in zh and "<code>unknown_field</code>" in zh
    assert "还款提醒" in zh and "payment reminder" in en  # each action's numbers, a table
    assert "当前逾期45天" in zh and "45 days past due now" in en
    assert glossary.untranslated(glossary.visible_text(zh)) == []
    _assert_offline(zh)


def test_customer_tables_keep_what_the_snapshot_needs(small_tables):
    from postloan.data.snapshot import build_snapshot

    dates = np.sort(small_tables["repayments"]["statement_date"].unique())
    at = pd.Timestamp(dates[20])
    full = build_snapshot(small_tables, at, with_labels=False)
    cid = int(full["customer_id"].iloc[len(full) // 2])
    one = build_snapshot(customer_tables(small_tables, cid), at, with_labels=False)
    pd.testing.assert_frame_equal(
        one.reset_index(drop=True),
        full[full["customer_id"] == cid].reset_index(drop=True), check_dtype=False)


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def packs(trained, tmp_path_factory):  # noqa: F811 - the imported fixture
    from pipelines.report import gather_pack, run_pack

    out = tmp_path_factory.mktemp("packs")
    p = gather_pack("default_risk", tracking_uri=trained["uri"], book=trained["book"],
                    models_dir=trained["root"] / "models")
    paths = {lang: run_pack("default_risk", lang, out=out / f"pack_{lang}.html", inputs=p)[0]
             for lang in ("en", "zh")}
    return {"inputs": p, "paths": paths, "out": out}


@integration
def test_pack_end_to_end_month_by_month(packs):
    p = packs["inputs"]
    oot = p.report.metadata["splits"]["oot"]
    assert list(p.monthly["as_of"]) == oot
    assert p.monthly["oracle_auc"].notna().all()  # the small book is simulated
    assert set(p.score_psi["as_of"]) >= set(oot) and not p.csi.empty
    assert list(p.stress["scenario"]) == ["mild", "severe"]
    assert p.stress.set_index("scenario").loc["severe", "change"] > 0
    zh = packs["paths"]["zh"].read_text(encoding="utf-8")
    en = packs["paths"]["en"].read_text(encoding="utf-8")
    assert _structure(en) == _structure(zh)
    assert glossary.untranslated(glossary.visible_text(zh)) == []


_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")


def _devtools_fonts(chromium_path: str, page: Path, tmp: Path) -> list[dict]:
    """Each element with own text on the page: its text and the platform fonts Chromium
    drew it with (CSS.getPlatformFontsForNode)."""
    import websocket

    proc = subprocess.Popen(
        [chromium_path, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'devtools'}",
         "--remote-debugging-port=0", "--window-size=1280,2000", page.as_uri()],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = int(m.group(1)) if m else None
        assert port, "Chromium did not open its DevTools port"
        targets = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        ids = iter(range(1, 10**6))

        def call(method: str, **params) -> dict:
            i = next(ids)
            ws.send(json.dumps({"id": i, "method": method, "params": params}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("id") == i:
                    assert "error" not in msg, msg
                    return msg["result"]

        call("DOM.enable")
        call("CSS.enable")
        for _ in range(150):  # wait for the load (fonts resolve at layout)
            state = call("Runtime.evaluate", expression="document.readyState")
            if state["result"]["value"] == "complete":
                break
            time.sleep(0.2)
        doc = call("DOM.getDocument", depth=-1)
        out = []

        def walk(node: dict) -> None:
            own = "".join(c.get("nodeValue", "") for c in node.get("children", [])
                          if c.get("nodeType") == 3).strip()
            if own and node.get("nodeName") not in ("STYLE", "TITLE", "SCRIPT"):
                fonts = call("CSS.getPlatformFontsForNode", nodeId=node["nodeId"])["fonts"]
                out.append({"text": own, "fonts": fonts})
            for c in node.get("children", []):
                walk(c)

        walk(doc["root"])
        ws.close()
        return out
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _font_file(postscript: str, family: str) -> str | None:
    r = subprocess.run(["fc-match", "-f", "%{file}", f"{family}:postscriptname={postscript}"],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip() or None


def _missing_glyphs(nodes: list[dict]) -> dict[str, list[str]]:
    """Characters of each element that none of the fonts Chromium used for it can draw
    (looked up in the fonts' own character maps, fontTools)."""
    from fontTools.ttLib import TTCollection, TTFont

    cmaps: dict[tuple[str, str], set[int]] = {}

    def cmap(font: dict) -> set[int]:
        key = (font["postScriptName"], font["familyName"])
        if key not in cmaps:
            path = _font_file(*key)
            codes: set[int] = set()
            if path:
                fonts = (TTCollection(path).fonts if path.endswith(".ttc")
                         else [TTFont(path, lazy=True)])
                for f in fonts:
                    names = {n.toUnicode() for n in f["name"].names if n.nameID == 6}
                    if key[0] in names or len(fonts) == 1:
                        codes |= set(f.getBestCmap() or {})
            cmaps[key] = codes
        return cmaps[key]

    missing: dict[str, list[str]] = {}
    for node in nodes:
        have: set[int] = set()
        for f in node["fonts"]:
            have |= cmap(f)
        lost = sorted({ch for ch in node["text"] if not ch.isspace() and ord(ch) not in have})
        if lost:
            missing[node["text"][:40]] = lost
    return missing


@integration
def test_chinese_pack_renders_every_glyph_in_headless_chromium(packs, chromium, tmp_path):  # noqa: F811, E501
    nodes = _devtools_fonts(chromium, packs["paths"]["zh"], tmp_path)
    cjk_nodes = [n for n in nodes if _CJK.search(n["text"])]
    assert len(cjk_nodes) > 50  # headings, table cells, paragraphs in Chinese
    assert _missing_glyphs(nodes) == {}
    used = {f["familyName"] for n in cjk_nodes for f in n["fonts"]}
    assert any("CJK" in f for f in used), used
    # The check can fail: characters no installed font has (private use area) are found.
    probe = tmp_path / "probe.html"
    probe.write_text('<!DOCTYPE html><html><body><p>\ue000\ue001 测试</p></body></html>',
                     encoding="utf-8")
    lost = _missing_glyphs(_devtools_fonts(chromium, probe, tmp_path / "p"))
    assert lost and any("\ue000" in v for v in lost.values())


@integration
def test_pdf_is_printed_and_checked_page_by_page(packs, chromium, tmp_path):  # noqa: F811
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) missing: make chromium installs it")
    from matplotlib.image import imread

    pdf = reports.html_to_pdf(packs["paths"]["zh"], tmp_path / "pack_zh.pdf", chromium)
    assert pdf.read_bytes().startswith(b"%PDF")
    # The Chinese text is in the PDF as text (Chromium embeds its fonts as Type 3 with
    # Unicode maps): the headings come back out.
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                          text=True, timeout=120).stdout
    for heading in ("跨时间表现（逐月）", "挑战者模型对比", "签批"):
        assert heading in text, heading
    r = subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 5  # a real document, not one clipped screen
    for png in pages:
        assert png.read_bytes().startswith(PNG_MAGIC)
        ink = imread(str(png))[..., :3].mean(axis=2) < 0.9
        assert ink.mean() > 0.003, f"{png.name} is blank"


@pytest.mark.integration  # trains, runs the CLI in a process or a cluster
def test_cli_refuses_an_unknown_language_with_exit_2(tmp_path):
    from tests.pipelines.test_cli import run

    r = run("report", "--model", "default_risk", "--lang", "fr", cwd=tmp_path)
    assert r.returncode == 2 and "unknown language 'fr'" in r.stderr
    assert "Traceback" not in r.stderr
    assert not list(tmp_path.rglob("*.html"))  # nothing half-written


def test_figures_speak_the_language_they_are_built_in():
    from postloan.reporting import figures as plots

    y, p = _scores(500, 0)
    with plots.language("zh"):
        zh = plots.roc_figure(y, p)
        cjk = plots.cjk_font_families()
        png = plots.figure_png(plots.calibration_figure(y, p))
    en = plots.roc_figure(y, p)
    assert zh.axes[0].get_xlabel() == plots.PLOT_ZH[en.axes[0].get_xlabel()]
    assert en.axes[0].get_xlabel().startswith("False positive rate")
    assert png.startswith(PNG_MAGIC)
    if subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout.strip():
        assert cjk, "a CJK font is installed but matplotlib does not use it"


def test_every_handbook_rule_the_pack_lists_is_a_test_that_exists():
    """The decision pack names the test holding each rule: the name must be real."""
    from pathlib import Path

    from postloan.reporting.pack import HANDBOOK_RULES

    source = (Path(__file__).parents[1] / "decisions" / "test_handbook_rules.py").read_text(encoding="utf-8")
    named = [name for name, _, _ in HANDBOOK_RULES if name.startswith("test_")]
    assert named and all(f"def {name}(" in source for name in named), named
