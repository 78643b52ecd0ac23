"""Model fitting on feature frames: LightGBM with early stopping, and a fair baseline.

No MLflow and no file I/O here: the pipelines own those.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from postloan.errors import DataValidationError


@dataclass
class LgbmParams:
    """LightGBM settings (binary objective, deterministic, seeded)."""

    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    max_rounds: int = 2000
    early_stopping_rounds: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    min_split_gain: float = 0.0
    scale_pos_weight: float | None = None
    seed: int = 42
    num_threads: int = 2

    def to_lgb(self) -> dict:
        p = asdict(self)
        for k in ("max_rounds", "early_stopping_rounds", "scale_pos_weight"):
            p.pop(k)
        p.update(objective="binary", metric="auc", deterministic=True, force_row_wise=True,
                 verbose=-1, feature_fraction_seed=self.seed, bagging_seed=self.seed,
                 data_random_seed=self.seed)
        if self.scale_pos_weight is not None:
            p["scale_pos_weight"] = self.scale_pos_weight
        return p


def check_split(name: str, X: pd.DataFrame, y) -> np.ndarray:
    """Validate one split's features and labels; return labels as float array."""
    y = np.asarray(y, dtype="float64")
    if len(X) == 0:
        raise DataValidationError(name, "split has no rows (no data at its as-of dates?)")
    if len(y) != len(X):
        raise DataValidationError(name, f"{len(X)} feature rows but {len(y)} labels", "label")
    if np.isnan(y).any() or not np.isin(y, (0, 1)).all():
        raise DataValidationError(name, "labels must be 0 or 1", "label")
    if y.sum() == 0:
        raise DataValidationError(name, f"split has no positive labels ({len(y)} rows)", "label")
    if y.sum() == len(y):
        raise DataValidationError(name, f"split has no negative labels ({len(y)} rows)", "label")
    return y


def fit_lightgbm(X_train: pd.DataFrame, y_train, X_valid: pd.DataFrame, y_valid,
                 params: LgbmParams | None = None, categorical_features=(),
                 monotone: dict[str, int] | None = None) -> lgb.Booster:
    """Train a binary LightGBM booster with early stopping on the validation split.

    Args:
        X_train, y_train: training features and 0/1 labels.
        X_valid, y_valid: validation split for early stopping.
        params: settings; defaults if None.
        categorical_features: names of columns holding integer category codes.
        monotone: optional {feature: +1 | -1} constraints (e.g. more DPD never lowers PD).

    Raises:
        DataValidationError: a split is empty, has one class only, or columns differ.
    """
    params = params or LgbmParams()
    ytr = check_split("train", X_train, y_train)
    yva = check_split("valid", X_valid, y_valid)
    if list(X_train.columns) != list(X_valid.columns):
        raise DataValidationError("valid", "columns differ from the training split")
    p = params.to_lgb()
    if monotone:
        unknown = set(monotone) - set(X_train.columns)
        if unknown:
            raise DataValidationError("config", f"monotone constraint on unknown features "
                                      f"{sorted(unknown)}", "monotone")
        p["monotone_constraints"] = [int(monotone.get(c, 0)) for c in X_train.columns]
        p["monotone_constraints_method"] = "advanced"
    cats = [c for c in categorical_features if c in X_train.columns]
    dtrain = lgb.Dataset(X_train, ytr, categorical_feature=cats or "auto", free_raw_data=False)
    dvalid = lgb.Dataset(X_valid, yva, reference=dtrain, categorical_feature=cats or "auto")
    return lgb.train(p, dtrain, num_boost_round=params.max_rounds, valid_sets=[dvalid],
                     callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)])


class QuantileClipper(BaseEstimator, TransformerMixin):
    """Clip each column to its training 1st/99th percentiles (NaN kept)."""

    def __init__(self, lower: float = 0.01, upper: float = 0.99):
        self.lower = lower
        self.upper = upper

    def fit(self, X, y=None):
        X = np.asarray(X, dtype="float64")
        self.low_ = np.nanquantile(X, self.lower, axis=0)
        self.high_ = np.nanquantile(X, self.upper, axis=0)
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype="float64"), self.low_, self.high_)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features if input_features is not None else [])


def _log1p_pos(X):
    return np.log1p(np.clip(np.asarray(X, dtype="float64"), 0.0, None))


def fit_baseline(X_train: pd.DataFrame, y_train, categorical_features=(), log_features=(),
                 seed: int = 42, C: float = 0.5) -> Pipeline:
    """A fair logistic-regression baseline: clip, log money, impute + flag, scale, one-hot."""
    y = check_split("train", X_train, y_train)
    cats = [c for c in categorical_features if c in X_train.columns]
    logs = [c for c in log_features if c in X_train.columns and c not in cats]
    nums = [c for c in X_train.columns if c not in cats and c not in logs]
    all_nan = [c for c in X_train.columns if X_train[c].isna().all()]
    nums = [c for c in nums if c not in all_nan]
    logs = [c for c in logs if c not in all_nan]
    numeric = make_pipeline(QuantileClipper(), SimpleImputer(strategy="median",
                            add_indicator=True, keep_empty_features=True), StandardScaler())
    money = make_pipeline(FunctionTransformer(_log1p_pos, feature_names_out="one-to-one"),
                          SimpleImputer(strategy="median", add_indicator=True,
                                        keep_empty_features=True), StandardScaler())
    categorical = make_pipeline(SimpleImputer(strategy="most_frequent"),
                                OneHotEncoder(handle_unknown="ignore"))
    pre = ColumnTransformer([("num", numeric, nums), ("money", money, logs),
                             ("cat", categorical, cats)], remainder="drop")
    model = Pipeline([("pre", pre), ("lr", LogisticRegression(C=C, max_iter=3000,
                                                               random_state=seed))])
    return model.fit(X_train, y)


def baseline_coefficients(pipeline: Pipeline) -> pd.DataFrame:
    """Coefficients of the baseline as plain numbers (feature, coefficient)."""
    names = pipeline.named_steps["pre"].get_feature_names_out()
    coef = pipeline.named_steps["lr"].coef_.ravel()
    return pd.DataFrame({"feature": names, "coefficient": coef}).assign(
        intercept=float(pipeline.named_steps["lr"].intercept_[0]))
