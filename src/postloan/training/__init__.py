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

Pure: data and configuration in, models, metrics, tables and figures out. The
pipelines own MLflow and file I/O.
"""

from postloan.training.config import (
    AgeBands,
    UpliftSettings,
    Gate,
    Lgbm,
    ModelConfig,
    Splits,
    TrainConfig,
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
from postloan.training.train import TrainOutput, train_one, validation_customers

__all__ = [
    "AgeBands",
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
    "lightgbm_params",
    "load_train_config",
    "resolve_splits",
    "train_one",
    "validation_customers",
]
