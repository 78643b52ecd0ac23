"""Training configuration: the shipped ``config/training.yaml`` with a user YAML laid over it.

Every default (LightGBM settings, monotone constraints, calibration bounds, model
family choice, splits, gate thresholds, age bands) lives in the shipped YAML, validated
here with pydantic; Python holds none of the numbers. Building a config from Python
(``TrainConfig(seed=7)``, ``Splits(n_oot=2)``) fills every field it does not name from
the shipped file in the same way.

Splits are by as-of date, never at random across dates. Unless dates are given,
each model's splits are derived from the data and its label horizon: out-of-time
(OOT) = the last `n_oot` month ends whose label horizon is fully observed,
validation = the `n_valid` month ends before them, training = the `n_train` month
ends before those (starting at least `min_history_months` into the data).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from postloan.config_files import read_mapping, read_text, shipped_text, validate
from postloan.data.snapshot import LABELS
from postloan.errors import ConfigError, DataValidationError
from postloan.models.bundle import MODELS
from postloan.models.scorecard import ScorecardParams

SHIPPED = "config/training.yaml"


@lru_cache(maxsize=1)
def _shipped_dict() -> dict:
    return read_mapping(shipped_text(SHIPPED), "training config", f"postloan:{SHIPPED}")


def _section(path: tuple[str, ...]) -> dict:
    d: Any = _shipped_dict()
    for key in path:
        d = d.get(key, {}) if isinstance(d, dict) else {}
    return d if isinstance(d, dict) else {}


class Shipped(BaseModel):
    """A config section whose unnamed fields come from the shipped YAML (``_section``)."""

    model_config = ConfigDict(extra="forbid")
    _section: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _fill_from_shipped(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {**_section(cls._section), **data}
        return data


class Splits(Shipped):
    _section = ("splits",)
    train: list[str] | None = None
    valid: list[str] | None = None
    oot: list[str] | None = None
    n_train: int = Field(ge=1)
    n_valid: int = Field(ge=1)
    n_oot: int = Field(ge=1)
    min_history_months: int = Field(ge=0)


class Lgbm(Shipped):
    _section = ("model_defaults", "lgbm")
    learning_rate: float = Field(gt=0, le=1)
    num_leaves: int = Field(ge=2)
    min_child_samples: int = Field(ge=1)
    max_rounds: int = Field(ge=1)
    early_stopping_rounds: int = Field(ge=1)
    feature_fraction: float = Field(gt=0, le=1)
    bagging_fraction: float = Field(gt=0, le=1)
    lambda_l2: float = Field(ge=0)
    scale_pos_weight: float | None = None


class ModelConfig(Shipped):
    """One model's settings.

    Attributes:
        lgbm: LightGBM settings.
        monotone: ``{feature: +1 | -1}`` constraints of the booster.
        calibration: ``isotonic`` or ``platt``.
        probability_floor: smallest calibrated probability ever returned.
        probability_ceiling: largest calibrated probability ever returned.
        family: which family is registered: ``lightgbm``, ``logistic`` (the baseline)
            or ``auto`` (the better validation AUC; OOT stays out of the choice).
        family_margin: under ``auto``, the baseline must beat LightGBM's validation AUC
            by more than this to be chosen.
    """

    _section = ("model_defaults",)
    lgbm: Lgbm = Field(default_factory=Lgbm)
    monotone: dict[str, Literal[-1, 0, 1]]
    calibration: Literal["isotonic", "platt"]
    probability_floor: float = Field(gt=0, lt=0.5)
    probability_ceiling: float = Field(gt=0.5, lt=1)
    family: Literal["auto", "lightgbm", "logistic"]
    family_margin: float = Field(ge=0)


class Gate(Shipped):
    _section = ("gate",)
    auc_tolerance: float = Field(ge=0)
    max_ece: float = Field(gt=0)


class UpliftSettings(Shipped):
    """How the uplift models learn (docs/uplift.md)."""

    _section = ("uplift",)
    learner: Literal["risk", "dr"]
    n_dates: int = Field(ge=2)
    n_test_dates: int = Field(ge=1)
    decision_gate_min_z: float = Field(ge=0.0)

    @model_validator(mode="after")
    def _check(self) -> UpliftSettings:
        if self.n_test_dates >= self.n_dates:
            raise ValueError("uplift: n_test_dates must be below n_dates (the rest train)")
        return self


class ScorecardBinning(Shipped):
    """How the scorecard bins each feature (see :mod:`postloan.models.scorecard`)."""

    _section = ("scorecard", "binning")
    max_prebins: int = Field(ge=2)
    max_bins: int = Field(ge=2)
    min_bin_share: float = Field(ge=0, lt=0.5)
    prior_rows: float = Field(ge=0)
    min_iv: float = Field(ge=0)
    max_features: int | None = Field(default=None, ge=1)


class ScorecardSettings(Shipped):
    """The points scorecard fitted beside a model (``scorecard:`` in training.yaml).

    Attributes:
        models: the models that get a scorecard when trained.
        base_points: the score at which the good:bad odds are `base_odds`.
        base_odds: good:bad odds at `base_points`.
        pdo: points to double the odds.
        points_decimals: decimals of each bin's points.
        C: inverse L2 strength of the logistic fit on WOE.
        binning: the binning settings.
        special_values: feature -> values that get bins of their own.
    """

    _section = ("scorecard",)
    models: list[str]
    base_points: float
    base_odds: float = Field(gt=0)
    pdo: float = Field(gt=0)
    points_decimals: int = Field(ge=0, le=6)
    C: float = Field(gt=0)
    binning: ScorecardBinning = Field(default_factory=ScorecardBinning)
    special_values: dict[str, list[float]]

    @model_validator(mode="after")
    def _check(self) -> ScorecardSettings:
        unknown = sorted(set(self.models) - set(MODELS))
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; known: {sorted(MODELS)}")
        return self

    def params(self) -> ScorecardParams:
        """The :class:`postloan.models.scorecard.ScorecardParams` of these settings."""
        return ScorecardParams(
            base_points=self.base_points, base_odds=self.base_odds, pdo=self.pdo,
            points_decimals=self.points_decimals, C=self.C,
            special_values=self.special_values, **self.binning.model_dump())


class AgeBands(Shipped):
    """Age bands of the OOT metrics by segment: ``labels[i]`` covers
    ``edges[i] <= age < edges[i + 1]``."""

    _section = ("age_bands",)
    edges: list[float] = Field(min_length=2)
    labels: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> AgeBands:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must be strictly increasing")
        if len(self.labels) != len(self.edges) - 1:
            raise ValueError(f"{len(self.edges)} edges need {len(self.edges) - 1} labels, "
                             f"got {len(self.labels)}")
        return self

    def cut(self, age: pd.Series) -> pd.Series:
        """The band label of each age (``"nan"`` where the age is missing)."""
        return pd.cut(age, self.edges, right=False, labels=self.labels).astype(str)


def _merge_models(shipped: dict, given: Any) -> Any:
    """Shipped model entries with the given ones laid over, key by key (``lgbm`` one
    level deeper); a given :class:`ModelConfig` object is taken whole."""
    if not isinstance(given, dict):
        return given
    out: dict[str, Any] = {}
    for name in [*shipped, *(m for m in given if m not in shipped)]:
        base = shipped.get(name) or {}
        mine = given.get(name, {})
        if name not in given or isinstance(mine, dict):
            mine = mine or {}
            merged = {**base, **mine}
            if isinstance(base.get("lgbm"), dict) and isinstance(mine.get("lgbm"), dict):
                merged["lgbm"] = {**base["lgbm"], **mine["lgbm"]}
            out[name] = merged
        else:
            out[name] = mine
    return out


class TrainConfig(Shipped):
    """The validated training configuration (see ``config/training.yaml``)."""

    seed: int
    num_threads: int = Field(ge=1)
    shap_sample: int = Field(ge=100)
    splits: Splits = Field(default_factory=Splits)
    models: dict[str, ModelConfig]
    gate: Gate = Field(default_factory=Gate)
    age_bands: AgeBands = Field(default_factory=AgeBands)
    uplift: UpliftSettings = Field(default_factory=UpliftSettings)
    scorecard: ScorecardSettings = Field(default_factory=ScorecardSettings)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_shipped(cls, data: Any) -> Any:
        # Replaces Shipped's: `model_defaults` is the base of every model (filled by
        # ModelConfig and Lgbm), and `models` merges by model name.
        if not isinstance(data, dict):
            return data
        if "model_defaults" in data:
            raise ValueError("model_defaults: set the model's own entry under `models` "
                             "instead (model_defaults is the shipped base of every model)")
        top = {k: v for k, v in _shipped_dict().items() if k not in ("model_defaults", "models")}
        return {**top, **data,
                "models": _merge_models(_section(("models",)), data.get("models", {}))}

    @model_validator(mode="after")
    def _known_models(self) -> TrainConfig:
        unknown = sorted(set(self.models) - set(MODELS))
        if unknown:
            raise ValueError(f"models: unknown model(s) {unknown}; known: {sorted(MODELS)}")
        return self


def load_train_config(path: str | Path | None = None) -> TrainConfig:
    """The shipped training configuration with the YAML at `path` laid over it.

    Args:
        path: a user YAML naming only what it changes; None for the shipped defaults.

    Raises:
        ConfigError: unreadable file, or a key with a wrong name, type or value; the
            message names the key (e.g. ``models.churn.lgbm.num_leaves``).
    """
    what = "training config"
    src = f"postloan:{SHIPPED}" if path is None else str(path)
    data = {} if path is None else read_mapping(read_text(path, what), what, src)
    return validate(TrainConfig, data, what, src)


def resolve_splits(splits: Splits, label: str, data_start: pd.Timestamp,
                   data_end: pd.Timestamp) -> dict[str, list[pd.Timestamp]]:
    """As-of dates of train / valid / oot for one label."""
    if splits.train and splits.valid and splits.oot:
        out = {k: [pd.Timestamp(d) for d in getattr(splits, k)] for k in ("train", "valid", "oot")}
    else:
        horizon = LABELS[label]
        last = (data_end - pd.DateOffset(months=horizon)) + pd.offsets.MonthEnd(0)
        if last > data_end - pd.DateOffset(months=horizon):
            last = last - pd.offsets.MonthEnd(1)
        ends = pd.date_range(end=last, periods=splits.n_train + splits.n_valid + splits.n_oot,
                             freq="ME")
        first_ok = data_start + pd.DateOffset(months=splits.min_history_months)
        ends = [d for d in ends if d >= first_ok]
        n_need = splits.n_valid + splits.n_oot + 1
        if len(ends) < n_need:
            raise DataValidationError(
                "splits", f"the data ({data_start.date()}..{data_end.date()}) is too short for "
                f"{label}: need {n_need} as-of month ends after {splits.min_history_months} "
                f"months of history with a {horizon}-month label horizon")
        oot = ends[-splits.n_oot:]
        valid = ends[-(splits.n_oot + splits.n_valid):-splits.n_oot]
        train = ends[:-(splits.n_oot + splits.n_valid)]
        out = {"train": list(train), "valid": list(valid), "oot": list(oot)}
    if max(out["train"]) >= min(out["valid"]) or max(out["valid"]) >= min(out["oot"]):
        raise ConfigError("splits must be ordered in time: train < valid < oot")
    return out
