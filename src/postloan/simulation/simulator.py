"""A structural simulator of a lender's post-loan book.

Not independent random columns: each customer has latent traits (credit quality,
service sensitivity, digital engagement, receptiveness to outreach) and every month
the book moves through the mechanisms the domain describes, one step function each
(:mod:`postloan.simulation.steps`, in this order):

* **outreach** (:mod:`postloan.simulation.contacts`): the lender's contact policy
  (rule + randomised holdout + capacity) picks this month's contacts; each action
  shifts the mechanisms below, differently for each customer, sometimes for the worse;
* **arrivals**: new customers with their first loan;
* **job loss**: income-shock spells whose hazard rises with regional unemployment;
* **delinquency**: a roll-rate chain over missed instalments (current, 1-29, 30-59,
  60-89, 90+) driven by credit quality, shocks, debt-to-income and macro; cures
  back to current; 90+ is default, charged off at 180 DPD;
* **payments**: amortisation, card utilisation, maturity and charge-off;
* **churn**: customers start "shopping around" (rate incentive versus the market,
  dissatisfaction, competitor pull, collection pressure), use the app less and call
  more, then prepay everything;
* **renewal**: at maturity they may not renew; cross-sell to good payers;
* **service**: requests, collection contacts, a persistent mood raised by slow
  service, collection pressure and an unfavourable rate; it shows as complaints;
* **surveys**, **channel use** and **bureau** pulls;
* **truth**: the true hazards and label probabilities (and, with a contact policy,
  each action's true effect in ``contact_truth``).

Randomness. Without a contact policy (``SimulationConfig(contacts=None)``) every
draw comes from one seeded generator in a fixed order: the books of earlier
versions, byte for byte. With a contact policy (the default) the set-up (macro,
customers, the book at the window's start) still comes from that generator, but each
mechanism of each month draws from its own stream, ``SeedSequence(seed,
spawn_key=(replay, month, mechanism))``, and the draws that move the state are one
per customer (per-event details such as resolution times and new loans' terms come
from streams of their own). So contacting other customers changes nothing else's random numbers:
:func:`fork` and :func:`simulate_forward` replay the book from any month under
another policy with common random numbers (``replay=0`` is the book's own future).
Either way the same configuration gives the same tables.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from postloan.errors import ConfigError
from postloan.simulation import contacts as C
from postloan.simulation import steps
from postloan.simulation.config import ActionSpec, ContactPolicy, Shock, SimulationConfig
from postloan.simulation.tables import Records, assemble
from postloan.simulation.world import (
    CHARGE_OFF_MISSED,
    DEFAULT_MISSED,
    N_SLOTS,
    State,
    World,
    draw_world,
    empty_state,
    existing_book,
    initial_state,
)

log = logging.getLogger(__name__)

# One random stream per mechanism and month (see the module docstring).
MECHANISMS = ("contacts", "arrivals", "job_loss", "delinquency", "payments", "churn",
              "renewal", "renewal_loans", "service", "service_events", "surveys",
              "channel_use", "bureau", "outreach_log")
_MECH = {name: i for i, name in enumerate(MECHANISMS)}
_RECEPTIVE_KEY = 1_000_000  # spawn key of the receptiveness trait's stream

# A month's contacts: f(world, state, month, rng) -> Plan.
Planner = Callable[[World, State, int, np.random.Generator], C.Plan]


class Streams:
    """The generator each mechanism of each month draws from."""

    def __init__(self, seed: int, main: np.random.Generator, per_month: bool,
                 replay: int = 0):
        self.seed, self.main, self.per_month, self.replay = seed, main, per_month, replay

    def get(self, t: int, mechanism: str) -> np.random.Generator:
        if not self.per_month:
            return self.main
        key = (self.replay, t, _MECH[mechanism])
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))


def _check(cfg: SimulationConfig) -> None:
    if cfg.n_customers < 10:
        raise ValueError("n_customers must be at least 10")
    if cfg.n_months < 4:
        raise ValueError("n_months must be at least 4")


def setup(cfg: SimulationConfig) -> tuple[World, State, np.random.Generator]:
    """The world and the book at the window's start (before month 0's mechanisms).

    Returns:
        The world, the state, and the main generator (positioned after the set-up).
    """
    _check(cfg)
    rng = np.random.default_rng(cfg.seed)
    w = draw_world(cfg, rng)
    s = empty_state(w.n)
    existing_book(w, s, rng)
    initial_state(w, s, rng)
    if cfg.contacts is not None:
        w.per_customer = True
        # Receptiveness shows partly in behaviour a lender logs (engaged customers
        # respond more, those who avoid calls less), so an uplift model can learn some
        # of it; the rest is the customer's own (unit variance overall).
        z_engage = (w.engage - w.engage.mean()) / w.engage.std()
        noise = np.random.default_rng(
            np.random.SeedSequence(cfg.seed, spawn_key=(_RECEPTIVE_KEY,))).normal(size=w.n)
        w.receptive = 0.5 * z_engage - 0.3 * w.reach_pref + np.sqrt(1 - 0.5**2 - 0.3**2) * noise
    return w, s, rng


def historical_planner(policy: ContactPolicy) -> Planner:
    """The book's own contact policy as a planner."""
    return lambda w, s, t, rng: C.policy_plan(w, s, t, policy, rng)


def run_month(w: World, s: State, t: int, streams: Streams, rec: Records,
              planner: Planner | None, policy: ContactPolicy | None = None) -> None:
    """Run every mechanism of month `t` on `s`, logging into `rec`.

    Args:
        w: the world.
        s: the state, moved in place.
        t: month index.
        streams: the generators.
        rec: where rows go.
        planner: this month's contacts; None runs without contacts (and, with the
            single legacy stream, exactly as the simulator did before contacts).
        policy: the contact policy whose eligible customers are logged (outreach
            rows and contact truth); None logs nothing.
    """
    lev, plan = None, None
    if planner is not None:
        plan = planner(w, s, t, streams.get(t, "contacts"))
    if w.per_customer:  # contacts simulated: this month's and running plans' levers
        lev = C.plan_levers(w, s, plan)
    m = steps.Month(t)
    steps.arrivals(w, s, m, streams.get(t, "arrivals"))
    steps.job_loss(w, s, m, streams.get(t, "job_loss"))
    steps.bills(w, s, m)
    steps.delinquency(w, s, m, streams.get(t, "delinquency"), lev)
    steps.payments(w, s, m, streams.get(t, "payments"))
    steps.churn(w, s, m, streams.get(t, "churn"), lev)
    steps.record_repayments(w, s, m, rec)
    steps.renewal(w, s, m, streams.get(t, "renewal"), streams.get(t, "renewal_loans"))
    steps.service(w, s, m, streams.get(t, "service"), lev, rec,
                  streams.get(t, "service_events"))
    steps.surveys(w, s, m, streams.get(t, "surveys"), rec)
    steps.channel_use(w, s, m, streams.get(t, "channel_use"), rec)
    steps.bureau(w, s, m, streams.get(t, "bureau"), rec)
    steps.truth(w, s, m, rec)
    if plan is not None and policy is not None:
        C.record_outreach(w, t, plan, policy, streams.get(t, "outreach_log"), rec)
        C.record_contact_truth(w, s, m, plan, rec)


def simulate(
    cfg: SimulationConfig, progress: Callable[[int, int], None] | None = None
) -> dict[str, pd.DataFrame]:
    """Simulate a post-loan book.

    Args:
        cfg: what to simulate.
        progress: optional callback ``progress(done_months, n_months)``.

    Returns:
        Tables keyed by name, matching :data:`postloan.data.schema.TABLES` (without
        ``contact_truth`` when ``cfg.contacts`` is None).
    """
    w, s, rng = setup(cfg)
    policy = cfg.contacts
    streams = Streams(cfg.seed, rng, per_month=policy is not None)
    planner = historical_planner(policy) if policy is not None else None
    rec = Records()
    for t in range(cfg.n_months):
        run_month(w, s, t, streams, rec, planner, policy)
        if progress is not None:
            progress(t + 1, cfg.n_months)
    return assemble(w, s, rec, rng, contacts=policy is not None)


def fork(cfg: SimulationConfig, month: int) -> tuple[World, State]:
    """The book's world and state at the end of month index `month` (a replay's start).

    Re-runs the simulation of `cfg` (its own contact policy) for months 0..`month`
    without keeping the rows: the state is what the book held at that month end.

    Raises:
        ConfigError: `cfg` has no contact policy (a single-stream book cannot be
            replayed with common random numbers) or `month` is outside the window.
    """
    if cfg.contacts is None:
        raise ConfigError("this book was simulated without a contact policy (one random "
                          "stream); a replay needs a book generated with contacts")
    if not 0 <= month < cfg.n_months:
        raise ConfigError(f"fork month {month} outside the window 0..{cfg.n_months - 1}")
    w, s, rng = setup(cfg)
    streams = Streams(cfg.seed, rng, per_month=True)
    planner = historical_planner(cfg.contacts)
    rec = Records(keep=False)
    for t in range(month + 1):
        run_month(w, s, t, streams, rec, planner, None)
    return w, s


def simulate_forward(w: World, s: State, months: range, replay: int,
                     planner: Callable[[int], Planner | None]) -> dict[str, pd.DataFrame]:
    """Run `months` from a forked state (left untouched) and return their tables.

    Args:
        w: the world of :func:`fork`.
        s: the state of :func:`fork` (copied, not moved).
        months: month indices to run, inside the window.
        replay: which future: 0 is the book's own random numbers, others are new
            futures (the same for every policy: common random numbers).
        planner: per month index, the contacts of that month (None: no contacts).

    Returns:
        The book's tables restricted to the rows of `months` (``loans`` and
        ``customers`` whole; no ``customers_pii``, ``contact_truth``).
    """
    s = s.copy()
    streams = Streams(w.cfg.seed, None, per_month=True, replay=replay)
    rec = Records()
    for t in months:
        run_month(w, s, t, streams, rec, planner(t), None)
    return assemble(w, s, rec, None, contacts=False)


def simulate_until(cfg: SimulationConfig, month: int
                   ) -> tuple[World, State, dict[str, pd.DataFrame]]:
    """The book of `cfg` up to month index `month`, with the state it ends in.

    Like :func:`simulate` stopped after `month` (the book's own contact policy, its
    outreach log and contact truth), but the state is kept so the months after can
    be run one at a time (:func:`advance_month`) under another policy. The world
    (macro, arrivals) spans ``cfg.n_months``.

    Raises:
        ConfigError: `cfg` has no contact policy or `month` is outside the window.
    """
    if cfg.contacts is None:
        raise ConfigError("a closed-loop run needs a book generated with contacts")
    if not 0 <= month < cfg.n_months:
        raise ConfigError(f"month {month} outside the window 0..{cfg.n_months - 1}")
    w, s, rng = setup(cfg)
    streams = Streams(cfg.seed, rng, per_month=True)
    planner = historical_planner(cfg.contacts)
    rec = Records()
    for t in range(month + 1):
        run_month(w, s, t, streams, rec, planner, cfg.contacts)
    return w, s, assemble(w, s, rec, None, contacts=True)


def advance_month(w: World, s: State, t: int, replay: int,
                  planner: Planner | None) -> dict[str, pd.DataFrame]:
    """Run month `t` on `s` (moved in place) with this month's contacts; its tables.

    The one-month step of a closed loop: decide on the book as known, contact,
    advance, repeat. Each mechanism draws from its ``(replay, t)`` stream, so arms
    advanced with the same `replay` share every random number (common random numbers).

    Returns:
        The tables of month `t` only (``loans`` and ``customers`` whole; no
        ``customers_pii``, ``contact_truth``), as :func:`simulate_forward`.
    """
    if not 0 <= t < w.cfg.n_months:
        raise ConfigError(f"month {t} outside the window 0..{w.cfg.n_months - 1}")
    streams = Streams(w.cfg.seed, None, per_month=True, replay=replay)
    rec = Records()
    run_month(w, s, t, streams, rec, planner, None)
    return assemble(w, s, rec, None, contacts=False)


__all__ = [
    "CHARGE_OFF_MISSED", "DEFAULT_MISSED", "MECHANISMS", "N_SLOTS", "ActionSpec",
    "ContactPolicy", "Records", "Shock", "SimulationConfig", "State", "Streams", "World",
    "advance_month", "fork", "historical_planner", "run_month", "setup", "simulate",
    "simulate_forward", "simulate_until",
]
