"""The handbook's contact rules (domain.md ch. 6-7), each with a test that fails when broken,
and the queue by learned net benefit (postloan.decisions.strategy.uplift_queue)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from postloan.data.snapshot import NUMERIC_FIELDS, build_snapshot
from postloan.decisions import strategy as st

ACTIONS = st.ACTIONS[:4]


@pytest.fixture(scope="module")
def cfg() -> st.StrategyConfig:
    return st.load_strategy_config()


def rows(n: int, **cols) -> pd.DataFrame:
    df = pd.DataFrame({f: np.full(n, np.nan) for f in NUMERIC_FIELDS})
    df.insert(0, "customer_id", np.arange(1, n + 1))
    df["main_product"] = "consumer"
    df["total_balance"] = 30_000.0
    df["secured_share"] = 0.0
    df["weighted_rate"] = 12.0
    df["min_remaining_months"] = 24.0
    df["dpd_current"] = 0.0
    df["open_complaints"] = 0.0
    for k, v in cols.items():
        df[k] = v
    return df


def scores(r: pd.DataFrame, pd_12m, p_churn=0.05, p_dis=0.05) -> pd.DataFrame:
    n = len(r)
    return pd.DataFrame({"customer_id": r["customer_id"].to_numpy(),
                         **{c: np.broadcast_to(np.asarray(v, float), n).copy() for c, v in
                            (("pd_12m", pd_12m), ("p_churn_6m", p_churn),
                             ("p_dissatisfied_3m", p_dis))}})


def both(sc: pd.DataFrame, r: pd.DataFrame, cfg) -> list[pd.DataFrame]:
    """Batch decisions (apply_strategy) and what /early_warning returns (decide)."""
    batch = st.apply_strategy(sc, r, cfg).set_index("customer_id")
    online = pd.DataFrame(st.decide({c: sc[c].to_numpy() for c in sc.columns if c != "customer_id"},
                                    {c: r[c].to_numpy() for c in r.columns}, cfg))
    return [batch, online.set_index("customer_id")]


# ------------------------------------------------------------------ retention arithmetic
def test_retention_benefit_rises_with_the_churn_probability(cfg):
    p = np.linspace(0.01, 0.99, 41)
    r = rows(len(p))
    d = st.apply_strategy(scores(r, 0.01, p_churn=p), r, cfg)
    b = d.sort_values("customer_id")["net_retention_offer"].to_numpy() + \
        cfg.uplift.contact_cost["retention_offer"]
    assert (np.diff(b) > 0).all()  # the old value x (1 - p) x p peaked at p = 0.5
    assert b[-1] > 1.9 * b[len(p) // 2]


# ------------------------------------------------------------------ handbook rules
def test_an_open_complaint_never_triggers_a_payment_reminder(cfg):
    # Behind on payments, moderate risk: a reminder without the complaint.
    r = rows(2, dpd_current=10.0, open_complaints=[0.0, 1.0])
    for d in both(scores(r, 0.2), r, cfg):
        assert d.loc[1, "recommended_action"] == "payment_reminder"
        assert d.loc[2, "recommended_action"] == "service_recovery_call"


def test_regional_stress_and_a_maxed_card_watch_but_do_not_remind_payers(cfg):
    r = rows(3, unemployment_change_6m=2.0, card_utilisation=0.99,
             dpd_current=[0.0, 0.0, 5.0])
    r.loc[1, ["unemployment_change_6m", "card_utilisation"]] = [0.0, 0.2]  # customer 2: none
    for d in both(scores(r, [0.01, 0.01, 0.2]), r, cfg):
        sig = d.loc[1, "signals"]
        assert "regional_stress" in sig and "card_maxed" in sig
        # The signals raise the watch status ...
        assert d.loc[1, "warning_level"] != "green"
        assert st.LEVELS.index(d.loc[1, "warning_level"]) > st.LEVELS.index(
            d.loc[2, "warning_level"])
        # ... but a paying customer gets no reminder, and the response says watch.
        assert d.loc[1, "recommended_action"] != "payment_reminder"
        assert d.loc[1, "warning_level"] == "yellow"
        assert "only once a payment is missed" in str(d.loc[1, "response"])
        # Someone behind on payments with the same signals is reminded.
        assert d.loc[3, "recommended_action"] == "payment_reminder"


def test_pressure_rule_in_the_batch_and_early_warning_response(cfg):
    pr = cfg.outreach.pressure_rule
    r = rows(2, dpd_current=5.0)
    sc = scores(r, 0.2, p_dis=[pr.p_dissatisfied_min + 0.15, 0.02])
    for d in both(sc, r, cfg):
        assert d.loc[1, "recommended_action"] == "service_recovery_call"
        assert d.loc[1, "pressure_rule"] == "withheld"
        assert d.loc[2, "recommended_action"] == "payment_reminder"


def test_customers_in_difficulty_are_offered_help_before_collections(cfg):
    # Red (severe PD), behind on payments: restructuring, not a collection reminder.
    r = rows(2, dpd_current=[45.0, 45.0], total_balance=[30_000.0, 1_000.0])
    for d in both(scores(r, 0.5), r, cfg):
        assert d.loc[1, "warning_level"] == "red"
        assert d.loc[1, "recommended_action"] == "restructuring_offer"
    # The work-out segment's playbook puts help before collections.
    text = cfg.segments["work_out"].en
    assert "restructuring" in text and "deferral" in text
    assert text.index("restructuring") < text.index("collections")


def test_churn_label_is_attrition_not_maturity(small_tables):
    """churn_6m = no open loan 6 months on through early payoff or no renewal, outside
    default; a maturity followed by a new loan is not churn."""
    loans = small_tables["loans"]
    months = sorted(small_tables["repayments"]["statement_date"].unique())
    as_of = pd.Timestamp(months[12])
    h6 = as_of + pd.offsets.MonthEnd(6)
    snap = build_snapshot(small_tables, as_of).set_index("customer_id")
    closed = loans[(loans["close_date"] > as_of) & (loans["close_date"] <= h6)]
    open_h6 = loans[(loans["origination_date"] <= h6)
                    & (loans["close_date"].isna() | (loans["close_date"] > h6))]
    renewed = set(closed.loc[closed["close_reason"] == "matured", "customer_id"]) & set(
        open_h6["customer_id"])
    prepaid_gone = set(closed.loc[closed["close_reason"] == "prepaid", "customer_id"]) - set(
        open_h6["customer_id"])
    matured_gone = set(closed.loc[closed["close_reason"] == "matured", "customer_id"]) - set(
        open_h6["customer_id"])
    charged = set(closed.loc[closed["close_reason"] == "charged_off", "customer_id"])
    ids = snap.index
    renewed, prepaid_gone, matured_gone = (sorted(set(ids) & s - charged) for s in
                                           (renewed, prepaid_gone, matured_gone))
    assert renewed and prepaid_gone and matured_gone
    assert (snap.loc[renewed, "churn_6m"] == 0).all()  # matured, renewed: kept
    assert (snap.loc[prepaid_gone, "churn_6m"].dropna() == 1).all()  # early payoff
    # No renewal at maturity (every customer in good standing may renew) is attrition.
    assert (snap.loc[matured_gone, "churn_6m"].dropna() == 1).all()
    gone = sorted(set(ids) & charged)
    assert (snap.loc[gone, "churn_6m"].dropna() == 0).all()  # default is not churn


# ------------------------------------------------------------------ learned effects decide
def learned(n: int, deciding=ACTIONS, **by_action) -> st.LearnedEffects:
    """Learned effects (action -> (default, churn, dissatisfied)), zero unless given."""
    eff = {}
    for a in ACTIONS:
        e = by_action.get(a, (0.0, 0.0, 0.0))
        for lab, v in zip(st.OUTCOMES, e, strict=True):
            eff[f"effect_{a}_{lab}"] = np.broadcast_to(np.asarray(v, float), n).copy()
    return st.LearnedEffects(eff, frozenset(deciding))


def decisions_for(r: pd.DataFrame, cfg, effects=None, **kw) -> pd.DataFrame:
    return st.apply_strategy(scores(r, kw.pop("pd_12m", 0.2), **kw), r, cfg, effects)


def test_learned_net_benefit_best_action_and_no_harmful_contact(cfg):
    r = rows(4, dpd_current=[10.0, 10.0, 0.0, 10.0])
    eff = learned(4, payment_reminder=([-0.10, -0.10, -0.10, 0.05], 0.0, 0.0),
                  restructuring_offer=([-0.30, -0.01, -0.30, 0.02], 0.0, 0.0),
                  retention_offer=(0.0, [-0.5, -0.5, -0.5, 0.0], 0.0))
    d = decisions_for(r, cfg, eff).set_index("customer_id")
    el_unit = (d["ead"] * d["lgd"]).to_numpy()
    cost = cfg.uplift.contact_cost
    assert d.loc[1, "net_payment_reminder"] == pytest.approx(
        el_unit[0] * 0.10 - cost["payment_reminder"])
    assert np.isnan(d.loc[3, "net_payment_reminder"])  # paying: no reminder open
    assert d.loc[1, "recommended_action"] == "restructuring_offer"  # best of the actions
    assert d.loc[2, "recommended_action"] == "payment_reminder"
    assert d.loc[3, "recommended_action"] == "retention_offer"  # paying: not risk contact
    # Customer 4: every contact harms or costs more than it gains -> none, whatever the
    # risk; and the decision says so.
    assert d.loc[4, "recommended_action"] == "none" and d.loc[4, "net_benefit"] == 0.0
    assert d.loc[4, "action_reasons"][0].startswith("no contact")
    assert (d["decision_basis"] == "learned_uplift").all()
    q = st.outreach_queue(d.reset_index(), 10, cfg)
    assert q["customer_id"].tolist() == [1, 2, 3] or set(q["customer_id"]) == {1, 2, 3}
    assert list(q["net_benefit"]) == sorted(q["net_benefit"], reverse=True)
    assert len(st.outreach_queue(d.reset_index(), 1, cfg)) == 1


def test_learned_effects_never_remind_an_open_complaint(cfg):
    r = rows(2, dpd_current=10.0, open_complaints=[1.0, 0.0])
    d = decisions_for(r, cfg, learned(2, payment_reminder=(-0.2, 0.0, 0.0))
                      ).set_index("customer_id")
    assert d.loc[1, "recommended_action"] != "payment_reminder"
    assert d.loc[2, "recommended_action"] == "payment_reminder"


def test_learned_effects_offer_help_to_a_paying_customer_in_difficulty(cfg):
    """Help before collections: restructuring is open to a customer at a restructure
    level (red) who is still paying; a reminder is not, nor is restructuring for a
    paying customer who is not in difficulty."""
    r = rows(2, dpd_current=0.0)
    eff = learned(2, payment_reminder=(-0.3, 0.0, 0.0), restructuring_offer=(-0.2, 0.0, 0.0))
    d = decisions_for(r, cfg, eff, pd_12m=[0.9, 0.02]).set_index("customer_id")
    assert d.loc[1, "warning_level"] in cfg.outreach.restructure_levels
    assert d.loc[2, "warning_level"] not in cfg.outreach.restructure_levels
    assert d["net_payment_reminder"].isna().all()  # both are paying
    assert d["net_restructuring_offer"].notna().tolist() == [True, False]
    assert d.loc[1, "recommended_action"] == "restructuring_offer"
    assert d.loc[2, "recommended_action"] != "restructuring_offer"


def test_no_contact_at_90_days_past_due(cfg):
    """Past default it is the work-out team's: no contact action, whatever the basis."""
    r = rows(1, dpd_current=120.0)
    for eff in (None, learned(1, restructuring_offer=(-0.3, 0.0, 0.0))):
        d = decisions_for(r, cfg, eff, pd_12m=0.95)
        assert d.loc[0, "recommended_action"] == "none"
        assert "work-out" in d.loc[0, "action_reasons"][-1]


def test_gate_fallback_decides_on_the_constants_and_says_so(cfg):
    """An action whose learned effects did not pass the decision gate is decided on the
    constants; the decision names its basis."""
    r = rows(1, dpd_current=10.0)
    eff = learned(1, deciding=(), payment_reminder=(+0.2, 0.0, 0.0))  # harmful if used
    d = decisions_for(r, cfg, eff)
    assert d.loc[0, "recommended_action"] == "payment_reminder"
    assert d.loc[0, "decision_basis"] == "constants"
    assert "constants" in d.loc[0, "action_reasons"][0]
    d = decisions_for(r, cfg, learned(1, payment_reminder=(+0.2, 0.0, 0.0)))
    assert d.loc[0, "decision_basis"] == "learned_uplift"
    assert d.loc[0, "recommended_action"] != "payment_reminder"


def test_merged_partition_queues_equal_the_whole_books(cfg):
    """Each piece's top K (under the per-action caps), merged and ranked again, is the
    whole book's queue."""
    capped = cfg.model_copy(update={"uplift": cfg.uplift.model_copy(
        update={"capacity_per_action": {"payment_reminder": 3}})})
    n = 12
    r = rows(n, dpd_current=10.0)
    rng = np.random.default_rng(0)
    eff = learned(n, payment_reminder=(-rng.uniform(0.05, 0.3, n), 0.0, 0.0),
                  restructuring_offer=(-rng.uniform(0.0, 0.3, n), 0.0, 0.0))
    d = decisions_for(r, capped, eff)
    whole = st.outreach_queue(d, 5, capped)
    pieces = [st.outreach_queue(d.iloc[i::3].reset_index(drop=True), 5, capped)
              for i in range(3)]
    merged = st.merge_queues(pd.concat(pieces, ignore_index=True), 5, capped)
    pd.testing.assert_frame_equal(whole, merged)
    assert (merged["recommended_action"] == "payment_reminder").sum() <= 3


def test_capacity_per_action(cfg):
    capped = cfg.model_copy(update={"uplift": cfg.uplift.model_copy(
        update={"capacity_per_action": {"payment_reminder": 1}})})
    r = rows(3, dpd_current=10.0)
    d = decisions_for(r, capped, learned(3, payment_reminder=([-0.3, -0.2, -0.1], 0.0, 0.0),
                                         restructuring_offer=(0.1, 0.0, 0.0)))
    q = st.outreach_queue(d, 10, capped)
    assert list(q["customer_id"]) == [1]


def test_queue_is_a_view_of_the_decisions(cfg):
    """Every queued customer's action and net benefit are the decision's."""
    n = 30
    rng = np.random.default_rng(1)
    r = rows(n, dpd_current=rng.choice([0.0, 5.0, 40.0], n),
             open_complaints=rng.choice([0.0, 1.0], n, p=[0.8, 0.2]))
    eff = learned(n, payment_reminder=(-rng.uniform(0, 0.2, n), 0.0, 0.0),
                  retention_offer=(0.0, -rng.uniform(-0.05, 0.2, n), 0.0))
    d = decisions_for(r, cfg, eff, pd_12m=rng.uniform(0.01, 0.6, n),
                      p_churn=rng.uniform(0, 0.5, n), p_dis=rng.uniform(0, 0.8, n))
    q = st.outreach_queue(d, 10, cfg)
    got = d.set_index("customer_id").loc[q["customer_id"]]
    assert (got["recommended_action"].astype(str).to_numpy()
            == q["recommended_action"].astype(str).to_numpy()).all()
    assert np.array_equal(got["net_benefit"].to_numpy(), q["net_benefit"].to_numpy())
    assert (d["recommended_action"] == "none").any()


def test_service_recovery_only_after_a_service_failure(cfg):
    """Service recovery recovers from a failure the customer told us about (a complaint in
    the last 3 months or still open, or a survey score of 2 or less); a current customer
    without one gets no service call, however likely the model thinks dissatisfaction is."""
    r = rows(4, complaints_3m=[1.0, 0.0, 0.0, 0.0], last_survey_score=[4.0, 2.0, 4.0, np.nan])
    d = decisions_for(r, cfg, pd_12m=0.01, p_churn=0.0, p_dis=0.4).set_index("customer_id")
    assert d.loc[1, "recommended_action"] == "service_recovery_call"
    assert d.loc[2, "recommended_action"] == "service_recovery_call"
    assert np.isnan(d.loc[3, "net_service_recovery_call"])
    assert np.isnan(d.loc[4, "net_service_recovery_call"])
    assert (d.loc[[3, 4], "recommended_action"] != "service_recovery_call").all()
