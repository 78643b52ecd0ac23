"""Decisions per customer: warning level, rank, segment, benefit and recommended action.

:func:`apply_strategy` works on frames (batch), :func:`decide` on columns (the HTTP
service, a few customers at a time); both run the same rules (:func:`_decide`).
:func:`early_warnings` orders the customers at or above a level, most urgent first.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from postloan.decisions.strategy.actions import BASES, LearnedEffects, choose, service_failure
from postloan.decisions.strategy.config import (
    ACTIONS,
    CHURN_COL,
    DISSAT_COL,
    LEVELS,
    PD_COL,
    SCORE_COLUMNS,
    StrategyConfig,
    _cfg,
)
from postloan.decisions.strategy.rules import (
    _Columns,
    _expected_loss,
    _fire_signals,
    _grade_codes,
    _num,
    _tables,
    _value_if_kept,
)
from postloan.decisions.strategy.texts import _action_texts, _warning_texts
from postloan.errors import ConfigError, DataValidationError

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = (
    "customer_id", PD_COL, CHURN_COL, DISSAT_COL, "risk_grade", "ead", "lgd",
    "expected_loss", "signals", "warning_level", "response", "warning_reasons",
    "warning_reasons_zh", "warning_rank", "customer_value", "segment", "segment_strategy",
    "recommended_action", "net_benefit", "decision_basis", "action_reasons",
)
"""The columns :func:`apply_strategy` always returns (plus the extras it documents)."""


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
        bad = _bad_probability(col, p)
        if bad.any():
            raise DataValidationError("scores", "probabilities must be present and in [0, 1]"
                                      f"{' (or all missing)' if col == DISSAT_COL else ''}",
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
        if _bad_probability(col, cols.num(col)).any():
            _join_error(scored, snapshot)
    bal = cols.num("total_balance")
    if (np.isnan(bal) | (bal < 0.0)).any():
        _join_error(scored, snapshot)
    return cols


def _bad_probability(col: str, p: np.ndarray) -> np.ndarray:
    """Rows whose probability is missing or outside [0, 1].

    The dissatisfaction probability may be missing for every row: a book without
    surveys and complaints has no satisfaction model. The service-recovery benefit and
    the pressure rule then never fire (a missing probability counts as none).
    """
    bad = (p < 0.0) | (p > 1.0)
    if col == DISSAT_COL and np.isnan(p).all():
        return bad
    return bad | np.isnan(p)


def _join_error(scored: pd.DataFrame, snapshot: pd.DataFrame) -> NoReturn:
    _join(scored, snapshot)  # raises the DataValidationError that names the problem
    raise AssertionError("the join checks disagree")  # pragma: no cover


# --------------------------------------------------------------------------- strategy
def apply_strategy(scored: pd.DataFrame, snapshot: pd.DataFrame,
                   cfg: StrategyConfig | None = None,
                   learned: LearnedEffects | None = None) -> pd.DataFrame:
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
    - **recommended_action**, **net_benefit**, **decision_basis**, **action_reasons**:
      the one decision (:mod:`postloan.decisions.strategy.actions`): for each action the
      handbook's rules leave open, its effects on default, churn and dissatisfaction
      (learned by an uplift model that passed its decision gate, else the constants),
      their value, the contact cost and the net benefit; the best positive one, else
      ``none``. The pressure rule may withhold risk contacts (``pressure_rule`` says
      ``withheld``, or ``overridden`` when the risk is severe). The reasons quote the
      numbers that decided.

    Args:
        scored: output of :func:`postloan.decisions.batch.score_snapshot` (``pd_12m``,
            ``p_churn_6m``, ``p_dissatisfied_3m``; ``customer_id`` to join on, else
            aligned by row order; optional ``reasons_<model>`` columns).
        snapshot: the customer snapshot rows (:data:`postloan.data.snapshot.SNAPSHOT_FIELDS`).
        cfg: strategy config (the packaged default when None).
        learned: uplift estimates for these rows, one per snapshot row in its order
            (:func:`postloan.decisions.strategy.learned_effects`); None decides on the constants.

    Returns:
        One row per customer in the snapshot's row order: :data:`OUTPUT_COLUMNS`, plus
        ``as_of`` (when given), ``dpd_current``, ``n_signals``, ``severity_sum``,
        ``max_severity``, ``warning_score``, ``response_zh``, ``segment_strategy_zh``,
        ``value_if_kept``, ``pressure_rule`` (``withheld`` / ``overridden`` / ``""``),
        ``action_reasons_zh`` and the per-action numbers
        (:data:`postloan.decisions.strategy.actions.DETAIL_COLUMNS`). Repeated labels (risk_grade
        and warning_level ordered, response, segment, segment_strategy,
        recommended_action, decision_basis, pressure_rule) are categoricals; signals and
        the reasons are lists of strings.

    Raises:
        DataValidationError: missing columns, duplicate or mismatched customers,
            probabilities missing or outside [0, 1], negative balances, unknown products.
    """
    cfg = _cfg(cfg)
    t = _tables(cfg)
    columns = _decide(_join_columns(scored, snapshot), cfg, learned)
    # one frame from the dict: no per-column insert
    out = pd.DataFrame({c: (pd.Categorical.from_codes(v.codes, dtype=t.dtypes[c])
                            if isinstance(v, _Codes) else v) for c, v in columns.items()})
    if log.isEnabledFor(logging.INFO):
        log.info("strategy applied to %d customers: %s", len(out),
                 out["warning_level"].value_counts(sort=False).to_dict())
    return out


def decide(scores: Mapping[str, Any], snapshot: Mapping[str, Any],
           cfg: StrategyConfig | None = None,
           learned: LearnedEffects | None = None) -> dict[str, np.ndarray | list]:
    """:func:`apply_strategy` on columns instead of frames, for a few customers at a time.

    The same rules and numbers; made for the HTTP service, where building, indexing
    and converting pandas frames would cost more than the rules for one customer.

    Args:
        scores: column -> values for the probabilities (``pd_12m``, ``p_churn_6m``,
            ``p_dissatisfied_3m``) and optional ``reasons_<model>`` cells, in the
            snapshot's customer order.
        snapshot: column -> values of the snapshot fields (``customer_id`` included).
        cfg: strategy config (the packaged default when None).
        learned: uplift estimates for these customers (as :func:`apply_strategy`).

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
        bal = cols.num("total_balance")
        ok = not (any(_bad_probability(c, cols.num(c)).any() for c in SCORE_COLUMNS.values())
                  or (np.isnan(bal) | (bal < 0.0)).any())
    if not ok:
        _join_error(pd.DataFrame(dict(scores)), pd.DataFrame(dict(snapshot)))
    columns = _decide(cols, cfg, learned)
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


_LEVEL_CODE = {lv: i for i, lv in enumerate(LEVELS)}


def early_warnings(decisions: pd.DataFrame | Mapping[str, Any],
                   min_level: str = "yellow") -> np.ndarray:
    """The customers at or above `min_level`, most urgent first, as row positions.

    Order: warning level descending (red first), then ``warning_rank`` ascending (1 =
    most urgent inside the level: severity x probability, :func:`rank_within_level`);
    rows with equal keys keep their input order. The service's ``/early_warning``
    answers in this order; on a batch ``decisions.iloc[early_warnings(decisions)]``
    gives the same list.

    Args:
        decisions: output of :func:`apply_strategy` (a frame) or :func:`decide`
            (columns); needs ``warning_level`` and ``warning_rank``.
        min_level: the lowest level kept, one of :data:`LEVELS`.

    Returns:
        int64 positions into the rows of `decisions`.

    Raises:
        ConfigError: `min_level` is not a level name.
        DataValidationError: a column is missing, or a warning level is unknown.
    """
    if min_level not in _LEVEL_CODE:
        raise ConfigError(f"min_level must be one of {list(LEVELS)}, got {min_level!r}")
    names = decisions.columns if isinstance(decisions, pd.DataFrame) else decisions
    for col in ("warning_level", "warning_rank"):
        if col not in names:
            raise DataValidationError("decisions", "missing column (run apply_strategy first)",
                                      col)
    labels = decisions["warning_level"]
    dtype = getattr(labels, "dtype", None)
    if isinstance(dtype, pd.CategoricalDtype) and tuple(dtype.categories) == LEVELS:
        level = labels.cat.codes.to_numpy().astype("int64")  # no per-row lookup
    else:  # labels (the service's few rows): a dict lookup beats building a categorical
        level = np.array([_LEVEL_CODE.get(v, -1) for v in labels], dtype="int64")
    if (level < 0).any():
        bad = pd.Series(np.asarray(labels, dtype=object))[level < 0]
        raise DataValidationError("decisions", f"unknown warning level; levels are "
                                  f"{list(LEVELS)}", "warning_level", bad.head(5).to_string())
    rank = np.asarray(decisions["warning_rank"], dtype="int64")
    keep = np.flatnonzero(level >= _LEVEL_CODE[min_level])
    return keep[np.lexsort((rank[keep], -level[keep]))]


def _decide(cols: _Columns, cfg: StrategyConfig,
            learned: LearnedEffects | None = None) -> dict[str, Any]:
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
    kept = _value_if_kept(cols, cfg)
    value = kept * (1.0 - p_churn)  # customer_value: the churn-discounted value
    high_value = value >= cfg.segmentation.high_value_min
    high_risk = t.high_risk_grade[grade_code] | t.high_risk_level[level]
    # protect, grow, watch, work_out = positions in SEGMENTS
    segment = np.where(high_risk, np.where(high_value, 2, 3), np.where(high_value, 0, 1))

    # ---- the decision: net benefit of each open action, the best positive or none
    open_complaint = (np.nan_to_num(cols.num("open_complaints"), nan=0.0) > 0
                      if "open_complaints" in cols else np.zeros(n, bool))
    missing = np.full(n, np.nan)
    failure = service_failure(
        cols.num("complaints_3m") if "complaints_3m" in cols else missing, open_complaint,
        cols.num("last_survey_score") if "last_survey_score" in cols else missing)
    choice = choose(cfg, p_def=p_def, p_churn=p_churn, p_dis=p_dis, ead_lgd=ead * lgd,
                    kept=kept, dpd=dpd, open_complaint=open_complaint, failure=failure,
                    restructure=t.restructure_level[level],
                    severe=t.severe_level[level] | (p_def >= cfg.outreach.pressure_rule.severe_pd_min),
                    learned=learned)

    # ---- text lists (the only Python loops). Millions of small lists would trigger the
    # cyclic garbage collector over and over (none of them can form a cycle): pause it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        signals_col, w_en, w_zh, sig_en, sig_zh = _warning_texts(
            cfg, t, cols, met, level, fired, p_def, el, max_sev, sev_sum, n_sig, dpd, escalate)
        a_en, a_zh = _action_texts(cfg, cols, choice, learned, level, p_def, p_churn, p_dis,
                                   ead, lgd, kept, dpd, open_complaint, sig_en, sig_zh)
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
        "value_if_kept": kept,
        "recommended_action": _Codes(choice.action),
        "net_benefit": choice.net_benefit,
        "decision_basis": _Codes(choice.decision_basis),
        "pressure_rule": _Codes(np.select([choice.withheld, choice.overridden], [1, 2], 0)),
        "action_reasons": a_en,
        "action_reasons_zh": a_zh,
        **choice.columns(),
        **{f"basis_{a}": _Codes(np.full(n, BASES.index(b), dtype="int64"))
           for a, b in zip(ACTIONS, choice.basis, strict=True)},
    })
    return columns
