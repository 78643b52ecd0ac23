"""The outreach queue for a team of limited capacity, and portfolio summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from postloan.errors import ConfigError, DataValidationError
from postloan.strategy.config import (
    CHURN_COL,
    DISSAT_COL,
    LEVELS,
    NO_ACTION,
    PD_COL,
    SEGMENTS,
    StrategyConfig,
    _cfg,
)
from postloan.strategy.rules import _num

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
