"""The one en/zh glossary: its file, its check, and the Chinese texts that must follow it.

The validation pack and the customer page are checked in tests/reporting/test_reports.py (they
need rendered pages); here: the glossary itself, the reason-code texts, the strategy
texts (config/strategy.yaml's Chinese strings and the Chinese decision reasons).
"""

from __future__ import annotations

import math

import pytest
import yaml

from postloan import glossary
from postloan.config_files import shipped_text
from postloan.data import schema as S
from postloan.data.features import FEATURE_NAMES
from postloan.errors import ConfigError
from postloan.models import explain


def test_the_domain_terms_of_the_issue_are_in_the_glossary():
    zh = {t.zh for t in glossary.load_glossary().terms.values()}
    for word in ("逾期", "违约概率", "流失", "满意度", "预警等级", "重组", "还款提醒", "挽留",
                 "服务补救回访"):
        assert word in zh, word
    assert glossary.term("churn", "zh") == "流失"
    assert glossary.term("churn", "en") == "churn"


def test_every_feature_has_a_definition_in_both_languages():
    for f in FEATURE_NAMES:
        for lang in glossary.LANGS:
            text = glossary.feature_definition(f, lang)
            assert text and text != f.replace("_", " "), (f, lang)


def test_untranslated_finds_english_terms_and_skips_identifiers_and_kept_words():
    text = ("客户PD为12%，DPD 30，overdue。Service-Recovery  call 已安排。"
            "<code>default_risk</code> dpd_current AUC KS Gini PSI")
    found = glossary.untranslated(glossary.visible_text(text))
    assert found[:3] == ["PD", "DPD", "overdue"]
    assert any(f.lower().startswith("service") for f in found)
    assert glossary.untranslated("违约概率12%，逾期30天，服务补救回访。AUC 0.81，PSI 0.02") == []
    # identifiers (snake_case, inside <code>) and lower-case "pd" in a name are not terms
    assert glossary.untranslated(glossary.visible_text(
        "<code>region</code> p_default default_risk max_dpd_3m")) == []


def test_bad_term_and_language_are_config_errors():
    with pytest.raises(ConfigError, match="no term 'nope'"):
        glossary.term("nope", "zh")
    with pytest.raises(ConfigError, match="unknown language 'fr'"):
        glossary.check_lang("fr")


def _sample_value(feature: str) -> float:
    if feature in S.CATEGORY_VOCABULARIES:
        return 0.0
    return 0.25


def test_reason_code_texts_in_chinese_use_the_glossary():
    table = explain.reason_table()
    bad = {}
    for section, entries in table.items():
        model = "default_risk" if section == "base" else section
        for feature in entries:
            for v in (_sample_value(feature), math.nan):
                text = explain.reason_text(model, feature, v, "zh")
                found = glossary.untranslated(text)
                if found:
                    bad[(section, feature)] = (text, found)
    assert not bad, bad


def _zh_strings(node: object, path: str = "") -> list[tuple[str, str]]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _zh_strings(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _zh_strings(v, f"{path}[{i}]")
    elif isinstance(node, str) and path.rsplit(".", 1)[-1] in ("zh", "text_zh"):
        out.append((path, node))
    return out


def test_strategy_config_chinese_strings_use_the_glossary():
    cfg = yaml.safe_load(shipped_text("config/strategy.yaml"))
    strings = _zh_strings(cfg)
    assert len(strings) > 10  # the responses, segments, actions and signals
    bad = {p: (s, glossary.untranslated(s)) for p, s in strings if glossary.untranslated(s)}
    assert not bad, bad


def test_decision_reasons_in_chinese_use_the_glossary(small_tables):
    import numpy as np
    import pandas as pd
    from tests.decisions.test_strategy import fake_scores

    from postloan.data.snapshot import build_snapshot
    from postloan.decisions import strategy

    dates = np.sort(small_tables["repayments"]["statement_date"].unique())
    snap = build_snapshot(small_tables, pd.Timestamp(dates[20]), with_labels=False)
    d = strategy.apply_strategy(fake_scores(snap, 0), snap)
    bad = {}
    for col in [c for c in d.columns if c.endswith("_zh")]:
        for cell in d[col].astype(object):
            items = cell if isinstance(cell, (list, tuple)) else [cell]
            for text in items:
                found = glossary.untranslated(str(text))
                if found:
                    bad.setdefault(col, (str(text), found))
    assert not bad, bad
