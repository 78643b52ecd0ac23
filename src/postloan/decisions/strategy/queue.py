"""The outreach queue (a view of the decisions) and portfolio summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from postloan.decisions.strategy.config import (
    CHURN_COL,
    DISSAT_COL,
    LEVELS,
    NO_ACTION,
    PD_COL,
    SEGMENTS,
    StrategyConfig,
    _cfg,
)
from postloan.decisions.strategy.rules import _num
from postloan.errors import ConfigError, DataValidationError

QUEUE_COLUMNS = ("queue_rank", "customer_id", "recommended_action", "net_benefit",
                 "decision_basis", "action_reasons", "action_reasons_zh", "warning_level",
                 "segment", PD_COL, CHURN_COL, DISSAT_COL, "expected_loss", "customer_value",
                 "pressure_rule")


def check_capacity(capacity: int) -> None:
    """Refuse a capacity that is not an integer >= 0 (ConfigError naming it)."""
    if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 0:
        raise ConfigError(f"outreach capacity must be an integer >= 0, got {capacity!r}")


def outreach_queue(decisions: pd.DataFrame, capacity: int | None = None,
                   cfg: StrategyConfig | None = None) -> pd.DataFrame:
    """Today's contacts: a view of the decisions for a team of `capacity`.

    The customers whose decision is a contact (``recommended_action`` not ``none``,
    positive ``net_benefit``), highest net benefit first, then ``customer_id``
    ascending (so the queue does not depend on the input row order), up to `capacity`
    and the per-action caps of ``uplift.capacity_per_action`` (a customer whose action
    is full waits). The queue never changes a decision: it only ranks them.

    Args:
        decisions: output of :func:`apply_strategy` (or rows of it, e.g. the queues of
            partitions: :func:`merge_queues`).
        capacity: contacts available; None takes ``outreach.capacity`` from the config.
        cfg: strategy config (the packaged default when None).

    Returns:
        At most `capacity` rows: :data:`QUEUE_COLUMNS` (those present in `decisions`),
        ``queue_rank`` 1 first, index 0..k-1.

    Raises:
        ConfigError: capacity is not an integer >= 0.
        DataValidationError: `decisions` lacks customer_id, net_benefit or
            recommended_action.
    """
    cfg = _cfg(cfg)
    if capacity is None:
        capacity = cfg.outreach.capacity
    check_capacity(capacity)
    for col in ("customer_id", "net_benefit", "recommended_action"):
        if col not in decisions.columns:
            raise DataValidationError("decisions", "missing column (run apply_strategy first)",
                                      col)
    d = decisions.reset_index(drop=True)
    value = _num(d, "net_benefit")
    acts = d["recommended_action"].astype(object).to_numpy()
    ok = np.flatnonzero((value > 0.0) & (acts != NO_ACTION))
    cid_code = pd.factorize(d["customer_id"].iloc[ok], sort=True)[0]
    order = ok[np.lexsort((cid_code, -value[ok]))]
    caps = cfg.uplift.capacity_per_action
    taken: dict[str, int] = {}
    pick = []
    for i in order.tolist():
        if len(pick) >= capacity:
            break
        a = acts[i]
        if a in caps and taken.get(a, 0) >= caps[a]:
            continue  # this action is full: the customer waits
        taken[a] = taken.get(a, 0) + 1
        pick.append(i)
    cols = [c for c in QUEUE_COLUMNS if c in d.columns and c != "queue_rank"]
    q = d.iloc[np.asarray(pick, dtype=np.int64)][cols].reset_index(drop=True)
    q.insert(0, "queue_rank", np.arange(1, len(q) + 1, dtype="int64"))
    return q


def merge_queues(parts: pd.DataFrame, capacity: int | None = None,
                 cfg: StrategyConfig | None = None) -> pd.DataFrame:
    """One queue from the queues of pieces of a book (partitions).

    Each piece's queue is its own top `capacity` under the per-action caps, so their
    union holds the whole book's queue (a customer a piece left out has at least
    `capacity` better ones, or a full action, in that piece alone); ranking the union
    again gives exactly the queue of the whole book.
    """
    return outreach_queue(parts.drop(columns=["queue_rank"], errors="ignore"), capacity, cfg)


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


# ------------------------------------------------------------------ baseline queues
# What the policy replay judges the decisions' queue against.
def _top(frame: pd.DataFrame, key: np.ndarray, capacity: int) -> pd.DataFrame:
    ids = frame["customer_id"].to_numpy()
    order = np.lexsort((ids, -key))[: int(capacity)]
    return frame.iloc[order]


def pd_only_queue(scored: pd.DataFrame, capacity: int) -> pd.DataFrame:
    """The `capacity` customers of highest ``pd_12m``: restructuring at 30+ DPD, else a reminder.

    Args:
        scored: ``customer_id``, ``pd_12m`` and ``dpd_current`` per customer.
        capacity: contacts available.
    """
    check_capacity(capacity)
    top = _top(scored, scored["pd_12m"].to_numpy(dtype=float), capacity)
    action = np.where(top["dpd_current"].to_numpy(dtype=float) >= 30, "restructuring_offer",
                      "payment_reminder")
    return pd.DataFrame({"customer_id": top["customer_id"].to_numpy(), "action": action})


def constants_queue(decisions: pd.DataFrame, capacity: int, cfg=None) -> pd.DataFrame:
    """The :func:`outreach_queue` as a plain contact list (``customer_id``, ``action``)."""
    check_capacity(capacity)
    if capacity == 0:
        return pd.DataFrame({"customer_id": pd.Series([], dtype=np.int64), "action": []})
    q = outreach_queue(decisions, int(capacity), cfg)
    return pd.DataFrame({"customer_id": q["customer_id"].to_numpy(),
                         "action": q["recommended_action"].astype(object).to_numpy()})


def random_queue(decisions: pd.DataFrame, capacity: int, seed: int = 0) -> pd.DataFrame:
    """`capacity` customers drawn at random among those the strategy would contact.

    Each keeps the strategy's recommended action: the same candidates and actions as
    :func:`constants_queue`, without its ranking.
    """
    check_capacity(capacity)
    cand = decisions[decisions["recommended_action"].astype(object) != "none"]
    cand = cand.sort_values("customer_id", kind="stable")
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(cand))[: int(capacity)]
    sub = cand.iloc[np.sort(pick)]
    return pd.DataFrame({"customer_id": sub["customer_id"].to_numpy(),
                         "action": sub["recommended_action"].astype(object).to_numpy()})


