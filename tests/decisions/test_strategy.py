"""Early warning and prioritisation (postloan.decisions.strategy): rules, explainability, the queue."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml

from postloan.data.snapshot import NUMERIC_FIELDS, build_snapshot
from postloan.decisions import strategy as st
from postloan.errors import ConfigError, DataValidationError


@pytest.fixture(scope="module")
def cfg() -> st.StrategyConfig:
    return st.load_strategy_config()


@pytest.fixture(scope="module")
def raw_cfg() -> dict:
    text = resources.files("postloan").joinpath("config/strategy.yaml").read_text("utf-8")
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def snapshot(small_tables) -> pd.DataFrame:
    dates = np.sort(small_tables["repayments"]["statement_date"].unique())
    return build_snapshot(small_tables, pd.Timestamp(dates[20]), with_labels=False)


def fake_scores(snap: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Scores that depend on the snapshot (so rules and scores agree a little), plus noise."""
    rng = np.random.default_rng(seed)
    n = len(snap)
    dpd = snap["dpd_current"].to_numpy(dtype="float64")
    logit = -4.0 + 0.06 * dpd + rng.normal(0.0, 1.5, n)
    return pd.DataFrame({
        "customer_id": snap["customer_id"].to_numpy(),
        "as_of": snap["as_of"].to_numpy(),
        "pd_12m": 1.0 / (1.0 + np.exp(-logit)),
        "p_churn_6m": rng.beta(1.0, 6.0, n),
        "p_dissatisfied_3m": rng.beta(1.2, 5.0, n),
    })


def base_rows(n: int, **cols) -> pd.DataFrame:
    """Snapshot-like rows: every numeric field NaN unless given, a plain consumer loan."""
    df = pd.DataFrame({f: np.full(n, np.nan) for f in NUMERIC_FIELDS})
    df.insert(0, "customer_id", np.arange(1, n + 1))
    df["main_product"] = "consumer"
    df["total_balance"] = 10_000.0
    df["secured_share"] = 0.0
    df["weighted_rate"] = 12.0
    df["min_remaining_months"] = 24.0
    df["dpd_current"] = 0.0
    for k, v in cols.items():
        df[k] = v
    return df


def scores_for(rows: pd.DataFrame, pd_12m, p_churn=0.05, p_dis=0.05) -> pd.DataFrame:
    n = len(rows)
    return pd.DataFrame({
        "customer_id": rows["customer_id"].to_numpy(),
        "pd_12m": np.broadcast_to(np.asarray(pd_12m, dtype="float64"), n).copy(),
        "p_churn_6m": np.broadcast_to(np.asarray(p_churn, dtype="float64"), n).copy(),
        "p_dissatisfied_3m": np.broadcast_to(np.asarray(p_dis, dtype="float64"), n).copy(),
    })


# --------------------------------------------------------------------------- grades, EL
def test_default_config_is_valid(cfg):
    assert cfg.grades == ["A", "B", "C", "D", "E"]
    assert {s.field for s in cfg.signals} <= st.SIGNAL_FIELDS
    assert set(cfg.lgd) == {"consumer", "mortgage", "card", "sme"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grades_monotone_in_pd(cfg, seed):
    rng = np.random.default_rng(seed)
    edges = [b.pd_min for b in cfg.risk_grades] + [1.0]
    p = np.sort(np.concatenate([rng.uniform(0, 1, 500), rng.beta(0.3, 8, 500), edges,
                                np.nextafter(np.array(edges[1:]), 0.0)]))
    codes = pd.Series(st.risk_grade(p, cfg)).map({g: i for i, g in enumerate(cfg.grades)})
    assert codes.notna().all()
    assert codes.is_monotonic_increasing
    assert codes.iloc[0] == 0 and codes.iloc[-1] == len(cfg.grades) - 1


def test_grade_band_edges_are_lower_inclusive(cfg):
    p = [0.0, np.nextafter(0.01, 0.0), 0.01, 0.03, 0.10, 0.2999, 0.30, 1.0]
    assert list(st.risk_grade(p, cfg)) == ["A", "A", "B", "C", "D", "D", "E", "E"]


def test_expected_loss_arithmetic(cfg):
    rows = pd.DataFrame({
        "main_product": ["mortgage", "consumer", "card", "sme", "sme"],
        "secured_share": [0.8, 0.0, 0.0, 1.0, np.nan],
        "total_balance": [100_000.0, 5_000.0, 2_000.0, 50_000.0, 40_000.0],
        "pd_12m": [0.05, 0.2, 0.5, 0.1, 0.3],
    })
    out = st.expected_loss(rows, cfg)
    for i, r in rows.iterrows():
        lgd = cfg.lgd[r.main_product]
        share = 0.0 if math.isnan(r.secured_share) else r.secured_share
        want_lgd = share * lgd.secured + (1 - share) * lgd.unsecured
        assert out.loc[i, "ead"] == r.total_balance
        assert out.loc[i, "lgd"] == pytest.approx(want_lgd, rel=1e-12)
        assert out.loc[i, "expected_loss"] == pytest.approx(
            r.pd_12m * want_lgd * r.total_balance, rel=1e-12)
    # The documented defaults: mortgage 0.8 secured = 0.8 * 0.15 + 0.2 * 0.45 = 0.21.
    assert out.loc[0, "expected_loss"] == pytest.approx(0.05 * 0.21 * 100_000, rel=1e-12)


def test_unknown_product_is_refused(cfg):
    rows = pd.DataFrame({"main_product": ["boat"], "secured_share": [0.0],
                         "total_balance": [1.0], "pd_12m": [0.1]})
    with pytest.raises(DataValidationError, match="main_product"):
        st.expected_loss(rows, cfg)


def test_a_lender_configures_only_the_products_it_lends(cfg):
    """A lender without cards or SME loans (a declared product subset) gives only its own
    products' LGD; a product outside the table is refused when scored, by name."""
    d = cfg.model_dump()
    d["lgd"] = {"consumer": d["lgd"]["consumer"], "mortgage": d["lgd"]["mortgage"]}
    own = st.StrategyConfig.model_validate(d)
    rows = pd.DataFrame({"main_product": ["consumer", "mortgage"], "secured_share": [0.0, 1.0],
                         "total_balance": [1000.0, 1000.0], "pd_12m": [0.1, 0.1]})
    assert st.expected_loss(rows, own)["lgd"].tolist() == pytest.approx(
        [own.lgd["consumer"].unsecured, own.lgd["mortgage"].secured])
    with pytest.raises(DataValidationError, match=r"main_product.*\['consumer', 'mortgage'\]"):
        st.expected_loss(rows.assign(main_product=["consumer", "card"]), own)
    d["lgd"]["boat"] = d["lgd"]["consumer"]
    with pytest.raises(Exception, match="unknown product"):
        st.StrategyConfig.model_validate(d)


# --------------------------------------------------------------------------- signals
SIGNAL_IDS = [s.id for s in st.load_strategy_config().signals]


@pytest.mark.parametrize("sid", SIGNAL_IDS)
def test_each_signal_fires_exactly_at_threshold(cfg, sid):
    sig = next(s for s in cfg.signals if s.id == sid)
    thr = sig.threshold
    away = -np.inf if sig.op in (">=", ">") else np.inf  # the side that must not fire
    past = thr + (1.0 if sig.op in (">=", ">") else -1.0)
    values = [thr, np.nextafter(thr, away), np.nan, past]
    frame = pd.DataFrame({f: np.full(4, np.nan) for f in st.SIGNAL_FIELDS})
    frame[sig.field] = values
    fired = st.fire_signals(frame, cfg)
    assert list(fired[sid]) == [sig.op in (">=", "<="), False, False, True]
    # NaN fields never fire: the row where every field is NaN fires nothing.
    assert not fired.iloc[2].any()


def test_strict_operators(raw_cfg, tmp_path):
    data = dict(raw_cfg)
    data["signals"] = [
        {"id": "gt", "field": "dpd_current", "op": ">", "threshold": 5, "severity": 1,
         "text_en": "a", "text_zh": "a"},
        {"id": "lt", "field": "paid_ratio_3m", "op": "<", "threshold": 0.5, "severity": 1,
         "text_en": "b", "text_zh": "b"},
    ]
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    c = st.load_strategy_config(p)
    frame = pd.DataFrame({"dpd_current": [5.0, 6.0, np.nan], "paid_ratio_3m": [0.5, 0.4, np.nan]})
    fired = st.fire_signals(frame, c)
    assert list(fired["gt"]) == [False, True, False]
    assert list(fired["lt"]) == [False, True, False]


def test_missing_signal_column_is_refused(cfg):
    with pytest.raises(DataValidationError, match="dpd_current"):
        st.fire_signals(pd.DataFrame({"x": [1.0]}), cfg)


# --------------------------------------------------------------------------- levels
def _level_from_output(row: pd.Series, cfg: st.StrategyConfig) -> str:
    """Recompute the level from the output columns and the config alone."""
    measures = {"pd_min": row.pd_12m, "el_min": row.expected_loss,
                "max_severity_min": row.max_severity, "severity_sum_min": row.severity_sum,
                "n_signals_min": row.n_signals}
    level = "green"
    for name in ("yellow", "orange", "red"):
        rule = cfg.warning_levels[name]
        if any(measures[c] >= getattr(rule, c) for c in measures
               if getattr(rule, c) is not None):
            level = name
    return level


@pytest.mark.parametrize("seed", [0, 1])
def test_levels_and_reasons_explainable_from_output(cfg, snapshot, seed):
    d = st.apply_strategy(fake_scores(snapshot, seed), snapshot, cfg)
    assert len(d) == len(snapshot)
    assert set(st.OUTPUT_COLUMNS) <= set(d.columns)
    assert set(d["warning_level"].astype(str)) >= {"green", "yellow", "orange", "red"}
    sev = {s.id: s.severity for s in cfg.signals}
    for row in d.itertuples(index=False):
        level = str(row.warning_level)
        assert level == _level_from_output(pd.Series(row._asdict()), cfg)
        assert row.n_signals == len(row.signals)
        assert row.severity_sum == sum(sev[s] for s in row.signals)
        assert len(row.warning_reasons) == len(row.warning_reasons_zh)
        for sid in row.signals:
            assert any(r.startswith(f"signal {sid} ") for r in row.warning_reasons)
        if level == "green":
            assert not any(r.startswith(("yellow:", "orange:", "red:"))
                           for r in row.warning_reasons)
            continue
        # The first reasons are the criteria that put the customer at this level.
        assert row.warning_reasons and row.warning_reasons[0].startswith(f"{level}:")
        if level == "red":
            rule = cfg.warning_levels["red"]
            texts = " | ".join(row.warning_reasons)
            if row.pd_12m >= rule.pd_min:
                assert "red: 12-month PD" in texts
            if row.expected_loss >= rule.el_min:
                assert "red: expected loss" in texts
            if row.max_severity >= rule.max_severity_min:
                assert f"red: a severity-{row.max_severity} signal fired" in texts
        assert str(row.response).startswith(cfg.responses[level].en)


def test_red_reasons_include_model_reasons_and_escalation(cfg):
    rows = base_rows(3, dpd_current=[75.0, 0.0, 0.0], max_dpd_3m=[75.0, 0.0, 0.0])
    sc = scores_for(rows, [0.6, 0.01, 0.35])
    shap = {"up": [{"feature": "dpd_current", "value": 75.0, "contribution": 1.2,
                    "text_en": "75 days past due now", "text_zh": "当前逾期75天"}],
            "down": []}
    sc["reasons_default_risk"] = [shap, None, '{"up": [{"text_en": "x", "text_zh": "y"}]}']
    d = st.apply_strategy(sc, rows, cfg).set_index("customer_id")
    red = d.loc[1]
    assert red.warning_level == "red"
    assert "dpd_bucket_60" in red.signals
    assert "red: a severity-3 signal fired (>= 3)" in red.warning_reasons
    assert "model: 75 days past due now" in red.warning_reasons
    assert "模型：当前逾期75天" in red.warning_reasons_zh
    assert red.warning_reasons[-1].startswith("escalated: 75 days past due")
    assert cfg.escalation.en in red.response
    assert d.loc[2, "warning_level"] == "green" and d.loc[2, "warning_reasons"] == []
    assert d.loc[3, "warning_level"] == "red" and "model: x" in d.loc[3, "warning_reasons"]
    assert cfg.escalation.en not in d.loc[3, "response"]  # red but not 60+ DPD


def test_warning_rank_is_severity_times_probability(cfg, snapshot):
    d = st.apply_strategy(fake_scores(snapshot, 3), snapshot, cfg)
    for _, g in d.groupby("warning_level", observed=True):
        g = g.sort_values("warning_rank")
        assert list(g["warning_rank"]) == list(range(1, len(g) + 1))
        assert g["warning_score"].is_monotonic_decreasing
    np.testing.assert_allclose(d["warning_score"], d["pd_12m"] * (1 + d["severity_sum"]))


# --------------------------------------------------------------------------- segments
def test_value_and_segments(cfg):
    hv = cfg.segmentation.high_value_min
    rows = base_rows(5, total_balance=[200_000.0, 1_000.0, 200_000.0, 1_000.0, 50_000.0],
                     weighted_rate=[12.0, 12.0, 12.0, 12.0, 20.0],
                     min_remaining_months=[60.0, 60.0, 60.0, 60.0, np.nan],
                     policy_rate=[3.5, 3.5, 3.5, 3.5, np.nan])
    sc = scores_for(rows, [0.005, 0.005, 0.5, 0.5, 0.02], p_churn=0.1)
    d = st.apply_strategy(sc, rows, cfg)
    assert list(d["segment"].astype(str)) == ["protect", "grow", "watch", "work_out", "protect"]
    assert d.loc[0, "customer_value"] >= hv > d.loc[1, "customer_value"]
    vc = cfg.value
    # Row 0: funding = policy 3.5 + spread; life capped at life_cap_months.
    want0 = (200_000 * (12.0 - 3.5 - vc.funding_spread_pct) / 100
             * min(60.0, vc.life_cap_months) / 12 * (1 - 0.005) * (1 - 0.1))
    assert d.loc[0, "customer_value"] == pytest.approx(want0, rel=1e-12)
    # Row 4: card-only (no maturity) uses card_life_months; no policy rate -> fixed funding.
    want4 = (50_000 * (20.0 - vc.funding_rate_pct) / 100
             * min(vc.card_life_months, vc.life_cap_months) / 12 * (1 - 0.02) * (1 - 0.1))
    assert d.loc[4, "customer_value"] == pytest.approx(want4, rel=1e-12)
    for seg, text in zip(d["segment"], d["segment_strategy"], strict=True):
        assert text == cfg.segments[seg].en


# --------------------------------------------------------------------------- queue
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_queue_respects_capacity_and_input_order(cfg, snapshot, seed):
    sc = fake_scores(snapshot, seed)
    d = st.apply_strategy(sc, snapshot, cfg)
    q = st.outreach_queue(d, 25)
    assert len(q) == 25
    assert list(q["queue_rank"]) == list(range(1, 26))
    assert (q["net_benefit"] > 0).all()
    assert q["net_benefit"].is_monotonic_decreasing
    assert q["customer_id"].is_unique
    # Nobody left out of the queue had a larger benefit.
    rest = d[~d["customer_id"].isin(q["customer_id"])]
    assert rest["net_benefit"].max() <= q["net_benefit"].min()
    assert all(len(r) >= 1 for r in q["action_reasons"])

    rng = np.random.default_rng(seed + 100)
    snap_shuf = snapshot.iloc[rng.permutation(len(snapshot))]
    sc_shuf = sc.iloc[rng.permutation(len(sc))]
    d2 = st.apply_strategy(sc_shuf, snap_shuf, cfg)
    pd.testing.assert_frame_equal(st.outreach_queue(d2, 25), q)
    # Decisions are per customer, whatever the row order.
    a = d.set_index("customer_id").sort_index()
    b = d2.set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(a.drop(columns="warning_rank"), b.drop(columns="warning_rank"))
    pd.testing.assert_series_equal(a["warning_rank"], b["warning_rank"])


def test_queue_ties_break_by_customer_id_and_capacity_larger_than_book(cfg):
    rows = base_rows(4)
    rows["customer_id"] = [40, 10, 30, 20]
    d = st.apply_strategy(scores_for(rows, 0.05, p_churn=0.2, p_dis=0.1), rows, cfg)
    assert d["net_benefit"].nunique() == 1
    q = st.outreach_queue(d, 100)
    assert list(q["customer_id"]) == [10, 20, 30, 40]
    assert list(st.outreach_queue(d, 2)["customer_id"]) == [10, 20]


def test_queue_capacity_from_config_and_invalid_capacity(cfg, snapshot):
    d = st.apply_strategy(fake_scores(snapshot, 0), snapshot, cfg)
    assert len(st.outreach_queue(d, cfg=cfg)) == min(cfg.outreach.capacity, len(d))
    for bad in (-3, 2.5, True):
        with pytest.raises(ConfigError, match="capacity"):
            st.outreach_queue(d, bad)
    assert st.outreach_queue(d, 0).empty


def test_customers_without_benefit_are_not_queued(cfg):
    rows = base_rows(2, weighted_rate=[1.0, 12.0])  # row 1: rate below funding, no margin
    d = st.apply_strategy(scores_for(rows, [0.0, 0.05], p_churn=0.1, p_dis=0.0), rows, cfg)
    assert d.loc[0, "recommended_action"] == st.NO_ACTION
    assert d.loc[0, "net_benefit"] == 0.0
    assert list(st.outreach_queue(d, 10)["customer_id"]) == [2]


def test_pressure_rule(cfg):
    pr = cfg.outreach.pressure_rule
    # Behind on payments (a customer who is paying gets no reminder at all).
    rows = base_rows(3, total_balance=30_000.0, dpd_current=5.0)
    high = pr.p_dissatisfied_min + 0.15
    # 1: moderate risk (orange), already dissatisfied -> service recovery, not risk contact.
    # 2: severe risk (PD above the severe threshold), dissatisfied -> still the risk contact.
    # 3: moderate risk, satisfied -> the risk contact.
    sc = scores_for(rows, [0.2, pr.severe_pd_min + 0.2, 0.2], p_dis=[high, high, 0.02])
    d = st.apply_strategy(sc, rows, cfg).set_index("customer_id")
    # Without the rule the reminder would be customer 1's best action.
    reminder = (d.loc[1, "expected_loss"] * cfg.outreach.risk_avertable_share
                - cfg.uplift.contact_cost["payment_reminder"])
    assert reminder > d.loc[1, "net_service_recovery_call"] > 0
    assert np.isnan(d.loc[1, "net_payment_reminder"])  # withheld
    assert d.loc[1, "warning_level"] == "orange"
    assert d.loc[1, "recommended_action"] == "service_recovery_call"
    assert d.loc[1, "pressure_rule"] == "withheld"
    assert d.loc[1, "net_benefit"] == d.loc[1, "net_service_recovery_call"]
    assert d.loc[1, "action_reasons"][0].startswith("pressure rule:")
    assert "withheld" in d.loc[1, "action_reasons"][0]

    assert d.loc[2, "warning_level"] == "red"
    assert d.loc[2, "recommended_action"] == "restructuring_offer"
    assert d.loc[2, "pressure_rule"] == "overridden"
    assert d.loc[2, "action_reasons"][0].startswith("pressure rule overridden")

    assert d.loc[3, "recommended_action"] == "payment_reminder"
    assert d.loc[3, "pressure_rule"] == ""
    # The reason quotes the numbers that decided: the constant, the probabilities, the
    # exposure and LGD, the money, the cost and the net benefit.
    why = d.loc[3, "action_reasons"][0]
    assert why.startswith("payment reminder (constants: a contact averts 25%")
    assert "P(default 12 m) 20.0% → 15.0%" in why
    assert f"net {d.loc[3, 'net_benefit']:,.0f}" in why
    assert "净收益" in d.loc[3, "action_reasons_zh"][0]


# --------------------------------------------------------------------------- one customer
def test_one_customer_at_a_time_matches_the_batch(cfg, snapshot):
    """The service scores one customer per request: alone, each gets its batch decision."""
    sc = fake_scores(snapshot, 7)
    reasons = {"up": [{"feature": "dpd_current", "text_en": "late now", "text_zh": "逾期"}],
               "down": []}
    for model in ("default_risk", "churn", "satisfaction"):
        sc[f"reasons_{model}"] = [reasons] * len(sc)
    batch = st.apply_strategy(sc, snapshot, cfg)
    # Every level and every action, then the first rows: realistic and covering.
    picks = {*batch.groupby("warning_level", observed=True).head(3).index,
             *batch.groupby("recommended_action", observed=True).head(3).index,
             *range(40)}
    rows = sorted(picks)
    assert set(batch.loc[rows, "warning_level"].astype(str)) == set(st.LEVELS)

    singles = [st.apply_strategy(sc.iloc[[i]], snapshot.iloc[[i]], cfg) for i in rows]
    alone = pd.concat(singles, ignore_index=True)
    assert (alone["warning_rank"] == 1).all()  # the rank is within the batch given
    pd.testing.assert_frame_equal(alone.drop(columns="warning_rank"),
                                  batch.loc[rows].drop(columns="warning_rank")
                                  .reset_index(drop=True),
                                  check_exact=True)


def test_decide_on_columns_equals_apply_strategy(cfg, snapshot):
    """The service's column path gives the frame path's decisions, column for column."""
    sc = fake_scores(snapshot, 11)
    reasons = {"up": [{"feature": "dpd_current", "text_en": "late now", "text_zh": "逾期"}],
               "down": []}
    sc["reasons_default_risk"] = [reasons] * len(sc)
    frame = st.apply_strategy(sc, snapshot, cfg)
    cols = st.decide({c: sc[c].to_numpy() if c != "reasons_default_risk" else sc[c].tolist()
                      for c in sc.columns},
                     {c: snapshot[c].to_numpy() for c in snapshot.columns}, cfg)
    assert list(cols) == list(frame.columns)
    for c in frame.columns:
        want = frame[c].astype(object).tolist() if frame[c].dtype == "category" else \
            frame[c].to_numpy().tolist()
        got = cols[c].tolist() if isinstance(cols[c], np.ndarray) else cols[c]
        if frame[c].dtype == "float64":  # NaN (an action not open) equals NaN
            np.testing.assert_array_equal(np.asarray(got, float), np.asarray(want, float), c)
            continue
        assert got == want, c


def test_decide_refuses_what_apply_strategy_refuses(cfg):
    rows = base_rows(2)
    snap = {c: rows[c].to_numpy() for c in rows.columns}
    sc = {c: v.to_numpy() for c, v in scores_for(rows, 0.1).items()}
    with pytest.raises(DataValidationError, match="pd_12m"):
        st.decide({**sc, "pd_12m": np.array([0.1, 1.5])}, snap, cfg)
    with pytest.raises(DataValidationError, match="p_churn_6m"):
        st.decide({k: v for k, v in sc.items() if k != "p_churn_6m"}, snap, cfg)
    with pytest.raises(DataValidationError, match="total_balance"):
        st.decide(sc, {**snap, "total_balance": np.array([1.0, np.nan])}, cfg)
    with pytest.raises(DataValidationError, match="duplicate"):
        st.decide(sc, {**snap, "customer_id": np.array([1, 1])}, cfg)


# --------------------------------------------------------------------------- joins, summary
def test_scores_without_customer_id_align_by_row_order(cfg, snapshot):
    sc = fake_scores(snapshot, 5)
    a = st.apply_strategy(sc, snapshot, cfg)
    b = st.apply_strategy(sc.drop(columns="customer_id"), snapshot, cfg)
    pd.testing.assert_frame_equal(a, b)


def test_bad_inputs_are_refused(cfg):
    rows = base_rows(2)
    sc = scores_for(rows, 0.1)
    with pytest.raises(DataValidationError, match="different customers"):
        st.apply_strategy(sc.assign(customer_id=[1, 99]), rows, cfg)
    with pytest.raises(DataValidationError, match="pd_12m"):
        st.apply_strategy(sc.assign(pd_12m=[0.1, 1.5]), rows, cfg)
    with pytest.raises(DataValidationError, match="p_churn_6m"):
        st.apply_strategy(sc.drop(columns="p_churn_6m"), rows, cfg)
    with pytest.raises(DataValidationError, match="duplicate"):
        st.apply_strategy(sc, pd.concat([rows, rows]), cfg)


def test_summarise(cfg, snapshot):
    d = st.apply_strategy(fake_scores(snapshot, 0), snapshot, cfg)
    s = st.summarise(d)
    assert list(s.loc[s.dimension == "warning_level", "name"]) == list(st.LEVELS)
    assert list(s.loc[s.dimension == "segment", "name"]) == list(st.SEGMENTS)
    for _, g in s.groupby("dimension"):
        assert g["n_customers"].sum() == len(d)
        assert g["expected_loss"].sum() == pytest.approx(d["expected_loss"].sum())
    red = d["warning_level"] == "red"
    assert s.set_index(["dimension", "name"]).loc[("warning_level", "red"),
                                                  "n_customers"] == red.sum()


# --------------------------------------------------------------------------- config errors
def _write(tmp_path, data) -> str:
    p = tmp_path / "strategy.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return p


def _mutated(raw_cfg: dict, edit) -> dict:
    data = yaml.safe_load(yaml.safe_dump(raw_cfg, allow_unicode=True))  # deep copy
    edit(data)
    return data


@pytest.mark.parametrize("edit, where, what", [
    (lambda d: d["signals"][0].update(field="shoe_size"), "signals.0.field",
     "unknown signal field 'shoe_size'"),
    (lambda d: d["signals"][1].update(op="=="), "signals.1.op", ""),
    (lambda d: d["signals"][2].update(severity=4), "signals.2.severity", ""),
    (lambda d: d["signals"][0].update(text_en="{amount} days"), "signals.0.text_en", "format"),
    (lambda d: d["lgd"]["card"].update(secured=-0.1), "lgd.card.secured", "greater than"),
    (lambda d: d["lgd"]["sme"].update(unsecured=1.2), "lgd.sme.unsecured", "less than"),
    (lambda d: d["lgd"].clear(), "lgd", "at least one product"),
    (lambda d: d["risk_grades"][2].update(pd_min=0.02), "risk_grades", "overlap"),
    (lambda d: d["risk_grades"][2].update(pd_min=0.05), "risk_grades", "gap"),
    (lambda d: d["risk_grades"][1].update(pd_max=0.01), "risk_grades", "increasing"),
    (lambda d: d["risk_grades"][-1].update(pd_max=0.9), "risk_grades", "must end"),
    (lambda d: d["warning_levels"].update(amber={"pd_min": 0.2}), "warning_levels",
     "unknown level name 'amber'"),
    (lambda d: d["segmentation"].update(high_risk_levels=["crimson"]),
     "segmentation.high_risk_levels.0", "unknown level name 'crimson'"),
    (lambda d: d["outreach"]["pressure_rule"].update(severe_levels=["purple"]),
     "outreach.pressure_rule.severe_levels.0", "unknown level name"),
    (lambda d: d["segmentation"].update(high_risk_grades=["F"]), "high_risk_grades",
     "unknown grade 'F'"),
    (lambda d: d["warning_levels"]["orange"].update(pd_min=0.5), "warning_levels.orange.pd_min",
     "looser"),
    (lambda d: d["outreach"].update(capacity=0), "outreach.capacity", "greater than"),
    (lambda d: d["outreach"].update(typo=1), "outreach.typo", "Extra inputs"),
    (lambda d: d["outreach"].update(capacity="200"), "outreach.capacity", ""),
])
def test_bad_config_is_refused_naming_the_field(raw_cfg, tmp_path, edit, where, what):
    path = _write(tmp_path, _mutated(raw_cfg, edit))
    with pytest.raises(ConfigError) as e:
        st.load_strategy_config(path)
    msg = str(e.value)
    assert where in msg
    assert what in msg
    assert str(path) in msg


def test_unreadable_config(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        st.load_strategy_config(tmp_path / "missing.yaml")
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        st.load_strategy_config(p)
