"""What to simulate: the window, the seed, an optional macro shock and the contact policy."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import pandas as pd

from postloan.data import schema as S
from postloan.errors import ConfigError


@dataclass(frozen=True)
class Shock:
    """A sudden macro shock from a given month on (the handbook's failure case)."""

    month_index: int
    unemployment_jump: float = 4.0
    rate_jump: float = 2.0


@dataclass(frozen=True)
class ActionSpec:
    """One outreach action of the lender's contact policy.

    Attributes:
        cost: what one contact costs the lender (staff time, SMS, the discount a
            retention offer gives away), in the book's currency.
        capacity: contacts of this action the team can make per month.
        channel: the channel it goes out on (a value of ``schema.INTERACTION_CHANNELS``).
    """

    cost: float
    capacity: int
    channel: str

    def __post_init__(self) -> None:
        if not (isinstance(self.cost, int | float) and math.isfinite(self.cost)
                and self.cost >= 0):
            raise ConfigError(f"contact action cost must be a number >= 0, got {self.cost!r}")
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int) \
                or self.capacity < 0:
            raise ConfigError(f"contact action capacity must be an integer >= 0, "
                              f"got {self.capacity!r}")
        if self.channel not in S.INTERACTION_CHANNELS:
            raise ConfigError(f"contact action channel {self.channel!r} is not one of "
                              f"{list(S.INTERACTION_CHANNELS)}")


@dataclass(frozen=True)
class ContactPolicy:
    """The lender's historical outreach: a business rule plus a randomised holdout.

    Each month (from `start_month` on, so a customer has a history to act on) the
    rule makes customers eligible for one action, from what the lender saw at the
    previous month end: hardship delinquency (1-3 missed instalments after a job
    loss) gets a ``restructuring_offer``; other early delinquency a
    ``payment_reminder``; a complaint last month a ``service_recovery_call``; a
    customer paying well above the market rate a ``retention_offer``. A random
    `holdout` share of the eligible is not contacted (the champion/challenger
    control group); when the rest exceed the action's monthly capacity, a random
    subset is contacted. Every eligible customer-month is logged in ``interactions``
    with the probability it had of being contacted (``propensity``).

    Attributes:
        holdout: share of eligible customers kept out at random, in [0, 1].
        rate_gap_min: percent points above the market rate that make a customer a
            rate shopper (eligible for a retention offer).
        start_month: first month index with contacts.
        payment_reminder: cost, capacity and channel of a payment reminder.
        restructuring_offer: same for a restructuring / flexible-repayment offer.
        retention_offer: same for a retention offer.
        service_recovery_call: same for a service-recovery call.
    """

    holdout: float = 0.10
    rate_gap_min: float = 4.0
    start_month: int = 1
    payment_reminder: ActionSpec = field(default_factory=lambda: ActionSpec(2.0, 3000, "app"))
    restructuring_offer: ActionSpec = field(
        default_factory=lambda: ActionSpec(60.0, 300, "phone"))
    retention_offer: ActionSpec = field(default_factory=lambda: ActionSpec(40.0, 600, "phone"))
    service_recovery_call: ActionSpec = field(
        default_factory=lambda: ActionSpec(15.0, 400, "phone"))

    def __post_init__(self) -> None:
        if not (isinstance(self.holdout, int | float) and 0.0 <= self.holdout <= 1.0):
            raise ConfigError(f"contact holdout must be a share in [0, 1], got {self.holdout!r}")
        if isinstance(self.start_month, bool) or not isinstance(self.start_month, int) \
                or self.start_month < 1:
            raise ConfigError(f"contact start_month must be an integer >= 1, "
                              f"got {self.start_month!r}")

    def spec(self, action: str) -> ActionSpec:
        """The :class:`ActionSpec` of one action (a value of ``schema.CONTACT_ACTIONS``)."""
        return getattr(self, action)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ContactPolicy:
        kw = dict(d)
        for a in S.CONTACT_ACTIONS:
            if a in kw and isinstance(kw[a], dict):
                kw[a] = ActionSpec(**kw[a])
        return cls(**kw)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate.

    Attributes:
        n_customers: customers in the book over the window (existing plus new).
        n_months: months simulated (statements dated at each month end).
        seed: seed of the random streams.
        start: first simulated month, ``YYYY-MM``.
        shock: optional macro shock.
        contacts: the lender's contact policy. ``None`` simulates without outreach
            on the original single random stream (the books of earlier versions,
            byte for byte); with a policy every mechanism draws from its own stream
            per month, which is what lets :mod:`postloan.simulation.replay` replay the book
            under another policy with common random numbers.
    """

    n_customers: int = 20_000
    n_months: int = 36
    seed: int = 42
    start: str = "2023-01"
    shock: Shock | None = None
    contacts: ContactPolicy | None = field(default_factory=ContactPolicy)

    def month_ends(self) -> pd.DatetimeIndex:
        first = pd.Timestamp(self.start + "-01") + pd.offsets.MonthEnd(0)
        return pd.date_range(first, periods=self.n_months, freq="ME")

    def to_dict(self) -> dict:
        """Plain JSON-able form (recorded in the book's manifest for replays)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SimulationConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: unknown or malformed fields.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"simulation config: unknown field(s) {unknown}")
        kw = dict(d)
        try:
            if kw.get("shock") is not None:
                kw["shock"] = Shock(**kw["shock"])
            if kw.get("contacts") is not None:
                kw["contacts"] = ContactPolicy.from_dict(kw["contacts"])
            return cls(**kw)
        except TypeError as e:
            raise ConfigError(f"simulation config: {e}") from e
