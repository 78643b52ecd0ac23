"""Uplift models: the DR-learner recovers known effects, round-trips without pickle,
and trains, registers and gates on the small book's logged randomised contacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from postloan import uplift as U
from postloan.errors import DataValidationError
from postloan.features import FEATURE_NAMES


def _synthetic(n: int = 12_000, seed: int = 3):
    """Features, a randomised treatment with a varying known propensity, and outcomes whose
    true effect depends on one feature (helps some, harms others)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    driver = FEATURE_NAMES[5]
    e = np.where(X[FEATURE_NAMES[1]] > 0, 0.8, 0.5)  # logged, known, varies with x
    t = (rng.random(n) < e).astype(float)
    base = 1 / (1 + np.exp(-(-1.0 + 0.8 * X[FEATURE_NAMES[2]].to_numpy())))
    tau = -0.25 * np.tanh(X[driver].to_numpy())  # negative = fewer bad outcomes
    p = np.clip(base + t * tau, 0.01, 0.99)
    y = (rng.random(n) < p).astype(float)
    return X, y, t, e, tau, driver


def test_dr_learner_recovers_the_heterogeneous_effect():
    X, y, t, e, tau, driver = _synthetic()
    booster = U.fit_effect(X, y, t, e, U.UpliftParams(num_threads=1))
    est = booster.predict(X[list(FEATURE_NAMES)].to_numpy(float))
    assert np.corrcoef(est, tau)[0, 1] > 0.7
    # The Qini of the learned ranking on the true effects is most of the oracle's.
    q, _ = U.qini_auuc(-est, -tau)
    q_oracle, _ = U.qini_auuc(-tau, -tau)
    assert q > 0.7 * q_oracle
    # TreeSHAP names the trait that makes customers respond.
    assert U.drivers(booster, X, k=1)[0]["feature"] == driver


def test_pseudo_outcome_is_unbiased_with_the_logged_propensity():
    X, y, t, e, tau, _ = _synthetic(n=60_000, seed=5)
    # Even with a useless outcome model (0), the mean pseudo-outcome is the average effect.
    psi = U.dr_pseudo_outcome(y, t, e, np.zeros_like(y), np.zeros_like(y))
    assert abs(psi.mean() - tau.mean()) < 0.02
    # The IPW gain of contacting everyone estimates the outcomes avoided.
    assert abs(U.ipw_gain(y, t, e).mean() + tau.mean()) < 0.02


def test_qini_ranks_a_good_ranking_above_a_reversed_one():
    gain = np.r_[np.ones(50), np.zeros(50), -np.ones(50)]
    good, _ = U.qini_auuc(np.arange(150)[::-1], gain)
    bad, _ = U.qini_auuc(np.arange(150), gain)
    assert good > 0 > bad


def test_bad_training_data_is_a_clear_error():
    X, y, t, e, _, _ = _synthetic(n=500)
    with pytest.raises(DataValidationError, match="contacted and control"):
        U.fit_effect(X, y, np.ones_like(t), e)
    with pytest.raises(DataValidationError, match="propensity"):
        U.fit_effect(X, y, t, np.where(t > 0, 1.0, e))


def test_bundle_round_trip_is_identical(tmp_path):
    X, y, t, e, _, _ = _synthetic(n=3_000)
    p = U.UpliftParams(effect_rounds=20, outcome_rounds=20, num_threads=1)
    b = U.UpliftBundle("payment_reminder", {lab: U.fit_effect(X, y, t, e, p)
                                            for lab in U.UPLIFT_LABELS}, {"k": 1})
    back = U.UpliftBundle.load(b.save(tmp_path / "b"))
    assert back.action == "payment_reminder" and back.model == "uplift_payment_reminder"
    pd.testing.assert_frame_equal(back.effects_features(X), b.effects_features(X))
    assert not list(tmp_path.glob("b/*.pkl"))
    (tmp_path / "b" / "effect_churn_6m.txt").unlink()
    with pytest.raises(Exception, match="cannot be loaded"):
        U.UpliftBundle.load(tmp_path / "b")


@pytest.mark.integration
def test_train_register_and_compare_with_the_truth(small_book, tmp_path):
    from mlflow.tracking import MlflowClient

    from pipelines.train import run_train_uplift
    from postloan import registry

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = run_train_uplift(small_book, uri, tmp_path / "art", tmp_path / "models",
                               tmp_path, n_dates=6, n_test_dates=2)
    assert {r["action"] for r in results} == set(U.ACTIONS)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for r in results:
        name = registry.registered_name(r["model"])
        assert name == "postloan-uplift-" + r["action"].replace("_", "-")
        mv = client.get_model_version(name, r["version"])
        assert mv.tags["gate_promoted"] == str(r["promoted"])
        metrics = client.get_run(r["run_id"]).data.metrics
        assert "n_heldout" in metrics
        if r["promoted"]:  # only a ranking that beats random contacting is promoted
            assert metrics["gate_qini"] > 0 and metrics["gate_auuc"] > 0
        else:
            assert "Qini" in r["gate"]
        assert r["drivers"]["default_12m"][0]["feature"] in FEATURE_NAMES
    # The truth is compared wherever the held-out set is large enough (reminders are).
    rem = next(r for r in results if r["action"] == "payment_reminder")["metrics"]
    for lab in U.UPLIFT_LABELS:
        assert f"{lab}_effect_corr" in rem and f"{lab}_qini_true_ratio" in rem
    # The oracle ranks by the true effects: on the truth's own gains it is the best.
    assert rem["default_12m_qini_true_oracle"] >= rem["default_12m_qini_true"]
    champions = {a for a, r in ((r["action"], r) for r in results) if r["promoted"]}
    registry.configure(uri)
    assert set(registry.load_uplift_champions()) == champions
