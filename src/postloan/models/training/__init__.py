"""Model work, one job per module.

- :mod:`~postloan.models.training.config`: the training configuration (shipped
  ``config/training.yaml`` + a user overlay) and the resolution of as-of splits;
- :mod:`~postloan.models.training.fit`: LightGBM fitting with early stopping and the logistic
  baseline (sklearn), on feature frames;
- :mod:`~postloan.models.training.linear`: the logistic baseline exported as plain numbers
  (JSON), scored without sklearn;
- :mod:`~postloan.models.training.train`: one post-loan model trained, calibrated, evaluated
  and explained on stacked snapshots (:func:`train_one`);
- the public German credit benchmark runs the same fitting code from
  ``benchmarks/german_credit_cv.py``
  (repeated cross-validation of both families).

The points scorecard (binning, fit, points, JSON) is :mod:`postloan.models.scorecard`;
:func:`train_one` fits it beside the default-risk model.

Pure: data and configuration in, models, metrics, tables and figures out. The
pipelines own MLflow and file I/O.
"""

from postloan.models.training.config import (
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
from postloan.models.training.fit import (
    LgbmParams,
    QuantileClipper,
    baseline_coefficients,
    check_split,
    fit_baseline,
    fit_lightgbm,
    lightgbm_params,
)
from postloan.models.training.train import (
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
