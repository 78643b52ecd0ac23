"""The customer page end to end: the three champions trained on the small book (the
session's `trained` fixture), one customer's content and page in both languages."""

from __future__ import annotations

import json

import pytest

from postloan import glossary
from postloan.data.snapshot import build_snapshot
from postloan.errors import DataValidationError
from postloan.models.bundle import MODELS, ModelBundle
from postloan.reporting.customer import customer_content, render_customer_page


@pytest.fixture(scope="module")
def bundles(trained) -> dict[str, ModelBundle]:
    return {m: ModelBundle.load(trained["results"][m]["bundle"]) for m in MODELS}


def test_customer_content_and_page(bundles, small_tables):
    as_of = bundles["default_risk"].metadata["splits"]["oot"][-1]
    snap = build_snapshot(small_tables, as_of, with_labels=False)
    cid = int(snap.sort_values("dpd_current")["customer_id"].iloc[-1])  # in arrears
    c = customer_content(small_tables, cid, as_of, bundles)
    json.dumps(c)  # JSON-able as it is (the service's /explain can return it)
    row = snap[snap["customer_id"] == cid]
    for m in MODELS:
        s = c["scores"][m]
        assert s["probability"] == pytest.approx(float(bundles[m].predict(row)[0]))
        # the waterfall adds up: base value + contributions = the raw score
        assert s["base_value"] + sum(s["contributions"].values()) == pytest.approx(
            s["raw_score"])
    d = c["decision"]
    assert d["recommended_action"] and d["action_reasons"] and d["action_reasons_zh"]
    assert d["warning_level"] in ("green", "yellow", "orange", "red")
    assert c["signals"]["zh"]  # a customer in arrears fires signals
    assert 2 <= len(c["history"]) <= 12 and c["history"][-1]["as_of"] == as_of
    for lang in ("en", "zh"):
        page = render_customer_page(c, lang)
        assert page.count("<figure") == 4  # three waterfalls and the history
    zh = render_customer_page(c, "zh")
    assert glossary.untranslated(glossary.visible_text(zh)) == []
    # without a champion there is no decision, and the page says why
    part = customer_content(small_tables, cid, as_of, {"default_risk": bundles["default_risk"]})
    assert part["decision"] == {"missing_models": ["churn", "satisfaction"]}
    assert "无决策" in render_customer_page(part, "zh")
    with pytest.raises(DataValidationError, match="has no open loan"):
        customer_content(small_tables, 10**9, as_of, bundles)
