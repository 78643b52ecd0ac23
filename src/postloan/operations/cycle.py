"""The monthly cycle's pure steps and its run ledger (issue 22).

Post-loan management is a monthly loop: the month-end book is checked, scored and
decided, contacts go out (a random share held out), models are monitored and retrained.
This module holds the parts of one month that do not touch files or the registry, so
the ``postloan cycle`` command (``pipelines/cycle.py``) and the closed-loop year on the
simulator call the same functions:

- :func:`load_cycle_config`: the validated ``config/cycle.yaml``;
- :func:`assign_outreach`: the month's contacts, holdout and over-capacity customers as
  the contract's ``interactions`` outreach rows (what the lender feeds back next month);
  the holdout is drawn :func:`holdout_reach` deep so it costs no call slots;
- :func:`decision_counts`: the counts the ledger records of a month's decisions;
- :func:`monitor_verdict`, :func:`retrain_reason`: the monitor's verdict and whether
  the month retrains;
- :class:`Ledger`: the table ``postloan_runs``, one row per cycle and step.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
import zlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from postloan.config_files import read_mapping, read_text, shipped_text, validate
from postloan.data import schema as S
from postloan.data.database import DatabaseError, connect, first_line, mask_url
from postloan.decisions.strategy import LEVELS, NO_ACTION

log = logging.getLogger(__name__)

# The steps of one month, in order. gate, score and write always run; the others as
# the config says (ingest when a source mapping is given).
STEPS = ("ingest", "gate", "score", "write", "materialize", "monitor", "retrain", "report")
OK, FAILED, SKIPPED, RUNNING = "ok", "failed", "skipped", "running"

# Exit codes for schedulers (docs/operations.md).
EXIT_OK, EXIT_BAD_INPUT, EXIT_REVALIDATE, EXIT_DATA_GATE = 0, 2, 3, 4

# Which eligibility rule of the contract an action's outreach row names: the rule the
# handbook contacts for with that action (schema.ELIGIBILITY_RULES, same order as
# schema.CONTACT_ACTIONS).
ELIGIBILITY = dict(zip(S.CONTACT_ACTIONS, S.ELIGIBILITY_RULES, strict=True))
CHANNEL = {"payment_reminder": "app", "restructuring_offer": "phone",
           "retention_offer": "phone", "service_recovery_call": "phone"}


class CycleSteps(BaseModel):
    """Optional steps of the cycle (gate, score and write always run)."""

    model_config = ConfigDict(extra="forbid")
    materialize: bool = False
    monitor: bool = True
    retrain: bool = True
    report: bool = True


class CycleConfig(BaseModel):
    """``config/cycle.yaml``: schedule, holdout, capacity and steps of the monthly cycle."""

    model_config = ConfigDict(extra="forbid")
    retrain_every_months: int = Field(6, ge=0)
    retrain_uplift: bool = True
    holdout_share: float = Field(0.10, ge=0.0, lt=1.0)
    holdout_weighting: Literal["value", "uniform"] = "value"
    capacity: int | None = Field(None, ge=0)
    steps: CycleSteps = CycleSteps()
    online_store: str | None = None
    monitoring: str | None = None
    training: str | None = None


def load_cycle_config(path: str | Path | None = None) -> CycleConfig:
    """The shipped cycle config, overlaid by a user YAML (fields it names replace them).

    Raises:
        ConfigError: unreadable file, not a mapping, or a bad field (named by its path).
    """
    what = "cycle config"
    src = "postloan:config/cycle.yaml"
    base = read_mapping(shipped_text("config/cycle.yaml"), what, src)
    if path is not None:
        src = str(path)
        user = read_mapping(read_text(path, what), what, src)
        steps = {**base.get("steps", {}), **(user.get("steps") or {})}
        base = {**base, **user, "steps": steps}
    return validate(CycleConfig, base, what, src)


def as_of_seed(as_of: str | pd.Timestamp) -> int:
    """A seed from the as-of date: the same month draws the same holdout on a re-run."""
    return zlib.crc32(f"{pd.Timestamp(as_of):%Y-%m-%d}".encode())


def holdout_reach(capacity: int, holdout_share: float) -> int:
    """How far down the ranking the month's candidates go so that, after the holdout,
    the team still has `capacity` contacts: ``ceil(capacity / (1 - holdout_share))``.

    The holdout costs no call slots: it is drawn from the top `reach` customers, and the
    slots it frees go to the next in rank."""
    if holdout_share <= 0.0 or capacity == 0:
        return capacity
    return int(math.ceil(round(capacity / (1.0 - holdout_share), 9)))


# A candidate's chance of being held out stays within these bounds whatever its value:
# every candidate can be held out (so the uplift models may learn its effect, the
# inverse-propensity weight of a held-out row at most 50), none is held out more often
# than not.
HOLDOUT_CHANCE_BOUNDS = (0.02, 0.5)
HOLDOUT_WEIGHTINGS = ("value", "uniform")


def holdout_chances(net_benefit: np.ndarray, n_held: int, weighting: str = "value"
                    ) -> np.ndarray:
    """Each candidate's chance of being held out, summing to `n_held`.

    ``uniform``: the same for every candidate (``n_held / n``). ``value``: inversely
    proportional to the contact's expected net benefit, within
    :data:`HOLDOUT_CHANCE_BOUNDS` (widened to ``n_held / n`` when that is outside them):
    the holdout falls more often on the contacts worth less, so it costs the lender less
    than a uniform one, and every chance is logged as the row's propensity (the uplift
    models weight by it, so they stay unbiased).
    """
    nb = np.asarray(net_benefit, dtype=float)
    n = len(nb)
    if weighting not in HOLDOUT_WEIGHTINGS:
        raise ValueError(f"holdout weighting must be one of {HOLDOUT_WEIGHTINGS}, "
                         f"got {weighting!r}")
    if n == 0 or n_held == 0:
        return np.zeros(n)
    share = n_held / n
    if weighting == "uniform":
        return np.full(n, share)
    lo, hi = min(HOLDOUT_CHANCE_BOUNDS[0], share), max(HOLDOUT_CHANCE_BOUNDS[1], share)
    w = 1.0 / np.maximum(np.nan_to_num(nb, nan=0.0), 1e-6)
    p = np.full(n, np.nan)
    for _ in range(n + 1):  # cap the chances at the bounds, spread the rest by weight
        free = np.isnan(p)
        q = p.copy()
        q[free] = (n_held - np.nansum(p)) * w[free] / w[free].sum()
        low, high = free & (q < lo), free & (q > hi)
        if not (low.any() or high.any()):
            return q
        p[low], p[high] = lo, hi
    return q  # pragma: no cover - each pass fixes at least one chance


def assign_outreach(decisions: pd.DataFrame, queue: pd.DataFrame,
                    as_of: str | pd.Timestamp, holdout_share: float = 0.10,
                    capacity: int | None = None, weighting: str = "uniform") -> pd.DataFrame:
    """The month's outreach as the contract's ``interactions`` rows of kind ``outreach``.

    Every eligible customer (a decision other than ``none``) gets one row. Of the `n`
    customers in `queue` (the candidates), ``max(n - capacity, round(holdout_share *
    n))`` are held out at random as the randomised control and the rest contacted: with
    the candidates :func:`holdout_reach` deep, exactly `capacity` (`capacity` None: no
    slots to fill, ``round(holdout_share * n)`` held out). Each candidate's chance of
    being held out is :func:`holdout_chances` (`weighting`; ``value`` needs the queue's
    ``net_benefit``), drawn exactly by systematic sampling over the candidates in a
    random order, seeded by the as-of: a re-run draws the same, whatever the row order.
    The eligible customers beyond the candidates are ``over_capacity``. ``propensity``
    is the probability of being contacted under that assignment: one minus the chance
    of being held out for a candidate, 0 beyond them. The rows are dated the day after
    the as-of (the contact month), so :func:`postloan.models.uplift.outreach_log` aligns
    them back to this as-of; ``outcome`` is ``none`` until the lender records reached /
    no_answer.

    Args:
        decisions: one row per customer with ``customer_id`` and ``recommended_action``.
        queue: the candidates (:func:`postloan.decisions.strategy.outreach_queue` of
            these decisions, :func:`holdout_reach` deep).
        as_of: the month's as-of date.
        holdout_share: share of the candidates held out at least, in [0, 1).
        capacity: contacts the team makes (None: as many as the candidates left).
        weighting: ``uniform`` or ``value`` (:func:`holdout_chances`); the cycle passes
            its config's ``holdout_weighting`` (``value`` as shipped).

    Returns:
        ``customer_id``, ``event_date``, ``kind``, ``channel``, ``resolution_days``,
        ``outcome``, ``action``, ``eligibility``, ``assignment``, ``propensity``, sorted
        by customer.
    """
    if not 0.0 <= holdout_share < 1.0:
        raise ValueError(f"holdout_share must be in [0, 1), got {holdout_share}")
    if weighting == "value" and "net_benefit" not in queue.columns:
        raise ValueError("a value-weighted holdout needs the queue's net_benefit column")
    elig = decisions.loc[decisions["recommended_action"].astype(str) != NO_ACTION,
                         ["customer_id", "recommended_action"]]
    elig = elig.sort_values("customer_id", kind="stable").reset_index(drop=True)
    ids = elig["customer_id"].to_numpy()
    in_queue = np.isin(ids, queue["customer_id"].to_numpy())
    cand = np.flatnonzero(in_queue)  # the candidates, in id order
    n_held = int(round(holdout_share * len(cand)))
    if capacity is not None:
        n_held = max(n_held, len(cand) - capacity)
    value = (queue.set_index("customer_id")["net_benefit"].reindex(ids[cand]).to_numpy(float)
             if weighting == "value" else np.zeros(len(cand)))
    chance = holdout_chances(value, n_held, weighting)
    # Systematic sampling: the candidates in a seeded random order, one point every 1
    # from a random start over their cumulated chances; each is held out with exactly
    # its chance, and exactly n_held are.
    rng = np.random.default_rng(as_of_seed(as_of))
    order = rng.permutation(len(cand))
    start = rng.random()
    cum = np.concatenate([[0.0], np.cumsum(chance[order])])
    hits = np.diff(np.floor(np.round(cum - start, 9))) > 0
    held = np.zeros(len(elig), dtype=bool)
    held[cand[order[hits]]] = True
    propensity = np.zeros(len(elig))
    propensity[cand] = 1.0 - chance
    assignment = np.where(~in_queue, "over_capacity", np.where(held, "holdout", "contacted"))
    action = elig["recommended_action"].astype(str)
    event = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    return pd.DataFrame({
        "customer_id": ids.astype("int64"),
        "event_date": pd.Series([event] * len(elig), dtype="datetime64[ns]"),
        "kind": "outreach", "channel": action.map(CHANNEL).to_numpy(),
        "resolution_days": np.nan, "outcome": "none", "action": action.to_numpy(),
        "eligibility": action.map(ELIGIBILITY).to_numpy(), "assignment": assignment,
        "propensity": propensity})


def contacted_queue(queue: pd.DataFrame, outreach: pd.DataFrame) -> pd.DataFrame:
    """The team's queue: the candidates less the holdout, ranked 1.. again."""
    held = outreach.loc[outreach["assignment"] == "holdout", "customer_id"].to_numpy()
    q = queue[~queue["customer_id"].isin(held)].reset_index(drop=True)
    q["queue_rank"] = np.arange(1, len(q) + 1, dtype="int64")
    return q


def decision_counts(decisions: pd.DataFrame, queue: pd.DataFrame,
                    outreach: pd.DataFrame | None = None) -> dict[str, Any]:
    """What the ledger records of a month's decisions: customers, warnings by level,
    queue size, ``none`` decisions and (with `outreach`) the assignments."""
    levels = decisions["warning_level"].astype(str).value_counts()
    out = {"n_customers": len(decisions),
           "warnings": {lv: int(levels.get(lv, 0)) for lv in LEVELS},
           "queue_size": len(queue),
           "n_none": int((decisions["recommended_action"].astype(str) == NO_ACTION).sum())}
    if outreach is not None:
        a = outreach["assignment"].value_counts()
        out["assignments"] = {k: int(a.get(k, 0)) for k in S.CONTACT_ASSIGNMENTS}
    return out


def decide_month(snapshot: pd.DataFrame, bundles: Mapping[str, Any], as_of: str | pd.Timestamp,
                 cfg: CycleConfig | None = None, strategy_cfg: Any = None,
                 uplift: Mapping[str, Any] | None = None, features: Any = None,
                 with_reasons: bool = True, progress: Any = None) -> dict[str, Any]:
    """One month's decisions and outreach: the pure core of the cycle's score step.

    :func:`postloan.decisions.batch.score_and_decide` (the one scoring and decision path) on the
    month's snapshot with candidates :func:`holdout_reach` deep, then
    :func:`assign_outreach` with the config's holdout share and capacity, the team's
    queue (the candidates less the holdout: `capacity` contacts when the book has that
    many) and the counts and decision bases the ledger records.

    Args:
        snapshot: the as-of snapshot (``build_snapshot(tables, as_of, with_labels=False)``).
        bundles: the three champions.
        as_of: the month's as-of (seeds the holdout).
        cfg: the cycle config (capacity, holdout share; the shipped one when None).
        strategy_cfg: the strategy config (the packaged default when None).
        uplift: action -> uplift bundle (None: every action on the constants).
        features: the run's :class:`postloan.data.features.FeatureCache` of `snapshot`, if built.
        with_reasons: compute reason codes (the costly part; a simulation may skip it).
        progress: called with customers scored after each chunk.

    Returns:
        ``scores``, ``decisions``, ``queue`` (whom the team contacts; no holdout
        customer is in it), ``outreach`` (the
        contract's outreach rows), ``counts`` (:func:`decision_counts`) and
        ``decision_basis`` (action -> ``learned_uplift`` | ``constants``).
    """
    from postloan.decisions.batch import score_and_decide
    from postloan.decisions.strategy import decision_bases, load_strategy_config

    cfg = cfg or load_cycle_config()
    capacity = cfg.capacity
    if capacity is None:
        capacity = (strategy_cfg or load_strategy_config()).outreach.capacity
    out = score_and_decide(snapshot, dict(bundles), strategy_cfg,
                           holdout_reach(capacity, cfg.holdout_share),
                           with_reasons=with_reasons, progress=progress, uplift=uplift,
                           features=features)
    outreach = assign_outreach(out["decisions"], out["queue"], as_of, cfg.holdout_share,
                               capacity, cfg.holdout_weighting)
    out["queue"] = contacted_queue(out["queue"], outreach)
    return {**out, "outreach": outreach,
            "counts": decision_counts(out["decisions"], out["queue"], outreach),
            "decision_basis": decision_bases(uplift)}


def monitor_verdict(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The month's monitor verdict from :func:`pipelines.monitor.run_monitor`'s results.

    ``revalidate`` is True when any model's drift verdict is ``re-validate`` (the cycle
    exits 3, like ``postloan monitor --fail-on-drift``); ``retrain`` when any model's
    diagnosis is performance decay; ``data_fault`` when the feeds broke (never retrain
    then). ``by_model`` gives each model's diagnosis.
    """
    from postloan.operations.monitoring import DATA_FAULT, PERFORMANCE_DECAY

    results = list(results)
    diag = {r["model"]: r["diagnosis"] for r in results}
    return {"by_model": diag,
            "revalidate": any(r["verdict"] == "re-validate" for r in results),
            "retrain": any(d == PERFORMANCE_DECAY for d in diag.values()),
            "data_fault": any(d == DATA_FAULT for d in diag.values())}


def months_between(earlier: str | pd.Timestamp, later: str | pd.Timestamp) -> int:
    """Whole calendar months from `earlier` to `later`."""
    a, b = pd.Timestamp(earlier), pd.Timestamp(later)
    return (b.year - a.year) * 12 + b.month - a.month


def retrain_reason(cfg: CycleConfig, as_of: str | pd.Timestamp,
                   verdict: Mapping[str, Any] | None,
                   last_retrain: str | pd.Timestamp | None) -> str | None:
    """Why this month retrains, or None.

    The monitor's performance decay retrains; so does the schedule, when
    ``retrain_every_months`` months have passed since the last retraining cycle (a
    first cycle with no retraining on record starts the clock and does not retrain).
    A data fault never retrains: a model retrained on a broken feed learns the fault.
    """
    if not cfg.steps.retrain:
        return None
    if verdict and verdict.get("data_fault"):
        return None
    if verdict and verdict.get("retrain"):
        decayed = [m for m, d in verdict["by_model"].items() if d == "performance decay"]
        return f"monitor: performance decay ({', '.join(decayed)})"
    if cfg.retrain_every_months and last_retrain is not None:
        n = months_between(last_retrain, as_of)
        if n >= cfg.retrain_every_months:
            return f"schedule: {n} months since the last retraining ({last_retrain})"
    return None


# ------------------------------------------------------------------------- the ledger
LEDGER_TABLE = "postloan_runs"
_JSON_FIELDS = ("model_versions", "warnings", "decision_basis", "details")
_FIELDS = ("model_versions", "data_hash", "n_customers", "warnings", "queue_size", "n_none",
           "decision_basis", "gate_verdict", "monitor_verdict", "details", "error")


def _ledger_table(md: sa.MetaData, name: str = LEDGER_TABLE) -> sa.Table:
    return sa.Table(
        name, md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cycle_id", sa.String(64), nullable=False, index=True),
        sa.Column("as_of", sa.String(10), nullable=False, index=True),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("started", sa.String(32), nullable=False),
        sa.Column("ended", sa.String(32)),
        sa.Column("model_versions", sa.Text),   # JSON: model -> version, uplift included
        sa.Column("data_hash", sa.String(64)),  # the book's content hash
        sa.Column("n_customers", sa.Integer),
        sa.Column("warnings", sa.Text),         # JSON: level -> customers
        sa.Column("queue_size", sa.Integer),
        sa.Column("n_none", sa.Integer),
        sa.Column("decision_basis", sa.Text),   # JSON: action -> learned_uplift | constants
        sa.Column("gate_verdict", sa.String(16)),
        sa.Column("monitor_verdict", sa.Text),
        sa.Column("details", sa.Text),          # JSON: anything else the step reports
        sa.Column("error", sa.Text),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ledger:
    """The run ledger: one row per cycle and step in ``postloan_runs``.

    A step's row is written ``running`` when it starts and closed ``ok``, ``failed``
    (with the error) or ``skipped`` when it ends, each in its own transaction, so the
    ledger says how far a month got even when the process died.

    Args:
        url: SQLAlchemy URL (SQLite, PostgreSQL) or engine.
    """

    def __init__(self, url: str | Engine):
        self.engine = url if isinstance(url, Engine) else connect(url)
        self._own = not isinstance(url, Engine)
        self.url = mask_url(self.engine.url)
        md = sa.MetaData()
        self.table = _ledger_table(md)
        try:
            with self.engine.begin() as conn:
                insp = sa.inspect(conn)
                if LEDGER_TABLE in insp.get_table_names():
                    have = {c["name"] for c in insp.get_columns(LEDGER_TABLE)}
                    missing = sorted({c.name for c in self.table.columns} - have)
                    if missing:
                        raise DatabaseError(
                            f"table {LEDGER_TABLE} in {self.url} is not a run ledger (no "
                            f"columns {missing}); a database written by an earlier "
                            "`postloan score --to` kept its per-date runs there: rename it "
                            f"to postloan_decision_runs")
                md.create_all(conn)
        except DBAPIError as e:
            raise DatabaseError(f"cannot open the run ledger in {self.url}: "
                                f"{first_line(e)}") from None

    def close(self) -> None:
        """Release the connection pool (when the ledger opened it)."""
        if self._own:
            self.engine.dispose()

    def _write(self, stmt) -> Any:
        try:
            with self.engine.begin() as conn:
                return conn.execute(stmt)
        except DBAPIError as e:
            raise DatabaseError(f"writing the run ledger in {self.url} failed: "
                                f"{first_line(e)}") from None

    @staticmethod
    def new_cycle_id(as_of: str) -> str:
        """A fresh cycle id: the as-of and a random suffix."""
        return f"{pd.Timestamp(as_of):%Y%m%d}-{uuid.uuid4().hex[:10]}"

    def start(self, cycle_id: str, as_of: str, step: str) -> int:
        """Open a step's row (``running``); returns its id."""
        res = self._write(sa.insert(self.table).values(
            cycle_id=cycle_id, as_of=pd.Timestamp(as_of).date().isoformat(), step=step,
            status=RUNNING, started=_now()))
        return int(res.inserted_primary_key[0])

    def finish(self, row_id: int, status: str, **fields: Any) -> None:
        """Close a step's row with its status and what it recorded (see :data:`_FIELDS`)."""
        bad = set(fields) - set(_FIELDS)
        if bad:
            raise ValueError(f"unknown ledger fields {sorted(bad)}")
        values = {k: (json.dumps(v, sort_keys=True, default=str)
                      if k in _JSON_FIELDS and v is not None else v)
                  for k, v in fields.items()}
        self._write(sa.update(self.table).where(self.table.c.id == row_id)
                    .values(status=status, ended=_now(), **values))

    def rows(self, as_of: str | None = None) -> pd.DataFrame:
        """The ledger (one month's rows with `as_of`), oldest first; JSON columns parsed."""
        q = sa.select(self.table).order_by(self.table.c.id)
        if as_of is not None:
            q = q.where(self.table.c.as_of == pd.Timestamp(as_of).date().isoformat())
        with self.engine.connect() as conn:
            df = pd.DataFrame(conn.execute(q).mappings().all(),
                              columns=[c.name for c in self.table.columns])
        for c in _JSON_FIELDS:
            df[c] = [json.loads(v) if isinstance(v, str) else v for v in df[c]]
        return df

    def resume_point(self, as_of: str) -> tuple[str | None, set[str]]:
        """The cycle of `as_of` to resume and its finished steps, or ``(None, set())``.

        The month's latest cycle is resumed when one of its steps failed or never
        ended (the process died); a month whose latest cycle finished is run afresh (a
        re-run replaces it).
        """
        df = self.rows(as_of)
        if df.empty:
            return None, set()
        last = df[df["cycle_id"] == df["cycle_id"].iloc[-1]]
        # The latest row of each step in that cycle (a resumed step has several).
        latest = last.drop_duplicates("step", keep="last")
        if not (latest["status"].isin([FAILED, RUNNING])).any():
            return None, set()
        return (str(last["cycle_id"].iloc[0]),
                set(latest.loc[latest["status"].isin([OK, SKIPPED]), "step"]))

    def last_as_of(self, before: str, step: str = "write") -> str | None:
        """The latest as-of before `before` whose `step` finished ok (the previous
        cycle, e.g. the monitor's reference; ``retrain`` for the schedule)."""
        t = self.table
        q = (sa.select(sa.func.max(t.c.as_of))
             .where(t.c.as_of < pd.Timestamp(before).date().isoformat(),
                    t.c.step == step, t.c.status == OK))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def first_as_of(self) -> str | None:
        """The earliest as-of whose decisions were written (the retraining clock's start
        when no cycle retrained yet)."""
        t = self.table
        q = sa.select(sa.func.min(t.c.as_of)).where(t.c.step == "write", t.c.status == OK)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()


def ledger_url_for(tracking_uri: str, root: Path) -> str:
    """The ledger's default database: SQLite next to a SQLite MLflow store, else
    ``runs.db`` at the project root."""
    if tracking_uri.startswith("sqlite:///"):
        return f"sqlite:///{Path(tracking_uri[len('sqlite:///'):]).parent / 'runs.db'}"
    return f"sqlite:///{Path(root) / 'runs.db'}"


__all__ = ["STEPS", "CycleConfig", "Ledger", "assign_outreach", "decide_month",
           "decision_counts", "load_cycle_config", "monitor_verdict", "retrain_reason"]
