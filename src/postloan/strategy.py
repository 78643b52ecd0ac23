"""Early warning and customer prioritisation: from three scores to who to call, why, and what.

The domain's point is not the scores but the actions (domain.md, "Early warning" and
"Customer prioritization"). Given the scored frame (:func:`postloan.scoring.score_snapshot`)
and the customer snapshot, this module derives per customer:

- a **risk grade** from calibrated PD bands (monotone in ``pd_12m``);
- the **expected loss** EL = PD x LGD x EAD, with EAD = outstanding balance and LGD by
  main product blended with the secured share of the balance;
- **early-warning signals**: declared rules on snapshot or score fields;
- a **warning level** (green / yellow / orange / red) with its response and every reason
  that put the customer there, ranked by severity x probability inside each level;
- a **segment** from customer value (expected margin over the remaining life) x risk;
- the **expected benefit** of one contact and the **recommended action**, which
  :func:`outreach_queue` ranks into a queue for a team of limited capacity.

Every threshold and rule lives in ``config/strategy.yaml`` (validated by
:class:`StrategyConfig`); the functions are pure: DataFrames in, DataFrames out.
Arithmetic is vectorised with numpy; Python loops only build the text lists.
"""

from __future__ import annotations

import gc
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import numpy as np
import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from postloan import schema as S
from postloan.errors import ConfigError, DataValidationError
from postloan.scoring import SCORE_COLUMNS
from postloan.snapshot import NUMERIC_FIELDS

log = logging.getLogger(__name__)

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
SOURCES = ("risk", "retention", "service")
"""Sources of a contact's benefit, in tie-break order."""

# Fields a signal may test: the snapshot contract's numeric fields and the scores.
SIGNAL_FIELDS = frozenset(NUMERIC_FIELDS) | frozenset(SCORE_COLUMNS.values())

_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}
_LEVEL_ZH = {"green": "绿色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
_CRITERIA = ("pd_min", "el_min", "max_severity_min", "severity_sum_min", "n_signals_min")

OUTPUT_COLUMNS = (
    "customer_id", PD_COL, CHURN_COL, DISSAT_COL, "risk_grade", "ead", "lgd",
    "expected_loss", "signals", "warning_level", "response", "warning_reasons",
    "warning_reasons_zh", "warning_rank", "customer_value", "segment", "segment_strategy",
    "expected_benefit", "recommended_action", "action_reasons",
)
"""The columns :func:`apply_strategy` always returns (plus the extras it documents)."""


# --------------------------------------------------------------------------- config
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
    """Expected benefit of one contact by source, and the default daily capacity."""

    capacity: int = Field(ge=1)
    risk_avertable_share: Share
    retention_success_rate: Share
    recovery_effect: Share
    service_goodwill: float = Field(ge=0.0)
    restructure_levels: list[LevelName]
    defaulted_dpd_min: float = Field(S.DEFAULT_DPD, ge=0.0)
    defaulted_avertable_share: Share = 0.05
    pressure_rule: PressureRule


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
        _exact_keys(v, S.PRODUCTS, "product")
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
    src = "postloan:config/strategy.yaml" if path is None else str(path)
    try:
        if path is None:
            text = resources.files("postloan").joinpath("config/strategy.yaml").read_text(
                "utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read strategy config {src}: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"strategy config {src} must hold a mapping")
    try:
        return StrategyConfig(**data)
    except ValidationError as e:
        errs = "; ".join(
            f"{'.'.join(map(str, x['loc'])) or '(top level)'}: {x['msg']}" for x in e.errors()
        )
        raise ConfigError(f"invalid strategy config {src}: {errs}") from e


@lru_cache(maxsize=1)
def _default_config() -> StrategyConfig:
    return load_strategy_config(None)


def _cfg(cfg: StrategyConfig | None) -> StrategyConfig:
    return _default_config() if cfg is None else cfg


# --------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class _Tables:
    """What the rules need from one config, as arrays, tuples and categorical dtypes.

    Built once per config object (:func:`_tables`), so a call for one customer does no
    per-call work on the config.
    """

    grades: tuple[str, ...]
    grade_edges: np.ndarray  # inner band edges: pd_max of every band but the last
    lgd_secured: dict[str, float]
    lgd_unsecured: dict[str, float]
    sig_ids: tuple[str, ...]
    sig_fields: tuple[str, ...]
    sig_tests: tuple[tuple[Callable[..., np.ndarray], float], ...]  # (op, threshold)
    severity: np.ndarray  # int64, per signal
    sig_order: tuple[int, ...]  # signals by severity (highest first), then declared order
    level_rules: tuple[tuple[str, int, tuple[tuple[str, Any], ...]], ...]
    # (level, its code, ((criterion, threshold), ...)) for the configured rule levels
    high_risk_grade: np.ndarray  # bool per grade code
    high_risk_level: np.ndarray  # bool per level code
    severe_level: np.ndarray  # bool per level code
    restructure_level: np.ndarray  # bool per level code
    esc_min: str
    dtypes: dict[str, pd.CategoricalDtype]  # of the categorical output columns
    labels: dict[str, np.ndarray]  # their categories as object arrays (codes -> labels)


def _level_mask(names: Sequence[str]) -> np.ndarray:
    return np.isin(np.arange(len(LEVELS)), [LEVELS.index(lv) for lv in names])


def _build_tables(cfg: StrategyConfig) -> _Tables:
    grades = tuple(cfg.grades)
    sigs = cfg.signals

    def cat(names: Sequence[str], ordered: bool = False) -> pd.CategoricalDtype:
        return pd.CategoricalDtype(list(names), ordered=ordered)

    resp = [cfg.responses[lv].en for lv in LEVELS]
    resp_zh = [cfg.responses[lv].zh for lv in LEVELS]
    resp.append(f"{cfg.responses['red'].en}; {cfg.escalation.en}")
    resp_zh.append(f"{cfg.responses['red'].zh}；{cfg.escalation.zh}")
    level_rules = []
    for name in RULE_LEVELS:  # ascending, so the highest level that holds wins
        rule = cfg.warning_levels.get(name)
        if rule is not None:
            crit = tuple((c, getattr(rule, c)) for c in _CRITERIA if getattr(rule, c) is not None)
            level_rules.append((name, LEVELS.index(name), crit))
    dtypes = {
        "risk_grade": cat(grades, ordered=True),
        "warning_level": cat(LEVELS, ordered=True),
        "response": cat(resp),
        "response_zh": cat(resp_zh),
        "segment": cat(SEGMENTS),
        "segment_strategy": cat([cfg.segments[s].en for s in SEGMENTS]),
        "segment_strategy_zh": cat([cfg.segments[s].zh for s in SEGMENTS]),
        "action_source": cat([*SOURCES, NO_ACTION]),
        "recommended_action": cat([*ACTIONS, NO_ACTION]),
        "pressure_rule": cat(["", "withheld", "overridden"]),
    }
    return _Tables(
        grades=grades,
        grade_edges=np.array([b.pd_max for b in cfg.risk_grades[:-1]], dtype="float64"),
        lgd_secured={k: v.secured for k, v in cfg.lgd.items()},
        lgd_unsecured={k: v.unsecured for k, v in cfg.lgd.items()},
        sig_ids=tuple(s.id for s in sigs),
        sig_fields=tuple(s.field for s in sigs),
        sig_tests=tuple((_OPS[s.op], s.threshold) for s in sigs),
        severity=np.array([s.severity for s in sigs], dtype="int64"),
        sig_order=tuple(sorted(range(len(sigs)), key=lambda j: -sigs[j].severity)),
        level_rules=tuple(level_rules),
        high_risk_grade=np.isin(np.arange(len(grades)),
                                [grades.index(g) for g in cfg.segmentation.high_risk_grades]),
        high_risk_level=_level_mask(cfg.segmentation.high_risk_levels),
        severe_level=_level_mask(cfg.outreach.pressure_rule.severe_levels),
        restructure_level=_level_mask(cfg.outreach.restructure_levels),
        esc_min=_fmt_num(cfg.escalation.dpd_min),
        dtypes=dtypes,
        labels={c: np.asarray(list(d.categories), dtype=object) for c, d in dtypes.items()},
    )


_TABLES: dict[int, tuple[StrategyConfig, _Tables]] = {}
_TABLES_MAX = 8


def _tables(cfg: StrategyConfig) -> _Tables:
    """The derived tables of `cfg` (the config is frozen, so they never go stale).

    Keyed on ``id(cfg)``; the entry keeps the config alive so its id is not reused.
    """
    hit = _TABLES.get(id(cfg))
    if hit is not None and hit[0] is cfg:
        return hit[1]
    tables = _build_tables(cfg)
    if len(_TABLES) >= _TABLES_MAX:
        _TABLES.pop(next(iter(_TABLES)), None)
    _TABLES[id(cfg)] = (cfg, tables)
    return tables


# --------------------------------------------------------------------------- columns
def _num_values(s: pd.Series) -> np.ndarray:
    """A column as float64 (non-numbers become NaN)."""
    if isinstance(s.dtype, np.dtype) and s.dtype == np.float64:
        return s.to_numpy()  # already numeric: to_numeric would change nothing
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    return _num_values(frame[col])


class _Columns:
    """The joined input, column by column: the snapshot's columns, then the scores' others.

    Reads what ``pd.concat([snapshot, scores[extra]], axis=1)`` would hold (scores taken
    in the order `pos` when given) without building that frame: for one customer,
    pandas spends far more time building and indexing frames than on the arithmetic.
    Each source is a frame or a mapping of column name to array (see :func:`decide`).
    Numeric columns are converted once and kept; callers must not modify them.
    """

    def __init__(self, snap: pd.DataFrame | Mapping[str, Any],
                 extra: pd.DataFrame | Mapping[str, Any] | None = None,
                 pos: np.ndarray | None = None) -> None:
        self.snap = snap
        self.extra = extra
        self.pos = pos
        self.n = len(snap) if isinstance(snap, pd.DataFrame) else \
            len(snap["customer_id"])
        self._nums: dict[str, np.ndarray] = {}

    @staticmethod
    def _has(source: Any, col: str) -> bool:
        return source is not None and col in (source.columns if isinstance(source, pd.DataFrame)
                                              else source)

    def __contains__(self, col: str) -> bool:
        return self._has(self.snap, col) or self._has(self.extra, col)

    def _get(self, col: str, numeric: bool) -> np.ndarray:
        source = self.snap if self._has(self.snap, col) else self.extra
        if source is None:
            raise KeyError(col)
        raw = source[col]
        if isinstance(raw, pd.Series):
            v = _num_values(raw) if numeric else raw.to_numpy()
        else:
            v = np.asarray(raw)
            if numeric and v.dtype != np.float64:
                v = _num_values(pd.Series(v))
        return v if source is self.snap or self.pos is None else v[self.pos]

    def values(self, col: str) -> np.ndarray:
        """The column's values (``Series.to_numpy()``)."""
        return self._get(col, numeric=False)

    def num(self, col: str) -> np.ndarray:
        """The column as float64, as :func:`_num` would give it."""
        v = self._nums.get(col)
        if v is None:
            v = self._nums[col] = self._get(col, numeric=True)
        return v


# --------------------------------------------------------------------------- pieces
def risk_grade(pd_12m: pd.Series | np.ndarray, cfg: StrategyConfig | None = None) -> np.ndarray:
    """Risk grade of each PD from the configured bands (monotone: higher PD, later grade).

    Args:
        pd_12m: calibrated 12-month PDs in [0, 1].
        cfg: strategy config (the packaged default when None).

    Returns:
        Object array of grade names.
    """
    cfg = _cfg(cfg)
    return np.asarray(cfg.grades, dtype=object)[_grade_codes(pd_12m, cfg)]


def _grade_codes(pd_12m: pd.Series | np.ndarray, cfg: StrategyConfig) -> np.ndarray:
    p = np.asarray(pd_12m, dtype="float64")
    # Lower bound inclusive: PD exactly at an edge belongs to the higher band.
    return np.searchsorted(_tables(cfg).grade_edges, p, side="right")


def expected_loss(frame: pd.DataFrame, cfg: StrategyConfig | None = None) -> pd.DataFrame:
    """EAD, LGD and EL = PD x LGD x EAD per row.

    EAD is the outstanding balance (``total_balance``); LGD blends the main product's
    secured and unsecured LGD by ``secured_share`` (missing share = unsecured).

    Args:
        frame: rows with ``pd_12m``, ``total_balance``, ``main_product``, ``secured_share``.
        cfg: strategy config (the packaged default when None).

    Returns:
        Frame with ``ead``, ``lgd``, ``expected_loss``, aligned with `frame`.

    Raises:
        DataValidationError: a main product with no configured LGD.
    """
    ead, lgd, el = _expected_loss(_Columns(frame), _tables(_cfg(cfg)))
    return pd.DataFrame({"ead": ead, "lgd": lgd, "expected_loss": el}, index=frame.index)


def _expected_loss(cols: _Columns, t: _Tables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ead, lgd, expected_loss) arrays; see :func:`expected_loss`."""
    product = cols.values("main_product").astype(object, copy=False)
    codes, uniques = pd.factorize(product)  # missing products get code -1
    known_u = np.array([u in t.lgd_secured for u in uniques], dtype=bool)
    if (codes < 0).any() or not known_u.all():
        known = (codes >= 0) & known_u[codes]
        bad = pd.Series(product, dtype=object)[~known]
        raise DataValidationError("snapshot", f"main_product without an LGD in the strategy "
                                  f"config; configured {list(t.lgd_secured)}", "main_product",
                                  bad.head(5).to_string())
    sec = np.array([t.lgd_secured[u] for u in uniques], dtype="float64")[codes]
    uns = np.array([t.lgd_unsecured[u] for u in uniques], dtype="float64")[codes]
    share = np.clip(np.nan_to_num(cols.num("secured_share"), nan=0.0), 0.0, 1.0)
    lgd = share * sec + (1.0 - share) * uns
    ead = cols.num("total_balance")
    return ead, lgd, cols.num(PD_COL) * lgd * ead


def fire_signals(frame: pd.DataFrame, cfg: StrategyConfig | None = None) -> pd.DataFrame:
    """Which early-warning signals fire for each row.

    A signal fires when ``frame[field] <op> threshold`` holds; a missing (NaN) value never
    fires, and ``>=`` / ``<=`` fire exactly at the threshold.

    Args:
        frame: rows holding every signal's field.
        cfg: strategy config (the packaged default when None).

    Returns:
        Boolean frame, one column per signal id, aligned with `frame`.

    Raises:
        DataValidationError: a signal's field is not a column of `frame`.
    """
    t = _tables(_cfg(cfg))
    fired = _fire_signals(_Columns(frame), t)
    return pd.DataFrame({sid: fired[:, j] for j, sid in enumerate(t.sig_ids)},
                        index=frame.index, dtype=bool)


def _fire_signals(cols: _Columns, t: _Tables) -> np.ndarray:
    """Boolean (rows x signals) array; see :func:`fire_signals`."""
    fired = np.zeros((cols.n, len(t.sig_ids)), dtype=bool, order="F")
    with np.errstate(invalid="ignore"):
        for j, (sid, field, (op, threshold)) in enumerate(
                zip(t.sig_ids, t.sig_fields, t.sig_tests, strict=True)):
            if field not in cols:
                raise DataValidationError("snapshot", f"column needed by signal '{sid}' is "
                                          "missing", field)
            v = cols.num(field)
            fired[:, j] = op(v, threshold) & ~np.isnan(v)
    return fired


def customer_value(frame: pd.DataFrame, cfg: StrategyConfig | None = None) -> np.ndarray:
    """Expected margin over the remaining life, in money.

    ``total_balance * max(weighted_rate - funding_rate, 0) / 100 * min(life, cap) / 12
    * (1 - pd_12m) * (1 - p_churn_6m)``; life = ``min_remaining_months`` (at least 0), or
    ``card_life_months`` when missing (revolving card only); funding_rate =
    ``policy_rate + funding_spread_pct`` when configured and known, else
    ``funding_rate_pct``. A missing rate counts as no margin.
    """
    return _customer_value(_Columns(frame), _cfg(cfg))


def _customer_value(cols: _Columns, cfg: StrategyConfig) -> np.ndarray:
    vc = cfg.value
    funding = np.full(cols.n, vc.funding_rate_pct, dtype="float64")
    if vc.use_policy_rate and "policy_rate" in cols:
        pol = cols.num("policy_rate") + vc.funding_spread_pct
        funding = np.where(np.isnan(pol), funding, pol)
    margin = np.nan_to_num(np.maximum(cols.num("weighted_rate") - funding, 0.0), nan=0.0)
    life = cols.num("min_remaining_months")
    life = np.clip(np.where(np.isnan(life), vc.card_life_months, life), 0.0, vc.life_cap_months)
    return (cols.num("total_balance") * margin / 100.0 * life / 12.0
            * (1.0 - cols.num(PD_COL)) * (1.0 - cols.num(CHURN_COL)))


# --------------------------------------------------------------------------- inputs
_SNAPSHOT_NEEDS = ("total_balance", "main_product", "secured_share", "weighted_rate",
                   "min_remaining_months", "dpd_current")


def _join(scored: pd.DataFrame, snapshot: pd.DataFrame) -> pd.DataFrame:
    """Scores beside their snapshot rows, in the snapshot's row order."""
    for col in SCORE_COLUMNS.values():
        if col not in scored.columns:
            raise DataValidationError("scores", "missing score column", col)
    for col in ("customer_id", *_SNAPSHOT_NEEDS):
        if col not in snapshot.columns:
            raise DataValidationError("snapshot", "missing column", col)
    snap = snapshot.reset_index(drop=True)
    sc = scored.reset_index(drop=True)
    if snap["customer_id"].duplicated().any():
        raise DataValidationError("snapshot", "duplicate customer_id", "customer_id")
    if "customer_id" in sc.columns:
        if sc["customer_id"].duplicated().any():
            raise DataValidationError("scores", "duplicate customer_id", "customer_id")
        pos = pd.Index(sc["customer_id"]).get_indexer(snap["customer_id"])
        if (pos < 0).any() or len(sc) != len(snap):
            raise DataValidationError("scores", "scores and snapshot hold different customers",
                                      "customer_id")
        sc = sc.iloc[pos].reset_index(drop=True)
    elif len(sc) != len(snap):
        raise DataValidationError("scores", f"{len(sc)} score rows for {len(snap)} snapshot rows "
                                  "and no customer_id to join on")
    extra = [c for c in sc.columns if c not in snap.columns]
    frame = pd.concat([snap, sc[extra]], axis=1)
    for col in SCORE_COLUMNS.values():
        p = _num(frame, col)
        bad = np.isnan(p) | (p < 0.0) | (p > 1.0)
        if bad.any():
            raise DataValidationError("scores", "probabilities must be present and in [0, 1]",
                                      col, frame.loc[bad, ["customer_id", col]].head(5))
    bal = _num(frame, "total_balance")
    bad = np.isnan(bal) | (bal < 0.0)
    if bad.any():
        raise DataValidationError("snapshot", "balance must be present and >= 0",
                                  "total_balance",
                                  frame.loc[bad, ["customer_id", "total_balance"]].head(5))
    return frame


def _join_columns(scored: pd.DataFrame, snapshot: pd.DataFrame) -> _Columns:
    """:func:`_join` without building the joined frame: the same checks, as columns.

    Any problem is reported by :func:`_join` itself, so the errors are the same.
    """
    n = len(snapshot)
    ok = (all(c in scored.columns for c in SCORE_COLUMNS.values())
          and all(c in snapshot.columns for c in ("customer_id", *_SNAPSHOT_NEEDS)))
    ok = ok and (n < 2 or not snapshot["customer_id"].duplicated().any())
    pos = None
    if ok and "customer_id" in scored.columns:
        sc_id, snap_id = scored["customer_id"], snapshot["customer_id"]
        ok = len(scored) == n and (n < 2 or not sc_id.duplicated().any())
        a, b = sc_id.to_numpy(), snap_id.to_numpy()
        if ok and not (a.dtype == b.dtype and a.dtype.kind in "iu" and np.array_equal(a, b)):
            pos = pd.Index(sc_id).get_indexer(snap_id)  # not already in the snapshot's order
            ok = not (pos < 0).any()
    elif ok:
        ok = len(scored) == n
    if not ok:
        _join_error(scored, snapshot)
    cols = _Columns(snapshot, scored, pos)
    for col in SCORE_COLUMNS.values():
        p = cols.num(col)
        if (np.isnan(p) | (p < 0.0) | (p > 1.0)).any():
            _join_error(scored, snapshot)
    bal = cols.num("total_balance")
    if (np.isnan(bal) | (bal < 0.0)).any():
        _join_error(scored, snapshot)
    return cols


def _join_error(scored: pd.DataFrame, snapshot: pd.DataFrame) -> NoReturn:
    _join(scored, snapshot)  # raises the DataValidationError that names the problem
    raise AssertionError("the join checks disagree")  # pragma: no cover


def _up_reasons(cell: Any, k: int) -> list[dict]:
    """The top-k "up" reasons of one reasons cell (dict, JSON text or missing)."""
    if k <= 0 or cell is None:
        return []
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            return []
    if not isinstance(cell, Mapping):
        return []
    up = cell.get("up")
    if up is None:
        return []
    return [r for r in list(up)[:k] if isinstance(r, Mapping)]


def _fmt_num(x: float) -> str:
    return f"{x:g}"


# --------------------------------------------------------------------------- strategy
def apply_strategy(scored: pd.DataFrame, snapshot: pd.DataFrame,
                   cfg: StrategyConfig | None = None) -> pd.DataFrame:
    """Grades, expected loss, warnings, segments and the recommended contact per customer.

    Rules (all thresholds in ``strategy.yaml``):

    - **risk_grade**: the PD band holding ``pd_12m`` (lower bound inclusive).
    - **expected_loss** = pd_12m x lgd x ead; ead = total_balance; lgd = secured_share x
      lgd[product].secured + (1 - secured_share) x lgd[product].unsecured.
    - **signals**: ids of the fired rule signals (NaN never fires).
    - **warning_level**: the highest of red > orange > yellow any of whose criteria
      holds (PD, EL, max severity, severity sum, number of signals), else green;
      **response** is the level's response, for red at ``escalation.dpd_min`` days
      past due or more with the escalation appended.
    - **warning_reasons** (en) / **warning_reasons_zh**: first the level criteria that
      hold (``"red: 12-month PD 34.0% >= 30%"``), then every fired signal
      (``"signal <id> (severity s): ..."``), then for non-green customers the top
      ``n_model_reasons`` SHAP "up" reasons of the default model (``"model: ..."``)
      when ``reasons_default_risk`` is present, then the escalation. Every non-green
      customer has at least the criterion that put them there.
    - **warning_rank**: 1 = most urgent inside the level, by severity x probability
      ``warning_score = pd_12m x (1 + severity_sum)``, then expected loss, then
      customer_id.
    - **customer_value** (see :func:`customer_value`) and **segment**: high value =
      value >= high_value_min; high risk = grade in high_risk_grades or level in
      high_risk_levels; protect (high value, low risk), grow (low, low), watch (high,
      high), work_out (low, high); **segment_strategy** its text.
    - **expected_benefit**, **recommended_action**, **action_reasons**: the best of
      risk = EL x risk_avertable_share (defaulted_avertable_share at
      defaulted_dpd_min days past due or more; action restructuring_offer at
      restructure_levels, else payment_reminder), retention = value x p_churn x
      retention_success_rate (retention_offer), service = p_dissatisfied x (value x
      recovery_effect + service_goodwill) (service_recovery_call); ties go to the
      earlier source. **Pressure rule**: when the best source is risk, p_dissatisfied
      >= pressure_rule.p_dissatisfied_min and the risk is not severe (level not in
      severe_levels and pd_12m < severe_pd_min), the risk contact is withheld and the
      action is the service-recovery call with its own benefit; the reasons say so,
      and say so too when severe risk overrides the rule. No benefit: action "none".

    Args:
        scored: output of :func:`postloan.scoring.score_snapshot` (``pd_12m``,
            ``p_churn_6m``, ``p_dissatisfied_3m``; ``customer_id`` to join on, else
            aligned by row order; optional ``reasons_<model>`` columns).
        snapshot: the customer snapshot rows (:data:`postloan.snapshot.SNAPSHOT_FIELDS`).
        cfg: strategy config (the packaged default when None).

    Returns:
        One row per customer in the snapshot's row order: :data:`OUTPUT_COLUMNS`, plus
        ``as_of`` (when given), ``dpd_current``, ``n_signals``, ``severity_sum``,
        ``max_severity``, ``warning_score``, ``response_zh``, ``segment_strategy_zh``,
        ``benefit_risk``, ``benefit_retention``, ``benefit_service``, ``action_source``,
        ``pressure_rule`` (``withheld`` / ``overridden`` / ``""``) and
        ``action_reasons_zh``. Repeated labels (risk_grade and warning_level ordered,
        response, segment, segment_strategy, action_source, recommended_action,
        pressure_rule) are categoricals; signals and the reasons are lists of strings.

    Raises:
        DataValidationError: missing columns, duplicate or mismatched customers,
            probabilities missing or outside [0, 1], negative balances, unknown products.
    """
    cfg = _cfg(cfg)
    t = _tables(cfg)
    columns = _decide(_join_columns(scored, snapshot), cfg)
    # one frame from the dict: no per-column insert
    out = pd.DataFrame({c: (pd.Categorical.from_codes(v.codes, dtype=t.dtypes[c])
                            if isinstance(v, _Codes) else v) for c, v in columns.items()})
    if log.isEnabledFor(logging.INFO):
        log.info("strategy applied to %d customers: %s", len(out),
                 out["warning_level"].value_counts(sort=False).to_dict())
    return out


def decide(scores: Mapping[str, Any], snapshot: Mapping[str, Any],
           cfg: StrategyConfig | None = None) -> dict[str, np.ndarray | list]:
    """:func:`apply_strategy` on columns instead of frames, for a few customers at a time.

    The same rules and numbers; made for the HTTP service, where building, indexing
    and converting pandas frames would cost more than the rules for one customer.

    Args:
        scores: column -> values for the probabilities (``pd_12m``, ``p_churn_6m``,
            ``p_dissatisfied_3m``) and optional ``reasons_<model>`` cells, in the
            snapshot's customer order.
        snapshot: column -> values of the snapshot fields (``customer_id`` included).
        cfg: strategy config (the packaged default when None).

    Returns:
        The columns of :func:`apply_strategy` in its order, as arrays (labels instead of
        categoricals) and lists.

    Raises:
        DataValidationError: as :func:`apply_strategy`.
    """
    cfg = _cfg(cfg)
    t = _tables(cfg)
    n = len(snapshot["customer_id"])
    ok = (all(c in scores for c in SCORE_COLUMNS.values())
          and all(c in snapshot for c in _SNAPSHOT_NEEDS)
          and all(len(scores[c]) == n for c in SCORE_COLUMNS.values())
          and len(set(snapshot["customer_id"])) == n)
    cols = _Columns(snapshot, scores)
    if ok:
        p = np.concatenate([cols.num(c) for c in SCORE_COLUMNS.values()])
        bal = cols.num("total_balance")
        ok = not ((np.isnan(p) | (p < 0.0) | (p > 1.0)).any()
                  or (np.isnan(bal) | (bal < 0.0)).any())
    if not ok:
        _join_error(pd.DataFrame(dict(scores)), pd.DataFrame(dict(snapshot)))
    columns = _decide(cols, cfg)
    return {c: (t.labels[c][v.codes] if isinstance(v, _Codes) else v)
            for c, v in columns.items()}


@dataclass(frozen=True)
class _Codes:
    """Codes of a categorical output column (its categories: ``_Tables.dtypes``)."""

    codes: np.ndarray


def rank_within_level(level: np.ndarray, warning_score: np.ndarray,
                      expected_loss: np.ndarray, customer_key: np.ndarray) -> np.ndarray:
    """``warning_rank``: 1 = most urgent inside each level, by warning score, then expected
    loss (both descending), then customer (ascending `customer_key`: ids or their codes)."""
    n = len(level)
    order = np.lexsort((customer_key, -expected_loss, -warning_score, level))
    lv_sorted = level[order]
    starts = np.r_[0, np.flatnonzero(np.diff(lv_sorted)) + 1] if n else np.array([], int)
    pos = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, dtype="int64")
    rank[order] = pos + 1
    return rank


def _decide(cols: _Columns, cfg: StrategyConfig) -> dict[str, Any]:
    """The rules of :func:`apply_strategy` on checked, joined columns.

    Returns:
        Output column -> values, in output order; categorical columns as :class:`_Codes`.
    """
    t = _tables(cfg)
    n = cols.n
    p_def, p_churn, p_dis = (cols.num(c) for c in (PD_COL, CHURN_COL, DISSAT_COL))
    dpd = np.nan_to_num(cols.num("dpd_current"), nan=0.0)

    grade_code = _grade_codes(p_def, cfg)
    ead, lgd, el = _expected_loss(cols, t)

    # ---- signals and warning level
    fired = _fire_signals(cols, t)
    sev = t.severity
    n_sig = fired.sum(axis=1).astype("int64")
    sev_sum = (fired * sev).sum(axis=1).astype("int64") if len(sev) else np.zeros(n, "int64")
    max_sev = (fired * sev).max(axis=1, initial=0).astype("int64") if len(sev) else \
        np.zeros(n, "int64")
    measures = {"pd_min": p_def, "el_min": el, "max_severity_min": max_sev,
                "severity_sum_min": sev_sum, "n_signals_min": n_sig}
    met: dict[str, dict[str, np.ndarray]] = {}
    level = np.zeros(n, dtype="int64")
    for name, code, criteria in t.level_rules:  # ascending: the highest level that holds wins
        met[name] = {c: measures[c] >= thr for c, thr in criteria}
        level[np.logical_or.reduce(list(met[name].values()))] = code
    escalate = (level == LEVELS.index("red")) & (dpd >= cfg.escalation.dpd_min)

    # Severity x probability inside each level.
    warning_score = p_def * (1.0 + sev_sum)
    # customer_id only breaks ties, and one row has none to break.
    cid_code = (pd.factorize(cols.values("customer_id"), sort=True)[0] if n > 1
                else np.zeros(n, dtype="int64"))
    warning_rank = rank_within_level(level, warning_score, el, cid_code)

    # ---- value and segment
    value = _customer_value(cols, cfg)
    high_value = value >= cfg.segmentation.high_value_min
    high_risk = t.high_risk_grade[grade_code] | t.high_risk_level[level]
    # protect, grow, watch, work_out = positions in SEGMENTS
    segment = np.where(high_risk, np.where(high_value, 2, 3), np.where(high_value, 0, 1))

    # ---- expected benefit of one contact and the action
    oc = cfg.outreach
    # Early action averts a share of the EL; once past the default DPD it is work-out,
    # where a contact averts much less.
    avert = np.where(dpd >= oc.defaulted_dpd_min, oc.defaulted_avertable_share,
                     oc.risk_avertable_share)
    benefits = np.nan_to_num(np.column_stack([
        el * avert,
        value * p_churn * oc.retention_success_rate,
        p_dis * (value * oc.recovery_effect + oc.service_goodwill),
    ]), nan=0.0)
    source = np.argmax(benefits, axis=1)  # first maximum: risk, retention, service
    pr = oc.pressure_rule
    pressured = p_dis >= pr.p_dissatisfied_min
    severe = t.severe_level[level] | (p_def >= pr.severe_pd_min)
    withheld = (source == 0) & pressured & ~severe
    overridden = (source == 0) & pressured & severe
    source = np.where(withheld, 2, source)
    benefit = benefits[np.arange(n), source]
    risk_action = np.where(t.restructure_level[level], ACTIONS.index("restructuring_offer"),
                           ACTIONS.index("payment_reminder"))
    action = np.where(source == 1, ACTIONS.index("retention_offer"),
                      np.where(source == 2, ACTIONS.index("service_recovery_call"), risk_action))
    none = ~(benefit > 0.0)
    action = np.where(none, len(ACTIONS), action)  # the code after ACTIONS is NO_ACTION
    source = np.where(none, len(SOURCES), source)
    benefit = np.where(none, 0.0, benefit)

    # ---- text lists (the only Python loops). Millions of small lists would trigger the
    # cyclic garbage collector over and over (none of them can form a cycle): pause it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        signals_col, w_en, w_zh, sig_en, sig_zh = _warning_texts(
            cfg, t, cols, met, level, fired, p_def, el, max_sev, sev_sum, n_sig, dpd, escalate)
        a_en, a_zh = _action_texts(
            cfg, cols, source, level, withheld, overridden, risk_action, p_def, p_churn,
            p_dis, el, avert, value, benefit, sig_en, sig_zh)
    finally:
        if gc_was_enabled:
            gc.enable()

    resp_code = np.where(escalate, len(LEVELS), level)
    columns: dict[str, Any] = {"customer_id": cols.values("customer_id")}
    if "as_of" in cols:
        columns["as_of"] = cols.values("as_of")
    columns.update({
        PD_COL: p_def,
        CHURN_COL: p_churn,
        DISSAT_COL: p_dis,
        "risk_grade": _Codes(grade_code),
        "ead": ead,
        "lgd": lgd,
        "expected_loss": el,
        "dpd_current": dpd,
        "signals": signals_col,
        "n_signals": n_sig,
        "severity_sum": sev_sum,
        "max_severity": max_sev,
        "warning_level": _Codes(level),
        "response": _Codes(resp_code),
        "response_zh": _Codes(resp_code),
        "warning_reasons": w_en,
        "warning_reasons_zh": w_zh,
        "warning_score": warning_score,
        "warning_rank": warning_rank,
        "customer_value": value,
        "segment": _Codes(segment),
        "segment_strategy": _Codes(segment),
        "segment_strategy_zh": _Codes(segment),
        "benefit_risk": benefits[:, 0],
        "benefit_retention": benefits[:, 1],
        "benefit_service": benefits[:, 2],
        "expected_benefit": benefit,
        "action_source": _Codes(source),
        "recommended_action": _Codes(action),
        "pressure_rule": _Codes(np.select([withheld, overridden], [1, 2], 0)),
        "action_reasons": a_en,
        "action_reasons_zh": a_zh,
    })
    return columns


def _model_reasons(cell: Any, k: int, en: list[str], zh: list[str]) -> None:
    for r in _up_reasons(cell, k):
        en.append(f"model: {r.get('text_en', r.get('feature'))}")
        zh.append(f"模型：{r.get('text_zh', r.get('feature'))}")


def _warning_texts(cfg: StrategyConfig, t: _Tables, cols: _Columns,
                   met: dict[str, dict[str, np.ndarray]], level: np.ndarray,
                   fired: np.ndarray, p_def: np.ndarray, el: np.ndarray, max_sev: np.ndarray,
                   sev_sum: np.ndarray, n_sig: np.ndarray, dpd: np.ndarray,
                   escalate: np.ndarray) -> tuple[list[list[str]], ...]:
    """Fired signal ids, warning reasons (en, zh) and signal sentences (en, zh) per row."""
    n = cols.n
    signals_col: list[list[str]] = [[] for _ in range(n)]
    w_en: list[list[str]] = [[] for _ in range(n)]
    w_zh: list[list[str]] = [[] for _ in range(n)]
    sig_en: list[list[str]] = [[] for _ in range(n)]
    sig_zh: list[list[str]] = [[] for _ in range(n)]
    idx = np.flatnonzero((level > 0) | (n_sig > 0) | escalate)
    if not len(idx):
        return signals_col, w_en, w_zh, sig_en, sig_zh
    sigs = cfg.signals
    sig_order = t.sig_order  # by severity (highest first), then in declaration order
    values = (np.column_stack([cols.num(f)[idx] for f in t.sig_fields]).tolist() if sigs
              else [[] for _ in idx])
    fired_rows = fired[idx].tolist()
    met_rows = {lv: {c: m[idx].tolist() for c, m in crit.items()} for lv, crit in met.items()}
    reasons_def = (cols.values("reasons_default_risk")[idx]
                   if "reasons_default_risk" in cols else None)
    k = cfg.n_model_reasons
    cache: dict[tuple[int, float], tuple[str, str, str, str]] = {}
    cols = [a[idx].tolist() for a in (level, p_def, el, max_sev, sev_sum, n_sig, dpd, escalate)]
    esc_min = t.esc_min
    for r, (i, lvc, p, e, ms, ss, ns, d, esc) in enumerate(zip(idx.tolist(), *cols, strict=True)):
        lv = LEVELS[lvc]
        en: list[str] = []
        zh: list[str] = []
        for c, hold in met_rows.get(lv, {}).items():
            if hold[r]:
                te, tz = _criterion_text(c, lv, getattr(cfg.warning_levels[lv], c), p, e, ms,
                                         ss, ns)
                en.append(te)
                zh.append(tz)
        frow, vrow = fired_rows[r], values[r]
        for j in sig_order:
            if frow[j]:
                key = (j, vrow[j])
                texts = cache.get(key)
                if texts is None:
                    s = sigs[j]
                    te = s.text_en.format(value=vrow[j], threshold=s.threshold)
                    tz = s.text_zh.format(value=vrow[j], threshold=s.threshold)
                    texts = (te, tz, f"signal {s.id} (severity {s.severity}): {te}",
                             f"预警信号 {s.id}（严重度{s.severity}）：{tz}")
                    cache[key] = texts
                signals_col[i].append(sigs[j].id)
                sig_en[i].append(texts[0])
                sig_zh[i].append(texts[1])
                en.append(texts[2])
                zh.append(texts[3])
        if lvc > 0 and reasons_def is not None:
            _model_reasons(reasons_def[r], k, en, zh)
        if esc:
            en.append(f"escalated: {d:.0f} days past due >= {esc_min}")
            zh.append(f"升级：逾期{d:.0f}天 >= {esc_min}天")
        w_en[i] = en
        w_zh[i] = zh
    return signals_col, w_en, w_zh, sig_en, sig_zh


def _action_texts(cfg: StrategyConfig, cols: _Columns, source: np.ndarray,
                  level: np.ndarray, withheld: np.ndarray, overridden: np.ndarray,
                  risk_action: np.ndarray, p_def: np.ndarray, p_churn: np.ndarray,
                  p_dis: np.ndarray, el: np.ndarray, avert: np.ndarray, value: np.ndarray,
                  benefit: np.ndarray, sig_en: list[list[str]],
                  sig_zh: list[list[str]]) -> tuple[list[list[str]], list[list[str]]]:
    """Reasons (en, zh) for each row's recommended action."""
    oc = cfg.outreach
    pr = oc.pressure_rule
    k = cfg.n_model_reasons
    reasons_churn = cols.values("reasons_churn") if "reasons_churn" in cols else None
    reasons_sat = (cols.values("reasons_satisfaction") if "reasons_satisfaction" in cols
                   else None)
    thr_dis, sev_pd = pr.p_dissatisfied_min, pr.severe_pd_min
    ret_rate = oc.retention_success_rate
    a_en: list[list[str]] = []
    a_zh: list[list[str]] = []
    cols = [a.tolist() for a in (source, level, withheld, overridden, risk_action, p_def,
                                 p_churn, p_dis, el, avert, value, benefit)]
    for i, (src, lvc, wh, ov, ra_code, p, pc, pdis, e, av, v, b) in enumerate(
            zip(*cols, strict=True)):
        lv = LEVELS[lvc]
        lz = _LEVEL_ZH[lv]
        en: list[str] = []
        zh: list[str] = []
        if wh:
            ra = cfg.actions[ACTIONS[ra_code]]
            en.append(f"pressure rule: p_dissatisfied {pdis:.0%} >= {thr_dis:.0%} and risk not "
                      f"severe (level {lv}, PD {p:.1%} < {sev_pd:.0%}): {ra.en} withheld, "
                      "service-recovery call instead")
            zh.append(f"施压规则：不满意概率{pdis:.0%} >= {thr_dis:.0%}且风险不严重（{lz}预警，"
                      f"违约概率{p:.1%} < {sev_pd:.0%}）：暂缓{ra.zh}，改为服务补救回访")
        elif ov:
            en.append(f"pressure rule overridden: p_dissatisfied {pdis:.0%} >= {thr_dis:.0%} but "
                      f"the risk is severe (level {lv}, PD {p:.1%})")
            zh.append(f"施压规则不适用：不满意概率{pdis:.0%} >= {thr_dis:.0%}，但风险严重"
                      f"（{lz}预警，违约概率{p:.1%}）")
        if src == 0:
            en.append(f"risk: expected loss {e:,.0f} (PD {p:.1%}, warning level {lv}); early "
                      f"action can avert {av:.0%} = {b:,.0f}")
            zh.append(f"风险：预期损失{e:,.0f}（违约概率{p:.1%}，{lz}预警）；及早干预可避免"
                      f"{av:.0%}，即{b:,.0f}")
            en.extend(sig_en[i])
            zh.extend(sig_zh[i])
        elif src == 1:
            en.append(f"retention: churn probability {pc:.0%} puts customer value {v:,.0f} at "
                      f"risk; a retention offer succeeds {ret_rate:.0%} = {b:,.0f}")
            zh.append(f"挽留：流失概率{pc:.0%}，客户价值{v:,.0f}面临流失；挽留成功率"
                      f"{ret_rate:.0%}，预期收益{b:,.0f}")
            if reasons_churn is not None:
                _model_reasons(reasons_churn[i], k, en, zh)
        elif src == 2:
            en.append(f"service recovery: dissatisfaction probability {pdis:.0%} on customer "
                      f"value {v:,.0f}; expected benefit {b:,.0f}")
            zh.append(f"服务补救：不满意概率{pdis:.0%}，客户价值{v:,.0f}；预期收益{b:,.0f}")
            if reasons_sat is not None:
                _model_reasons(reasons_sat[i], k, en, zh)
        else:
            en.append("no expected benefit from a contact")
            zh.append("联系无预期收益")
        a_en.append(en)
        a_zh.append(zh)
    return a_en, a_zh


def _criterion_text(c: str, lv: str, thr: float, p: float, el: float, max_sev: int,
                    sev_sum: int, n_sig: int) -> tuple[str, str]:
    """The sentence (en, zh) saying which criterion put a customer at level `lv`."""
    lz = f"{_LEVEL_ZH[lv]}预警"
    if c == "pd_min":
        return (f"{lv}: 12-month PD {p:.1%} >= {thr:.1%}",
                f"{lz}：12个月违约概率{p:.1%} >= {thr:.1%}")
    if c == "el_min":
        return (f"{lv}: expected loss {el:,.0f} >= {thr:,.0f}",
                f"{lz}：预期损失{el:,.0f} >= {thr:,.0f}")
    if c == "max_severity_min":
        return (f"{lv}: a severity-{max_sev} signal fired (>= {thr})",
                f"{lz}：触发严重度{max_sev}级信号（>= {thr}）")
    if c == "severity_sum_min":
        return (f"{lv}: signal severities sum to {sev_sum} (>= {thr})",
                f"{lz}：信号严重度合计{sev_sum}（>= {thr}）")
    return (f"{lv}: {n_sig} early-warning signal(s) fired (>= {thr})",
            f"{lz}：触发{n_sig}个预警信号（>= {thr}）")


# --------------------------------------------------------------------------- queue
QUEUE_COLUMNS = ("queue_rank", "customer_id", "recommended_action", "expected_benefit",
                 "action_source", "action_reasons", "action_reasons_zh", "warning_level",
                 "segment", PD_COL, CHURN_COL, DISSAT_COL, "expected_loss", "customer_value",
                 "pressure_rule")


def outreach_queue(decisions: pd.DataFrame, capacity: int | None = None,
                   cfg: StrategyConfig | None = None) -> pd.DataFrame:
    """Today's contacts: the customers a team of `capacity` should call first.

    Customers with a positive expected benefit, ordered by ``expected_benefit``
    descending then ``customer_id`` ascending (so the queue does not depend on the input
    row order), cut at `capacity`; one recommended action each, with its reasons.

    Args:
        decisions: output of :func:`apply_strategy`.
        capacity: contacts available; None takes ``outreach.capacity`` from the config.
        cfg: strategy config (the packaged default when None; only read for capacity).

    Returns:
        At most `capacity` rows: :data:`QUEUE_COLUMNS` (those present in `decisions`),
        ``queue_rank`` 1 first, index 0..k-1.

    Raises:
        ConfigError: capacity is not an integer >= 1.
        DataValidationError: `decisions` lacks customer_id, expected_benefit or
            recommended_action.
    """
    if capacity is None:
        capacity = _cfg(cfg).outreach.capacity
    if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 1:
        raise ConfigError(f"outreach capacity must be an integer >= 1, got {capacity!r}")
    for col in ("customer_id", "expected_benefit", "recommended_action"):
        if col not in decisions.columns:
            raise DataValidationError("decisions", "missing column (run apply_strategy first)",
                                      col)
    d = decisions.reset_index(drop=True)
    b = _num(d, "expected_benefit")
    keep = np.flatnonzero((b > 0.0) & (d["recommended_action"] != NO_ACTION).to_numpy())
    cid_code = pd.factorize(d["customer_id"].iloc[keep], sort=True)[0]
    order = keep[np.lexsort((cid_code, -b[keep]))][: int(capacity)]
    cols = [c for c in QUEUE_COLUMNS if c in d.columns]
    q = d.iloc[order][cols].reset_index(drop=True)
    q.insert(0, "queue_rank", np.arange(1, len(q) + 1, dtype="int64"))
    return q


def summarise(decisions: pd.DataFrame) -> pd.DataFrame:
    """Counts per warning level and per segment, with their exposure and expected loss.

    Args:
        decisions: output of :func:`apply_strategy`.

    Returns:
        Long frame: ``dimension`` (``warning_level`` or ``segment``), ``name`` (every
        level green..red, every segment, zero rows included), ``n_customers``,
        ``share``, ``ead``, ``expected_loss``, ``customer_value`` (sums).
    """
    n = len(decisions)
    rows = []
    for dim, names in (("warning_level", LEVELS), ("segment", SEGMENTS)):
        g = decisions.groupby(dim, observed=True)
        counts = g.size()
        sums = g[["ead", "expected_loss", "customer_value"]].sum()
        for name in names:
            k = int(counts.get(name, 0))
            rows.append({
                "dimension": dim, "name": name, "n_customers": k,
                "share": k / n if n else math.nan,
                "ead": float(sums["ead"].get(name, 0.0)),
                "expected_loss": float(sums["expected_loss"].get(name, 0.0)),
                "customer_value": float(sums["customer_value"].get(name, 0.0)),
            })
    return pd.DataFrame(rows)


__all__ = [
    "ACTIONS", "LEVELS", "NO_ACTION", "OUTPUT_COLUMNS", "QUEUE_COLUMNS", "SEGMENTS",
    "SIGNAL_FIELDS", "StrategyConfig", "apply_strategy", "customer_value", "decide",
    "expected_loss", "rank_within_level",
    "fire_signals", "load_strategy_config", "outreach_queue", "risk_grade", "summarise",
]
