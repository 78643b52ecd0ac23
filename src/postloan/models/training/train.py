"""Train, calibrate, evaluate and explain one model on stacked as-of snapshots.

Both families are fitted on the same split: LightGBM and the logistic baseline. The
one that becomes the model's bundle is the configured ``family``, or under ``auto``
the better one on the validation customers (LightGBM unless the baseline's validation
AUC is higher by more than ``family_margin``). OOT does not take part in the choice,
so the OOT metrics of both families, reported side by side, stay unbiased estimates.
Validation also stops LightGBM early, which tilts the choice slightly towards
LightGBM: the baseline has to win clearly.

The models listed under ``scorecard.models`` (default risk) also get a points scorecard
(:mod:`postloan.models.scorecard`) fitted on the same training rows: a challenger that stays
beside the bundle (``bundle.scorecard``) and is evaluated on the same OOT rows
(``scorecard_oot_*`` metrics), never registered in its place.

Pure: snapshots and a configuration in, a bundle with its metrics, tables and
figures out. The pipelines log the result to MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from postloan.data.features import (
    CATEGORICAL_FEATURES,
    MONEY_FEATURES,
    build_features,
    category_vocabularies,
)
from postloan.data.snapshot import SNAPSHOT_FIELDS, oracle_scores
from postloan.errors import DataValidationError
from postloan.models import evaluation as ev
from postloan.models import explain
from postloan.models import figures as plots
from postloan.models.bundle import MODELS, Model, ModelBundle, booster_probability
from postloan.models.calibration import Calibrator, fit_calibrator
from postloan.models.scorecard import Scorecard, fit_scorecard
from postloan.models.training.config import ModelConfig, TrainConfig
from postloan.models.training.fit import (
    LgbmParams,
    baseline_coefficients,
    export_baseline,
    fit_baseline,
    fit_lightgbm,
)

log = logging.getLogger(__name__)

# Metrics reported for the family that was not chosen as well, side by side.
_SIDE_METRICS = ("auc", "gini", "ks", "brier", "log_loss", "ece", "top_decile_lift")


@dataclass
class TrainOutput:
    """Everything one training run produced."""

    bundle: ModelBundle
    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, object] = field(default_factory=dict)
    splits: dict[str, list[str]] = field(default_factory=dict)
    example: pd.DataFrame | None = None  # a few OOT snapshot rows (MLflow input example)


def validation_customers(customer_id: pd.Series, share: int = 5) -> np.ndarray:
    """Deterministic 1-in-`share` customer hold-out for early stopping and calibration.

    The same customer appears in many monthly snapshots and one default labels all of
    them, so a validation split by date alone shares outcomes with training and early
    stopping never stops. Validation therefore uses other customers at later dates.
    """
    h = (customer_id.to_numpy(dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return (h % np.uint64(share)) == 0


def _split(snap: pd.DataFrame, label: str, dates: list[pd.Timestamp], name: str,
           customers: str = "all", categories: dict | None = None):
    part = snap[snap["as_of"].isin(dates)]
    if customers != "all":
        held = validation_customers(part["customer_id"])
        part = part[held if customers == "held" else ~held]
    if part.empty:
        raise DataValidationError(name, f"no snapshot rows at as-of dates "
                                  f"{[str(d.date()) for d in dates]}")
    # A fixed row order (bagging samples rows by position): the same snapshots give the
    # same model however the book was partitioned or the frames were stacked.
    part = part[part[label].notna()].sort_values(["as_of", "customer_id"], kind="stable")
    if part.empty:
        raise DataValidationError(name, f"no observed '{label}' labels at as-of dates "
                                  f"{[str(d.date()) for d in dates]}", label)
    return part, build_features(part, categories), part[label].to_numpy(dtype="float64")


def train_one(model: str, snap: pd.DataFrame, splits: dict[str, list[pd.Timestamp]],
              cfg: TrainConfig, truth: pd.DataFrame | None = None,
              fit: Callable[..., lgb.Booster] | None = None,
              categories: dict[str, list[str]] | None = None) -> TrainOutput:
    """Train LightGBM and the logistic baseline for `model`; keep one; evaluate on OOT.

    Args:
        model: ``default_risk``, ``churn`` or ``satisfaction``.
        snap: stacked snapshots with labels covering every split date.
        splits: as-of dates per split (``train``, ``valid``, ``oot``).
        cfg: training configuration.
        truth: the simulator's truth table, for the oracle AUC (optional).
        fit: fits the booster, called like :func:`postloan.models.training.fit.fit_lightgbm`
            (the default); the Dask engine passes one that trains on the whole book
            while `snap` is a customer sample (calibration, baseline, evaluation).
        categories: the training book's categories per category field
            (:func:`postloan.data.schema.snapshot_categories`); None = the default contract.
            Stored in the bundle's feature spec.

    Raises:
        DataValidationError: a split has no rows, no labels, or a single class.
    """
    label = MODELS[model]
    mcfg = cfg.models[model]
    tr, X_tr, y_tr = _split(snap, label, splits["train"], "train", customers="rest",
                            categories=categories)
    # Validation: the held-out customers at the validation dates and, for a steadier
    # early-stopping signal, at the training dates too (never a training customer).
    va, X_va, y_va = _split(snap, label, [*splits["train"], *splits["valid"]], "valid",
                            customers="held", categories=categories)
    oot, X_oot, y_oot = _split(snap, label, splits["oot"], "oot", categories=categories)
    if len(np.unique(y_oot)) < 2:
        raise DataValidationError("oot", f"'{label}' holds one class only in the OOT split",
                                  label)
    params = LgbmParams(**mcfg.lgbm.model_dump(), seed=cfg.seed, num_threads=cfg.num_threads)
    gbm = _fit_lightgbm_family(X_tr, y_tr, X_va, y_va, X_oot, params, mcfg, fit)
    base, baseline = _fit_logistic_family(X_tr, y_tr, X_va, y_va, X_oot, mcfg, cfg.seed)
    scorecard, sc_metrics, p_card = None, {}, None
    if model in cfg.scorecard.models:
        scorecard, sc_metrics, p_card = fit_scorecard_challenger(model, X_tr, y_tr, X_oot, y_oot,
                                                                 cfg, categories)

    # Raw scores: calibration is monotone but may tie, which would blur the ranking.
    valid_auc = {"lightgbm": float(roc_auc_score(y_va, gbm.raw_va)),
                 "logistic": float(roc_auc_score(y_va, base.raw_va))}
    family, reason = _choose_family(mcfg, valid_auc)
    gbm_metrics = ev.binary_metrics(y_oot, gbm.p_oot)
    base_metrics = ev.binary_metrics(y_oot, base.p_oot)
    if scorecard is not None:
        scorecard.metrics = {"scorecard_auc": sc_metrics["scorecard_oot_auc"],
                             "logreg_auc": base_metrics["auc"],
                             "lightgbm_auc": gbm_metrics["auc"]}
    meta = _training_metadata(label, family, reason, valid_auc, splits,
                              {"train": len(tr), "valid": len(va), "oot": len(oot)},
                              gbm.model, params, mcfg)
    chosen = base if family == "logistic" else gbm
    bundle = ModelBundle(model, chosen.model, chosen.calibrator, meta, categories)
    bundle.scorecard = scorecard
    p_oot = chosen.p_oot
    metrics = _oot_metrics(y_oot, chosen, family, valid_auc, gbm.model.best_iteration,
                           gbm_metrics, base_metrics, sc_metrics, y_va, mcfg)
    tables = {"calibration_oot": ev.calibration_table(y_oot, p_oot),
              "lift_oot": ev.lift_table(y_oot, p_oot),
              "baseline_coefficients": baseline_coefficients(baseline)}
    if scorecard is not None:
        tables["scorecard"] = scorecard.table()
    if truth is not None:
        metrics.update(_oracle_metrics(oracle_scores(truth, oot)[label].to_numpy(), y_oot,
                                       p_oot))
    tables["segments_oot"], spreads = _segment_metrics(y_oot, p_oot, oot, cfg)
    metrics.update(spreads)

    contrib, Xs, importance = _shap_on_sample(bundle.booster, X_oot, cfg)
    tables["shap_importance"] = importance
    bundle.metadata["top_features"] = importance["feature"].head(10).tolist()
    bundle.metadata["metrics"] = metrics
    figures = _report_figures(model, y_oot, p_oot, gbm.p_oot, base.p_oot, p_card, importance,
                              contrib, Xs)
    example = oot.loc[:, list(SNAPSHOT_FIELDS)].head(5).reset_index(drop=True)
    return TrainOutput(bundle, metrics, tables, figures, meta["splits"], example)


@dataclass
class _Family:
    """One model family fitted on the training rows and calibrated on the validation rows.

    Attributes:
        model: the fitted model (a LightGBM booster or the exported linear model).
        calibrator: its calibrator, fitted on the validation rows.
        raw_va: its uncalibrated probability on the validation rows.
        raw_oot: its uncalibrated probability on the OOT rows.
        p_oot: its calibrated probability on the OOT rows.
    """

    model: Model
    calibrator: Calibrator
    raw_va: np.ndarray
    raw_oot: np.ndarray
    p_oot: np.ndarray


def _fit_lightgbm_family(X_tr: pd.DataFrame, y_tr: np.ndarray, X_va: pd.DataFrame,
                         y_va: np.ndarray, X_oot: pd.DataFrame, params: LgbmParams,
                         mcfg: ModelConfig, fit: Callable[..., lgb.Booster] | None) -> _Family:
    """Fit (early-stopped on validation) and calibrate the LightGBM family.

    Args:
        X_tr: training features.
        y_tr: training labels.
        X_va: validation features (early stopping and calibration).
        y_va: validation labels.
        X_oot: OOT features.
        params: the booster's parameters.
        mcfg: the model's configuration (monotone constraints, calibration).
        fit: fits the booster (see :func:`train_one`); None = :func:`fit_lightgbm`.
    """
    booster = (fit or fit_lightgbm)(X_tr, y_tr, X_va, y_va, params, CATEGORICAL_FEATURES,
                                    mcfg.monotone)
    raw_va = booster_probability(booster, X_va)
    raw_oot = booster_probability(booster, X_oot)
    calibrator = _calibrate(raw_va, y_va, mcfg)
    return _Family(booster, calibrator, raw_va, raw_oot, calibrator.transform(raw_oot))


def _fit_logistic_family(X_tr: pd.DataFrame, y_tr: np.ndarray, X_va: pd.DataFrame,
                         y_va: np.ndarray, X_oot: pd.DataFrame, mcfg: ModelConfig,
                         seed: int) -> tuple[_Family, Pipeline]:
    """Fit, export and calibrate the logistic baseline family.

    Args:
        X_tr: training features.
        y_tr: training labels.
        X_va: validation features (calibration).
        y_va: validation labels.
        X_oot: OOT features.
        mcfg: the model's configuration (calibration).
        seed: the training seed.

    Returns:
        The family (its model is the exported :class:`~postloan.models.linear.LinearModel`)
        and the fitted scikit-learn pipeline (for its coefficient table).
    """
    baseline = fit_baseline(X_tr, y_tr, CATEGORICAL_FEATURES, MONEY_FEATURES, seed=seed)
    linear = export_baseline(baseline, X_tr)
    raw_va = booster_probability(linear, X_va)
    calibrator = _calibrate(raw_va, y_va, mcfg)
    raw_oot = booster_probability(linear, X_oot)
    return _Family(linear, calibrator, raw_va, raw_oot, calibrator.transform(raw_oot)), baseline


def _training_metadata(label: str, family: str, reason: str, valid_auc: dict[str, float],
                       splits: dict[str, list[pd.Timestamp]], n_rows: dict[str, int],
                       booster: lgb.Booster, params: LgbmParams, mcfg: ModelConfig) -> dict:
    """The bundle's training metadata (JSON-able): label, family and why, splits, params.

    Args:
        label: the label trained on.
        family: the family kept.
        reason: why it was kept (:func:`_choose_family`).
        valid_auc: validation AUC per family.
        splits: as-of dates per split.
        n_rows: rows per split.
        booster: the LightGBM booster (its best iteration is reported for either family).
        params: the booster's parameters.
        mcfg: the model's configuration.
    """
    return {
        "label": label,
        "family": family,
        "family_reason": reason,
        "valid_auc": valid_auc,
        "splits": {k: [str(d.date()) for d in v] for k, v in splits.items()},
        "n_rows": n_rows,
        "best_iteration": booster.best_iteration,
        "params": params.to_lgb(),
        "monotone": mcfg.monotone,
        "calibration": mcfg.calibration,
        "probability_bounds": [mcfg.probability_floor, mcfg.probability_ceiling],
    }


def _oot_metrics(y_oot: np.ndarray, chosen: _Family, family: str,
                 valid_auc: dict[str, float], best_iteration: int,
                 gbm_metrics: dict[str, float], base_metrics: dict[str, float],
                 sc_metrics: dict[str, float], y_va: np.ndarray,
                 mcfg: ModelConfig) -> dict[str, float]:
    """The run's metrics: the kept family's OOT metrics, then both families' side by side.

    Args:
        y_oot: OOT labels.
        chosen: the kept family.
        family: its name.
        valid_auc: validation AUC per family.
        best_iteration: the LightGBM booster's best iteration.
        gbm_metrics: LightGBM's OOT metrics.
        base_metrics: the logistic baseline's OOT metrics.
        sc_metrics: the scorecard's ``scorecard_oot_*`` metrics ({} without one).
        y_va: validation labels (the isotonic step map's fit).
        mcfg: the model's configuration.
    """
    metrics = {f"oot_{k}": v for k, v in ev.binary_metrics(y_oot, chosen.p_oot).items()}
    metrics["valid_auc"] = valid_auc[family]
    metrics["lightgbm_valid_auc"] = valid_auc["lightgbm"]
    metrics["baseline_valid_auc"] = valid_auc["logistic"]
    metrics["best_iteration"] = float(best_iteration)
    metrics["family_logistic"] = float(family == "logistic")
    metrics.update({f"lightgbm_oot_{k}": v for k, v in gbm_metrics.items() if k in _SIDE_METRICS})
    metrics.update({f"baseline_oot_{k}": v for k, v in base_metrics.items()
                    if k in _SIDE_METRICS})
    metrics.update(sc_metrics)
    if mcfg.calibration == "isotonic":
        # The step map's ECE beside the smoothed one's: what smoothing costs (or gains).
        step = fit_calibrator(chosen.raw_va, y_va, "isotonic", mcfg.probability_floor,
                              mcfg.probability_ceiling, smooth=False)
        metrics["oot_ece_isotonic_steps"] = ev.binary_metrics(
            y_oot, step.transform(chosen.raw_oot))["ece"]
    return metrics


def _oracle_metrics(oracle: np.ndarray, y_oot: np.ndarray,
                    p_oot: np.ndarray) -> dict[str, float]:
    """The simulator's true probabilities' AUC beside the model's, on the same OOT rows.

    Args:
        oracle: the true probability per OOT row (NaN where the truth lacks the row).
        y_oot: OOT labels.
        p_oot: the model's OOT probabilities.

    Returns:
        ``oracle_auc``, ``model_auc_on_oracle_rows`` and their ratio; {} when the rows
        with a truth hold a single class (no AUC).
    """
    ok = ~np.isnan(oracle)
    if not (ok.sum() > 0 and len(np.unique(y_oot[ok])) == 2):
        return {}
    oracle_auc = float(roc_auc_score(y_oot[ok], oracle[ok]))
    model_auc = float(roc_auc_score(y_oot[ok], p_oot[ok]))
    return {"oracle_auc": oracle_auc, "model_auc_on_oracle_rows": model_auc,
            "oracle_ratio": model_auc / oracle_auc}


def _segment_metrics(y_oot: np.ndarray, p_oot: np.ndarray, oot: pd.DataFrame,
                     cfg: TrainConfig) -> tuple[pd.DataFrame, dict[str, float]]:
    """OOT metrics by region, main product and age band, and the AUC spread of each.

    Returns:
        The stacked per-segment table (a ``dimension`` column first) and
        ``oot_auc_spread_<dimension>`` per dimension.
    """
    seg_frames, spreads = [], {}
    segments = {"region": oot["region"], "main_product": oot["main_product"],
                "age_band": cfg.age_bands.cut(oot["age"])}
    for seg_name, values in segments.items():
        t = ev.metrics_by_segment(y_oot, p_oot, values)
        t.insert(0, "dimension", seg_name)
        seg_frames.append(t)
        d = ev.disparity_summary(t)
        spreads[f"oot_auc_spread_{seg_name}"] = d["auc_spread"]
    return pd.concat(seg_frames, ignore_index=True), spreads


def _shap_on_sample(booster: Model, X_oot: pd.DataFrame, cfg: TrainConfig
                    ) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """SHAP contributions on a seeded OOT sample of ``cfg.shap_sample`` rows.

    Returns:
        The contributions, the sampled rows and the global importance table.
    """
    n = min(cfg.shap_sample, len(X_oot))
    idx = np.sort(np.random.default_rng(cfg.seed).choice(len(X_oot), n, replace=False))
    Xs = X_oot.iloc[idx]
    contrib = explain.contributions(booster, Xs)
    return contrib, Xs, explain.global_importance(contrib)


def _report_figures(model: str, y_oot: np.ndarray, p_oot: np.ndarray, p_gbm: np.ndarray,
                    p_base: np.ndarray, p_card: np.ndarray | None, importance: pd.DataFrame,
                    contrib: np.ndarray, Xs: pd.DataFrame) -> dict[str, object]:
    """The model report's figures (ROC, KS, calibration, lift, SHAP), by file name.

    Args:
        model: the model's name (figure titles).
        y_oot: OOT labels.
        p_oot: the kept family's OOT probabilities.
        p_gbm: LightGBM's calibrated OOT probabilities.
        p_base: the logistic baseline's calibrated OOT probabilities.
        p_card: the scorecard's OOT PDs, or None without a scorecard.
        importance: the global SHAP importance table.
        contrib: SHAP contributions on the sampled OOT rows `Xs`.
        Xs: the sampled OOT rows.
    """
    scores = {"LightGBM": p_gbm, "logistic baseline": p_base}
    # The scorecard ranks beside them (its PD is uncalibrated: left off the calibration plot).
    ranked = scores if p_card is None else {**scores, "scorecard": p_card}
    return {
        "roc.png": plots.roc_figure(y_oot, ranked, f"{model}: ROC (OOT)"),
        "ks.png": plots.ks_figure(y_oot, p_oot, f"{model}: KS (OOT)"),
        "calibration.png": plots.calibration_figure(y_oot, scores, f"{model}: calibration (OOT)"),
        "lift.png": plots.lift_figure(y_oot, ranked, f"{model}: lift (OOT)"),
        "shap_bar.png": plots.shap_bar_figure(importance, title=f"{model}: mean |SHAP|"),
        "shap_summary.png": plots.shap_summary_figure(contrib, Xs, title=f"{model}: SHAP"),
    }


def fit_scorecard_challenger(model: str, X_tr: pd.DataFrame, y_tr: np.ndarray,
                             X_oot: pd.DataFrame, y_oot: np.ndarray, cfg: TrainConfig,
                             categories: dict[str, list[str]] | None = None
                             ) -> tuple[Scorecard, dict[str, float], np.ndarray]:
    """Fit the points scorecard on the training rows and evaluate it out of time.

    The bins follow the model's monotone constraints (``models.<model>.monotone``); the
    scaling and binning come from ``cfg.scorecard``.

    Returns:
        The scorecard, its ``scorecard_oot_*`` metrics and its OOT PDs.
    """
    card = fit_scorecard(X_tr, y_tr, cfg.scorecard.params(), CATEGORICAL_FEATURES,
                         cfg.models[model].monotone, category_vocabularies(categories))
    p_card = card.probability(X_oot)
    metrics = {f"scorecard_oot_{k}": v for k, v in ev.binary_metrics(y_oot, p_card).items()
               if k in _SIDE_METRICS}
    log.info("%s scorecard: %d characteristics, OOT AUC %.4f", model, len(card.terms),
             metrics["scorecard_oot_auc"])
    return card, metrics, p_card


def scorecard_from_snapshots(model: str, snap: pd.DataFrame,
                             splits: dict[str, list[pd.Timestamp]], cfg: TrainConfig,
                             categories: dict[str, list[str]] | None = None) -> Scorecard:
    """The scorecard :func:`train_one` fits, from the same snapshots and splits.

    For a model trained without one (``postloan scorecard`` on an older bundle, or a
    model not listed under ``scorecard.models``): the same training rows (the
    non-held-out customers at the training dates), the same feature function and the
    same fit, so the same data gives the same points.

    Returns:
        The scorecard; ``metrics`` holds its OOT ``scorecard_auc``.

    Raises:
        DataValidationError: a split has no rows or no labels.
    """
    label = MODELS[model]
    _, X_tr, y_tr = _split(snap, label, splits["train"], "train", customers="rest",
                           categories=categories)
    _, X_oot, y_oot = _split(snap, label, splits["oot"], "oot", categories=categories)
    card, metrics, _ = fit_scorecard_challenger(model, X_tr, y_tr, X_oot, y_oot, cfg,
                                                categories)
    card.metrics = {"scorecard_auc": metrics["scorecard_oot_auc"]}
    return card


def _calibrate(raw_va: np.ndarray, y_va: np.ndarray, mcfg: ModelConfig):
    return fit_calibrator(raw_va, y_va, mcfg.calibration, mcfg.probability_floor,
                          mcfg.probability_ceiling)


def _choose_family(mcfg: ModelConfig, valid_auc: dict[str, float]) -> tuple[str, str]:
    """The family that becomes the bundle and why (see the module docstring)."""
    gbm, base = valid_auc["lightgbm"], valid_auc["logistic"]
    aucs = f"validation AUC LightGBM {gbm:.4f}, logistic {base:.4f}"
    if mcfg.family != "auto":
        return mcfg.family, f"configured (family: {mcfg.family}); {aucs}"
    chosen = "logistic" if base > gbm + mcfg.family_margin else "lightgbm"
    reason = (f"auto: {chosen} is better on validation ({aucs}, margin "
              f"{mcfg.family_margin:g})" if chosen == "logistic" else
              f"auto: logistic not better than LightGBM by more than the margin "
              f"{mcfg.family_margin:g} on validation ({aucs})")
    log.info("family: %s (%s)", chosen, reason)
    return chosen, reason

