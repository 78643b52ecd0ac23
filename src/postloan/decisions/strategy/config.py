"""The strategy's vocabulary and its validated configuration (``config/strategy.yaml``).

Levels, segments, actions and benefit sources are fixed names; every threshold and
rule is configuration, validated here by pydantic so that a wrong field is reported
by its path (``signals.2.field``, ``lgd.card.secured``) before any customer is scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from postloan.config_files import read_mapping, read_text, shipped_text, validate
from postloan.data import schema as S
from postloan.data.snapshot import NUMERIC_FIELDS
from postloan.models.bundle import SCORE_COLUMNS

PD_COL = SCORE_COLUMNS["default_risk"]
CHURN_COL = SCORE_COLUMNS["churn"]
DISSAT_COL = SCORE_COLUMNS["satisfaction"]

LEVELS = ("green", "yellow", "orange", "red")
"""Warning levels, lowest first; a level's code is its position."""
RULE_LEVELS = ("yellow", "orange", "red")
SEGMENTS = ("protect", "grow", "watch", "work_out")
ACTIONS = ("payment_reminder", "restructuring_offer", "retention_offer",
           "service_recovery_call")
NO_ACTION = "none"

# Fields a signal may test: the snapshot contract's numeric fields and the scores.
SIGNAL_FIELDS = frozenset(NUMERIC_FIELDS) | frozenset(SCORE_COLUMNS.values())

_CRITERIA = ("pd_min", "el_min", "max_severity_min", "severity_sum_min", "n_signals_min")


def _check_level(name: str) -> str:
    if name not in LEVELS:
        raise ValueError(f"unknown level name '{name}'; levels are {list(LEVELS)}")
    return name


LevelName = Annotated[str, AfterValidator(_check_level)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Text(_Strict):
    """One sentence in English and Chinese."""

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)


class GradeBand(_Strict):
    """One risk grade: PD in ``[pd_min, pd_max)`` (the last band also holds PD = 1)."""

    grade: str = Field(min_length=1)
    pd_min: Share
    pd_max: Share


class LgdPair(_Strict):
    """LGD of the secured and of the unsecured part of a product's balance."""

    secured: Share
    unsecured: Share


class Signal(_Strict):
    """An early-warning rule: fires when ``<field> <op> <threshold>`` holds (NaN never)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    field: str
    op: Literal[">=", ">", "<=", "<"]
    threshold: float
    severity: int = Field(ge=1, le=3)
    text_en: str = Field(min_length=1)
    text_zh: str = Field(min_length=1)

    @field_validator("field")
    @classmethod
    def _known_field(cls, v: str) -> str:
        if v not in SIGNAL_FIELDS:
            raise ValueError(
                f"unknown signal field '{v}': not a numeric snapshot field or score column "
                f"(e.g. dpd_current, paid_ratio_trend, {PD_COL})"
            )
        return v

    @field_validator("text_en", "text_zh")
    @classmethod
    def _formattable(cls, v: str) -> str:
        try:
            v.format(value=1.5, threshold=1.0)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(
                f"text {v!r} does not format: only {{value}} and {{threshold}} may be used ({e})"
            ) from e
        return v


class LevelRule(_Strict):
    """Criteria of one warning level; the level applies when any of them holds."""

    pd_min: Share | None = None
    el_min: float | None = Field(None, ge=0.0)
    max_severity_min: int | None = Field(None, ge=1, le=3)
    severity_sum_min: int | None = Field(None, ge=1)
    n_signals_min: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _some_criterion(self) -> LevelRule:
        if all(getattr(self, c) is None for c in _CRITERIA):
            raise ValueError(f"a level needs at least one criterion of {list(_CRITERIA)}")
        return self


class Escalation(_Strict):
    """Red customers at least ``dpd_min`` days past due are also escalated."""

    dpd_min: float = Field(ge=0.0)
    en: str
    zh: str


class ValueConfig(_Strict):
    """Customer value = expected margin over the remaining life (see the YAML)."""

    funding_rate_pct: float
    use_policy_rate: bool = True
    funding_spread_pct: float = 0.0
    life_cap_months: float = Field(gt=0.0)
    card_life_months: float = Field(ge=0.0)


class Segmentation(_Strict):
    """High value: value >= high_value_min; high risk: grade or level in the lists."""

    high_value_min: float = Field(ge=0.0)
    high_risk_grades: list[str]
    high_risk_levels: list[LevelName]


class PressureRule(_Strict):
    """No risk contact for the already-dissatisfied unless the risk is severe."""

    p_dissatisfied_min: Share
    severe_levels: list[LevelName]
    severe_pd_min: Share


class Outreach(_Strict):
    """The constants' assumed effect of each contact (``postloan.decisions.strategy.actions``), the
    levels that count as difficulty, the pressure rule and the default capacity."""

    capacity: int = Field(ge=1)
    risk_avertable_share: Share
    retention_success_rate: Share
    recovery_effect: Share
    restructure_levels: list[LevelName]
    pressure_rule: PressureRule


class UpliftValue(_Strict):
    """How the decision values a contact, whatever estimated its effects
    (``strategy.actions``).

    Attributes:
        contact_cost: cost of one contact per action (the book's contact policy prices
            them the same way: docs/contact-policy.md).
        service_value: money value of one customer kept from being dissatisfied.
        capacity_per_action: optional cap per action inside the total capacity.
    """

    contact_cost: dict[str, Annotated[float, Field(ge=0.0)]] = Field(default_factory=lambda: {
        "payment_reminder": 2.0, "restructuring_offer": 60.0, "retention_offer": 40.0,
        "service_recovery_call": 15.0})
    service_value: float = Field(50.0, ge=0.0)
    capacity_per_action: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)

    @field_validator("contact_cost", "capacity_per_action")
    @classmethod
    def _actions(cls, d: dict) -> dict:
        unknown = [k for k in d if k not in ACTIONS]
        if unknown:
            raise ValueError(f"unknown action(s) {unknown}; allowed {list(ACTIONS)}")
        return d


def _exact_keys(d: Mapping[str, Any], allowed: Sequence[str], what: str,
                required: bool = True) -> None:
    unknown = [k for k in d if k not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} name(s) {unknown}; allowed {list(allowed)}")
    missing = [k for k in allowed if k not in d]
    if required and missing:
        raise ValueError(f"missing {what}(s) {missing}")


class StrategyConfig(_Strict):
    """The validated ``strategy.yaml``: every rule of grades, EL, warnings, segments, queue."""

    risk_grades: list[GradeBand] = Field(min_length=1)
    lgd: dict[str, LgdPair]
    signals: list[Signal]
    warning_levels: dict[str, LevelRule]
    responses: dict[str, Text]
    escalation: Escalation
    n_model_reasons: int = Field(3, ge=0)
    value: ValueConfig
    segmentation: Segmentation
    segments: dict[str, Text]
    outreach: Outreach
    uplift: UpliftValue = Field(default_factory=UpliftValue)
    actions: dict[str, Text]

    @field_validator("risk_grades")
    @classmethod
    def _bands(cls, bands: list[GradeBand]) -> list[GradeBand]:
        names = [b.grade for b in bands]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate grade names in {names}")
        for i, b in enumerate(bands):
            if not b.pd_max > b.pd_min:
                raise ValueError(f"band {i} ({b.grade}): pd_max {b.pd_max} must be above "
                                 f"pd_min {b.pd_min} (bands must be increasing)")
            if i == 0:
                if b.pd_min != 0.0:
                    raise ValueError(f"band 0 ({b.grade}) must start at pd_min 0, not {b.pd_min}")
                continue
            prev = bands[i - 1]
            if b.pd_min < prev.pd_max:
                raise ValueError(f"bands overlap: band {i} ({b.grade}) starts at {b.pd_min}, "
                                 f"before band {i - 1} ({prev.grade}) ends at {prev.pd_max}")
            if b.pd_min > prev.pd_max:
                raise ValueError(f"gap between bands: band {i - 1} ({prev.grade}) ends at "
                                 f"{prev.pd_max}, band {i} ({b.grade}) starts at {b.pd_min}")
        if bands[-1].pd_max != 1.0:
            raise ValueError(f"the last band ({bands[-1].grade}) must end at pd_max 1, "
                             f"not {bands[-1].pd_max}")
        return bands

    @field_validator("lgd")
    @classmethod
    def _lgd_products(cls, v: dict[str, LgdPair]) -> dict[str, LgdPair]:
        # Products are a fixed vocabulary, but a lender may hold only some of them (a
        # declared subset, docs/data-contract.md): the products it lends are enough; a
        # scored product without an entry is refused when scoring, naming it.
        if not v:
            raise ValueError("give the LGD of at least one product")
        _exact_keys(v, S.PRODUCTS, "product", required=False)
        return v

    @field_validator("signals")
    @classmethod
    def _unique_signals(cls, v: list[Signal]) -> list[Signal]:
        ids = [s.id for s in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate signal id(s) {dup}")
        return v

    @field_validator("warning_levels")
    @classmethod
    def _rule_levels(cls, v: dict[str, LevelRule]) -> dict[str, LevelRule]:
        for k in v:
            if k not in RULE_LEVELS:
                raise ValueError(f"unknown level name '{k}'; rule levels are {list(RULE_LEVELS)}"
                                 " (green is what is left)")
        return v

    @field_validator("responses")
    @classmethod
    def _response_levels(cls, v: dict[str, Text]) -> dict[str, Text]:
        for k in v:
            _check_level(k)
        _exact_keys(v, LEVELS, "level")
        return v

    @field_validator("segments")
    @classmethod
    def _segment_names(cls, v: dict[str, Text]) -> dict[str, Text]:
        _exact_keys(v, SEGMENTS, "segment")
        return v

    @field_validator("actions")
    @classmethod
    def _action_names(cls, v: dict[str, Text]) -> dict[str, Text]:
        _exact_keys(v, ACTIONS, "action")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> StrategyConfig:
        grades = [b.grade for b in self.risk_grades]
        for g in self.segmentation.high_risk_grades:
            if g not in grades:
                raise ValueError(f"segmentation.high_risk_grades: unknown grade '{g}'; "
                                 f"grades are {grades}")
        # A criterion must not be looser at a higher level, or the level order would lie.
        for c in _CRITERIA:
            prev_name, prev = None, None
            for name in RULE_LEVELS:
                rule = self.warning_levels.get(name)
                x = None if rule is None else getattr(rule, c)
                if x is None:
                    continue
                if prev is not None and x < prev:
                    raise ValueError(f"warning_levels.{name}.{c} = {x} is below "
                                     f"warning_levels.{prev_name}.{c} = {prev}: a higher level "
                                     "must not have a looser threshold")
                prev_name, prev = name, x
        return self

    @property
    def grades(self) -> list[str]:
        """Grade names, best (lowest PD) first."""
        return [b.grade for b in self.risk_grades]


def load_strategy_config(path: str | Path | None = None) -> StrategyConfig:
    """Read and validate the strategy YAML (the packaged ``config/strategy.yaml`` by default).

    Args:
        path: a YAML file, or None for the packaged default.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: unreadable file, or a field with a wrong name, type or value; the
            message names the field (e.g. ``signals.2.field``, ``lgd.card.secured``,
            ``risk_grades``, ``outreach.capacity``).
    """
    what = "strategy config"
    src = "postloan:config/strategy.yaml" if path is None else str(path)
    text = shipped_text("config/strategy.yaml") if path is None else read_text(path, what)
    return validate(StrategyConfig, read_mapping(text, what, src), what, src)


@lru_cache(maxsize=1)
def _default_config() -> StrategyConfig:
    return load_strategy_config(None)


def _cfg(cfg: StrategyConfig | None) -> StrategyConfig:
    return _default_config() if cfg is None else cfg
