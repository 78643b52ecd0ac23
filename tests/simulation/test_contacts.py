"""The simulator's contact policy: logged treatments, randomised holdout, true effects."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from postloan.data import schema as S
from postloan.decisions import strategy
from postloan.errors import ConfigError
from postloan.models.uplift import outreach_log
from postloan.simulation import (
    ActionSpec,
    ContactPolicy,
    SimulationConfig,
    fork,
    historical_planner,
    simulate,
    simulate_forward,
)

CFG = SimulationConfig(n_customers=3_000, n_months=20, seed=13)


@pytest.fixture(scope="module")
def book():
    return {k: S.validate_table(k, v) for k, v in simulate(CFG).items()}


@pytest.fixture(scope="module")
def outreach(book):
    it = book["interactions"]
    return it[it["kind"] == "outreach"].reset_index(drop=True)


def _hashes(tables: dict) -> dict[str, str]:
    return {k: hashlib.sha256(pd.util.hash_pandas_object(
        v[[c for c in v.columns if c not in ("action", "eligibility", "assignment",
                                             "propensity")]], index=True
    ).to_numpy().tobytes()).hexdigest()[:12] for k, v in sorted(tables.items())}


def test_without_contacts_the_book_is_the_book_of_earlier_versions():
    # Hashes of every table from the simulator before it was split into step functions
    # (commit 6592c59, one random stream): `contacts=None` must keep them bit for bit.
    got = _hashes(simulate(SimulationConfig(500, 12, 3, contacts=None)))
    assert got == {
        "activity": "c90377be7147", "bureau": "414098234792", "customers": "bb719036bd90",
        "customers_pii": "4f3c47deb0e9", "interactions": "1281707255a4",
        "loans": "9982a4a0b7f4", "macro": "c46fbfb4f1b8", "repayments": "8a935e3dbd65",
        "surveys": "edc405330c2b", "truth": "6d223ec29482",
    }


def test_the_actions_are_the_strategy_actions():
    assert S.CONTACT_ACTIONS == strategy.ACTIONS


def test_every_eligible_customer_month_is_logged_with_its_propensity(book, outreach):
    it = book["interactions"]
    other = it[it["kind"] != "outreach"]
    assert other[["action", "eligibility", "assignment"]].isna().all().all()
    assert other["propensity"].isna().all()
    assert outreach[["action", "eligibility", "assignment", "propensity"]].notna().all().all()
    assert ((outreach["propensity"] > 0) & (outreach["propensity"] <= 1)).all()
    # One row per customer and month; contacted rows say whether the call got through.
    month = outreach["event_date"].dt.to_period("M")
    assert not pd.DataFrame({"c": outreach["customer_id"], "m": month}).duplicated().any()
    contacted = outreach["assignment"] == "contacted"
    assert outreach.loc[contacted, "outcome"].isin(["reached", "no_answer"]).all()
    assert (outreach.loc[~contacted, "outcome"] == "none").all()
    # The rule: each eligibility has its action and channel.
    rule = {"early_delinquency": "payment_reminder",
            "hardship_delinquency": "restructuring_offer",
            "rate_shopper": "retention_offer", "recent_complaint": "service_recovery_call"}
    assert (outreach["eligibility"].map(rule) == outreach["action"]).all()
    for a in S.CONTACT_ACTIONS:
        chans = set(outreach.loc[outreach["action"] == a, "channel"])
        assert chans == {CFG.contacts.spec(a).channel}


def test_holdout_is_random_and_of_the_configured_size(outreach):
    hold = outreach["assignment"] == "holdout"
    n = len(outreach)
    share = hold.mean()
    assert abs(share - 0.10) < 4 * np.sqrt(0.1 * 0.9 / n)
    # Randomised: the holdout looks like the contacted on what the rule saw.
    by = outreach.groupby("eligibility")["assignment"].apply(lambda s: (s == "holdout").mean())
    assert by.between(0.04, 0.2).all(), by
    # The logged propensity is the share contacted per action and month, on average.
    g = outreach.groupby(["action", outreach["event_date"].dt.to_period("M")])
    obs = g["assignment"].apply(lambda s: (s == "contacted").mean())
    assert np.average(obs - g["propensity"].mean(), weights=g.size()) == pytest.approx(0, abs=0.02)


def test_capacity_binds_with_a_random_subset_and_a_lower_propensity():
    small = ContactPolicy(retention_offer=ActionSpec(40.0, 5, "phone"))
    tb = simulate(SimulationConfig(3_000, 8, 13, contacts=small))
    it = tb["interactions"]
    ret = it[(it["kind"] == "outreach") & (it["action"] == "retention_offer")]
    per_month = ret[ret["assignment"] == "contacted"].groupby(
        ret["event_date"].dt.to_period("M")).size()
    assert per_month.max() <= 5
    over = ret[ret["assignment"] == "over_capacity"]
    assert len(over) > 0
    assert (ret["propensity"] < 0.9).all()


@pytest.mark.parametrize("holdout", [0.0, 0.3])
def test_holdout_share_is_configurable(holdout):
    tb = simulate(SimulationConfig(2_000, 8, 2, contacts=ContactPolicy(holdout=holdout)))
    o = tb["interactions"]
    o = o[o["kind"] == "outreach"]
    share = (o["assignment"] == "holdout").mean()
    assert share == pytest.approx(holdout, abs=4 * np.sqrt(0.25 / len(o)) + 1e-12)


def test_contact_truth_covers_the_eligible_and_is_heterogeneous(book, outreach):
    ct = book["contact_truth"]
    # One row per eligible customer-month, dated at the month end before the contact.
    logged = outreach_log(book["interactions"])
    assert (logged["as_of"] == logged["as_of"] + pd.offsets.MonthEnd(0)).all()
    pd.testing.assert_frame_equal(
        logged[["customer_id", "as_of"]],
        ct[["customer_id", "as_of"]].astype({"as_of": "datetime64[ns]"}))
    assert (logged["assignment"].to_numpy() == ct["assignment"].to_numpy()).all()
    assert logged["treated"].sum() == (outreach["assignment"] == "contacted").sum()
    # Some customers are helped and some are harmed by the same action.
    for col in ("effect_retention_offer_churn_6m", "effect_service_recovery_call_dissatisfied_3m"):
        assert (ct[col] > 1e-4).any() and (ct[col] < -1e-4).any(), col
    # A reminder helps some pay and annoys others (service-sensitive customers).
    assert (ct["effect_payment_reminder_default_12m"] < -0.01).any()
    assert (ct["effect_payment_reminder_dissatisfied_3m"] > 0.01).any()
    assert (ct["effect_payment_reminder_dissatisfied_3m"].abs() < 1e-4).any()
    # Restructuring helps those in hardship more than early delinquents, on average.
    g = ct.groupby("eligibility")["effect_restructuring_offer_default_12m"].mean()
    assert g["hardship_delinquency"] < g["early_delinquency"] < 0
    # A retention offer changes nobody's default; a reminder helps delinquents pay.
    assert (ct["effect_retention_offer_default_12m"] == 0).all()
    delinquent = ct["eligibility"].isin(["early_delinquency", "hardship_delinquency"])
    assert ct.loc[delinquent, "effect_payment_reminder_default_12m"].mean() < -0.005
    # Effects are probability differences: base + effect stays a probability.
    for a in S.CONTACT_ACTIONS:
        for o in S.CONTACT_OUTCOME_LABELS:
            p1 = ct[f"base_{o}"] + ct[f"effect_{a}_{o}"]
            assert p1.between(-1e-6, 1 + 1e-6).all()


def test_the_logged_contacts_show_their_effect_against_the_holdout(book, outreach):
    # Early delinquents reminded roll less than the randomised holdout the next month.
    rem = outreach[outreach["eligibility"] == "early_delinquency"]
    rep = book["repayments"]
    dpd = rep.groupby(["customer_id", "statement_date"])["dpd"].max().reset_index()
    month_end = rem["event_date"] + pd.offsets.MonthEnd(0)
    prev = month_end - pd.offsets.MonthEnd(1)
    a = rem.assign(me=month_end.to_numpy(), prev=prev.to_numpy())
    a = a.merge(dpd.rename(columns={"statement_date": "me", "dpd": "dpd_after"}),
                on=["customer_id", "me"]).merge(
        dpd.rename(columns={"statement_date": "prev", "dpd": "dpd_before"}),
        on=["customer_id", "prev"])
    cured = a["dpd_after"] == 0
    rate = cured.groupby(a["assignment"]).mean()
    assert rate["contacted"] > rate["holdout"]


def test_same_seed_same_book_and_the_replay_of_the_same_policy_reproduces_it(book):
    again = simulate(CFG)
    for k in book:
        pd.testing.assert_frame_equal(S.validate_table(k, again[k]), book[k])
    w, s = fork(CFG, 7)
    fwd = simulate_forward(w, s, range(8, 20), 0, lambda t: historical_planner(CFG.contacts))
    after = book["repayments"][book["repayments"]["statement_date"] > CFG.month_ends()[7]]
    pd.testing.assert_frame_equal(fwd["repayments"].reset_index(drop=True),
                                  after.reset_index(drop=True), check_dtype=False)


def test_config_round_trips_and_bad_config_is_a_clear_error():
    cfg = SimulationConfig(100, 6, 1, contacts=ContactPolicy(holdout=0.2))
    assert SimulationConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="holdout"):
        ContactPolicy(holdout=1.5)
    with pytest.raises(ConfigError, match="channel"):
        ActionSpec(1.0, 10, "pigeon")
    with pytest.raises(ConfigError, match="capacity"):
        ActionSpec(1.0, -1, "app")
    with pytest.raises(ConfigError, match="unknown field"):
        SimulationConfig.from_dict({"n_customers": 100, "colour": "red"})
    with pytest.raises(ConfigError, match="without a contact policy"):
        fork(SimulationConfig(100, 6, 1, contacts=None), 2)


def test_a_book_without_the_outreach_columns_still_reads(book):
    it = book["interactions"]
    old = it[it["kind"] != "outreach"].drop(columns=["action", "eligibility", "assignment",
                                                     "propensity"])
    got = S.validate_table("interactions", old)
    assert got["action"].isna().all() and got["propensity"].isna().all()
    bad = it.copy()
    bad.loc[bad.index[bad["kind"] == "outreach"][:1], "action"] = "carrier_pigeon"
    with pytest.raises(Exception, match="allowed categories"):
        S.validate_table("interactions", bad)
