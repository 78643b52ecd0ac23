"""Model fitting: determinism, split validation, monotone constraints, the baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from postloan.errors import DataValidationError
from postloan.training import (
    LgbmParams,
    QuantileClipper,
    baseline_coefficients,
    fit_baseline,
    fit_lightgbm,
)

FAST = LgbmParams(
    learning_rate=0.1,
    num_leaves=7,
    min_child_samples=20,
    max_rounds=60,
    early_stopping_rounds=20,
    num_threads=1,
)


def make_frame(n: int = 800, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two numeric features (x1 with a non-monotone effect), one categorical code column."""
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(0, 10, n)
    x2 = rng.normal(0, 1, n)
    cat = rng.integers(0, 4, n).astype("float64")
    logit = (
        -1.0
        + 0.4 * x1
        - 1.5 * np.sin(x1)
        + 0.8 * x2
        + np.array([0, 0.5, -0.5, 1])[cat.astype(int)]
    )
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype("float64")
    return pd.DataFrame({"x1": x1, "x2": x2, "cat": cat}), y


@pytest.fixture(scope="module")
def splits() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    X, y = make_frame()
    return X.iloc[:600], y[:600], X.iloc[600:], y[600:]


def test_to_lgb_is_deterministic_binary_and_seeded():
    p = LgbmParams(seed=7).to_lgb()
    assert p["objective"] == "binary" and p["metric"] == "auc"
    assert p["deterministic"] and p["force_row_wise"] and p["verbose"] == -1
    assert p["seed"] == p["bagging_seed"] == p["feature_fraction_seed"] == 7
    assert "max_rounds" not in p and "scale_pos_weight" not in p
    assert LgbmParams(scale_pos_weight=3.0).to_lgb()["scale_pos_weight"] == 3.0


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_same_data_and_params_give_identical_model_text(splits, seed):
    X_tr, y_tr, X_va, y_va = splits
    params = LgbmParams(**{**FAST.__dict__, "seed": seed})
    a = fit_lightgbm(X_tr, y_tr, X_va, y_va, params, ["cat"])
    b = fit_lightgbm(X_tr, y_tr, X_va, y_va, params, ["cat"])
    assert a.model_to_string() == b.model_to_string()
    assert 1 <= a.best_iteration <= FAST.max_rounds


def test_categorical_codes_are_passed_by_name(splits):
    X_tr, y_tr, X_va, y_va = splits
    booster = fit_lightgbm(X_tr, y_tr, X_va, y_va, FAST, ["cat", "not_a_column"])
    assert "[categorical_feature: 2]" in booster.model_to_string()
    assert booster.dump_model()["feature_infos"]["cat"]["values"]  # category list, not a range


@pytest.mark.parametrize(
    ("split", "which"),
    [("train", "positive"), ("train", "negative"), ("valid", "positive"), ("valid", "negative")],
)
def test_single_class_split_is_refused_and_named(splits, split, which):
    X_tr, y_tr, X_va, y_va = splits
    one = np.zeros if which == "positive" else np.ones
    if split == "train":
        y_tr = one(len(y_tr))
    else:
        y_va = one(len(y_va))
    with pytest.raises(DataValidationError, match=f"'{split}'.*no {which} labels") as ei:
        fit_lightgbm(X_tr, y_tr, X_va, y_va, FAST)
    assert ei.value.table == split


def test_bad_inputs_are_refused(splits):
    X_tr, y_tr, X_va, y_va = splits
    with pytest.raises(DataValidationError, match="no rows") as ei:
        fit_lightgbm(X_tr.head(0), y_tr[:0], X_va, y_va, FAST)
    assert ei.value.table == "train"
    with pytest.raises(DataValidationError, match="0 or 1") as ei:
        fit_lightgbm(X_tr, y_tr, X_va, np.where(y_va == 1, 2.0, 0.0), FAST)
    assert ei.value.table == "valid"
    with pytest.raises(DataValidationError, match="columns differ.*missing \\['x2'\\]"):
        fit_lightgbm(X_tr, y_tr, X_va.drop(columns="x2"), y_va, FAST)
    with pytest.raises(DataValidationError, match="unknown features"):
        fit_lightgbm(X_tr, y_tr, X_va, y_va, FAST, monotone={"nope": 1})
    with pytest.raises(DataValidationError, match="-1, 0 or \\+1"):
        fit_lightgbm(X_tr, y_tr, X_va, y_va, FAST, monotone={"x1": 2})


def _curves(booster, X: pd.DataFrame, feature: str) -> np.ndarray:
    """Predictions of 50 rows while only `feature` sweeps its range: (rows, grid)."""
    grid = np.linspace(X[feature].min() - 1, X[feature].max() + 1, 101)
    rows = X.head(50)
    out = []
    for v in grid:
        out.append(booster.predict(rows.assign(**{feature: v})))
    return np.column_stack(out)


@pytest.mark.parametrize(("direction", "feature"), [(1, "x1"), (-1, "x2")])
def test_monotone_constraint_is_honoured(splits, direction, feature):
    X_tr, y_tr, X_va, y_va = splits
    params = LgbmParams(**{**FAST.__dict__, "max_rounds": 150, "early_stopping_rounds": 150})
    booster = fit_lightgbm(X_tr, y_tr, X_va, y_va, params, ["cat"], {feature: direction})
    steps = np.diff(_curves(booster, X_va, feature), axis=1) * direction
    assert (steps >= -1e-12).all()
    # The unconstrained model does follow x1's wiggles: the constraint did the work.
    if feature == "x1":
        free = fit_lightgbm(X_tr, y_tr, X_va, y_va, params, ["cat"])
        assert (np.diff(_curves(free, X_va, "x1"), axis=1) < -1e-6).any()


def test_quantile_clipper_learns_bounds_on_train_and_keeps_nan():
    X = pd.DataFrame({"a": np.arange(101, dtype="float64"), "b": np.nan})
    clip = QuantileClipper().fit(X)
    out = clip.transform(pd.DataFrame({"a": [-50.0, 50.0, 500.0, np.nan], "b": 1.0}))
    assert out[:, 0][:3].tolist() == [1.0, 50.0, 99.0] and np.isnan(out[3, 0])
    assert out[:, 1].tolist() == [1.0] * 4  # all-NaN column: no bounds
    assert clip.get_feature_names_out().tolist() == ["a", "b"]


def test_baseline_handles_nan_and_unseen_categories(splits):
    X_tr, y_tr, X_va, _ = splits
    X_tr = X_tr.assign(amount=np.r_[np.nan, -5.0, np.exp(np.linspace(0, 12, len(X_tr) - 2))])
    X_tr.loc[X_tr.index[:30], "x2"] = np.nan
    X_tr.loc[X_tr.index[30:40], "cat"] = np.nan
    model = fit_baseline(X_tr, y_tr, ["cat"], ["amount"], seed=0)
    X_new = X_va.assign(amount=1e9).head(20).copy()
    X_new.iloc[0, X_new.columns.get_loc("cat")] = 9.0  # never seen in training
    X_new.iloc[1, X_new.columns.get_loc("x2")] = np.nan
    X_new.iloc[2, X_new.columns.get_loc("cat")] = np.nan
    p = model.predict_proba(X_new)[:, 1]
    assert p.shape == (20,) and np.isfinite(p).all() and ((p > 0) & (p < 1)).all()

    coef = baseline_coefficients(model)
    assert list(coef.columns) == ["feature", "coefficient"]
    assert coef["feature"].iloc[0] == "(intercept)"
    assert coef["coefficient"].map(type).eq(float).all()
    assert {"x1", "x2", "amount", "missingindicator_x2"} <= set(coef["feature"])
    assert any(f.startswith("cat_") for f in coef["feature"])


def test_baseline_ranks_better_than_chance(splits):
    X_tr, y_tr, X_va, y_va = splits
    from sklearn.metrics import roc_auc_score

    model = fit_baseline(X_tr, y_tr, ["cat"])
    assert roc_auc_score(y_va, model.predict_proba(X_va)[:, 1]) > 0.7


def test_baseline_refuses_single_class_training_labels(splits):
    X_tr, y_tr, _, _ = splits
    with pytest.raises(DataValidationError, match="'train'.*no positive labels"):
        fit_baseline(X_tr, np.zeros(len(y_tr)))
