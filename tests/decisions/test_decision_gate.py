"""The decision gate (postloan.decisions.strategy.gate): learned effects decide an action only where
deciding with them is worth at least as much as with the constants, off-policy on
randomised contacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from postloan.data.snapshot import NUMERIC_FIELDS
from postloan.decisions import strategy as st


def held_contacts(n: int, seed: int, churn_effect: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Retention-offer contacts randomised at propensity 0.4 over two as-of dates: the
    offer changes the churn probability from 10% by `churn_effect`."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f: np.full(n, np.nan) for f in NUMERIC_FIELDS})
    df.insert(0, "customer_id", np.arange(n) % (n // 2) + 1)
    df["as_of"] = pd.to_datetime(np.where(np.arange(n) < n // 2, "2024-01-31", "2024-02-29"))
    df["main_product"] = "consumer"
    df["total_balance"] = 40_000.0
    df["secured_share"] = 0.0
    df["weighted_rate"] = 14.0
    df["min_remaining_months"] = 30.0
    df["dpd_current"] = 0.0
    df["treated"] = (rng.random(n) < 0.4).astype(float)
    df["propensity"] = 0.4
    p = 0.10 + churn_effect * df["treated"]
    df["churn_6m"] = (rng.random(n) < p).astype(float)
    df["default_12m"] = 0.0
    df["dissatisfied_3m"] = 0.0
    scores = pd.DataFrame({"customer_id": df["customer_id"], "pd_12m": 0.01,
                           "p_churn_6m": 0.01, "p_dissatisfied_3m": 0.05})
    return df, scores


def effects(n: int, churn: float) -> dict[str, np.ndarray]:
    out = {}
    for lab in st.OUTCOMES:
        v = churn if lab == "churn_6m" else 0.0
        out[f"effect_retention_offer_{lab}"] = np.full(n, v)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_right_learned_effects_decide_wrong_ones_do_not(seed):
    cfg = st.load_strategy_config()
    n = 6000
    # The offer truly halves churn; the constants (30% success on the model's 1% churn
    # probability, minus the offer's cost) do not make it worth an offer.
    held, scores = held_contacts(n, seed, churn_effect=-0.05)
    right = st.decision_gate(held, scores, "retention_offer", effects(n, -0.05), cfg)
    assert right["n"] == n and right["n_differ"] == n
    assert right["decides"] and right["value_difference"] > 2 * right["se"] > 0
    assert right["value_learned"] > right["value_constants"]
    # Learned effects that claim an effect the offer does not have decide worse.
    held, scores = held_contacts(n, seed, churn_effect=+0.03)
    wrong = st.decision_gate(held, scores, "retention_offer", effects(n, -0.05), cfg)
    assert not wrong["decides"] and wrong["value_difference"] < 0
    assert "worse than the constants" in wrong["reason"]


def test_the_bar_is_in_standard_errors_and_small_sets_keep_the_constants():
    cfg = st.load_strategy_config()
    n = 6000
    held, scores = held_contacts(n, 0, churn_effect=-0.05)
    g = st.decision_gate(held, scores, "retention_offer", effects(n, -0.05), cfg, min_z=0.0)
    z = g["value_difference"] / g["se"]
    strict = st.decision_gate(held, scores, "retention_offer", effects(n, -0.05), cfg,
                              min_z=z + 1.0)
    assert g["decides"] and not strict["decides"]
    few = st.decision_gate(held.head(20), scores.head(20), "retention_offer",
                           {k: v[:20] for k, v in effects(n, -0.05).items()}, cfg)
    assert not few["decides"] and "held-out contacts" in few["reason"]


def test_policies_that_agree_differ_by_exactly_zero():
    cfg = st.load_strategy_config()
    n = 1000
    held, scores = held_contacts(n, 3, churn_effect=-0.05)
    # Learned effects too small to pay for the offer: neither policy contacts anyone.
    g = st.decision_gate(held, scores, "retention_offer", effects(n, -0.0001), cfg)
    assert g["n_differ"] == 0 and g["value_difference"] == 0.0 and g["decides"]


def test_a_positive_difference_below_the_bar_is_not_called_worse():
    cfg = st.load_strategy_config()
    n = 6000
    held, scores = held_contacts(n, 0, churn_effect=-0.05)
    g = st.decision_gate(held, scores, "retention_offer", effects(n, -0.05), cfg, min_z=1e6)
    assert not g["decides"] and g["value_difference"] > 0
    assert "not shown to decide better" in g["reason"] and "worse" not in g["reason"]
