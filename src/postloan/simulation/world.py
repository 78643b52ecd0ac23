"""The simulated world and its state: fixed traits, loan slots, month-to-month state.

:class:`World` holds what does not change over the window (macro series, regional
parameters, each customer's latent traits and profile); :class:`State` what the
monthly mechanisms move (loans, missed instalments, job loss, mood, shopping...).
:class:`State` copies cheaply, which is how a replay forks the book at a month.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from postloan.data import schema as S
from postloan.simulation.config import SimulationConfig

N_SLOTS = 3  # at most three loans per customer over the simulated window
CHARGE_OFF_MISSED = 7  # 7 missed instalments = 180+ DPD: charged off
DEFAULT_MISSED = 4  # 4 missed instalments = 90+ DPD: default

# Product parameters: share, log-median principal, principal sd, terms, rate premium.
_PRODUCT_MIX = np.array([0.42, 0.18, 0.30, 0.10])  # consumer, mortgage, card, sme
_PRINCIPAL_MEDIAN = np.array([9_000.0, 160_000.0, 5_000.0, 45_000.0])
_PRINCIPAL_SD = np.array([0.6, 0.5, 0.5, 0.7])
_TERMS = [np.array([12, 24, 36, 48, 60]), np.array([120, 180, 240, 300]),
          np.array([36]), np.array([12, 24, 36, 60])]
SPREAD = np.array([S.PRODUCT_MARKET_SPREAD[p] for p in S.PRODUCTS])
PRODUCT_MISS_SHIFT = np.array([0.15, -0.55, 0.25, 0.35])
EMP_JOB_LOSS = np.array([0.004, 0.007, 0.001, 0.0004, 0.012])  # per month
_EMP_INCOME = np.array([1.0, 1.15, 0.95, 0.6, 0.7])
_EDU_INCOME = np.array([0.7, 0.9, 1.2, 1.6])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def annuity_payment(principal, monthly_rate, n):
    r = np.maximum(monthly_rate, 1e-9)
    return principal * r / (1.0 - (1.0 + r) ** (-n))


def annuity_balance(principal, monthly_rate, n, k):
    r = np.maximum(monthly_rate, 1e-9)
    n = np.maximum(n, 1)
    g = (1.0 + r) ** n
    return np.maximum(principal * (g - (1.0 + r) ** np.minimum(k, n)) / (g - 1.0), 0.0)


@dataclass
class World:
    """What stays fixed over the window: calendar, macro, regions, customers' traits.

    Latent traits (never in the book's tables but ``truth``/``contact_truth``):
    ``q`` credit quality, ``s_sens`` service sensitivity, ``engage`` digital
    engagement, ``reach_pref`` reluctance to take calls, ``receptive`` how much a
    customer responds to outreach (drawn only when a contact policy is simulated).
    """

    cfg: SimulationConfig
    n: int
    month_ends: pd.DatetimeIndex
    month_starts: np.ndarray
    days_in_month: np.ndarray
    unemp: np.ndarray  # months x regions, percent
    policy: np.ndarray  # months, percent
    competitor_pull: np.ndarray  # per region
    service_slowness: np.ndarray  # per region
    cid: np.ndarray
    region: np.ndarray
    emp: np.ndarray
    edu: np.ndarray
    age0: np.ndarray
    channel: np.ndarray
    q: np.ndarray
    s_sens: np.ndarray
    engage: np.ndarray
    base_income: np.ndarray
    declared_income: np.ndarray
    q_obs: np.ndarray  # what the bureau sees of quality
    ext_debt_base: np.ndarray
    existing: np.ndarray
    onboard_t: np.ndarray
    onboard_day: np.ndarray
    birth_year: np.ndarray
    reach_pref: np.ndarray | None = None
    receptive: np.ndarray | None = None
    # Draw event details one per customer (replayable with common random numbers);
    # False on the single legacy stream.
    per_customer: bool = False

    @property
    def base_unemp(self) -> np.ndarray:
        return self.unemp[0]

    @property
    def base_policy(self) -> float:
        return self.policy[0]


@dataclass
class State:
    """What the monthly mechanisms move; :meth:`copy` forks it.

    Loan slots (``l_*``, ``N_SLOTS`` per customer, owner ``slot // N_SLOTS``) and
    per-customer state: ``missed`` instalments outstanding, ``dpd_day``, job-loss
    ``shock``, ``mood`` (dissatisfaction), ``shopping`` around, ``gone`` (churned or
    charged off: no new business), ``coll_hist`` (collection contacts of the last 3
    months), what the contact policy reads at the next month start: ``rate_gap``
    (percent points above market) and ``complained`` last month, and a
    restructuring's relief: months left (``relief_left``) and its shifts of the
    delinquency logits (``relief_miss``, ``relief_roll``, ``relief_cure``).
    """

    l_exists: np.ndarray
    l_open: np.ndarray
    l_product: np.ndarray
    l_principal: np.ndarray
    l_rate: np.ndarray
    l_term: np.ndarray
    l_orig_t: np.ndarray
    l_orig_day: np.ndarray
    l_npaid: np.ndarray
    l_coll_type: np.ndarray
    l_coll_value: np.ndarray
    l_close_t: np.ndarray
    l_close_day: np.ndarray
    l_close_reason: np.ndarray
    l_util: np.ndarray
    slot_owner: np.ndarray
    n_used: np.ndarray
    missed: np.ndarray | None = None
    dpd_day: np.ndarray | None = None
    shock: np.ndarray | None = None
    mood: np.ndarray | None = None
    shopping: np.ndarray | None = None
    gone: np.ndarray | None = None
    coll_hist: np.ndarray | None = None
    rate_gap: np.ndarray | None = None
    complained: np.ndarray | None = None
    relief_left: np.ndarray | None = None
    relief_miss: np.ndarray | None = None
    relief_roll: np.ndarray | None = None
    relief_cure: np.ndarray | None = None

    def copy(self) -> State:
        """An independent copy (every array copied)."""
        return State(**{f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)})


def macro(cfg: SimulationConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Regional unemployment (M x R) and the national policy rate (M) in percent."""
    m, r = cfg.n_months, len(S.REGIONS)
    base_u = rng.uniform(3.5, 7.5, size=r)
    cycle = np.cumsum(rng.normal(0.0, 0.12, size=m))
    unemp = np.empty((m, r))
    u = base_u.copy()
    for t in range(m):
        u = base_u + 0.8 * (u - base_u) + rng.normal(0.0, 0.08, size=r)
        unemp[t] = u + cycle[t]
    policy = 3.5 + np.cumsum(rng.normal(-0.01, 0.08, size=m))
    if cfg.shock is not None:
        s = cfg.shock
        ramp = np.clip((np.arange(m) - s.month_index + 1) / 3.0, 0.0, 1.0)
        regional = rng.uniform(0.6, 1.4, size=r)
        unemp = unemp + ramp[:, None] * s.unemployment_jump * regional[None, :]
        policy = policy + ramp * s.rate_jump
    else:
        rng.uniform(0.6, 1.4, size=r)  # keep the draw sequence identical with and without
    return np.clip(unemp, 0.5, 40.0), np.clip(policy, 0.1, 20.0)


def draw_world(cfg: SimulationConfig, rng: np.random.Generator) -> World:
    """Macro series, regional parameters and the customers' profiles and traits."""
    n, M = cfg.n_customers, cfg.n_months
    month_ends = cfg.month_ends()
    unemp, policy = macro(cfg, rng)
    n_reg = len(S.REGIONS)
    competitor_pull = rng.normal(0.0, 0.4, size=n_reg)
    service_slowness = rng.uniform(0.7, 1.6, size=n_reg)
    cid = np.arange(1, n + 1, dtype=np.int64) + 100_000
    region = rng.choice(n_reg, size=n, p=np.array([14, 13, 15, 11, 16, 10, 9, 12]) / 100)
    emp = rng.choice(5, size=n, p=[0.55, 0.16, 0.1, 0.09, 0.1])
    edu = rng.choice(4, size=n, p=[0.12, 0.43, 0.33, 0.12])
    age0 = np.where(emp == 3, rng.integers(58, 80, size=n), rng.integers(21, 64, size=n))
    channel = rng.choice(3, size=n, p=[0.55, 0.25, 0.2])
    q = rng.normal(size=n) + 0.15 * (edu - 1.5)
    s_sens = rng.normal(size=n)
    engage = rng.normal(size=n) + 0.5 * (channel == 0) - 0.01 * (age0 - 40)
    base_income = (
        4_500.0 * _EMP_INCOME[emp] * _EDU_INCOME[edu]
        * np.exp(rng.normal(0.0, 0.45, size=n) + 0.08 * q)
    )
    declared_income = np.round(base_income * np.exp(rng.normal(0.05, 0.1, size=n)), 2)
    q_obs = q + rng.normal(0.0, 0.55, size=n)
    ext_debt_base = np.exp(rng.normal(np.log(3_000.0), 1.2, size=n)) * (rng.random(n) < 0.6)
    existing = rng.random(n) < 0.5
    onboard_t = np.where(existing, -rng.integers(1, 121, size=n), rng.integers(0, M, size=n))
    onboard_day = rng.integers(0, 28, size=n)
    birth_year = (month_ends[0].year - age0).astype(np.int64)
    return World(
        cfg=cfg, n=n, month_ends=month_ends,
        month_starts=(month_ends - pd.offsets.MonthBegin(1)).to_numpy(),
        days_in_month=month_ends.day.to_numpy(), unemp=unemp, policy=policy,
        competitor_pull=competitor_pull, service_slowness=service_slowness, cid=cid,
        region=region, emp=emp, edu=edu, age0=age0, channel=channel, q=q, s_sens=s_sens,
        engage=engage, base_income=base_income, declared_income=declared_income, q_obs=q_obs,
        ext_debt_base=ext_debt_base, existing=existing, onboard_t=onboard_t,
        onboard_day=onboard_day, birth_year=birth_year,
    )


def empty_state(n: int) -> State:
    """No loans yet: every slot empty."""
    ns = n * N_SLOTS
    return State(
        l_exists=np.zeros(ns, bool), l_open=np.zeros(ns, bool),
        l_product=np.zeros(ns, np.int64), l_principal=np.zeros(ns), l_rate=np.zeros(ns),
        l_term=np.zeros(ns, np.int64), l_orig_t=np.zeros(ns, np.int64),
        l_orig_day=np.zeros(ns, np.int64), l_npaid=np.zeros(ns, np.int64),
        l_coll_type=np.zeros(ns, np.int64), l_coll_value=np.zeros(ns),
        l_close_t=np.full(ns, -1, np.int64), l_close_day=np.zeros(ns, np.int64),
        l_close_reason=np.full(ns, -1, np.int64), l_util=np.zeros(ns),
        slot_owner=np.repeat(np.arange(n), N_SLOTS), n_used=np.zeros(n, np.int64),
    )


class _PerCustomer:
    """A generator's view that draws one value per customer and keeps `cust`'s."""

    def __init__(self, rng: np.random.Generator, cust: np.ndarray, n: int):
        self.rng, self.cust, self.n = rng, cust, n

    def __getattr__(self, method: str):
        f = getattr(self.rng, method)

        def draw(*args, size=None):
            return f(*args, size=self.n)[self.cust]

        return draw

    def random(self, size=None):
        return self.rng.random(self.n)[self.cust]


def originate(w: World, s: State, cust: np.ndarray, t: int, rng: np.random.Generator,
              back: np.ndarray | None = None, product: np.ndarray | None = None) -> None:
    """Create a new loan in the next free slot of each customer in `cust`.

    With `back` (months on book allowed), the loan was originated before the window
    (the existing book); `product` forces the product (a renewal).
    """
    keep = s.n_used[cust] < N_SLOTS
    cust = cust[keep]
    back = back[keep] if back is not None else None
    product = product[keep] if product is not None else None
    if cust.size == 0 and not w.per_customer:
        return
    k = cust.size
    if w.per_customer:
        # One draw per customer of the book, kept for those originating: who else
        # takes a loan this month does not change this customer's numbers.
        rng = _PerCustomer(rng, cust, w.n)
    slot = cust * N_SLOTS + s.n_used[cust]
    s.n_used[cust] += 1
    if product is None:
        mix = np.tile(_PRODUCT_MIX, (k, 1))
        mix[:, 3] *= np.where(w.emp[cust] == 1, 4.0, 0.5)
        mix[:, 1] *= np.where(w.age0[cust] > 62, 0.2, 1.0)
        mix /= mix.sum(axis=1, keepdims=True)
        product = np.minimum((rng.random(k)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1), 3)
    income_scale = np.clip(w.base_income[cust] / 4_500.0, 0.3, 4.0)
    principal = np.round(
        _PRINCIPAL_MEDIAN[product] * income_scale ** 0.8
        * np.exp(rng.normal(0.0, 1.0, size=k) * _PRINCIPAL_SD[product]), -1
    ) + 500.0
    pick = rng.integers(0, 5, size=k)
    term = np.select(
        [product == 0, product == 1, product == 2],
        [_TERMS[0][pick], _TERMS[1][pick % 4], 36],
        _TERMS[3][pick % 4],
    )
    t_eff = max(t, 0)
    premium = np.clip(2.5 - 1.6 * w.q_obs[cust] + rng.normal(0.0, 0.8, size=k), 0.0, 9.0)
    hist_policy = w.policy[t_eff] + (rng.normal(0.0, 0.9, size=k) if back is not None else 0.0)
    rate = np.round(np.clip(hist_policy + SPREAD[product] + premium * (product != 1)
                            + 0.4 * premium * (product == 1), 0.5, 36.0), 2)
    coll = np.zeros(k, np.int64)
    u = rng.random(k)
    coll = np.where(product == 1, 1, coll)
    coll = np.where((product == 3) & (u < 0.5), 1, coll)
    coll = np.where((product == 0) & (u < 0.15), 2, coll)
    coll = np.where((product == 0) & (u > 0.95), 3, coll)
    ltv = rng.uniform(0.45, 0.92, size=k)
    cval = np.where(coll > 0, np.round(principal / ltv, -2), 0.0)
    s.l_exists[slot] = True
    s.l_open[slot] = True
    s.l_product[slot] = product
    s.l_principal[slot] = principal
    s.l_rate[slot] = rate
    s.l_term[slot] = term
    s.l_coll_type[slot] = coll
    s.l_coll_value[slot] = cval
    s.l_util[slot] = np.clip(sigmoid(-0.3 - 0.8 * w.q[cust] + rng.normal(0, 0.5, size=k)), 0.02, 1.0)
    if back is None:
        s.l_orig_t[slot] = t
        s.l_orig_day[slot] = np.where(w.onboard_t[cust] == t, w.onboard_day[cust],
                                      rng.integers(0, 28, size=k))
        s.l_npaid[slot] = 0
    else:
        # Months on book, uniform over what tenure and term allow.
        mob = 1 + np.floor(rng.random(k) * np.minimum(term - 1, back)).astype(np.int64)
        s.l_orig_t[slot] = t - mob
        s.l_orig_day[slot] = w.onboard_day[cust]
        s.l_npaid[slot] = mob - 1


def existing_book(w: World, s: State, rng: np.random.Generator) -> None:
    """The book at the window's start: one or two loans originated before it."""
    ex = np.flatnonzero(w.existing)
    tenure0 = -w.onboard_t[ex]
    originate(w, s, ex, 0, rng, back=np.maximum(tenure0, 1))
    second = ex[rng.random(ex.size) < 0.25]
    originate(w, s, second, 0, rng, back=np.maximum(-w.onboard_t[second], 1))


def initial_state(w: World, s: State, rng: np.random.Generator) -> None:
    """Per-customer state at the window's start."""
    n = w.n
    s.missed = np.zeros(n, np.int64)
    s.dpd_day = rng.integers(1, 30, size=n)
    s.shock = rng.random(n) < 0.02
    s.mood = 0.3 * w.s_sens + rng.normal(0.0, 0.3, size=n)
    s.shopping = np.zeros(n, bool)
    s.gone = np.zeros(n, bool)
    s.coll_hist = np.zeros((3, n))
    w.reach_pref = rng.normal(0.0, 1.0, size=n)  # propensity to refuse collection calls
    s.rate_gap = np.zeros(n)
    s.complained = np.zeros(n, bool)
    s.relief_left = np.zeros(n, np.int64)
    s.relief_miss, s.relief_roll, s.relief_cure = np.zeros(n), np.zeros(n), np.zeros(n)
