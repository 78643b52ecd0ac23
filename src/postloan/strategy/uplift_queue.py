"""The outreach queue by learned net benefit (uplift models), with the constants fallback.

For each customer and contact action, the registered uplift models
(:mod:`postloan.uplift`) estimate what the contact changes; the queue values it:

``net_benefit = EAD x LGD x (-effect on default_12m)
              + value if kept x (-effect on churn_6m)
              + service_value x (-effect on dissatisfied_3m)
              - contact_cost``

(effects are negative when the contact lowers the outcome; ``value if kept`` is the
customer's margin over the remaining life without the churn discount). Each
customer gets the action of highest net benefit among those open to them, a
customer whose best net benefit is not positive is not contacted whatever the risk,
and the queue takes the highest net benefits up to the capacity (and the optional
capacity per action, ``uplift.capacity_per_action`` in strategy.yaml).

Actions open to a customer follow the handbook and the population the models
learned from: reminders only to customers behind on payments (1-89 DPD; never to a
customer who is paying, and never to one with a complaint open: service recovery comes
first); restructuring to customers behind or in difficulty (a warning level in the
strategy's ``restructure_levels``: help before collections); retention offers and
service-recovery calls to customers who are current.

Without uplift models (none registered) :func:`queue_with_fallback` returns today's
constants queue (:func:`postloan.strategy.outreach_queue`) and says so in its
``queue_basis`` column.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from postloan.errors import ConfigError, DataValidationError
from postloan.strategy.config import ACTIONS, StrategyConfig, _cfg
from postloan.strategy.queue import outreach_queue
from postloan.strategy.rules import _Columns, _num, _value_if_kept

log = logging.getLogger(__name__)

LEARNED, CONSTANTS = "learned_uplift", "constants"
UPLIFT_LABELS = ("default_12m", "churn_6m", "dissatisfied_3m")
RISK_ACTIONS = ("payment_reminder", "restructuring_offer")
DEFAULT_DPD = 90


def open_actions(decisions: pd.DataFrame, cfg: StrategyConfig | None = None
                 ) -> dict[str, np.ndarray]:
    """Per action, which customers it may go to (see module doc)."""
    cfg = _cfg(cfg)
    dpd = np.nan_to_num(_num(decisions, "dpd_current"), nan=0.0)
    behind = (dpd > 0) & (dpd < DEFAULT_DPD)
    current = dpd <= 0
    complaint = np.zeros(len(decisions), bool)
    if "open_complaints" in decisions.columns:  # an open complaint: service recovery first
        complaint = np.nan_to_num(_num(decisions, "open_complaints"), nan=0.0) > 0
    # Help before collections: a customer in difficulty (a warning level of the
    # strategy's restructure_levels) may be offered restructuring while still paying.
    difficulty = np.zeros(len(decisions), bool)
    if "warning_level" in decisions.columns:
        levels = decisions["warning_level"].astype(object).to_numpy()
        difficulty = np.isin(levels, list(cfg.outreach.restructure_levels)) & (dpd < DEFAULT_DPD)
    return {"payment_reminder": behind & ~complaint,
            "restructuring_offer": behind | difficulty,
            "retention_offer": current, "service_recovery_call": current | complaint}


def net_benefits(decisions: pd.DataFrame, effects: pd.DataFrame,
                 cfg: StrategyConfig | None = None) -> pd.DataFrame:
    """Learned net benefit of each action for each customer.

    Args:
        decisions: :func:`postloan.strategy.apply_strategy` output beside the snapshot
            fields (``ead``, ``lgd``, ``dpd_current``, value inputs, ``customer_id``).
        effects: one row per row of `decisions` (same order), columns
            ``effect_<action>_<label>`` for the actions with a model.
        cfg: strategy config.

    Returns:
        ``net_<action>`` per action (NaN where the action is not open to the customer
        or has no model), aligned with `decisions`.
    """
    cfg = _cfg(cfg)
    uv = cfg.uplift
    if len(effects) != len(decisions):
        raise DataValidationError("uplift effects", "one row per decision row expected",
                                  "customer_id", f"{len(effects)} vs {len(decisions)}")
    ead_lgd = np.nan_to_num(_num(decisions, "ead") * _num(decisions, "lgd"), nan=0.0)
    kept = np.nan_to_num(_value_if_kept(_Columns(decisions), cfg), nan=0.0)
    allowed = open_actions(decisions, cfg)
    out = {}
    for a in ACTIONS:
        cols = [f"effect_{a}_{lab}" for lab in UPLIFT_LABELS]
        if not all(c in effects.columns for c in cols):
            continue
        e = [np.nan_to_num(effects[c].to_numpy(float), nan=0.0) for c in cols]
        net = (ead_lgd * -e[0] + kept * -e[1] + uv.service_value * -e[2]
               - uv.contact_cost.get(a, 0.0))
        out[f"net_{a}"] = np.where(allowed[a], net, np.nan)
    return pd.DataFrame(out, index=decisions.index)


def learned_queue(decisions: pd.DataFrame, effects: pd.DataFrame, capacity: int,
                  cfg: StrategyConfig | None = None) -> pd.DataFrame:
    """The queue by learned net benefit: best action per customer, positive only.

    Returns:
        ``queue_rank``, ``customer_id``, ``recommended_action``, ``net_benefit``,
        ``queue_basis`` (``learned_uplift``), highest net benefit first (ties by
        customer id), at most `capacity` rows and the per-action caps.
    """
    cfg = _cfg(cfg)
    if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 0:
        raise ConfigError(f"outreach capacity must be an integer >= 0, got {capacity!r}")
    nets = net_benefits(decisions, effects, cfg)
    if nets.empty:
        raise DataValidationError("uplift effects", "no action has effects", "effect_*")
    acts = np.array([c[len("net_"):] for c in nets.columns], dtype=object)
    m = nets.to_numpy(float)
    filled = np.where(np.isnan(m), -np.inf, m)
    best = filled.argmax(axis=1)
    q = decisions.assign(recommended_action=acts[best] if len(m) else np.array([], object),
                         net_benefit=filled[np.arange(len(m)), best])
    return _take(q, capacity, cfg)


_QUEUE_EXTRA = ("warning_level", "segment", "pd_12m", "p_churn_6m", "p_dissatisfied_3m",
                "expected_loss", "customer_value")


def _take(cand: pd.DataFrame, capacity: int, cfg: StrategyConfig) -> pd.DataFrame:
    """The learned queue from rows with ``recommended_action`` and ``net_benefit``:
    positive net benefit only, highest first (ties by customer id), up to `capacity`
    and the per-action caps."""
    value = cand["net_benefit"].to_numpy(float)
    acts = cand["recommended_action"].astype(object).to_numpy()
    ids = cand["customer_id"].to_numpy()
    ok = np.flatnonzero(value > 0.0)  # negative net benefit: no contact, whatever the risk
    order = ok[np.lexsort((ids[ok], -value[ok]))]
    caps = cfg.uplift.capacity_per_action
    taken: dict[str, int] = {}
    pick = []
    for i in order:
        if len(pick) >= capacity:
            break
        a = acts[i]
        if a in caps and taken.get(a, 0) >= caps[a]:
            continue  # this action is full: the customer waits (their next best is lower)
        taken[a] = taken.get(a, 0) + 1
        pick.append(i)
    pick = np.asarray(pick, dtype=np.int64)
    q = pd.DataFrame({"queue_rank": np.arange(1, pick.size + 1, dtype=np.int64),
                      "customer_id": ids[pick],
                      "recommended_action": acts[pick] if pick.size else
                      np.array([], dtype=object),
                      "net_benefit": value[pick], "queue_basis": LEARNED})
    extra = [c for c in _QUEUE_EXTRA if c in cand.columns]
    return pd.concat([q, cand.iloc[pick][extra].reset_index(drop=True)], axis=1)


def merge_learned_queues(parts: pd.DataFrame, capacity: int,
                         cfg: StrategyConfig | None = None) -> pd.DataFrame:
    """One learned queue from the learned queues of pieces of a book (partitions).

    Each piece's queue is its own top `capacity` under the per-action caps, so their
    union holds the whole book's queue (a customer a piece left out has at least
    `capacity` better ones, or a full action, in that piece alone); selecting again
    from the union gives exactly the queue of the whole book.
    """
    return _take(parts.drop(columns=["queue_rank", "queue_basis"], errors="ignore"),
                 int(capacity), _cfg(cfg))


def queue_with_fallback(decisions: pd.DataFrame, effects: pd.DataFrame | None,
                        capacity: int | None = None, cfg: StrategyConfig | None = None
                        ) -> pd.DataFrame:
    """The learned queue when uplift effects are given, else the constants queue.

    The fallback is today's :func:`~postloan.strategy.outreach_queue` (the
    strategy.yaml constants) with ``queue_basis`` = ``constants`` and a warning logged,
    so the output says which one it is.
    """
    cfg = _cfg(cfg)
    k = cfg.outreach.capacity if capacity is None else capacity
    if effects is None or effects.empty or not any(c.startswith("effect_")
                                                   for c in effects.columns):
        log.warning("no registered uplift model: the outreach queue falls back to the "
                    "strategy constants")
        q = outreach_queue(decisions, k, cfg)
        return q.assign(queue_basis=CONSTANTS)
    return learned_queue(decisions, effects, int(k), cfg)


def uplift_effects(bundles: Mapping[str, object], snapshot: pd.DataFrame) -> pd.DataFrame:
    """``effect_<action>_<label>`` for snapshot rows from uplift bundles by action."""
    parts = []
    for action, b in bundles.items():
        eff = b.effects(snapshot)
        parts.append(eff.rename(columns={c: f"effect_{action}_{c[len('effect_'):]}"
                                         for c in eff.columns}))
    if not parts:
        return pd.DataFrame(index=snapshot.index)
    return pd.concat(parts, axis=1)


__all__ = ["CONSTANTS", "LEARNED", "learned_queue", "merge_learned_queues", "net_benefits",
           "open_actions", "queue_with_fallback", "uplift_effects"]
