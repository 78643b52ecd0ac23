"""The rules' arithmetic: risk grades, expected loss, signals and customer value.

Each public function takes a frame and returns arrays or a frame; the private ones
work on :class:`_Columns` (the joined input without building a frame) and on the
:class:`_Tables` derived once per config, so one customer costs no per-call config work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from postloan.decisions.strategy.actions import BASES
from postloan.decisions.strategy.config import (
    _CRITERIA,
    ACTIONS,
    CHURN_COL,
    LEVELS,
    NO_ACTION,
    PD_COL,
    RULE_LEVELS,
    SEGMENTS,
    StrategyConfig,
    _cfg,
)
from postloan.errors import DataValidationError

_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}


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
        "decision_basis": cat(BASES),
        **{f"basis_{a}": cat(BASES) for a in ACTIONS},
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
    return _value_if_kept(cols, cfg) * (1.0 - cols.num(CHURN_COL))


def _value_if_kept(cols: _Columns, cfg: StrategyConfig) -> np.ndarray:
    """The customer's value if they stay: :func:`customer_value` without the churn
    discount. What a retention contact can keep is this times the churn probability
    (the value already discounted by (1 - p_churn) would count the churn twice and
    make the benefit peak at p_churn = 0.5)."""
    vc = cfg.value
    funding = np.full(cols.n, vc.funding_rate_pct, dtype="float64")
    if vc.use_policy_rate and "policy_rate" in cols:
        pol = cols.num("policy_rate") + vc.funding_spread_pct
        funding = np.where(np.isnan(pol), funding, pol)
    margin = np.nan_to_num(np.maximum(cols.num("weighted_rate") - funding, 0.0), nan=0.0)
    life = cols.num("min_remaining_months")
    life = np.clip(np.where(np.isnan(life), vc.card_life_months, life), 0.0, vc.life_cap_months)
    return (cols.num("total_balance") * margin / 100.0 * life / 12.0
            * (1.0 - cols.num(PD_COL)))


def _fmt_num(x: float) -> str:
    return f"{x:g}"
