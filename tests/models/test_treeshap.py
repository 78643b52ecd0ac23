"""postloan.models.treeshap equals LightGBM's own TreeSHAP (pred_contrib) on real boosters.

Every test trains a real LightGBM booster (no mocks) and compares the explainer with
``booster.predict(X, pred_contrib=True)`` element by element, plus additivity
(contributions + bias = raw margin), and its margin predictor with
``booster.predict(X, raw_score=True)`` bit for bit (``np.array_equal``).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from postloan.data.features import FEATURE_NAMES
from postloan.data.snapshot import build_snapshot
from postloan.errors import DataValidationError
from postloan.models import explain
from postloan.models.explain import BIAS
from postloan.models.store import load_bundles_from_dir
from postloan.models.treeshap import TreeExplainer, UnsupportedModelError

ATOL = 1e-9


def assert_equal_to_lightgbm(booster: lgb.Booster, X: np.ndarray,
                             explainer: TreeExplainer | None = None) -> np.ndarray:
    theirs = booster.predict(X, pred_contrib=True)
    if explainer is None:
        # Both paths: tables, and per-row quadrature for every leaf (no tables).
        dump = booster.dump_model(num_iteration=booster.best_iteration or -1)
        no_tables = TreeExplainer(dump, max_table_depth=0).contributions(X)
        np.testing.assert_allclose(no_tables, theirs, rtol=0, atol=ATOL)
        explainer = TreeExplainer.from_booster(booster)
    ours = explainer.contributions(X)
    assert ours.shape == theirs.shape == (len(X), booster.num_feature() + 1)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=ATOL)
    margin = booster.predict(X, raw_score=True)
    np.testing.assert_allclose(ours.sum(axis=1), margin, rtol=0, atol=ATOL)
    assert_margin_identical(booster, X, explainer)
    return ours


def assert_margin_identical(booster: lgb.Booster, X: np.ndarray,
                            explainer: TreeExplainer | None = None) -> np.ndarray:
    """The margin predictor gives LightGBM's raw scores bit for bit, at any thread count
    and memory layout."""
    explainer = explainer or TreeExplainer.from_booster(booster)
    theirs = booster.predict(X, raw_score=True)
    ours = explainer.margin(X)
    assert ours.shape == theirs.shape == (len(X),) and ours.dtype == np.float64
    assert np.array_equal(ours, theirs), np.abs(ours - theirs).max()
    for threads in (1, 2):
        assert np.array_equal(explainer.margin(X, num_threads=threads), theirs)
    assert np.array_equal(explainer.margin(np.asfortranarray(X)), theirs)
    # Small calls (the service's) walk the trees instead of using the leaf masks.
    few = min(len(X), 40)
    singles = [explainer.margin(X[i:i + 1]) for i in range(few)]
    assert np.array_equal(np.concatenate(singles or [np.empty(0)]), theirs[:few])
    return ours


def train(X, y, params: dict, rounds: int = 40, **dataset) -> lgb.Booster:
    base = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 1,
            "deterministic": True}
    return lgb.train({**base, **params}, lgb.Dataset(X, y, **dataset), rounds)


def thresholds(booster: lgb.Booster) -> dict[int, list[float]]:
    """Numerical split thresholds per feature (to score rows exactly on them)."""
    out: dict[int, list[float]] = {}
    stack = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            if node["decision_type"] == "<=":
                out.setdefault(node["split_feature"], []).append(float(node["threshold"]))
            stack += [node["left_child"], node["right_child"]]
    return out


def on_thresholds(booster: lgb.Booster, X: np.ndarray, rng) -> np.ndarray:
    """Copies of `X` rows with values set exactly on split thresholds and just above."""
    X = X.copy()
    for f, ts in thresholds(booster).items():
        rows = rng.choice(len(X), size=min(len(X), 2 * len(ts)), replace=False)
        vals = np.array(ts + [np.nextafter(t, np.inf) for t in ts])
        X[rows, f] = vals[: len(rows)]
    return X


@pytest.fixture(params=[0, 1, 2])
def seed(request) -> int:
    return request.param


def numeric_data(seed: int, n: int = 3_000, p: int = 8, nan_share: float = 0.1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[rng.random((n, p)) < nan_share] = np.nan
    logit = np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2])
    logit += 1.5 * np.isnan(X[:, 3])
    y = (logit + rng.normal(size=n) > 0).astype(int)
    return X, y, rng


def test_nan_in_training_and_scoring(seed):
    X, y, rng = numeric_data(seed)
    b = train(X, y, {"num_leaves": 15, "min_child_samples": 10}, rounds=60)
    assert any(n == "NaN" for n in _missing_types(b))
    Xs = on_thresholds(b, X[:500], rng)
    Xs[rng.random(Xs.shape) < 0.2] = np.nan
    Xs[:5] = np.nan  # all-missing rows
    assert_equal_to_lightgbm(b, Xs)


def test_zero_as_missing(seed):
    X, y, rng = numeric_data(seed, nan_share=0.0)
    X[rng.random(X.shape) < 0.25] = 0.0
    b = train(X, y, {"num_leaves": 15, "min_child_samples": 10, "zero_as_missing": True})
    assert "Zero" in _missing_types(b)
    Xs = on_thresholds(b, X[:400], rng)
    Xs[:40, :] = 0.0
    Xs[40:80, :] = np.nan
    Xs[80:120, :] = rng.choice([1e-40, -1e-36, 1e-35, -1e-35, 2e-35, -0.0], size=(40, 8))
    assert_equal_to_lightgbm(b, Xs)


def test_use_missing_false_routes_nan_as_zero(seed):
    X, y, rng = numeric_data(seed, nan_share=0.0)
    b = train(X, y, {"num_leaves": 15, "min_child_samples": 10, "use_missing": False})
    assert set(_missing_types(b)) == {"None"}
    Xs = X[:300].copy()
    Xs[rng.random(Xs.shape) < 0.3] = np.nan
    Xs[:20] = 0.0
    assert_equal_to_lightgbm(b, Xs)


def test_categorical_with_unseen_negative_and_nan_categories(seed):
    rng = np.random.default_rng(seed)
    n = 4_000
    X = np.column_stack([rng.integers(0, 12, n), rng.integers(0, 40, n),
                         rng.normal(size=n), rng.normal(size=n)]).astype(float)
    X[rng.random(n) < 0.05, 0] = np.nan
    effect = np.isin(X[:, 0], [1, 3, 5, 7]) + 0.8 * np.isin(X[:, 1], [2, 33, 37]) + X[:, 2]
    y = (effect + rng.normal(size=n) > 1).astype(int)
    b = train(X, y, {"num_leaves": 15, "min_child_samples": 10, "min_data_per_group": 5,
                     "cat_smooth": 1, "max_cat_to_onehot": 4}, categorical_feature=[0, 1])
    assert any(t["num_cat"] > 0 for t in b.dump_model()["tree_info"])
    Xs = X[:600].copy()
    odd = [np.nan, -1, -3, -0.5, 0.5, 2.7, 12, 31, 32, 33, 64, 99, 1e10, -1e10, np.inf, -np.inf]
    Xs[: len(odd), 0] = odd
    Xs[len(odd): 2 * len(odd), 1] = odd
    assert_equal_to_lightgbm(b, Xs)


def test_deep_trees_beyond_the_table_cap_use_the_exact_fallback():
    X, y, rng = numeric_data(5, n=4_000, p=12, nan_share=0.02)
    b = train(X, y, {"num_leaves": 128, "min_child_samples": 2, "max_depth": -1,
                     "min_sum_hessian_in_leaf": 0}, rounds=20)
    Xs = X[:300]
    full = TreeExplainer(b.dump_model(), max_table_depth=64, max_table_bytes=2**30)
    capped = TreeExplainer(b.dump_model(), max_table_depth=3)
    budget = TreeExplainer(b.dump_model(), max_table_bytes=64 * 8)
    assert capped.n_table_leaves < capped.n_leaves and capped._max_d > 3
    assert budget.table_bytes <= 64 * 8 and budget.n_table_leaves < budget.n_leaves
    for explainer in (full, capped, budget):
        assert_equal_to_lightgbm(b, Xs, explainer)
    nothing = TreeExplainer(b.dump_model(), max_table_depth=0)
    assert nothing.n_table_leaves == 0
    assert_equal_to_lightgbm(b, Xs, nothing)


def test_single_leaf_trees_give_bias_only():
    X, y, _ = numeric_data(0, n=200)
    b = train(X, y, {"min_data_in_leaf": 150}, rounds=5)
    assert all(t["num_leaves"] == 1 for t in b.dump_model()["tree_info"])
    ours = assert_equal_to_lightgbm(b, X[:10])
    assert np.all(ours[:, :-1] == 0)


def test_single_row_empty_input_and_threads():
    X, y, rng = numeric_data(3)
    b = train(X, y, {"num_leaves": 31, "min_child_samples": 5}, rounds=30)
    e = TreeExplainer.from_booster(b)
    assert_equal_to_lightgbm(b, X[:1])
    empty = e.contributions(np.empty((0, 8)))
    assert empty.shape == (0, 9)
    assert e.margin(np.empty((0, 8))).shape == (0,)
    # One row: the service's call.
    assert_margin_identical(b, X[:1])
    assert np.array_equal(e.margin(X[:1]), b.predict(X[:1], raw_score=True))
    # Rows are independent: any thread count gives bit-identical values.
    Xs = X[:1_000]
    one, two = e.contributions(Xs, num_threads=1), e.contributions(Xs, num_threads=2)
    assert np.array_equal(one, two)
    np.testing.assert_allclose(one, b.predict(Xs, pred_contrib=True), rtol=0, atol=ATOL)
    # A Fortran-ordered matrix (what DataFrame.to_numpy gives) yields the same values.
    assert np.array_equal(e.contributions(np.asfortranarray(Xs)), one)


def test_concurrent_callers_get_their_own_rows():
    # The service calls from several request threads at once; kernels share no state.
    from concurrent.futures import ThreadPoolExecutor

    X, y, _ = numeric_data(7)
    b = train(X, y, {"num_leaves": 15}, rounds=20)
    e = TreeExplainer.from_booster(b)
    expected = b.predict(X, pred_contrib=True)
    chunks = [X[i: i + 300] for i in range(0, len(X), 300)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(e.contributions, chunks))
        margins = list(pool.map(e.margin, chunks))
    np.testing.assert_allclose(np.vstack(results), expected, rtol=0, atol=ATOL)
    assert np.array_equal(np.concatenate(margins), b.predict(X, raw_score=True))


def test_best_iteration_and_cache_follow_booster_predict():
    X, y, _ = numeric_data(4)
    dtrain = lgb.Dataset(X[:2_000], y[:2_000])
    dvalid = lgb.Dataset(X[2_000:], y[2_000:], reference=dtrain)
    b = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 31, "learning_rate": 0.3,
                   "metric": "auc", "num_threads": 1}, dtrain, 200, valid_sets=[dvalid],
                  callbacks=[lgb.early_stopping(5, verbose=False)], keep_training_booster=True)
    assert 0 < b.best_iteration < b.num_trees()
    e = TreeExplainer.from_booster(b)
    assert e.n_trees == b.best_iteration
    assert TreeExplainer.from_booster(b) is e
    assert_equal_to_lightgbm(b, X[:200])


def test_regression_objective_is_single_output_too():
    X, y, _ = numeric_data(6)
    b = train(X, np.nan_to_num(X[:, 0]) * 3 + y, {"objective": "regression", "num_leaves": 15})
    assert_equal_to_lightgbm(b, X[:200])


def test_margin_with_infinite_huge_and_tiny_values(seed):
    X, y, rng = numeric_data(seed, n=4_000)
    b = train(X, y, {"num_leaves": 31, "min_child_samples": 5}, rounds=50)
    Xs = on_thresholds(b, X[:2_000], rng)
    odd = np.array([np.inf, -np.inf, 1e300, -1e300, 1e301, -1e301, np.finfo(float).max,
                    -np.finfo(float).max, 1e-40, -1e-40, 1e-35, -1e-35, 2e-35, -0.0,
                    np.nextafter(1e-35, 1), np.nan, 5e-324])
    hit = rng.random(Xs.shape) < 0.3
    Xs[hit] = rng.choice(odd, size=int(hit.sum()))
    Xs[: len(odd)] = odd[:, None]  # every odd value in every column
    assert_margin_identical(b, Xs)
    # float32 input, as LightGBM widens it to double.
    with np.errstate(over="ignore"):  # values beyond float32 become +-inf, as intended
        X32 = Xs.astype(np.float32)
    assert np.array_equal(TreeExplainer.from_booster(b).margin(X32),
                          b.predict(X32, raw_score=True))


def test_margin_walks_trees_beyond_64_leaves():
    # Trees of up to 64 leaves use bit masks, larger ones a walk; mixed in one model.
    X, y, rng = numeric_data(8, n=6_000, p=10, nan_share=0.05)
    b = train(X, y, {"num_leaves": 200, "min_child_samples": 3,
                     "min_sum_hessian_in_leaf": 0}, rounds=15)
    e = TreeExplainer.from_booster(b)
    assert not e._tree_qs.all()  # some trees have more than 64 leaves
    assert_margin_identical(b, on_thresholds(b, X[:3_000], rng), e)


def test_margin_is_the_bundle_margin_and_refuses_wrong_shapes(trained, small_tables):
    bundles = load_bundles_from_dir(trained["root"] / "models")
    X = bundles["churn"].features(build_snapshot(small_tables, "2024-06-30"))
    for bundle in bundles.values():
        theirs = bundle.booster.predict(X, raw_score=True)
        assert np.array_equal(bundle.margin(X), theirs)
        assert np.array_equal(bundle.margin(X.to_numpy(), num_threads=2), theirs)
        # Probabilities are unchanged by the switch, bit for bit.
        before = bundle.calibrator.transform(1.0 / (1.0 + np.exp(-theirs)))
        assert np.array_equal(bundle.predict_features(X), before)
        with pytest.raises(DataValidationError, match="65 columns"):
            bundle.margin(X.iloc[:, :5])


def test_trained_models_match_lightgbm(trained, small_tables):
    bundles = load_bundles_from_dir(trained["root"] / "models")
    assert set(bundles) == {"default_risk", "churn", "satisfaction"}
    snap = build_snapshot(small_tables, "2024-06-30")
    for bundle in bundles.values():
        X = bundle.features(snap)
        ours = explain.contributions(bundle.booster, X)
        assert list(ours.columns) == [*FEATURE_NAMES, BIAS]
        theirs = bundle.booster.predict(X.to_numpy(dtype="float64"), pred_contrib=True)
        np.testing.assert_allclose(ours.to_numpy(), theirs, rtol=0, atol=ATOL)
        no_tables = TreeExplainer(bundle.booster.dump_model(), max_table_depth=0)
        np.testing.assert_allclose(no_tables.contributions(X.to_numpy(dtype="float64")),
                                   theirs, rtol=0, atol=ATOL)
        assert bundle.explainer is TreeExplainer.from_booster(bundle.booster)
        assert isinstance(ours, pd.DataFrame) and ours.index.equals(X.index)


def test_multiclass_and_linear_trees_are_refused():
    X, y, rng = numeric_data(0, nan_share=0.0)
    multi = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                      lgb.Dataset(X, rng.integers(0, 3, len(X))), 3)
    with pytest.raises(UnsupportedModelError, match="single-output"):
        TreeExplainer.from_booster(multi)
    linear = train(X, y, {"linear_tree": True, "num_leaves": 4}, rounds=3)
    with pytest.raises(UnsupportedModelError, match="linear"):
        TreeExplainer.from_booster(linear)


def test_wrong_feature_count_is_a_data_error():
    X, y, _ = numeric_data(0)
    e = TreeExplainer.from_booster(train(X, y, {"num_leaves": 4}, rounds=2))
    with pytest.raises(DataValidationError, match="8 columns"):
        e.contributions(X[:, :5])
    with pytest.raises(DataValidationError, match="8 columns"):
        e.contributions(X[0])
    with pytest.raises(DataValidationError, match="8 columns"):
        e.margin(X[:, :5])
    with pytest.raises(DataValidationError, match="8 columns"):
        e.margin(X[0])


def _missing_types(booster: lgb.Booster) -> list[str]:
    out = []
    stack = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            out.append(node["missing_type"])
            stack += [node["left_child"], node["right_child"]]
    return out
