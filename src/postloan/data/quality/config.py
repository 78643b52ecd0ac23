"""Limits of the data-quality gate: the shipped ``config/data_quality.yaml``, validated.

The expected values (freshness, completeness, scale, feature quantiles) are learned
from a model's training reference (:mod:`postloan.data.quality.expectations`); this
configuration only says how far a book may stray from them before a finding is
soft (a warning) or hard (the run stops).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from postloan.config_files import field_errors, read_mapping, read_text, shipped_text, validate

FEED_NAMES = ("bureau", "activity", "interactions", "surveys", "macro", "repayments")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_band(name: str, band: tuple[float, float]) -> None:
    lo, hi = band
    if not (0 <= lo < 1 < hi):
        raise ValueError(f"{name} must be [low, high] with 0 <= low < 1 < high, got {band}")


class FeedLimits(_Strict):
    """How far one feed may stray from its reference (see the YAML for each field)."""

    max_delay_days: float = Field(35.0, ge=0)
    stale_customer_days: float = Field(45.0, ge=0)
    completeness_soft: float = Field(0.95, gt=0, le=1)
    completeness_hard: float = Field(0.80, ge=0, le=1)
    scale_soft: tuple[float, float] = (0.70, 1.40)
    scale_hard: tuple[float, float] = (0.40, 2.50)

    @model_validator(mode="after")
    def _ordered(self) -> FeedLimits:
        if self.completeness_hard > self.completeness_soft:
            raise ValueError("completeness_hard must not exceed completeness_soft")
        _check_band("scale_soft", self.scale_soft)
        _check_band("scale_hard", self.scale_hard)
        if not (self.scale_hard[0] <= self.scale_soft[0] and self.scale_soft[1] <= self.scale_hard[1]):
            raise ValueError("scale_soft must lie within scale_hard")
        return self


class FeatureLimits(_Strict):
    """Soft limits on model features against their training quantiles."""

    null_share_increase: float = Field(0.10, gt=0, le=1)
    out_of_range_share: float = Field(0.02, ge=0, le=1)
    range_margin: float = Field(0.10, ge=0)


class MacroSeriesLimits(_Strict):
    """Plausible values of one macro series (percent points)."""

    min: float
    max: float
    max_monthly_change: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> MacroSeriesLimits:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class MacroLimits(_Strict):
    """Gaps and plausibility of the macro feed (see the YAML for each field)."""

    lookback_months: int = Field(7, ge=1, le=60)
    unit_change_ratio: float = Field(20.0, gt=1)
    unit_change_floor: float = Field(1.0, gt=0)
    columns: dict[str, MacroSeriesLimits] = Field(default_factory=lambda: {
        "unemployment_rate": MacroSeriesLimits(min=0.3, max=40.0, max_monthly_change=10.0),
        "policy_rate": MacroSeriesLimits(min=-2.0, max=40.0, max_monthly_change=5.0)})


class RecordLimits(_Strict):
    """Limits on one customer record (the service and batch snapshots)."""

    max_as_of_age_days: float = Field(62.0, gt=0)


class DataQualityConfig(_Strict):
    """The whole data-quality configuration.

    Attributes:
        defaults: limits used for any field a feed entry leaves out.
        feeds: per-feed overrides; every feed of :data:`FEED_NAMES` resolves to limits.
        features: limits on model features.
        macro: gaps and plausibility of the macro feed.
        records: limits on one customer record.
    """

    defaults: FeedLimits = FeedLimits()
    feeds: dict[str, dict] = Field(default_factory=dict)
    features: FeatureLimits = FeatureLimits()
    macro: MacroLimits = MacroLimits()
    records: RecordLimits = RecordLimits()

    @model_validator(mode="after")
    def _known_feeds(self) -> DataQualityConfig:
        unknown = sorted(set(self.feeds) - set(FEED_NAMES))
        if unknown:
            raise ValueError(f"unknown feed(s) {unknown}; known feeds: {list(FEED_NAMES)}")
        for name in self.feeds:
            self.feed(name)  # validates the merged limits now, not at first use
        return self

    def feed(self, name: str) -> FeedLimits:
        """The limits of one feed: its entry over the defaults."""
        merged = {**self.defaults.model_dump(), **(self.feeds.get(name) or {})}
        try:
            return FeedLimits(**merged)
        except ValidationError as e:
            raise ValueError(f"feeds.{name}: {field_errors(e)}") from e


def load_data_quality_config(path: Path | None = None) -> DataQualityConfig:
    """Read and validate a data-quality YAML; the shipped one when `path` is None.

    Args:
        path: a YAML file in the layout of ``src/postloan/config/data_quality.yaml``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file cannot be read, is not a mapping, or breaks a rule
            (unknown key or feed, a limit out of range, bands out of order).
    """
    what = "data-quality config"
    src = str(path) if path is not None else "postloan:config/data_quality.yaml"
    text = read_text(path, what) if path is not None else shipped_text(
        "config/data_quality.yaml")
    return validate(DataQualityConfig, read_mapping(text, what, src), what, src)
