"""Data-quality expectations, the gate's checks and the injected feed faults (issue 14)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from postloan.data import quality as Q
from postloan.data import schema as S
from postloan.data.features import build_features
from postloan.data.quality import faults
from postloan.data.snapshot import build_snapshot, build_snapshots, data_range, month_end_dates
from postloan.errors import ConfigError, DataQualityError, DataValidationError
from postloan.models.bundle import MODELS
from postloan.models.training import load_train_config, resolve_splits
from postloan.simulation import SimulationConfig, simulate

CHECKED = "2025-06-30"  # the small book runs 2023-01 .. 2025-06


@pytest.fixture(scope="module")
def expectations(small_tables) -> Q.DataExpectations:
    dates = month_end_dates("2024-01-31", "2024-12-31")
    snaps = build_snapshots(small_tables, dates, with_labels=False)
    return Q.learn_expectations(small_tables, snaps, build_features(snaps), max_dates=6)


@pytest.fixture(scope="module")
def cfg() -> Q.DataQualityConfig:
    return Q.load_data_quality_config()


def _check(tables, expectations, cfg, as_of=CHECKED, accepted=()):
    snap = build_snapshot(tables, as_of, with_labels=False)
    return Q.check_book(tables, snap, expectations, cfg, build_features(snap), accepted)


# ---------------------------------------------------------------- configuration

def test_shipped_config_resolves_every_feed(cfg):
    assert data_range  # the small book's end is the default as-of of the faults
    for feed in Q.FEED_NAMES:
        limits = cfg.feed(feed)
        assert limits.completeness_hard <= limits.completeness_soft
    assert cfg.feed("bureau").max_delay_days == 45
    assert cfg.feed("activity").max_delay_days == cfg.defaults.max_delay_days


@pytest.mark.parametrize("text, words", [
    ("feeds: {telex: {}}\n", "unknown feed"),
    ("feeds: {bureau: {completeness_hard: 0.99, completeness_soft: 0.9}}\n", "completeness_hard"),
    ("defaults: {scale_soft: [0.1, 1.2]}\n", "scale_soft must lie within"),
    ("features: {null_share_increase: 2}\n", "null_share_increase"),
    ("surprise: 1\n", "surprise"),
    ("- a list\n", "mapping"),
])
def test_bad_config_names_the_field(tmp_path, text, words):
    p = tmp_path / "dq.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=words):
        Q.load_data_quality_config(p)


# ---------------------------------------------------------------- expectations

def test_expectations_are_json_and_round_trip(expectations):
    text = expectations.to_json()
    json.loads(text)  # strict JSON: allow_nan=False would have raised on NaN
    back = Q.DataExpectations.from_json(text)
    assert back == expectations
    assert set(back.feeds) == set(Q.FEED_NAMES)
    bureau = back.feeds["bureau"]
    # Quarterly pulls: nearly every active customer is pulled each quarter.
    assert bureau.completeness > 0.9
    assert 1_000 < bureau.scale["verified_monthly_income"] < 20_000
    assert back.feeds["activity"].scale["app_logins"] > 1
    f = back.features["bureau_score"]
    qs = [f.quantiles[str(q)] for q in Q.expectations.QUANTILES]
    assert qs == sorted(qs) and f.min <= qs[0] and qs[-1] <= f.max


def test_expectations_reject_foreign_json():
    with pytest.raises(DataValidationError, match="version"):
        Q.DataExpectations.from_dict({"version": 99})
    with pytest.raises(DataValidationError, match="malformed"):
        Q.DataExpectations.from_dict({"version": 1, "features": {}})
    with pytest.raises(DataValidationError, match="not JSON"):
        Q.DataExpectations.from_json("{")


def test_learning_needs_matching_frames(small_tables):
    snap = build_snapshot(small_tables, "2024-06-30", with_labels=False)
    with pytest.raises(DataValidationError, match="same rows"):
        Q.learn_expectations(small_tables, snap, build_features(snap).iloc[:10])


# ---------------------------------------------------------------- the gate on a clean book

@pytest.mark.parametrize("as_of", ["2025-03-31", "2025-05-31", CHECKED])
def test_clean_book_passes(small_tables, expectations, cfg, as_of):
    report = _check(small_tables, expectations, cfg, as_of)
    assert report.findings == [], report.render()


# ---------------------------------------------------------------- no false alarm (issue 20)

def _trained_expectations(tables) -> tuple[list[pd.Timestamp], Q.DataExpectations]:
    """Expectations learned as `postloan train` learns the default-risk champion's."""
    start, end = data_range(tables)
    train = resolve_splits(load_train_config().splits, MODELS["default_risk"], start,
                           end)["train"]
    snaps = build_snapshots(tables, train, with_labels=False)
    return train, Q.learn_expectations(tables, snaps, build_features(snaps))


@pytest.fixture(scope="module", params=["small book", "seed 11"])
def clean_book(request, small_tables):
    tables = (small_tables if request.param == "small book" else
              simulate(SimulationConfig(n_customers=2_000, n_months=36, seed=11)))
    return tables, *_trained_expectations(tables)


def test_clean_book_raises_no_finding_at_any_date(clean_book, cfg):
    """Not even a warning on an untouched book, from the first training date to its last
    month: macro series move and recency features age, and neither is a fault (benchmarks/
    clean_book_warnings.py runs the same at the demo's size on five seeds)."""
    tables, train, expectations = clean_book
    end = data_range(tables)[1]
    for d in pd.date_range(train[0], end, freq="ME")[::3].append(pd.DatetimeIndex([end])):
        report = _check(tables, expectations, cfg, d)
        assert report.findings == [], report.render()


def test_recency_features_age_with_the_book(expectations, cfg):
    last = pd.Timestamp(max(expectations.reference_dates))
    lo, hi = Q.feature_range("months_since_survey", expectations, cfg, last)
    later = last + pd.DateOffset(months=12)
    lo2, hi2 = Q.feature_range("months_since_survey", expectations, cfg, later)
    assert lo2 == lo and hi2 - hi == pytest.approx(12, abs=0.3)
    # Before the reference's end (back-testing) nothing ages; other features never do.
    assert Q.feature_range("months_since_survey", expectations, cfg, last - pd.Timedelta(
        days=90)) == (lo, hi)
    assert (Q.feature_range("bureau_score", expectations, cfg, later)
            == Q.feature_range("bureau_score", expectations, cfg, last))
    for macro in ("unemployment_rate", "unemployment_change_6m", "policy_rate"):
        assert Q.feature_range(macro, expectations, cfg, later) is None


def _with_macro(tables, change) -> dict:
    out = dict(tables)
    out["macro"] = change(tables["macro"].copy())
    return out


def _last_months(m: pd.DataFrame, k: int) -> pd.Series:
    return m["month_end"] > pd.Timestamp(CHECKED) - pd.DateOffset(months=k)


def _scale(col: str, factor: float, k: int):
    def change(m):
        m.loc[_last_months(m, k), col] = m.loc[_last_months(m, k), col] * factor
        return m
    return change


def _shift(col: str, points: float, k: int):
    def change(m):
        m.loc[_last_months(m, k), col] = m.loc[_last_months(m, k), col] + points
        return m
    return change


def _drop_one_month(m):
    region = sorted(m["region"].unique())[0]
    return m[~((m["month_end"] == pd.Timestamp("2025-04-30")) & (m["region"] == region))]


@pytest.mark.parametrize("change, rule", [
    (_drop_one_month, "macro.gaps"),
    (lambda m: m[m["month_end"] != pd.Timestamp("2025-03-31")], "macro.gaps"),  # all regions
    (_scale("unemployment_rate", 0.01, 2), "macro.unemployment_rate.plausibility"),  # a share
    (_scale("unemployment_rate", 0.0, 1), "macro.unemployment_rate.plausibility"),   # zeros
    (_scale("policy_rate", 100.0, 1), "macro.policy_rate.plausibility"),
    (_scale("policy_rate", 0.01, 1), "macro.policy_rate.plausibility"),  # a unit change
    (_shift("policy_rate", 8.0, 3), "macro.policy_rate.plausibility"),
])
def test_broken_macro_feed_is_hard(small_tables, expectations, cfg, change, rule):
    report = _check(_with_macro(small_tables, change), expectations, cfg)
    assert [f.rule for f in report.blocking] == [rule], report.render()
    f = report.blocking[0]
    assert f.feed == "macro" and f.examples and 0 < f.share <= 1


def test_a_macro_shock_is_no_data_fault(small_tables, expectations, cfg):
    """A recession (unemployment +4 points, rates +2 in a month) is the economy moving:
    no macro finding at all; `postloan monitor` reports it as a population shift."""
    shocked = _with_macro(small_tables, lambda m: _shift("policy_rate", 2.0, 3)(
        _shift("unemployment_rate", 4.0, 3)(m)))
    report = _check(shocked, expectations, cfg)
    assert not [f for f in report.findings if f.feed == "macro"
                or f.column in Q.MACRO_DRIVEN_FEATURES], report.render()


# ---------------------------------------------------------------- the three feed faults

def test_three_faults_stop_the_gate_naming_each_feed(small_tables, expectations, cfg):
    broken = faults.three_feed_faults(small_tables, CHECKED, seed=1)
    report = _check(broken, expectations, cfg)
    blocking = {f.rule: f for f in report.blocking}
    assert {"bureau.completeness", "bureau.verified_monthly_income.scale",
            "activity.app_logins.scale"} <= set(blocking), report.render()
    comp = blocking["bureau.completeness"]
    assert comp.feed == "bureau" and comp.check == "completeness"
    assert 0.3 < comp.share < 0.5  # 40% of the pull was lost
    scale = blocking["bureau.verified_monthly_income.scale"]
    assert scale.observed / scale.expected < 0.01  # thousands instead of units
    logins = blocking["activity.app_logins.scale"]
    assert logins.observed == 0 and logins.share > 0.9
    for f in report.findings:
        for ex in f.examples:
            assert not set(ex) & S.PII_COLUMNS
    assert blocking["bureau.verified_monthly_income.scale"].examples
    with pytest.raises(DataQualityError) as e:
        report.raise_if_blocking()
    assert e.value.exit_code == 4
    for rule in ("bureau.completeness", "bureau.verified_monthly_income.scale",
                 "activity.app_logins.scale"):
        assert rule in str(e.value)


@pytest.mark.parametrize("inject, rule", [
    (lambda t: faults.partial_bureau_pull(t, CHECKED, 0.6), "bureau.completeness"),
    (lambda t: faults.income_in_thousands(t, CHECKED), "bureau.verified_monthly_income.scale"),
    (lambda t: faults.zero_app_logins(t, CHECKED, 2), "activity.app_logins.scale"),
])
def test_each_fault_alone_names_only_its_rule(small_tables, expectations, cfg, inject, rule):
    report = _check(inject(small_tables), expectations, cfg)
    assert [f.rule for f in report.blocking] == [rule], report.render()


def test_faults_leave_the_input_untouched(small_tables):
    before = small_tables["bureau"]["verified_monthly_income"].sum()
    n_bureau = len(small_tables["bureau"])
    faults.three_feed_faults(small_tables, CHECKED)
    assert small_tables["bureau"]["verified_monthly_income"].sum() == before
    assert len(small_tables["bureau"]) == n_bureau


def test_accepted_rules_let_the_run_go_ahead(small_tables, expectations, cfg):
    broken = faults.three_feed_faults(small_tables, CHECKED)
    report = _check(broken, expectations, cfg, accepted=["bureau.*"])
    assert [f.rule for f in report.blocking] == ["activity.app_logins.scale"]
    assert {f.rule for f in report.accepted_findings} >= {
        "bureau.completeness", "bureau.verified_monthly_income.scale"}
    d = report.to_dict()
    assert d["accepted"] == ["bureau.*"] and not d["ok"]
    json.dumps(d, allow_nan=False)
    everything = _check(broken, expectations, cfg,
                        accepted=[f.rule for f in report.findings])
    everything.raise_if_blocking()  # nothing left to stop the run


def test_late_feed_is_a_hard_freshness_finding(small_tables, expectations, cfg):
    tables = dict(small_tables)
    act = small_tables["activity"]
    tables["activity"] = act[act["month_end"] <= pd.Timestamp("2025-03-31")]
    report = _check(tables, expectations, cfg)
    rules = {f.rule for f in report.blocking}
    assert "activity.freshness" in rules
    tables["activity"] = act.iloc[:0]
    report = _check(tables, expectations, cfg)
    assert "activity.freshness" in {f.rule for f in report.blocking}


# ---------------------------------------------------------------- records and features

def test_impossible_combination_is_hard_and_shows_the_row(small_tables, cfg):
    snap = build_snapshot(small_tables, CHECKED, with_labels=False)
    assert Q.check_snapshot(snap) == []  # a real snapshot never breaks them
    bad = snap.copy()
    bad.loc[3, "dpd_current"] = bad.loc[3, "max_dpd_3m"] + 30
    bad.loc[5, "app_logins_1m"] = bad.loc[5, "app_logins_3m"] + 2
    findings = {f.rule: f for f in Q.check_snapshot(bad)}
    assert set(findings) == {"snapshot.dpd_current_above_max_dpd_3m",
                             "snapshot.app_logins_1m_above_app_logins_3m"}
    f = findings["snapshot.dpd_current_above_max_dpd_3m"]
    assert f.severity == Q.HARD and f.n_affected == 1
    assert f.examples[0]["customer_id"] == int(bad.loc[3, "customer_id"])
    with pytest.raises(DataValidationError, match="missing field"):
        Q.check_snapshot(snap.drop(columns=["max_dpd_3m"]))


def test_feature_findings_are_soft(small_tables, expectations, cfg):
    snap = build_snapshot(small_tables, CHECKED, with_labels=False)
    X = build_features(snap)
    as_of = pd.Timestamp(CHECKED)
    assert Q.check_features(X, expectations, cfg, snap["customer_id"], as_of) == []
    X = X.copy()
    X.loc[X.index[: len(X) // 2], "bureau_score"] = np.nan
    X.loc[X.index[:200], "age"] = 250.0
    # A recency beyond its aged upper end is still out of range.
    X.loc[X.index[-100:], "months_since_survey"] = Q.feature_range(
        "months_since_survey", expectations, cfg, as_of)[1] + 6
    found = {f.rule: f for f in Q.check_features(X, expectations, cfg, snap["customer_id"],
                                                 as_of)}
    assert set(found) == {"features.bureau_score.null_share", "features.age.range",
                          "features.months_since_survey.range"}
    assert all(f.severity == Q.SOFT for f in found.values())
    assert found["features.age.range"].n_affected == 200
    assert found["features.age.range"].examples[0]["age"] == 250.0


def test_record_flags(small_tables, cfg):
    snap = build_snapshot(small_tables, CHECKED, with_labels=False).head(5).copy()
    now = pd.Timestamp(CHECKED) + pd.Timedelta(days=10)
    snap.loc[0, "as_of"] = now + pd.Timedelta(days=1)
    snap.loc[1, "dpd_current"] = snap.loc[1, "max_dpd_3m"] + 5
    snap.loc[2, "as_of"] = now - pd.Timedelta(days=400)
    snap.loc[3, ["bureau_score", "verified_monthly_income", "external_debt",
                 "bureau_score_avg_12m", "bureau_score_change_6m"]] = np.nan
    snap.loc[4, "bureau_score_avg_12m"] = np.nan
    hard, soft = Q.record_flags(snap, now, cfg)
    assert hard[0] == ["as_of_future"]
    assert hard[1] == ["dpd_current_above_max_dpd_3m"]
    assert hard[2] == hard[3] == hard[4] == []
    assert soft[2] == ["as_of_old"]
    assert soft[3] == ["missing_bureau"]
    assert soft[4] == ["stale_bureau"]
    assert soft[0] == soft[1] == []
    # The service passes columns as plain lists (None = missing): the same answer.
    records = snap.astype(object).where(snap.notna(), None).to_dict("list")
    assert Q.record_flags(records, now, cfg) == (hard, soft)


def test_gate_needs_one_date(small_tables, expectations, cfg):
    snaps = build_snapshots(small_tables, ["2025-05-31", CHECKED], with_labels=False)
    with pytest.raises(DataValidationError, match="one as-of date"):
        Q.check_book(small_tables, snaps, expectations, cfg)


def test_diagnose_puts_a_data_fault_before_decay_and_shift():
    from postloan.operations import monitoring as M

    cfg = M.load_monitoring_config()
    decayed = {"auc_change": -0.10, "auc_se": 0.01, "ece_now": 0.01, "n_pos": 500,
               "auc_now": 0.7, "auc_oot": 0.8}
    fine = {**decayed, "auc_change": -0.01}
    reasons = ["score PSI 0.300 (shifted)", "performance: AUC 0.700 (±0.010) vs OOT 0.800"]
    v, action, why = M.diagnose("re-validate", reasons, decayed, ["bureau.completeness"], cfg)
    assert v == "data fault" and "do not retrain" in action
    assert why == ["data-quality rule bureau.completeness"]
    v, action, why = M.diagnose("re-validate", reasons, decayed, [], cfg)
    assert v == "performance decay" and action.startswith("retrain")
    assert why == [reasons[1]]
    assert M.diagnose("re-validate", reasons[:1], fine, [], cfg)[0] == "population shift"
    assert M.diagnose("watch", reasons[:1], None, [], cfg)[0] == "population shift"
    assert M.diagnose("stable", [], fine, [], cfg) == ("stable", "none", [])
