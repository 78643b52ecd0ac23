"""Policy replay: what a contact queue realises, judged on the simulator's own outcomes.

A queue (who to contact at an as-of date, with which action) is worth what it
changes: defaults avoided, customers kept, complaints spared, minus what the
contacts cost. On a simulated book that can be measured rather than assumed:

1. **Fork.** The book's manifest records its simulation config (seed, contact
   policy...). :func:`postloan.simulation.fork` re-runs it to the as-of month end and
   keeps the latent state (traits, mood, shopping, job loss, missed instalments).
2. **Replay.** From that state the simulator runs ``horizon`` months forward once
   per policy: the policy's queue is contacted in the month after the as-of, then
   nobody is (so each arm differs only by the queue). Every policy of one replay
   seed sees the same random numbers (common random numbers: each mechanism of
   each month has its own stream and one draw per customer), so differences
   between arms are the queue's effect, not luck. Seed 0 is the book's own future;
   other seeds are other futures, which give the intervals.
3. **Value.** :func:`realised_outcomes` reads the replayed tables like any book:
   new defaults and their loss (balance net of collateral recovery), prepaid loans
   and the margin they take with them, complaints. Net benefit of a policy =
   losses, churned value and complaint costs avoided against the no-contact arm
   of the same seed, minus the contacts' cost (from the book's contact policy).
   No strategy constant (avertable share, success rate...) enters.

Queues are plain frames (``customer_id``, ``action``);
:func:`postloan.decisions.strategy.constants_queue`,
:func:`~postloan.decisions.strategy.pd_only_queue` and
:func:`~postloan.decisions.strategy.random_queue` build the baselines, and any other
ranking (e.g. the decisions' queue) plugs in the same way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from postloan.data import schema as S
from postloan.errors import ConfigError, DataValidationError
from postloan.simulation import DEFAULT_MISSED, SimulationConfig, fork, simulate_forward
from postloan.simulation.contacts import NO_CONTACT, queue_plan

log = logging.getLogger(__name__)

QUEUE_COLUMNS = ("customer_id", "action")
NO_CONTACT_POLICY = "none"
METRICS = ("n_contacts", "contact_cost", "n_defaults", "credit_loss", "n_churned",
           "churned_value", "complaints", "net_benefit")


@dataclass(frozen=True)
class Valuation:
    """How realised outcomes are turned into money (the replay's own, documented terms).

    Attributes:
        horizon_months: months replayed after the as-of date (outcomes counted in it).
        collateral_recovery: share of collateral value recovered on a default.
        unsecured_recovery: share of the rest recovered.
        funding_spread_pct: funding rate = the as-of policy rate + this (percent).
        life_cap_months: remaining life over which a prepaid loan's margin is lost.
        card_life_months: remaining life assumed for a revolving card.
        complaint_cost: cost of handling one complaint.
    """

    horizon_months: int = 12
    collateral_recovery: float = 0.7
    unsecured_recovery: float = 0.10
    funding_spread_pct: float = 1.0
    life_cap_months: int = 36
    card_life_months: int = 24
    complaint_cost: float = 100.0

    def __post_init__(self) -> None:
        if isinstance(self.horizon_months, bool) or not isinstance(self.horizon_months, int) \
                or self.horizon_months < 1:
            raise ConfigError(f"replay horizon must be an integer >= 1 month, "
                              f"got {self.horizon_months!r}")
        for name in ("collateral_recovery", "unsecured_recovery"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"valuation {name} must be in [0, 1], got {v!r}")
        if self.complaint_cost < 0:
            raise ConfigError(f"valuation complaint_cost must be >= 0, "
                              f"got {self.complaint_cost!r}")


def as_of_month(cfg: SimulationConfig, as_of: str | pd.Timestamp, horizon: int) -> int:
    """Month index of the as-of date (a month end of the window) with `horizon` after it.

    Raises:
        ConfigError: the date is not a month end of the window, or fewer than
            `horizon` simulated months follow it.
    """
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        raise ConfigError(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)") from None
    months = cfg.month_ends()
    if ts not in months:
        raise ConfigError(f"--as-of {ts.date()} is not a month end of the simulated window "
                          f"{months[0].date()}..{months[-1].date()}")
    t0 = int(months.get_loc(ts))
    if t0 + horizon >= cfg.n_months:
        last = months[cfg.n_months - 1 - horizon].date() if cfg.n_months > horizon else None
        raise ConfigError(f"--as-of {ts.date()} leaves {cfg.n_months - 1 - t0} simulated "
                          f"months, the replay needs {horizon}: use an as-of on or before "
                          f"{last}")
    return t0


def queue_codes(queue: pd.DataFrame, customer_ids: np.ndarray) -> np.ndarray:
    """Per customer of the book (in `customer_ids` order), the queue's action code.

    Args:
        queue: ``customer_id`` and ``action`` (a value of ``schema.CONTACT_ACTIONS``
            or ``"none"``, which is skipped).
        customer_ids: the book's customer ids, sorted.

    Returns:
        Action codes, NO_CONTACT where the queue does not contact.

    Raises:
        DataValidationError: a missing column, an unknown action or customer, or a
            customer queued twice (naming the first offending rows).
    """
    codes = np.full(customer_ids.size, NO_CONTACT, np.int64)
    for col in QUEUE_COLUMNS:
        if col not in queue.columns:
            raise DataValidationError("queue", "missing column", col)
    q = queue[queue["action"].astype(object) != NO_CONTACT_POLICY].reset_index(drop=True)
    if q.empty:
        return codes
    act = q["action"].astype(object)
    bad = ~act.isin(S.CONTACT_ACTIONS).to_numpy()
    if bad.any():
        raise DataValidationError("queue", f"unknown action; allowed {list(S.CONTACT_ACTIONS)}",
                                  "action", q.loc[bad, list(QUEUE_COLUMNS)].head(5).to_string())
    dup = q["customer_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataValidationError("queue", "customer queued twice", "customer_id",
                                  q.loc[dup, list(QUEUE_COLUMNS)].head(5).to_string())
    ids = q["customer_id"].to_numpy()
    pos = np.searchsorted(customer_ids, ids)
    pos_c = np.minimum(pos, customer_ids.size - 1)
    bad = customer_ids[pos_c] != ids
    if bad.any():
        raise DataValidationError("queue", "customer not in the book", "customer_id",
                                  q.loc[bad, list(QUEUE_COLUMNS)].head(5).to_string())
    codes[pos] = [S.CONTACT_ACTIONS.index(a) for a in act]
    return codes


def realised_outcomes(tables: Mapping[str, pd.DataFrame], as_of: str | pd.Timestamp,
                      valuation: Valuation, funding_rate_pct: float,
                      in_default_at_as_of: np.ndarray | None = None) -> pd.DataFrame:
    """What happened to each customer in the months after `as_of`, in money.

    Reads ``repayments``, ``loans`` and ``interactions`` (rows up to ``as_of +
    horizon_months``) like any book:

    * a **default**: a customer's first statement at 90+ DPD in the window (customers
      already 90+ at the as-of are left out); its **credit loss** is, over the loans
      billed at that statement, ``max(balance - collateral_recovery x collateral, 0) x
      (1 - unsecured_recovery)``;
    * a **churn**: a loan closed as ``prepaid`` in the window; the **churned value**
      is the prepaid balance x ``max(rate - funding rate, 0)`` x its remaining life
      (capped) / 12;
    * **complaints**: complaint events in the window.

    Args:
        tables: a book (or a replay's tables).
        as_of: the as-of date.
        valuation: horizon and money terms.
        funding_rate_pct: the lender's funding rate, percent a year.
        in_default_at_as_of: customer ids already 90+ DPD at the as-of.

    Returns:
        One row per customer with an outcome: ``customer_id``, ``defaulted``,
        ``credit_loss``, ``churned``, ``churned_value``, ``complaints``.
    """
    as_of = pd.Timestamp(as_of)
    end = as_of + pd.offsets.MonthEnd(valuation.horizon_months)
    rep = tables["repayments"]
    rep = rep[(rep["statement_date"] > as_of) & (rep["statement_date"] <= end)]
    loans = tables["loans"].set_index("loan_id")
    # Defaults: the first 90+ statement of each customer, and the loans billed then.
    bad = rep[rep["dpd"] >= S.DEFAULT_DPD]
    if in_default_at_as_of is not None:
        bad = bad[~bad["customer_id"].isin(in_default_at_as_of)]
    first = bad.groupby("customer_id")["statement_date"].transform("min")
    at_default = bad[bad["statement_date"] == first]
    coll = loans["collateral_value"].reindex(at_default["loan_id"]).to_numpy()
    loss = (np.maximum(at_default["balance"].to_numpy()
                       - valuation.collateral_recovery * coll, 0.0)
            * (1.0 - valuation.unsecured_recovery))
    credit = pd.Series(loss, index=at_default["customer_id"].to_numpy()).groupby(level=0).sum()
    # Churn: loans prepaid in the window and the margin they carried.
    lo = tables["loans"]
    pre = lo[(lo["close_reason"] == "prepaid") & (lo["close_date"] > as_of)
             & (lo["close_date"] <= end)]
    close_row = rep.merge(pre[["loan_id"]], on="loan_id")
    close_row = close_row.sort_values("statement_date").groupby("loan_id").tail(1)
    prepaid_bal = (close_row["paid_amount"] - close_row["scheduled_amount"]).clip(lower=0.0)
    info = pre.set_index("loan_id").reindex(close_row["loan_id"])
    age = ((info["close_date"].dt.year - info["origination_date"].dt.year) * 12
           + info["close_date"].dt.month - info["origination_date"].dt.month).to_numpy()
    remaining = np.where(info["product"].to_numpy() == "card", valuation.card_life_months,
                         info["term_months"].to_numpy() - age)
    remaining = np.clip(remaining, 0, valuation.life_cap_months)
    margin = np.maximum(info["annual_rate"].to_numpy() - funding_rate_pct, 0.0) / 100.0
    value = prepaid_bal.to_numpy() * margin * remaining / 12.0
    churned = pd.Series(value, index=close_row["customer_id"].to_numpy()).groupby(level=0).sum()
    it = tables["interactions"]
    comp = it[(it["kind"] == "complaint") & (it["event_date"] > as_of) & (it["event_date"] <= end)]
    complaints = comp.groupby("customer_id").size()
    ids = np.union1d(np.union1d(credit.index, churned.index), complaints.index)
    out = pd.DataFrame({"customer_id": ids.astype(np.int64)})
    out["defaulted"] = np.isin(ids, credit.index)
    out["credit_loss"] = credit.reindex(ids).fillna(0.0).to_numpy()
    out["churned"] = np.isin(ids, churned.index)
    out["churned_value"] = churned.reindex(ids).fillna(0.0).to_numpy()
    out["complaints"] = complaints.reindex(ids).fillna(0).astype(np.int64).to_numpy()
    return out


def _totals(outcomes: pd.DataFrame) -> dict[str, float]:
    return {"n_defaults": int(outcomes["defaulted"].sum()),
            "credit_loss": float(outcomes["credit_loss"].sum()),
            "n_churned": int(outcomes["churned"].sum()),
            "churned_value": float(outcomes["churned_value"].sum()),
            "complaints": int(outcomes["complaints"].sum())}


def replay_policies(
    cfg: SimulationConfig,
    as_of: str | pd.Timestamp,
    queues: Mapping[tuple[str, int], pd.DataFrame],
    seeds: Sequence[int] = (0,),
    valuation: Valuation | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Replay the book forward from `as_of` under each queue, with common random numbers.

    Args:
        cfg: the book's simulation config (from its manifest), with a contact policy
            (whose action costs price the contacts).
        as_of: a month end of the window with ``horizon_months`` after it.
        queues: per ``(policy, capacity)``, the queue (``customer_id``, ``action``)
            contacted in the month after the as-of. The no-contact arm is added.
        seeds: replay seeds (0 = the book's own future).
        valuation: money terms and horizon.
        progress: called with a label after each arm.

    Returns:
        One row per policy, capacity and seed: ``policy``, ``capacity``, ``seed`` and
        :data:`METRICS`; ``net_benefit`` is against the no-contact arm of the same seed.

    Raises:
        ConfigError: no contact policy in `cfg`, a bad as-of date or no seeds.
        DataValidationError: a malformed queue.
    """
    valuation = valuation or Valuation()
    if cfg.contacts is None:
        raise ConfigError("the book has no contact policy in its simulation config: "
                          "generate it with contacts to replay it")
    if not seeds:
        raise ConfigError("at least one replay seed is needed")
    t0 = as_of_month(cfg, as_of, valuation.horizon_months)
    log.info("forking the book at %s (month %d)", pd.Timestamp(as_of).date(), t0)
    w, s = fork(cfg, t0)
    in_default = w.cid[s.missed >= DEFAULT_MISSED]
    funding = float(w.policy[t0]) + valuation.funding_spread_pct
    costs = np.array([cfg.contacts.spec(a).cost for a in S.CONTACT_ACTIONS])
    months = range(t0 + 1, t0 + 1 + valuation.horizon_months)
    arms = {(NO_CONTACT_POLICY, 0): np.full(w.n, NO_CONTACT, np.int64)}
    for key, q in queues.items():
        if key[0] != NO_CONTACT_POLICY:
            arms[key] = queue_codes(q, w.cid)
    rows = []
    for seed in seeds:
        base = None
        for (name, cap), codes in arms.items():
            def planner(t: int, codes=codes):
                if t != t0 + 1 or not (codes >= 0).any():
                    return None
                return lambda w_, s_, t_, rng: queue_plan(w_, codes, rng)

            tables = simulate_forward(w, s, months, int(seed), planner)
            tot = _totals(realised_outcomes(tables, as_of, valuation, funding, in_default))
            contacted = codes[codes >= 0]
            tot["n_contacts"] = int(contacted.size)
            tot["contact_cost"] = float(costs[contacted].sum())
            if base is None:
                base = tot
            tot["net_benefit"] = (
                (base["credit_loss"] - tot["credit_loss"])
                + (base["churned_value"] - tot["churned_value"])
                + valuation.complaint_cost * (base["complaints"] - tot["complaints"])
                - tot["contact_cost"])
            rows.append({"policy": name, "capacity": int(cap), "seed": int(seed), **tot})
            if progress is not None:
                progress(f"{name}@{cap} seed {seed}")
    return pd.DataFrame(rows)[["policy", "capacity", "seed", *METRICS]]


def summarise_replay(runs: pd.DataFrame, level: float = 0.90) -> pd.DataFrame:
    """Mean and interval over seeds of each metric, per policy and capacity.

    The interval is the mean +- Student-t quantile x standard error over seeds (a
    single seed gives no interval: NaN bounds).

    Returns:
        One row per policy and capacity: ``n_seeds`` and, per metric,
        ``<metric>``, ``<metric>_lo``, ``<metric>_hi``.
    """
    from scipy import stats

    out = []
    for (name, cap), g in runs.groupby(["policy", "capacity"], sort=False):
        k = len(g)
        row = {"policy": name, "capacity": int(cap), "n_seeds": k}
        tq = stats.t.ppf(0.5 + level / 2.0, k - 1) if k > 1 else math.nan
        for m in METRICS:
            v = g[m].to_numpy(dtype=float)
            mean = float(v.mean())
            half = float(tq * v.std(ddof=1) / math.sqrt(k)) if k > 1 else math.nan
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean, mean - half, mean + half
        out.append(row)
    return pd.DataFrame(out)


def paired_difference(runs: pd.DataFrame, policy: str, against: str,
                      metric: str = "net_benefit", level: float = 0.90) -> pd.DataFrame:
    """`policy` minus `against` on `metric`, per capacity, paired by replay seed.

    Both arms of a seed share every random number (common random numbers), so the
    per-seed difference removes the future's own noise, which dominates each arm's
    interval: the paired interval says whether one policy beats the other.

    Returns:
        One row per capacity both policies ran at: ``capacity``, ``n_seeds``,
        ``difference``, ``difference_lo``, ``difference_hi``, ``wins`` (seeds where
        `policy` is ahead).
    """
    from scipy import stats

    a = runs[runs["policy"] == policy].set_index(["capacity", "seed"])[metric]
    b = runs[runs["policy"] == against].set_index(["capacity", "seed"])[metric]
    d = (a - b).dropna()
    out = []
    for cap, v in d.groupby(level="capacity"):
        x = v.to_numpy(dtype=float)
        k = len(x)
        half = (float(stats.t.ppf(0.5 + level / 2.0, k - 1) * x.std(ddof=1) / math.sqrt(k))
                if k > 1 else math.nan)
        out.append({"capacity": int(cap), "n_seeds": k, "difference": float(x.mean()),
                    "difference_lo": float(x.mean()) - half,
                    "difference_hi": float(x.mean()) + half, "wins": int((x > 0).sum())})
    return pd.DataFrame(out)


__all__ = [
    "METRICS", "NO_CONTACT_POLICY", "QUEUE_COLUMNS", "Valuation", "as_of_month",
    "paired_difference", "queue_codes", "realised_outcomes", "replay_policies",
    "summarise_replay",
]
