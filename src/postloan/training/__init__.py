"""Model work, one job per module.

- :mod:`~postloan.training.config`: the training configuration (shipped
  ``config/training.yaml`` + a user overlay) and the resolution of as-of splits;
- :mod:`~postloan.training.fit`: LightGBM fitting with early stopping and the logistic
  baseline (sklearn), on feature frames;
- :mod:`~postloan.training.linear`: the logistic baseline exported as plain numbers
  (JSON), scored without sklearn;
- :mod:`~postloan.training.train`: one post-loan model trained, calibrated, evaluated
  and explained on stacked snapshots (:func:`train_one`);
- :mod:`~postloan.training.german_credit`: the public German credit benchmark
  (repeated cross-validation of both families).

The points scorecard (binning, fit, points, JSON) is :mod:`postloan.scorecard`;
:func:`train_one` fits it beside the default-risk model.

Pure: data and configuration in, models, metrics, tables and figures out. The
pipelines own MLflow and file I/O.
"""

from postloan.training.config import (
    AgeBands,
    Gate,
    Lgbm,
    ModelConfig,
    ScorecardBinning,
    ScorecardSettings,
    Splits,
    TrainConfig,
    UpliftSettings,
    load_train_config,
    resolve_splits,
)
from postloan.training.fit import (
    LgbmParams,
    QuantileClipper,
    baseline_coefficients,
    check_split,
    fit_baseline,
    fit_lightgbm,
    lightgbm_params,
)
from postloan.training.train import (
    TrainOutput,
    fit_scorecard_challenger,
    scorecard_from_snapshots,
    train_one,
    validation_customers,
)

__all__ = [
    "AgeBands",
    "ScorecardBinning",
    "ScorecardSettings",
    "UpliftSettings",
    "Gate",
    "Lgbm",
    "LgbmParams",
    "ModelConfig",
    "QuantileClipper",
    "Splits",
    "TrainConfig",
    "TrainOutput",
    "baseline_coefficients",
    "check_split",
    "fit_baseline",
    "fit_lightgbm",
    "fit_scorecard_challenger",
    "lightgbm_params",
    "load_train_config",
    "resolve_splits",
    "scorecard_from_snapshots",
    "train_one",
    "validation_customers",
]
