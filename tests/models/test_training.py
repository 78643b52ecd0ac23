"""Model fitting: determinism, split validation, monotone constraints, the baseline (and its
JSON export), the shipped training configuration."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml

from postloan.errors import ConfigError, DataValidationError
from postloan.models.linear import LinearModel
from postloan.models.training import (
    LgbmParams,
    QuantileClipper,
    TrainConfig,
    baseline_coefficients,
    fit_baseline,
    fit_lightgbm,
    load_train_config,
)
from postloan.models.training.fit import export_baseline

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


# ------------------------------------------------------- the baseline as plain numbers
def _messy(splits):
    X_tr, y_tr, X_va, _ = splits
    X_tr = X_tr.assign(amount=np.r_[np.nan, -5.0, np.exp(np.linspace(0, 12, len(X_tr) - 2))],
                       empty=np.nan)
    X_tr.loc[X_tr.index[:30], "x2"] = np.nan
    X_tr.loc[X_tr.index[30:40], "cat"] = np.nan
    X_new = X_va.assign(amount=np.r_[1e9, np.nan, np.linspace(-3, 5e4, len(X_va) - 2)],
                        empty=np.r_[1.0, np.full(len(X_va) - 1, np.nan)]).copy()
    X_new.iloc[0, X_new.columns.get_loc("cat")] = 9.0  # never seen in training
    X_new.iloc[1, X_new.columns.get_loc("x2")] = np.nan
    X_new.iloc[2, X_new.columns.get_loc("cat")] = np.nan
    X_new.iloc[3, X_new.columns.get_loc("x1")] = np.nan  # no missing flag was learned
    return X_tr, y_tr, X_new


def test_exported_baseline_scores_like_the_fitted_pipeline(splits):
    X_tr, y_tr, X_new = _messy(splits)
    pipe = fit_baseline(X_tr, y_tr, ["cat"], ["amount"], seed=0)
    linear = export_baseline(pipe, X_tr)
    np.testing.assert_allclose(linear.margin(X_new), pipe.decision_function(X_new),
                               rtol=0, atol=1e-10)
    p = 1 / (1 + np.exp(-linear.margin(X_new)))
    np.testing.assert_allclose(p, pipe.predict_proba(X_new)[:, 1], rtol=0, atol=1e-12)


def test_exported_baseline_survives_json_bit_for_bit(splits):
    X_tr, y_tr, X_new = _messy(splits)
    linear = export_baseline(fit_baseline(X_tr, y_tr, ["cat"], ["amount"]), X_tr)
    text = json.dumps(linear.to_dict())
    assert "pickle" not in text and json.loads(text)["kind"] == "logistic"
    back = LinearModel.from_dict(json.loads(text))
    assert back == linear
    assert np.array_equal(back.contributions(X_new), linear.contributions(X_new))


def test_linear_contributions_add_up_and_move_only_with_their_feature(splits):
    X_tr, y_tr, X_new = _messy(splits)
    linear = export_baseline(fit_baseline(X_tr, y_tr, ["cat"], ["amount"]), X_tr)
    c = linear.contributions(X_new)
    assert c.shape == (len(X_new), X_new.shape[1] + 1)
    np.testing.assert_allclose(c.sum(axis=1), linear.margin(X_new), rtol=0, atol=1e-12)
    assert np.all(c[:, -1] == c[0, -1])  # one bias: the margin at the training mean
    # At the training mean every contribution averages to zero (coefficient x (z - mean)).
    np.testing.assert_allclose(linear.contributions(X_tr)[:, :-1].mean(axis=0), 0, atol=1e-9)
    moved = X_new.copy()
    moved["x2"] = moved["x2"] + 1.0
    diff = linear.contributions(moved) - c
    j = list(X_new.columns).index("x2")
    assert np.abs(np.delete(diff, j, axis=1)).max() == 0
    assert np.abs(diff[:, j]).max() > 0


def test_linear_model_json_errors_name_the_field():
    with pytest.raises(ConfigError, match="kind"):
        LinearModel.from_dict({"kind": "tree"})
    with pytest.raises(ConfigError, match="intercept"):
        LinearModel.from_dict({"kind": "logistic", "features": ["a"]})


# ---------------------------------------------------------- the shipped training config
def test_shipped_config_holds_every_default():
    shipped = yaml.safe_load(
        resources.files("postloan").joinpath("config/training.yaml").read_text("utf-8"))
    cfg = load_train_config()
    assert cfg == TrainConfig()
    assert cfg.seed == shipped["seed"]
    dr = cfg.models["default_risk"]
    assert dr.monotone == shipped["models"]["default_risk"]["monotone"]
    assert dr.lgbm.num_leaves == shipped["models"]["default_risk"]["lgbm"]["num_leaves"]
    assert cfg.models["churn"].lgbm.num_leaves == shipped["model_defaults"]["lgbm"]["num_leaves"]
    assert cfg.gate.max_ece == shipped["gate"]["max_ece"]
    assert cfg.age_bands.labels == shipped["age_bands"]["labels"]
    assert 0 < dr.probability_floor < dr.probability_ceiling < 1


def test_a_user_yaml_is_laid_over_the_shipped_one(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("seed: 7\nmodels:\n  default_risk:\n    lgbm:\n      max_rounds: 60\n"
                 "  churn:\n    family: logistic\nsplits:\n  n_oot: 2\n")
    cfg, base = load_train_config(p), load_train_config()
    assert cfg.seed == 7 and cfg.splits.n_oot == 2
    assert cfg.splits.n_train == base.splits.n_train
    dr = cfg.models["default_risk"]
    assert dr.lgbm.max_rounds == 60
    assert dr.lgbm.num_leaves == base.models["default_risk"].lgbm.num_leaves
    assert dr.monotone == base.models["default_risk"].monotone
    assert cfg.models["churn"].family == "logistic"
    assert cfg.models["satisfaction"] == base.models["satisfaction"]


@pytest.mark.parametrize(("text", "key"), [
    ("models:\n  churn:\n    lgbm:\n      num_leaves: 1\n", "models.churn.lgbm.num_leaves"),
    ("models:\n  churn:\n    lgbm:\n      leaves: 8\n", "models.churn.lgbm.leaves"),
    ("models:\n  churn:\n    family: forest\n", "models.churn.family"),
    ("models:\n  default_risk:\n    monotone:\n      dpd_current: 2\n",
     "models.default_risk.monotone.dpd_current"),
    ("models:\n  fraud: {}\n", "fraud"),
    ("gate:\n  max_ece: -1\n", "gate.max_ece"),
    ("age_bands:\n  edges: [0, 30, 20]\n", "age_bands"),
    ("splits:\n  n_oot: 0\n", "splits.n_oot"),
    ("model_defaults:\n  calibration: platt\n", "model_defaults"),
    ("- a list\n", "mapping"),
])
def test_config_errors_name_the_key(tmp_path, text, key):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_train_config(p)
    assert key in str(e.value) and str(p) in str(e.value)
