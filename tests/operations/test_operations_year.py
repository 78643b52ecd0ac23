"""The closed-loop year harness (benchmarks/operations_year.py) on a tiny book, 2 months."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import load_benchmark
from postloan.models import store
from postloan.simulation import (
    SimulationConfig,
    advance_month,
    fork,
    simulate,
    simulate_forward,
    simulate_until,
)
from postloan.simulation.contacts import NO_CONTACT, queue_plan


def _rows(month: dict, table: str, ids: np.ndarray) -> pd.DataFrame:
    t = month[table]
    t = t[t["customer_id"].isin(ids)].drop(columns=["loan_id"], errors="ignore")
    return t.sort_values(list(t.columns), kind="stable").reset_index(drop=True)


def test_one_month_steps_replay_the_book_and_its_forward_runs():
    cfg = SimulationConfig(400, 12, seed=3)
    whole = simulate(cfg)
    w, s, hist = simulate_until(cfg, 7)
    end = cfg.month_ends()[7]
    rep = whole["repayments"]
    pd.testing.assert_frame_equal(
        hist["repayments"].reset_index(drop=True),
        rep[rep["statement_date"] <= end].reset_index(drop=True))
    # Month by month from the kept state = simulate_forward over the same months, with a
    # queue contacted in the first month (same replay: the same random numbers).
    w2, s2 = fork(cfg, 7)
    codes = np.full(w.n, NO_CONTACT, np.int64)
    codes[:20] = 0

    def plan(w_, s_, t_, rng):
        return queue_plan(w_, codes, rng)

    fwd = simulate_forward(w2, s2, range(8, 10), 5, lambda t: plan if t == 8 else None)
    steps = [advance_month(w, s, 8, 5, plan), advance_month(w, s, 9, 5, None)]
    got = pd.concat([m["repayments"] for m in steps], ignore_index=True)
    pd.testing.assert_frame_equal(got, fwd["repayments"].reset_index(drop=True))
    with pytest.raises(Exception, match="outside the window"):
        advance_month(w, s, 12, 5, None)


def test_customers_not_contacted_draw_the_same_numbers_in_every_arm():
    """Common random numbers: contacting some customers leaves every other customer's
    month the same, activity counts, bureau pulls and survey answers included (they
    were drawn with array Poisson calls and draws sized by who was active or surveyed,
    so one contacted customer's changed rate shifted every later customer's numbers)."""
    cfg = SimulationConfig(1_500, 14, seed=5)
    w, s0, _ = simulate_until(cfg, 9)
    codes = np.full(w.n, NO_CONTACT, np.int64)
    codes[np.arange(0, w.n, 7)] = 1  # restructuring offers to every 7th customer

    def plan(w_, s_, t_, rng):
        return queue_plan(w_, codes, rng)

    arms = {}
    for name, planner in (("none", None), ("contacts", plan)):
        s = s0.copy()
        arms[name] = [advance_month(w, s, t, 11, planner if t == 10 else None)
                      for t in (10, 11, 12)]
    touched = w.cid[codes >= 0]
    for m in range(3):
        ids = np.setdiff1d(arms["none"][m]["customers"]["customer_id"].to_numpy(), touched)
        for table in ("activity", "bureau", "surveys", "repayments", "truth"):
            a, b = _rows(arms["contacts"][m], table, ids), _rows(arms["none"][m], table, ids)
            assert len(a) > 0, table
            pd.testing.assert_frame_equal(a, b, obj=f"month {m} {table}")
        # the contacted customers did live another month (the arms are not the same)
        assert not _rows(arms["contacts"][m], "truth", touched).equals(
            _rows(arms["none"][m], "truth", touched))


@pytest.mark.slow
def test_two_months_share_random_numbers_and_outcomes_are_finite(trained, uplift_trained,
                                                                 tmp_path):
    Y = load_benchmark("operations_year")
    # The session's champions and uplift models stand for the T0 training (no training here).
    models = {1: (store.load_bundles_from_dir(trained["root"] / "models"),
                  store.load_uplift_from_dir(uplift_trained["root"] / "models"), 0.0)}
    # retrain_every=1: month 1 runs the cycle's retrain step (an empty store: the
    # session's models were given without theirs)
    r = Y.run_year(600, 1, False, 26, 40, models, tmp_path, months=2, keep_months=True,
                   retrain_every=1)
    assert set(r["arms"]) == set(Y.ARMS)
    for arm, tot in r["arms"].items():
        assert all(math.isfinite(float(v)) for v in tot.values()), (arm, tot)
    assert r["arms"]["none"]["n_contacts"] == 0
    assert r["arms"]["handbook"]["n_contacts"] > 0  # the arms differ by their contacts
    # the cycle's holdout costs no call slots: as many contacts as the handbook's
    assert r["arms"]["cycle"]["n_contacts"] == r["arms"]["handbook"]["n_contacts"]
    none = r["months"]["none"]
    for arm in ("handbook", "frozen", "cycle"):
        touched = np.unique(np.concatenate(r["contacted"][arm]))
        assert touched.size > 0
        for m, month in enumerate(r["months"][arm]):
            # Customers this arm never contacted live exactly the no-contact arm's month:
            # repayments, loans, the true probabilities (the state), activity counts,
            # bureau pulls and survey answers.
            ids = np.setdiff1d(month["customers"]["customer_id"].to_numpy(), touched)
            for table in ("repayments", "loans", "truth", "activity", "bureau"):
                a, b = _rows(month, table, ids), _rows(none[m], table, ids)
                assert len(a) > 0
                pd.testing.assert_frame_equal(a, b, obj=f"{arm} month {m} {table}")
    assert len(r["auc"]["frozen"]) == 1 and len(r["verdicts"]) == 2
    # the cycle arm logs its own outreach (holdout included) and retrains on it
    assert r["own_outreach_rows"] > 0 and r["holdout_customer_months"] > 0
    assert r["holdout_expected_cost"] >= 0   # the top `capacity` are worth the most
    assert r["retrained_months"] == [1]
    rec = r["retrain_records"][0]
    assert {"default_risk", "churn"} <= set(rec["gates"]) and rec["uplift"]
    assert len(r["decision_basis"]) == 2
    assert r["first_learned_month"] in (None, 0, 1)
