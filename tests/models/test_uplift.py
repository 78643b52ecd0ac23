"""Uplift models: the risk-based and DR learners recover known effects, round-trip
without pickle, and train, register and gate on the small book's logged randomised
contacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from postloan.data.features import FEATURE_NAMES
from postloan.errors import DataValidationError
from postloan.models import uplift as U


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


def _constant_odds_ratio(n: int = 20_000, seed: int = 11, log_or: float = -0.6):
    """Outcomes whose baseline risk depends on two features and whose contact multiplies
    the odds by exp(log_or) for everyone: the absolute effect varies with the risk."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    e = np.where(X[FEATURE_NAMES[1]] > 0, 0.9, 0.6)  # known, varies with x
    t = (rng.random(n) < e).astype(float)
    f = -2.0 + 1.2 * X[FEATURE_NAMES[2]].to_numpy() - 0.8 * X[FEATURE_NAMES[7]].to_numpy()
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    tau = sig(f + log_or) - sig(f)
    y = (rng.random(n) < sig(f + log_or * t)).astype(float)
    return X, y, t, e, tau


def test_risk_learner_recovers_the_odds_ratio_and_ranks_by_risk():
    X, y, t, e, tau = _constant_odds_ratio()
    booster, shift = U.fit_risk_shift(X, y, t, e, U.UpliftParams(num_threads=1))
    lor, se = shift["log_odds_ratio"], shift["se"]
    assert 0 < se < 0.2
    assert abs(lor - (-0.6)) < 3 * se  # the interval covers the truth
    assert shift["n"] == len(y) and shift["n_treated"] == int(t.sum())
    est = U.risk_shift_effect(booster.predict(X[list(FEATURE_NAMES)].to_numpy(float),
                                              raw_score=True), shift)
    assert np.corrcoef(est, tau)[0, 1] > 0.9
    assert abs(est.mean() - tau.mean()) < 0.01
    q, _ = U.qini_auuc(-est, -tau)
    q_oracle, _ = U.qini_auuc(-tau, -tau)
    assert q > 0.9 * q_oracle
    # The traits that move the effect are those of the baseline risk.
    top = {d["feature"] for d in U.drivers(booster, X, k=2, shift=shift)}
    assert top == {FEATURE_NAMES[2], FEATURE_NAMES[7]}


def test_risk_learner_finds_no_effect_where_there_is_none():
    X, y, t, e, _ = _constant_odds_ratio(seed=12, log_or=0.0)
    _, shift = U.fit_risk_shift(X, y, t, e, U.UpliftParams(num_threads=1))
    assert abs(shift["log_odds_ratio"]) < 3 * shift["se"]


def test_unknown_learner_is_a_clear_error():
    with pytest.raises(DataValidationError, match="learner"):
        U.UpliftParams(learner="x-learner")


def test_pseudo_outcome_is_unbiased_with_the_logged_propensity():
    X, y, t, e, tau, _ = _synthetic(n=60_000, seed=5)
    # Even with a useless outcome model (0), the mean pseudo-outcome is the average effect.
    psi = U.dr_pseudo_outcome(y, t, e, np.zeros_like(y), np.zeros_like(y))
    assert abs(psi.mean() - tau.mean()) < 0.02
    # The IPW gain of contacting everyone estimates the outcomes avoided.
    assert abs(U.ipw_gain(y, t, e).mean() + tau.mean()) < 0.02


def test_qini_standard_error_shrinks_with_more_contacts_and_is_seeded():
    X, y, t, e, tau, _ = _synthetic(n=8_000, seed=9)
    gain = U.ipw_gain(y, t, e)
    small = U.qini_auuc_se(-tau[:800], gain[:800])
    large = U.qini_auuc_se(-tau, gain)
    assert 0 < large[0] < small[0] and 0 < large[1] < small[1]
    assert U.qini_auuc_se(-tau, gain) == large  # same seed, same rows: same errors
    # The true ranking on 8,000 contacts is reliably better than random.
    assert U.qini_auuc(-tau, gain)[0] - 1.645 * large[0] > 0


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
    with pytest.raises(DataValidationError, match="contacted and control"):
        U.fit_risk_shift(X, y, np.zeros_like(t), e)


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


def test_risk_bundle_round_trip_is_identical(tmp_path):
    import json

    from postloan.errors import ModelNotFoundError

    X, y, t, e, _ = _constant_odds_ratio(n=3_000)
    p = U.UpliftParams(outcome_rounds=20, num_threads=1)
    fits = {lab: U.fit_risk_shift(X, y, t, e, p) for lab in U.UPLIFT_LABELS}
    b = U.UpliftBundle("retention_offer", {lab: f[0] for lab, f in fits.items()},
                       {"learner": "risk", "shift": {lab: f[1] for lab, f in fits.items()}})
    back = U.UpliftBundle.load(b.save(tmp_path / "b"))
    assert back.learner == "risk" and sorted(p.name for p in (tmp_path / "b").glob("risk_*"))
    pd.testing.assert_frame_equal(back.effects_features(X), b.effects_features(X))
    eff = back.effects_features(X)["effect_churn_6m"].to_numpy()
    assert (eff < 0).all()  # a constant odds ratio below 1 lowers everyone's risk
    meta = json.loads((tmp_path / "b" / "uplift.json").read_text())
    del meta["shift"]["churn_6m"]
    (tmp_path / "b" / "uplift.json").write_text(json.dumps(meta))
    with pytest.raises(ModelNotFoundError, match="log odds ratio"):
        U.UpliftBundle.load(tmp_path / "b")


@pytest.mark.integration
def test_train_register_and_compare_with_the_truth(uplift_trained):
    from mlflow.tracking import MlflowClient

    from postloan.models import registry

    uri, results = uplift_trained["uri"], uplift_trained["results"]
    assert {r["action"] for r in results} == set(U.ACTIONS)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for r in results:
        name = registry.registered_name(r["model"])
        assert name == "postloan-uplift-" + r["action"].replace("_", "-")
        mv = client.get_model_version(name, r["version"])
        assert mv.tags["gate_promoted"] == str(r["promoted"])
        # Logged with a signature (snapshot fields in, effects out): MLflow no longer
        # warns "Failed to infer model signature" once per uplift model (issue 20).
        import mlflow

        registry.configure(uri)  # tracking and registry: another test may have set either
        sig = mlflow.models.get_model_info(f"models:/{name}/{r['version']}").signature
        assert sig is not None and "effect_default_12m" in sig.outputs.input_names()
        metrics = client.get_run(r["run_id"]).data.metrics
        assert "n_heldout" in metrics
        if "gate_qini" not in metrics:  # NaN, not logged: too few held-out contacts
            assert not r["promoted"] and "too few held-out contacts" in r["gate"]
            continue
        z = registry.UPLIFT_GATE_Z
        assert metrics["gate_qini_se"] > 0 and metrics["gate_auuc_se"] > 0
        reliably_worse = (metrics["gate_qini"] + z * metrics["gate_qini_se"] < 0
                          or metrics["gate_auuc"] + z * metrics["gate_auuc_se"] < 0)
        if reliably_worse:  # a ranking reliably worse than random is never promoted
            assert not r["promoted"] and "reliably worse than random" in r["gate"]
        else:  # the first version of each action: nothing else to beat
            assert r["promoted"] and r["gate"] == "no champion yet"
        assert mv.tags["gate_challenger_qini_se"] == str(metrics["gate_qini_se"])
        assert r["drivers"]["default_12m"][0]["feature"] in FEATURE_NAMES
    # The truth is compared wherever the held-out set is large enough (reminders are).
    rem = next(r for r in results if r["action"] == "payment_reminder")["metrics"]
    for lab in U.UPLIFT_LABELS:
        assert f"{lab}_effect_corr" in rem and f"{lab}_qini_true_ratio" in rem
        # The default (risk) learner reports the contact's odds ratio with its interval.
        assert rem[f"{lab}_odds_ratio_lo"] < rem[f"{lab}_odds_ratio"] < rem[f"{lab}_odds_ratio_hi"]
    # The oracle ranks by the true effects: on the truth's own gains it is the best.
    assert rem["default_12m_qini_true_oracle"] >= rem["default_12m_qini_true"]
    champions = {a for a, r in ((r["action"], r) for r in results) if r["promoted"]}
    registry.configure(uri)
    loaded = registry.load_uplift_champions()
    assert set(loaded) == champions
    # The decision gate judged every model against the constants (the store holds the
    # three champions that value the decisions), logged it, and the bundle carries it.
    for r in results:
        gate = r["decision_gate"]
        run = client.get_run(r["run_id"]).data
        assert run.tags["decision_gate"] == ("learned" if gate["decides"] else "constants")
        assert "no default-risk and churn champions" not in gate["reason"]
        if gate["n"] >= 50:
            assert run.metrics["decision_value_difference"] == pytest.approx(
                gate["value_difference"])
            assert gate["decides"] == (gate["value_difference"]
                                       >= gate["min_z"] * gate["se"])
        if r["action"] in loaded:
            assert loaded[r["action"]].decision_gate == gate


def _register_uplift_version(client, action: str, qini: float, qini_se: float) -> str:
    """A registered uplift version whose run logged the gate's numbers (AUUC kept safely
    positive, so only the Qini comparison decides)."""
    from postloan.models import registry

    name = registry.registered_name(U.model_name(action))
    try:
        client.create_registered_model(name)
    except Exception:  # already registered by an earlier version
        pass
    exp = client.get_experiment_by_name("gate") or client.get_experiment(
        client.create_experiment("gate"))
    run = client.create_run(exp.experiment_id)
    for k, v in {"gate_qini": qini, "gate_qini_se": qini_se, "gate_auuc": 0.1,
                 "gate_auuc_se": 0.01, "n_heldout": 500}.items():
        client.log_metric(run.info.run_id, k, v)
    client.set_terminated(run.info.run_id)
    return str(client.create_model_version(name, f"runs:/{run.info.run_id}/m",
                                           run.info.run_id).version)


@pytest.mark.integration
def test_uplift_gate_compares_with_the_champion_within_the_noise(tmp_path):
    """A challenger whose held-out Qini is below the champion's by less than the noise of
    the two (1.645 x combined se) replaces it; the former fixed 0.002 margin kept the
    champion on a sampling difference. One reliably below it is refused."""
    from postloan.models import registry

    client = registry.configure(f"sqlite:///{tmp_path / 'mlflow.db'}")
    action = "payment_reminder"
    name = registry.registered_name(U.model_name(action))

    def champion() -> str:
        return str(client.get_model_version_by_alias(name, registry.CHAMPION).version)

    v1 = _register_uplift_version(client, action, 0.020, 0.012)
    assert registry.uplift_gate(client, action, v1).promoted and champion() == v1
    # 0.008 below the champion, against a combined se of 0.017: noise, promoted.
    v2 = _register_uplift_version(client, action, 0.012, 0.012)
    d = registry.uplift_gate(client, action, v2)
    assert d.promoted and champion() == v2
    assert d.champion_qini_se == pytest.approx(0.012)
    assert d.qini_tolerance == pytest.approx(registry.UPLIFT_GATE_Z * np.hypot(0.012, 0.012))
    assert "combined standard error" in d.reason
    # 0.06 below a precise champion (se 0.005 each): reliably worse, refused.
    v3 = _register_uplift_version(client, action, 0.072, 0.005)
    assert registry.uplift_gate(client, action, v3).promoted and champion() == v3
    v4 = _register_uplift_version(client, action, 0.012, 0.005)
    d = registry.uplift_gate(client, action, v4)
    assert not d.promoted and champion() == v3 and "worse than champion v" in d.reason
    assert client.get_model_version(name, v4).tags["gate_promoted"] == "False"
    # A fixed margin is still honoured when asked for.
    v5 = _register_uplift_version(client, action, 0.069, 0.005)
    assert not registry.uplift_gate(client, action, v5, qini_tolerance=0.002).promoted


def test_outcomes_seen_until_is_the_last_training_or_heldout_date_plus_the_horizon():
    """What `evaluate-policy` warns about: a champion trained on the whole book (as `make
    demo` does) has seen outcomes after an earlier replay's as-of."""
    train = [f"{d:%Y-%m-%d}" for d in pd.date_range("2024-01-31", periods=9, freq="ME")]
    held = ["2024-10-31", "2024-11-30", "2024-12-31"]
    b = U.UpliftBundle("payment_reminder", {}, {"splits": {"train": train, "heldout": held}})
    assert U.outcomes_seen_until(b) == pd.Timestamp("2025-12-31")
    assert U.outcomes_seen_until(U.UpliftBundle("payment_reminder", {}, {"splits": {
        "train": train[:3], "heldout": []}})) == pd.Timestamp("2025-03-31")
    assert U.outcomes_seen_until(U.UpliftBundle("payment_reminder", {}, {})) is None


@pytest.mark.integration
def test_evaluate_policy_says_when_the_champions_saw_the_replays_future(tmp_path):
    """`make demo` trains the uplift models on the whole book; a replay from an earlier
    as-of then judges them on outcomes they learned from, and the command says so."""
    import subprocess
    import sys
    from pathlib import Path

    from conftest import cli_env

    bin_ = Path(sys.executable).parent / "postloan"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(bin_), *args], cwd=tmp_path, env=cli_env(tmp_path),
                              capture_output=True, text=True, timeout=900)

    r = run("generate", "--customers", "1500", "--months", "20", "--seed", "3")
    assert r.returncode == 0, r.stderr
    r = run("train", "--target", "uplift")
    assert r.returncode == 0, r.stderr
    r = run("evaluate-policy", "--as-of", "2023-06-30", "--capacity", "30", "--seeds", "1",
            "--scores", "truth")
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())  # rich wraps long lines
    assert "learned from outcomes up to" in said and "after the as-of 2023-06-30" in said


def test_rows_not_randomised_are_left_out_of_the_training_set(small_tables):
    """The monthly cycle logs its over-capacity customers with propensity 0 (never
    contacted): they carry no contrast, and a propensity of 0 or 1 would stop the
    learners, so the training set leaves them out and keeps the randomised rows."""
    log = U.outreach_log(small_tables["interactions"])
    as_of = sorted(log["as_of"].unique())[-14]
    month = log[log["as_of"] == as_of].copy()
    assert len(month) > 20
    ids = month["customer_id"].to_numpy()
    month.loc[month["customer_id"].isin(ids[:5]), ["treated", "propensity"]] = [0, 0.0]
    month.loc[month["customer_id"].isin(ids[5:10]), ["treated", "propensity"]] = [1, 1.0]
    rows = U.training_set(small_tables, month, [as_of])
    assert not set(ids[:10]) & set(rows["customer_id"])
    assert len(rows) > 0 and rows["propensity"].between(0, 1, inclusive="neither").all()
    assert set(rows["customer_id"]) <= set(ids[10:])
