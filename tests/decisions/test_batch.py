"""The one batch scoring step (postloan.decisions.batch) and the paths pinned to it.

Stress scoring, chunked scoring and the service's array paths (reason codes, the
early-warning order) must give the batch numbers for the same inputs: checked here
directly, not only end to end.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from postloan.data import io
from postloan.data.features import FEATURE_NAMES, build_features, features_from_records
from postloan.data.snapshot import build_snapshot, to_json_record
from postloan.decisions import batch, strategy
from postloan.errors import ConfigError, DataValidationError
from postloan.models import explain, store
from postloan.operations.stress import apply_scenario, compare, load_scenario, stress_decisions

AS_OF = "2024-06-30"


@pytest.fixture(scope="module")
def snap(small_tables) -> pd.DataFrame:
    return build_snapshot(small_tables, AS_OF, with_labels=False)


def fake_scores(snap: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Probabilities tied to the days past due, plus noise: every warning level shows up."""
    rng = np.random.default_rng(seed)
    n = len(snap)
    logit = -4.0 + 0.06 * snap["dpd_current"].to_numpy(dtype="float64") + rng.normal(0, 1.5, n)
    return pd.DataFrame({"customer_id": snap["customer_id"].to_numpy(),
                         "pd_12m": 1.0 / (1.0 + np.exp(-logit)),
                         "p_churn_6m": rng.beta(1.0, 6.0, n),
                         "p_dissatisfied_3m": rng.beta(1.2, 5.0, n)})


# ------------------------------------------------------------------- early warnings
def test_early_warnings_order_and_filter():
    d = pd.DataFrame({"customer_id": [10, 11, 12, 13, 14, 15],
                      "warning_level": pd.Categorical(
                          ["yellow", "red", "green", "red", "orange", "yellow"],
                          categories=strategy.LEVELS, ordered=True),
                      "warning_rank": [2, 2, 1, 1, 1, 1]})
    assert strategy.early_warnings(d, "yellow").tolist() == [3, 1, 4, 5, 0]
    assert strategy.early_warnings(d, "orange").tolist() == [3, 1, 4]
    assert strategy.early_warnings(d, "red").tolist() == [3, 1]
    assert strategy.early_warnings(d, "green").tolist() == [3, 1, 4, 5, 0, 2]
    # The service passes plain label columns: same answer.
    cols = {"warning_level": d["warning_level"].astype(str).tolist(),
            "warning_rank": d["warning_rank"].to_numpy()}
    assert strategy.early_warnings(cols, "yellow").tolist() == [3, 1, 4, 5, 0]
    assert strategy.early_warnings(d.iloc[:0], "yellow").tolist() == []


def test_early_warnings_errors_name_the_problem():
    d = pd.DataFrame({"warning_level": ["red", "purple"], "warning_rank": [1, 1]})
    with pytest.raises(DataValidationError, match="warning_level.*unknown warning level"):
        strategy.early_warnings(d)
    with pytest.raises(DataValidationError, match="warning_rank"):
        strategy.early_warnings(d.drop(columns="warning_rank"))
    with pytest.raises(ConfigError, match="min_level"):
        strategy.early_warnings(d.iloc[:1], "amber")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_early_warnings_same_for_frames_and_service_columns(snap, seed):
    """apply_strategy (batch) and decide (the service) give the same warning list."""
    rows = snap.sample(300, random_state=seed).reset_index(drop=True)
    scores = fake_scores(rows, seed)
    frame = strategy.apply_strategy(scores, rows)
    cols = strategy.decide({c: scores[c].to_numpy() for c in scores.columns},
                           {c: rows[c].to_numpy() for c in rows.columns})
    for level in strategy.LEVELS:
        a = strategy.early_warnings(frame, level)
        assert a.tolist() == strategy.early_warnings(cols, level).tolist()
        # Most urgent first: level descending, then rank; nothing below `level`.
        got = frame.iloc[a]
        codes = got["warning_level"].cat.codes.to_numpy()
        assert (codes >= strategy.LEVELS.index(level)).all()
        assert len(a) == int((frame["warning_level"].cat.codes
                              >= strategy.LEVELS.index(level)).sum())
        keys = list(zip(-codes, got["warning_rank"], strict=True))
        assert keys == sorted(keys)
    assert len(strategy.early_warnings(frame, "red")) > 0


# ------------------------------------------------------------------- reason codes
@pytest.fixture(scope="module")
def booster(small_tables) -> lgb.Booster:
    s = build_snapshot(small_tables, "2023-12-31")
    s = s[s["default_12m"].notna()]
    X = build_features(s)
    return lgb.train({"objective": "binary", "num_leaves": 15, "learning_rate": 0.2,
                      "min_data_in_leaf": 20, "verbose": -1, "seed": 0, "deterministic": True,
                      "num_threads": 1}, lgb.Dataset(X, s["default_12m"].astype(int)), 25)


def test_reason_codes_array_equals_reason_codes(booster, snap):
    """The service's array path gives the batch reasons, value for value."""
    rows = snap.head(150)
    X = build_features(rows)
    contrib = explain.contributions(booster, X)
    frames = explain.reason_codes("default_risk", contrib, X, k=3)
    Xa = features_from_records([to_json_record(r) for r in rows.to_dict("records")])
    np.testing.assert_array_equal(Xa, X.to_numpy(dtype="float64"))
    ca = explain.contributions_array(booster, Xa)[:, :-1]
    arrays = explain.reason_codes_array("default_risk", ca, Xa, FEATURE_NAMES, k=3)
    assert arrays == frames
    assert any(r["up"] for r in frames) and any(r["down"] for r in frames)
    # Contributions are matched by name, not position.
    shuffled = contrib[list(reversed(contrib.columns))]
    assert explain.reason_codes("default_risk", shuffled, X, k=3) == frames


def test_reason_codes_ties_zeros_and_missing_values():
    feats = list(FEATURE_NAMES[:4])
    c = np.array([[0.5, -0.2, 0.5, 0.0]])
    x = np.array([[1.0, np.nan, 3.0, 4.0]])
    arrays = explain.reason_codes_array("churn", c, x, feats, k=3)
    frames = explain.reason_codes("churn", pd.DataFrame(c, columns=feats),
                                  pd.DataFrame(x, columns=feats), k=3)
    assert arrays == frames
    (row,) = arrays
    assert [r["feature"] for r in row["up"]] == [feats[0], feats[2]]  # tie: feature order
    assert [r["feature"] for r in row["down"]] == [feats[1]]  # a zero is no reason
    assert row["down"][0]["value"] is None


# ------------------------------------------------------------------- batch step
@pytest.fixture(scope="module")
def bundles(trained) -> dict:
    return store.load_bundles_from_dir(trained["root"] / "models")


@pytest.mark.integration
def test_score_and_decide_in_chunks_equals_one_pass(bundles, snap, monkeypatch):
    whole = batch.score_and_decide(snap, bundles)
    steps: list[int] = []
    monkeypatch.setattr(batch, "SCORE_CHUNK", 333)
    chunked = batch.score_and_decide(snap, bundles, progress=steps.append)
    assert len(steps) == -(-len(snap) // 333) and sum(steps) == len(snap)
    for name in ("scores", "decisions", "queue"):
        pd.testing.assert_frame_equal(whole[name], chunked[name])
    # The composed steps, called one by one, give the same decisions.
    scored = batch.score_snapshot(bundles, snap)
    direct = strategy.apply_strategy(scored, snap)
    pd.testing.assert_frame_equal(
        whole["decisions"][list(direct.columns)].reset_index(drop=True), direct)
    assert set(whole["decisions"]["version_churn"]) == {"1"}
    assert "churn_top_reasons" in whole["scores"] and "reasons_churn" not in whole["scores"]


@pytest.mark.integration
def test_stress_scoring_is_batch_scoring(bundles, small_book, tmp_path):
    """Stress 'before' = `postloan score` for the same book and date; 'after' = the batch
    step on the stressed snapshot; the stress table is built from exactly these."""
    from pipelines.score import run_score
    from pipelines.stress import run_stress

    scored = run_score(small_book, AS_OF, tmp_path / "score", bundles)["decisions"]
    snap = build_snapshot(io.read_tables(small_book), AS_OF, with_labels=False)
    scenario = load_scenario("severe")
    before, after = stress_decisions(snap, scenario, bundles)
    numbers = ["customer_id", "pd_12m", "p_churn_6m", "p_dissatisfied_3m", "risk_grade",
               "expected_loss", "warning_level", "warning_rank", "warning_score", "segment",
               "net_benefit", "recommended_action", "decision_basis"]
    pd.testing.assert_frame_equal(before[numbers], scored[numbers])
    stressed = batch.score_and_decide(apply_scenario(snap, scenario), bundles,
                                      with_reasons=False)["decisions"]
    pd.testing.assert_frame_equal(after, stressed)
    assert (after["pd_12m"] != before["pd_12m"]).any()  # the scenario bites
    table = run_stress(small_book, AS_OF, scenario, bundles, tmp_path / "stress")
    pd.testing.assert_frame_equal(table, compare(before, after))
