"""The closed-loop year harness (benchmarks/operations_year.py) on a tiny book, 2 months."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "operations_year.py"


def _harness():
    spec = importlib.util.spec_from_file_location("operations_year", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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


@pytest.mark.slow
def test_two_months_share_random_numbers_and_outcomes_are_finite(trained, uplift_trained,
                                                                 tmp_path):
    Y = _harness()
    # The session's champions and uplift models stand for the T0 training (no training here).
    models = {1: (store.load_bundles_from_dir(trained["root"] / "models"),
                  store.load_uplift_from_dir(uplift_trained["root"] / "models"), 0.0)}
    r = Y.run_year(600, 1, False, 26, 40, models, tmp_path, months=2, keep_months=True)
    assert set(r["arms"]) == set(Y.ARMS)
    for arm, tot in r["arms"].items():
        assert all(math.isfinite(float(v)) for v in tot.values()), (arm, tot)
    assert r["arms"]["none"]["n_contacts"] == 0
    assert r["arms"]["handbook"]["n_contacts"] > 0  # the arms differ by their contacts
    none = r["months"]["none"]
    for arm in ("handbook", "frozen", "cycle"):
        touched = np.unique(np.concatenate(r["contacted"][arm]))
        assert touched.size > 0
        for m, month in enumerate(r["months"][arm]):
            # Customers this arm never contacted live exactly the no-contact arm's month:
            # repayments, loans and the true probabilities (the state). Activity counts
            # are not compared: the simulator draws them with array Poisson calls, whose
            # use of the stream depends on the other customers' rates.
            ids = np.setdiff1d(month["customers"]["customer_id"].to_numpy(), touched)
            for table in ("repayments", "loans", "truth"):
                a, b = _rows(month, table, ids), _rows(none[m], table, ids)
                assert len(a) > 0
                pd.testing.assert_frame_equal(a, b, obj=f"{arm} month {m} {table}")
    assert len(r["auc"]["frozen"]) == 1 and len(r["verdicts"]) == 2
