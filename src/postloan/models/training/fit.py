"""Model fitting on feature frames: LightGBM with early stopping, and a fair baseline.

Used for the three post-loan models (:mod:`postloan.models.training.train`) and for the public
German credit benchmark (``benchmarks/german_credit_cv.py``). The functions take numeric
feature frames (categorical columns hold float category codes) and return fitted models;
no MLflow and no file I/O here: the pipelines own those.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from postloan.errors import DataValidationError
from postloan.models.linear import CategoricalTerm, LinearModel, NumericTerm

log = logging.getLogger(__name__)

# Fields of LgbmParams that steer the training loop rather than the trees.
_LOOP_FIELDS = ("max_rounds", "early_stopping_rounds", "scale_pos_weight")


@dataclass
class LgbmParams:
    """LightGBM settings for a binary classifier; deterministic and seeded.

    The first block is what the post-loan configs set; the second block holds
    LightGBM's own defaults and is there for small data sets (the German credit
    benchmark), where path smoothing and the categorical-split guards matter.

    Attributes:
        learning_rate: shrinkage per round.
        num_leaves: maximum leaves per tree.
        min_child_samples: minimum rows in a leaf.
        max_rounds: upper bound on boosting rounds (early stopping usually ends sooner).
        early_stopping_rounds: rounds without a better validation AUC before stopping.
        feature_fraction: share of features sampled per tree.
        bagging_fraction: share of rows sampled per bagging round.
        bagging_freq: re-sample rows every this many rounds (0 = no bagging).
        lambda_l2: L2 penalty on leaf values.
        min_split_gain: minimum loss reduction of a split.
        scale_pos_weight: weight of positive rows; None = unweighted (keeps the raw
            score a probability, which calibration relies on).
        seed: seed of every random choice LightGBM makes.
        num_threads: CPU threads.
        max_depth: maximum tree depth (-1 = unlimited).
        lambda_l1: L1 penalty on leaf values.
        path_smooth: shrinks each leaf towards its parent (helps on small data).
        extra_trees: pick split thresholds at random (a strong regulariser).
        min_data_per_group: minimum rows per category group in a categorical split.
        cat_smooth: smoothing of category statistics in categorical splits.
        cat_l2: L2 penalty in categorical splits.
        max_cat_to_onehot: at most this many categories are split one-vs-rest.
        linear_tree: fit a ridge regression in every leaf on the numeric features
            (categorical features only split); suits small, mostly additive data.
        linear_lambda: ridge penalty of the leaf regressions.
    """

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
    # LightGBM defaults below.
    max_depth: int = -1
    lambda_l1: float = 0.0
    path_smooth: float = 0.0
    extra_trees: bool = False
    min_data_per_group: int = 100
    cat_smooth: float = 10.0
    cat_l2: float = 10.0
    max_cat_to_onehot: int = 4
    linear_tree: bool = False
    linear_lambda: float = 0.0

    def to_lgb(self) -> dict[str, Any]:
        """The parameter dict for :func:`lightgbm.train`.

        Returns:
            Tree and objective parameters (binary objective, AUC metric, deterministic,
            row-wise histograms, silent) with every LightGBM seed derived from ``seed``;
            the loop settings (``max_rounds``, ``early_stopping_rounds``) are left out.
        """
        p = asdict(self)
        for k in _LOOP_FIELDS:
            p.pop(k)
        p.update(
            objective="binary",
            metric="auc",
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
            feature_fraction_seed=self.seed,
            bagging_seed=self.seed,
            data_random_seed=self.seed,
            extra_seed=self.seed,
            drop_seed=self.seed,
            objective_seed=self.seed,
        )
        if self.scale_pos_weight is not None:
            p["scale_pos_weight"] = float(self.scale_pos_weight)
        return p


def check_split(name: str, X: pd.DataFrame, y: Any) -> np.ndarray:
    """Validate one split's features and labels.

    Args:
        name: split name used in error messages ("train", "valid", ...).
        X: feature frame of the split.
        y: labels, one per row of ``X``.

    Returns:
        The labels as a float64 array of 0s and 1s.

    Raises:
        DataValidationError: the split is empty, the label count differs from the row
            count, a label is not 0/1, or one class is missing. ``table`` is ``name``.
    """
    if len(X) == 0 or X.shape[1] == 0:
        raise DataValidationError(name, f"split has no rows or no columns (shape {X.shape})")
    try:
        labels = np.asarray(pd.Series(y).astype("float64"), dtype="float64").ravel()
    except (TypeError, ValueError) as e:
        raise DataValidationError(name, f"labels must be 0 or 1 ({e})", "label") from e
    if len(labels) != len(X):
        raise DataValidationError(name, f"{len(X)} feature rows but {len(labels)} labels", "label")
    wrong = np.isnan(labels) | ~np.isin(labels, (0.0, 1.0))
    if wrong.any():
        raise DataValidationError(
            name,
            f"labels must be 0 or 1 ({int(wrong.sum())} are not)",
            "label",
            pd.Series(labels[wrong]).head(),
        )
    n_pos = int(labels.sum())
    if n_pos == 0:
        raise DataValidationError(
            name, f"split has no positive labels ({len(labels)} rows)", "label"
        )
    if n_pos == len(labels):
        raise DataValidationError(
            name, f"split has no negative labels ({len(labels)} rows)", "label"
        )
    return labels


def lightgbm_params(params: LgbmParams, columns: Sequence[str],
                    monotone: Mapping[str, int] | None = None) -> dict[str, Any]:
    """LightGBM's parameter dict for `params` plus monotone constraints on `columns`.

    Shared by :func:`fit_lightgbm` and the Dask trainer (:mod:`postloan.scale`).

    Raises:
        DataValidationError: a constraint names an unknown feature or a direction other
            than -1/0/+1.
    """
    p = params.to_lgb()
    if monotone:
        unknown = sorted(set(monotone) - set(columns))
        if unknown:
            raise DataValidationError(
                "train", f"monotone constraint on unknown features {unknown}", "monotone"
            )
        bad = {k: v for k, v in monotone.items() if v not in (-1, 0, 1)}
        if bad:
            raise DataValidationError(
                "train", f"monotone directions must be -1, 0 or +1: {bad}", "monotone"
            )
        p["monotone_constraints"] = [int(monotone.get(c, 0)) for c in columns]
        # "advanced" keeps more of the model's freedom than "basic" while still
        # guaranteeing the constraint (LightGBM docs, monotone_constraints_method).
        p["monotone_constraints_method"] = "advanced"
    return p


def fit_lightgbm(
    X_train: pd.DataFrame,
    y_train: Any,
    X_valid: pd.DataFrame,
    y_valid: Any,
    params: LgbmParams | None = None,
    categorical_features: Iterable[str] = (),
    monotone: Mapping[str, int] | None = None,
) -> lgb.Booster:
    """Train a binary LightGBM booster with early stopping on the validation split.

    Args:
        X_train: training features (numeric; categorical columns hold float codes).
        y_train: training labels, 0/1.
        X_valid: validation features with the same columns in the same order.
        y_valid: validation labels, 0/1; early stopping watches their AUC.
        params: settings; ``LgbmParams()`` if None.
        categorical_features: names of the columns holding category codes; names
            absent from the frame are ignored.
        monotone: optional ``{feature: +1 | -1}`` constraints (e.g. more days past due
            never lowers the default probability); other features are unconstrained.

    Returns:
        The booster; ``best_iteration`` is the round with the best validation AUC, and
        ``predict`` uses it by default.

    Raises:
        DataValidationError: a split is empty, has non-0/1 labels or one class only
            (``table`` names the split), the columns differ between the splits, or a
            constraint names an unknown feature or a direction other than -1/0/+1.
    """
    params = params or LgbmParams()
    y_tr = check_split("train", X_train, y_train)
    y_va = check_split("valid", X_valid, y_valid)
    if list(X_train.columns) != list(X_valid.columns):
        missing = [c for c in X_train.columns if c not in X_valid.columns]
        extra = [c for c in X_valid.columns if c not in X_train.columns]
        detail = f"missing {missing}, extra {extra}" if missing or extra else "order differs"
        raise DataValidationError("valid", f"columns differ from the training split: {detail}")
    p = lightgbm_params(params, list(X_train.columns), monotone)
    cats = [c for c in categorical_features if c in X_train.columns]
    # An explicit (possibly empty) list: "auto" would also treat pandas category dtypes
    # as categorical, which the serving path (float codes) would not reproduce.
    dtrain = lgb.Dataset(X_train, y_tr, categorical_feature=cats, free_raw_data=False)
    dvalid = lgb.Dataset(X_valid, y_va, reference=dtrain, categorical_feature=cats)
    booster = lgb.train(
        p,
        dtrain,
        num_boost_round=params.max_rounds,
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(params.early_stopping_rounds, first_metric_only=True, verbose=False)
        ],
    )
    log.debug(
        "lightgbm: best iteration %d of %d, valid AUC %.4f",
        booster.best_iteration,
        booster.current_iteration(),
        booster.best_score["valid"]["auc"],
    )
    return booster


class QuantileClipper(TransformerMixin, BaseEstimator):
    """Clip each column to percentiles learned on the training rows; NaN stays NaN.

    Args:
        lower: lower quantile (0.01 = 1st percentile).
        upper: upper quantile.

    Attributes:
        low_: per-column lower bounds.
        high_: per-column upper bounds.
        n_features_in_: number of columns seen in ``fit``.
    """

    def __init__(self, lower: float = 0.01, upper: float = 0.99) -> None:
        self.lower = lower
        self.upper = upper

    def fit(self, X: Any, y: Any = None) -> QuantileClipper:
        """Learn the clipping bounds (all-NaN columns get infinite bounds)."""
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        values = np.asarray(X, dtype="float64")
        self.n_features_in_ = values.shape[1]
        low = np.full(values.shape[1], -np.inf)
        high = np.full(values.shape[1], np.inf)
        seen = ~np.isnan(values).all(axis=0)
        if seen.any():
            low[seen] = np.nanquantile(values[:, seen], self.lower, axis=0)
            high[seen] = np.nanquantile(values[:, seen], self.upper, axis=0)
        self.low_, self.high_ = low, high
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Clip to the learned bounds."""
        check_is_fitted(self, "low_")
        return np.clip(np.asarray(X, dtype="float64"), self.low_, self.high_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names pass through unchanged."""
        if input_features is None:
            input_features = getattr(self, "feature_names_in_", None)
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray(input_features, dtype=object)


def _log1p_nonneg(X: Any) -> np.ndarray:
    # Money amounts: negatives (refunds, data errors) carry no size information here.
    return np.log1p(np.clip(np.asarray(X, dtype="float64"), 0.0, None))


def _numeric_steps(log_scale: bool) -> Pipeline:
    steps: list[Any] = [QuantileClipper()]
    if log_scale:
        steps.append(FunctionTransformer(_log1p_nonneg, feature_names_out="one-to-one"))
    steps += [
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    ]
    return make_pipeline(*steps)


def fit_baseline(
    X_train: pd.DataFrame,
    y_train: Any,
    categorical_features: Iterable[str] = (),
    log_features: Iterable[str] = (),
    seed: int = 42,
    C: float = 0.5,
) -> Pipeline:
    """Fit a fair logistic-regression baseline on the same feature frame as LightGBM.

    Numeric columns are clipped at their training 1st/99th percentiles, money columns
    (``log_features``) are floored at 0 and log1p-transformed, missing values are
    imputed with the training median plus a missing-indicator column, and everything
    is standardised. Categorical columns get the most frequent category for missing
    values and a one-hot encoding that ignores categories unseen in training.

    Args:
        X_train: training features.
        y_train: training labels, 0/1.
        categorical_features: names of categorical (code) columns.
        log_features: names of money-amount columns to log-transform.
        seed: random state of the solver (lbfgs is deterministic anyway).
        C: inverse L2 regularisation strength.

    Returns:
        The fitted pipeline (steps ``pre`` and ``lr``); ``predict_proba(X)[:, 1]`` is the
        probability of label 1.

    Raises:
        DataValidationError: the training split is empty, has non-0/1 labels or one class.
    """
    y = check_split("train", X_train, y_train)
    cats = [c for c in categorical_features if c in X_train.columns]
    logs = [c for c in log_features if c in X_train.columns and c not in cats]
    nums = [c for c in X_train.columns if c not in cats and c not in logs]
    categorical = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    pre = ColumnTransformer(
        [
            ("num", _numeric_steps(False), nums),
            ("money", _numeric_steps(True), logs),
            ("cat", categorical, cats),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    model = Pipeline(
        [("pre", pre), ("lr", LogisticRegression(C=C, max_iter=2000, random_state=seed))]
    )
    return model.fit(X_train, y)


def baseline_coefficients(pipeline: Pipeline) -> pd.DataFrame:
    """The baseline's coefficients as plain numbers, for logging.

    Args:
        pipeline: a pipeline returned by :func:`fit_baseline`.

    Returns:
        Columns ``feature`` and ``coefficient`` (on the standardised / one-hot scale);
        the first row is ``(intercept)``.
    """
    names: Sequence[str] = list(pipeline.named_steps["pre"].get_feature_names_out())
    lr = pipeline.named_steps["lr"]
    return pd.DataFrame(
        {
            "feature": ["(intercept)", *map(str, names)],
            "coefficient": [float(lr.intercept_[0]), *map(float, lr.coef_.ravel())],
        }
    )


def _bound(v: float) -> float | None:
    # An all-missing training column has infinite bounds: "no bound" (JSON has no inf).
    return float(v) if np.isfinite(v) else None


def export_baseline(pipeline: Pipeline, X_train: pd.DataFrame) -> LinearModel:
    """The fitted baseline as a :class:`~postloan.models.linear.LinearModel` (plain numbers).

    Args:
        pipeline: a pipeline returned by :func:`fit_baseline`.
        X_train: the rows it was fitted on (for the training means of the model's
            inputs, the centres of the contributions).

    Returns:
        The linear model; its margin equals ``pipeline.decision_function(X)`` (checked
        here on the training rows).

    Raises:
        DataValidationError: the export does not reproduce the pipeline.
    """
    pre = pipeline.named_steps["pre"]
    lr = pipeline.named_steps["lr"]
    coef = lr.coef_.ravel()
    centers = np.asarray(pre.transform(X_train), dtype="float64").mean(axis=0)
    index = {c: i for i, c in enumerate(X_train.columns)}
    model = LinearModel(features=list(map(str, X_train.columns)),
                        intercept=float(lr.intercept_[0]))
    for name, steps, cols in pre.transformers_:
        if name not in ("num", "money", "cat") or not len(cols):
            continue
        block = pre.output_indices_[name]
        b_coef, b_center = coef[block], centers[block]
        if name == "cat":
            imputer, onehot = steps.named_steps["simpleimputer"], steps.named_steps[
                "onehotencoder"]
            k = 0
            for j, col in enumerate(cols):
                codes = [float(v) for v in onehot.categories_[j]]
                model.categorical.append(CategoricalTerm(
                    feature=index[col], impute=float(imputer.statistics_[j]), codes=codes,
                    coefs=[float(v) for v in b_coef[k:k + len(codes)]],
                    centers=[float(v) for v in b_center[k:k + len(codes)]]))
                k += len(codes)
            continue
        clip = steps.named_steps["quantileclipper"]
        imputer = steps.named_steps["simpleimputer"]
        scaler = steps.named_steps["standardscaler"]
        flagged = list(imputer.indicator_.features_) if imputer.indicator_ is not None else []
        for j, col in enumerate(cols):
            stat = float(imputer.statistics_[j])
            missing = None
            if j in flagged:
                m = len(cols) + flagged.index(j)
                missing = [float(scaler.mean_[m]), float(scaler.scale_[m]), float(b_coef[m]),
                           float(b_center[m])]
            model.numeric.append(NumericTerm(
                feature=index[col], low=_bound(clip.low_[j]), high=_bound(clip.high_[j]),
                log=name == "money",
                # all-missing training column: keep_empty_features imputes 0
                impute=0.0 if np.isnan(stat) else stat,
                mean=float(scaler.mean_[j]), scale=float(scaler.scale_[j]),
                coef=float(b_coef[j]), center=float(b_center[j]), missing=missing))
    gap = np.abs(model.margin(X_train) - pipeline.decision_function(X_train)).max()
    if not gap < 1e-8:
        raise DataValidationError("train", f"the exported baseline differs from the fitted "
                                  f"pipeline by {gap:.3g} in log-odds", "baseline")
    return model
