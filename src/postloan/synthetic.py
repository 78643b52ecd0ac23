"""A structural simulator of a lender's post-loan book.

Not independent random columns: each customer has latent traits (credit quality,
service sensitivity, digital engagement) and every month the book moves through
the mechanisms the domain describes:

* **income shocks**: job-loss spells whose hazard rises with regional unemployment;
* **delinquency**: a roll-rate chain over missed instalments (current, 1-29, 30-59,
  60-89, 90+) driven by credit quality, shocks, debt-to-income and macro; cures
  back to current; 90+ is default, charged off at 180 DPD;
* **dissatisfaction**: a persistent mood raised by slow service resolution,
  collection pressure and an unfavourable rate; it shows as complaints and low
  survey scores;
* **churn**: customers start "shopping around" (rate incentive versus the market,
  dissatisfaction, competitor pull, collection pressure), use the app less and call
  more, then prepay everything; at maturity they may not renew.

All draws come from one seeded generator in a fixed order, so the same
configuration gives the same tables. The `truth` table keeps the latent traits
and the true probabilities (monthly hazards and, held constant over the label
horizon, the probability of each label), from which the oracle AUC is computed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from postloan import schema as S

log = logging.getLogger(__name__)

N_SLOTS = 3  # at most three loans per customer over the simulated window
CHARGE_OFF_MISSED = 7  # 7 missed instalments = 180+ DPD: charged off
DEFAULT_MISSED = 4  # 4 missed instalments = 90+ DPD: default


@dataclass(frozen=True)
class Shock:
    """A sudden macro shock from a given month on (the handbook's failure case)."""

    month_index: int
    unemployment_jump: float = 4.0
    rate_jump: float = 2.0


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate.

    Attributes:
        n_customers: customers in the book over the window (existing plus new).
        n_months: months simulated (statements dated at each month end).
        seed: seed of the one random generator.
        start: first simulated month, ``YYYY-MM``.
        shock: optional macro shock.
    """

    n_customers: int = 20_000
    n_months: int = 36
    seed: int = 42
    start: str = "2023-01"
    shock: Shock | None = None

    def month_ends(self) -> pd.DatetimeIndex:
        first = pd.Timestamp(self.start + "-01") + pd.offsets.MonthEnd(0)
        return pd.date_range(first, periods=self.n_months, freq="ME")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _annuity_payment(principal, monthly_rate, n):
    r = np.maximum(monthly_rate, 1e-9)
    return principal * r / (1.0 - (1.0 + r) ** (-n))


def _annuity_balance(principal, monthly_rate, n, k):
    r = np.maximum(monthly_rate, 1e-9)
    n = np.maximum(n, 1)
    g = (1.0 + r) ** n
    return np.maximum(principal * (g - (1.0 + r) ** np.minimum(k, n)) / (g - 1.0), 0.0)


# Product parameters: share, log-median principal, principal sd, terms, rate premium.
_PRODUCT_MIX = np.array([0.42, 0.18, 0.30, 0.10])  # consumer, mortgage, card, sme
_PRINCIPAL_MEDIAN = np.array([9_000.0, 160_000.0, 5_000.0, 45_000.0])
_PRINCIPAL_SD = np.array([0.6, 0.5, 0.5, 0.7])
_TERMS = [np.array([12, 24, 36, 48, 60]), np.array([120, 180, 240, 300]),
          np.array([36]), np.array([12, 24, 36, 60])]
_SPREAD = np.array([S.PRODUCT_MARKET_SPREAD[p] for p in S.PRODUCTS])
_PRODUCT_MISS_SHIFT = np.array([0.15, -0.55, 0.25, 0.35])
_EMP_JOB_LOSS = np.array([0.004, 0.007, 0.001, 0.0004, 0.012])  # per month
_EMP_INCOME = np.array([1.0, 1.15, 0.95, 0.6, 0.7])
_EDU_INCOME = np.array([0.7, 0.9, 1.2, 1.6])


class _Recorder:
    """Collects per-month column chunks and concatenates them once at the end."""

    def __init__(self, columns: list[str]):
        self.columns = columns
        self.chunks: dict[str, list[np.ndarray]] = {c: [] for c in columns}

    def add(self, **cols: np.ndarray) -> None:
        for c in self.columns:
            self.chunks[c].append(cols[c])

    def frame(self) -> dict[str, np.ndarray]:
        """Concatenate and release the chunks (one copy alive at a time)."""
        out = {}
        for c in self.columns:
            v = self.chunks.pop(c)
            out[c] = np.concatenate(v) if v else np.array([])
            del v
        return out


def _macro(cfg: SimulationConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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


def simulate(
    cfg: SimulationConfig, progress: Callable[[int, int], None] | None = None
) -> dict[str, pd.DataFrame]:
    """Simulate a post-loan book.

    Args:
        cfg: what to simulate.
        progress: optional callback ``progress(done_months, n_months)``.

    Returns:
        Tables keyed by name, matching :data:`postloan.schema.TABLES`.
    """
    if cfg.n_customers < 10:
        raise ValueError("n_customers must be at least 10")
    if cfg.n_months < 4:
        raise ValueError("n_months must be at least 4")
    rng = np.random.default_rng(cfg.seed)
    n, M = cfg.n_customers, cfg.n_months
    month_ends = cfg.month_ends()
    month_starts = (month_ends - pd.offsets.MonthBegin(1)).to_numpy()
    days_in_month = month_ends.day.to_numpy()
    unemp, policy = _macro(cfg, rng)
    base_unemp = unemp[0].copy()
    base_policy = policy[0]
    n_reg = len(S.REGIONS)
    competitor_pull = rng.normal(0.0, 0.4, size=n_reg)
    service_slowness = rng.uniform(0.7, 1.6, size=n_reg)

    # ------------------------------------------------------------------ customers
    cid = np.arange(1, n + 1, dtype=np.int64) + 100_000
    region = rng.choice(n_reg, size=n, p=np.array([14, 13, 15, 11, 16, 10, 9, 12]) / 100)
    emp = rng.choice(5, size=n, p=[0.55, 0.16, 0.1, 0.09, 0.1])
    edu = rng.choice(4, size=n, p=[0.12, 0.43, 0.33, 0.12])
    age0 = np.where(emp == 3, rng.integers(58, 80, size=n), rng.integers(21, 64, size=n))
    channel = rng.choice(3, size=n, p=[0.55, 0.25, 0.2])
    q = rng.normal(size=n) + 0.15 * (edu - 1.5)  # latent credit quality
    s_sens = rng.normal(size=n)  # latent service sensitivity
    engage = rng.normal(size=n) + 0.5 * (channel == 0) - 0.01 * (age0 - 40)
    base_income = (
        4_500.0 * _EMP_INCOME[emp] * _EDU_INCOME[edu]
        * np.exp(rng.normal(0.0, 0.45, size=n) + 0.08 * q)
    )
    declared_income = np.round(base_income * np.exp(rng.normal(0.05, 0.1, size=n)), 2)
    q_obs = q + rng.normal(0.0, 0.55, size=n)  # what the bureau sees of quality
    ext_debt_base = np.exp(rng.normal(np.log(3_000.0), 1.2, size=n)) * (rng.random(n) < 0.6)
    existing = rng.random(n) < 0.5
    onboard_t = np.where(existing, -rng.integers(1, 121, size=n), rng.integers(0, M, size=n))
    onboard_day = rng.integers(0, 28, size=n)
    birth_year = (month_ends[0].year - age0).astype(np.int64)

    # ---------------------------------------------------------------- loan slots
    ns = n * N_SLOTS
    l_exists = np.zeros(ns, bool)
    l_open = np.zeros(ns, bool)
    l_product = np.zeros(ns, np.int64)
    l_principal = np.zeros(ns)
    l_rate = np.zeros(ns)
    l_term = np.zeros(ns, np.int64)
    l_orig_t = np.zeros(ns, np.int64)
    l_orig_day = np.zeros(ns, np.int64)
    l_npaid = np.zeros(ns, np.int64)
    l_coll_type = np.zeros(ns, np.int64)
    l_coll_value = np.zeros(ns)
    l_close_t = np.full(ns, -1, np.int64)
    l_close_day = np.zeros(ns, np.int64)
    l_close_reason = np.full(ns, -1, np.int64)
    l_util = np.zeros(ns)
    slot_owner = np.repeat(np.arange(n), N_SLOTS)
    n_used = np.zeros(n, np.int64)

    def originate(cust: np.ndarray, t: int, back: np.ndarray | None = None,
                  product: np.ndarray | None = None) -> None:
        """Create a new loan in the next free slot of each customer in `cust`."""
        keep = n_used[cust] < N_SLOTS
        cust = cust[keep]
        back = back[keep] if back is not None else None
        product = product[keep] if product is not None else None
        if cust.size == 0:
            return
        k = cust.size
        slot = cust * N_SLOTS + n_used[cust]
        n_used[cust] += 1
        if product is None:
            mix = np.tile(_PRODUCT_MIX, (k, 1))
            mix[:, 3] *= np.where(emp[cust] == 1, 4.0, 0.5)
            mix[:, 1] *= np.where(age0[cust] > 62, 0.2, 1.0)
            mix /= mix.sum(axis=1, keepdims=True)
            product = np.minimum((rng.random(k)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1), 3)
        income_scale = np.clip(base_income[cust] / 4_500.0, 0.3, 4.0)
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
        premium = np.clip(2.5 - 1.6 * q_obs[cust] + rng.normal(0.0, 0.8, size=k), 0.0, 9.0)
        hist_policy = policy[t_eff] + (rng.normal(0.0, 0.9, size=k) if back is not None else 0.0)
        rate = np.round(np.clip(hist_policy + _SPREAD[product] + premium * (product != 1)
                                + 0.4 * premium * (product == 1), 0.5, 36.0), 2)
        coll = np.zeros(k, np.int64)
        u = rng.random(k)
        coll = np.where(product == 1, 1, coll)
        coll = np.where((product == 3) & (u < 0.5), 1, coll)
        coll = np.where((product == 0) & (u < 0.15), 2, coll)
        coll = np.where((product == 0) & (u > 0.95), 3, coll)
        ltv = rng.uniform(0.45, 0.92, size=k)
        cval = np.where(coll > 0, np.round(principal / ltv, -2), 0.0)
        l_exists[slot] = True
        l_open[slot] = True
        l_product[slot] = product
        l_principal[slot] = principal
        l_rate[slot] = rate
        l_term[slot] = term
        l_coll_type[slot] = coll
        l_coll_value[slot] = cval
        l_util[slot] = np.clip(_sigmoid(-0.3 - 0.8 * q[cust] + rng.normal(0, 0.5, k)), 0.02, 1.0)
        if back is None:
            l_orig_t[slot] = t
            l_orig_day[slot] = np.where(onboard_t[cust] == t, onboard_day[cust],
                                        rng.integers(0, 28, size=k))
            l_npaid[slot] = 0
        else:
            # Months on book, uniform over what tenure and term allow.
            mob = 1 + np.floor(rng.random(k) * np.minimum(term - 1, back)).astype(np.int64)
            l_orig_t[slot] = t - mob
            l_orig_day[slot] = onboard_day[cust]
            l_npaid[slot] = mob - 1

    # Existing book: one or two loans originated before the window.
    ex = np.flatnonzero(existing)
    tenure0 = -onboard_t[ex]
    originate(ex, 0, back=np.maximum(tenure0, 1))
    second = ex[rng.random(ex.size) < 0.25]
    originate(second, 0, back=np.maximum(-onboard_t[second], 1))

    # ---------------------------------------------------------------- state
    missed = np.zeros(n, np.int64)  # missed instalments outstanding
    dpd_day = rng.integers(1, 30, size=n)
    shock = rng.random(n) < 0.02
    mood = 0.3 * s_sens + rng.normal(0.0, 0.3, size=n)
    shopping = np.zeros(n, bool)
    gone = np.zeros(n, bool)  # churned or charged off: no new business
    coll_hist = np.zeros((3, n))  # collection contacts in the last 3 months
    reach_pref = rng.normal(0.0, 1.0, size=n)  # propensity to refuse collection calls

    rep = _Recorder(["loan_id", "customer_id", "t", "scheduled", "paid", "balance", "dpd"])
    act = _Recorder(["customer_id", "t", "logins", "calls", "visits"])
    inter = _Recorder(["customer_id", "t", "day", "kind", "channel", "res", "outcome"])
    surv = _Recorder(["customer_id", "t", "day", "d0", "d1", "d2", "d3", "d4", "overall"])
    bur = _Recorder(["customer_id", "t", "score", "income", "debt"])
    tru = _Recorder(["customer_id", "t", "p_miss", "p_attr", "p_dis", "pd12", "pch6", "pdis3"])

    for t in range(M):
        u_c = unemp[t][region]
        du = u_c - base_unemp[region]
        dpol = policy[t] - base_policy
        # New customers arrive with their first loan.
        arrivals = np.flatnonzero(onboard_t == t)
        originate(arrivals, t)

        # Job-loss spells.
        hazard = _EMP_JOB_LOSS[emp] * np.exp(0.35 * du - 0.3 * q)
        enter = rng.random(n) < hazard
        leave = rng.random(n) < 0.12
        shock = np.where(shock, ~leave, enter)
        income = base_income * np.where(shock, 0.45, 1.0) * (1.0 + 0.002 * t)

        billing = l_open & (l_orig_t < t)
        mrate = l_rate / 1200.0
        amort_pay = _annuity_payment(l_principal, mrate, np.maximum(l_term, 1))
        card = l_product == 2
        card_bal = l_principal * l_util
        instalment = np.where(card, np.maximum(0.03 * card_bal, np.minimum(25.0, card_bal)),
                              amort_pay)
        instalment = np.where(billing, instalment, 0.0)
        inst_c = np.bincount(slot_owner, weights=instalment, minlength=n)
        has_bill = np.bincount(slot_owner, weights=billing, minlength=n) > 0
        dti = inst_c / np.maximum(income, 1.0)
        prod_shift = np.zeros(n)
        np.maximum.at(prod_shift, slot_owner[billing], _PRODUCT_MISS_SHIFT[l_product[billing]])

        # Delinquency chain.
        base_logit = (-4.75 - 0.95 * q + 2.3 * shock + 2.6 * np.clip(dti - 0.3, -0.3, 1.5)
                      + 0.22 * du + 0.12 * dpol + prod_shift)
        p_miss = _sigmoid(base_logit)
        k = np.minimum(missed, 3)
        roll_logit = np.array([0.0, -1.0, -0.45, 0.1])[k] - 1.0 * q + 1.9 * shock \
            + 1.2 * np.clip(dti - 0.3, -0.3, 1.5) + 0.08 * du
        # Collection contacts in the last months cut roll rates a little.
        roll_logit -= 0.12 * np.minimum(coll_hist.sum(axis=0), 4)
        p_roll = _sigmoid(roll_logit)
        p_cure = (1.0 - p_roll) * _sigmoid(0.7 + 0.8 * q - 1.4 * shock)
        u = rng.random(n)
        cur = missed == 0
        in_default = missed >= DEFAULT_MISSED
        outcome = np.zeros(n, np.int64)  # 0 pay, 1 miss, 2 cure, 3 pay one (stay)
        outcome = np.where(cur & (u < p_miss), 1, outcome)
        outcome = np.where(~cur & ~in_default & (u < p_roll), 1, outcome)
        outcome = np.where(~cur & ~in_default & (u >= p_roll) & (u < p_roll + p_cure), 2, outcome)
        outcome = np.where(~cur & ~in_default & (u >= p_roll + p_cure), 3, outcome)
        outcome = np.where(in_default, 1, outcome)
        outcome = np.where(has_bill, outcome, 0)
        prev_missed = missed.copy()
        new_entry = (outcome == 1) & (missed == 0)
        dpd_day = np.where(new_entry, rng.integers(1, 30, size=n), dpd_day)
        missed = np.where(outcome == 1, missed + 1, missed)
        missed = np.where(outcome == 2, 0, missed)
        partial = rng.random(n) < 0.35

        # Payments and balances per slot.
        o_s = outcome[slot_owner]
        pm_s = prev_missed[slot_owner]
        factor = np.select(
            [o_s == 0, o_s == 1, o_s == 2, o_s == 3],
            [1.0, np.where(partial[slot_owner], 0.4, 0.0), pm_s + 1.0, 1.0],
        )
        paid = np.where(billing, np.round(instalment * factor, 2), 0.0)
        inc = np.select([o_s == 0, o_s == 2, o_s == 3], [1, pm_s + 1, 1], 0)
        l_npaid = np.where(billing & ~card, l_npaid + inc, l_npaid)
        l_util = np.where(
            card & billing,
            np.clip(0.85 * l_util + 0.15 * _sigmoid(-0.6 - 0.8 * q + 1.5 * shock)[slot_owner]
                    + rng.normal(0.0, 0.04, size=ns), 0.0, 1.0),
            l_util,
        )
        balance = np.where(card, l_principal * l_util,
                           _annuity_balance(l_principal, mrate, l_term, l_npaid))
        matured = billing & np.where(card, (t - l_orig_t) >= l_term, l_npaid >= l_term) \
            & (missed[slot_owner] == 0)
        balance = np.where(matured, 0.0, balance)
        dpd_c = np.where(missed > 0, 30 * (missed - 1) + dpd_day, 0)

        # Charge-off at 180 DPD.
        charged = billing & (missed[slot_owner] >= CHARGE_OFF_MISSED)
        # Attrition: customers shopping around prepay everything.
        rate_w = np.bincount(slot_owner, weights=l_rate * balance * l_open, minlength=n)
        bal_c = np.bincount(slot_owner, weights=balance * l_open, minlength=n)
        mkt_w = np.bincount(slot_owner, weights=(policy[t] + _SPREAD[l_product]) * balance * l_open,
                            minlength=n)
        rate_gap = np.where(bal_c > 0, (rate_w - mkt_w) / np.maximum(bal_c, 1.0), 0.0)
        coll3 = coll_hist.sum(axis=0)
        tenure_y = np.clip((t - onboard_t) / 12.0, 0.0, 10.0)
        shop_logit = (-5.3 + 0.55 * np.clip(rate_gap, -2.0, 6.0) + 0.9 * mood
                      + competitor_pull[region] + 0.25 * np.minimum(coll3, 4)
                      - 0.12 * tenure_y + 0.35 * (channel == 0))
        p_shop = _sigmoid(shop_logit)
        p_leave_shopping = 0.35
        eligible = has_bill & (missed == 0) & ~gone
        start_shop = eligible & ~shopping & (rng.random(n) < p_shop)
        stop_shop = shopping & (rng.random(n) < 0.15)
        attrit = eligible & shopping & ~stop_shop & (rng.random(n) < p_leave_shopping)
        shopping = (shopping | start_shop) & ~stop_shop & ~attrit
        p_attr = np.where(shopping, p_leave_shopping, p_shop * p_leave_shopping)
        prepaid = l_open & attrit[slot_owner] & ~charged & ~matured
        paid = np.where(prepaid & billing, np.round(paid + balance, 2), paid)
        balance = np.where(prepaid, 0.0, balance)

        close_now = matured | charged | prepaid
        l_close_t = np.where(close_now, t, l_close_t)
        l_close_reason = np.where(matured, 0, l_close_reason)
        l_close_reason = np.where(prepaid, 1, l_close_reason)
        l_close_reason = np.where(charged, 2, l_close_reason)
        day_now = np.where(prepaid, rng.integers(0, 28, size=ns), days_in_month[t] - 1)
        l_close_day = np.where(close_now, day_now, l_close_day)
        l_open = l_open & ~close_now
        gone |= attrit
        gone |= np.bincount(slot_owner, weights=charged, minlength=n) > 0

        # Repayment rows for every slot billed this month.
        b = np.flatnonzero(billing)
        rep.add(
            loan_id=(cid[slot_owner[b]] * N_SLOTS + b % N_SLOTS),
            customer_id=cid[slot_owner[b]],
            t=np.full(b.size, t, np.int16),
            scheduled=np.round(instalment[b], 2),
            paid=paid[b],
            balance=np.round(balance[b], 2),
            dpd=dpd_c[slot_owner[b]].astype(np.int32),
        )

        # Maturity without another open loan: renew or leave.
        open_c = np.bincount(slot_owner, weights=l_open, minlength=n) > 0
        mat_c = np.zeros(n, bool)
        mat_c[slot_owner[matured]] = True
        renew_logit = 2.2 - 0.9 * mood - 0.35 * np.clip(rate_gap, -2.0, 6.0) \
            - competitor_pull[region]
        p_renew = _sigmoid(renew_logit)
        decide = mat_c & ~open_c & ~gone
        renew = decide & (rng.random(n) < p_renew) & (n_used < N_SLOTS)
        gone |= decide & ~renew
        last_prod = np.zeros(n, np.int64)
        last_prod[slot_owner[matured]] = l_product[matured]
        originate(np.flatnonzero(renew), t, product=last_prod[np.flatnonzero(renew)])
        # Cross-sell to customers in good standing.
        xs = (~gone & has_bill & (missed == 0) & (n_used < N_SLOTS)
              & (rng.random(n) < 0.006 * np.exp(0.3 * q)))
        originate(np.flatnonzero(xs), t)

        # Service: requests, resolution time, collection pressure, mood, complaints.
        open_c = np.bincount(slot_owner, weights=l_open, minlength=n) > 0
        active = open_c | has_bill
        n_req = rng.poisson(0.10 * np.exp(0.3 * engage)) * active
        res_req_scale = 3.0 * service_slowness[region]
        n_coll = rng.poisson(np.where(missed > 0, 1.1 * np.minimum(missed, 4), 0.0)
                             + 0.25 * ((q_obs < -1.3) & (missed == 0))) * active
        coll_hist = np.vstack([coll_hist[1:], n_coll[None, :]])
        # Requests: resolution days, slow ones sour the mood.
        req_c = np.repeat(np.arange(n), n_req)
        req_res = np.round(rng.lognormal(np.log(res_req_scale[req_c]), 0.8), 1)
        slow = np.bincount(req_c, weights=req_res > 10.0, minlength=n)
        mood = (0.72 * mood + 0.28 * 0.8 * s_sens + 0.5 * slow + 0.28 * np.minimum(n_coll, 3)
                + 0.12 * np.clip(rate_gap, 0.0, 6.0) + 0.18 * shock
                + rng.normal(0.0, 0.3, size=n))
        p_dis = _sigmoid(-3.4 + 1.25 * mood + 0.35 * s_sens)
        dis = active & (rng.random(n) < p_dis)
        complain = dis & (rng.random(n) < 0.45)
        comp_c = np.flatnonzero(complain)
        comp_res = np.round(rng.lognormal(np.log(2.0 * res_req_scale[comp_c]), 0.9), 1)
        coll_c = np.repeat(np.arange(n), n_coll)
        p_refuse = _sigmoid(-1.8 + 0.8 * reach_pref[coll_c] + 0.6 * mood[coll_c])
        uo = rng.random(coll_c.size)
        coll_out = np.where(uo < p_refuse, 3, np.where(uo < p_refuse + 0.25, 2,
                            np.where(uo < p_refuse + 0.45, 4, 1)))
        kinds = np.concatenate([np.zeros(req_c.size, np.int8), np.ones(comp_c.size, np.int8),
                                np.full(coll_c.size, 2, np.int8)])
        ev_c = np.concatenate([req_c, comp_c, coll_c])
        chan = np.concatenate([
            np.where(rng.random(req_c.size) < 0.5, channel[req_c], 2),
            np.where(rng.random(comp_c.size) < 0.2, 3, channel[comp_c]),
            np.where(rng.random(coll_c.size) < 0.85, 2, 3),
        ])
        res = np.concatenate([req_res, comp_res, np.full(coll_c.size, np.nan)])
        outc = np.concatenate([np.zeros(req_c.size + comp_c.size, np.int64), coll_out])
        inter.add(customer_id=cid[ev_c], t=np.full(ev_c.size, t, np.int16),
                  day=rng.integers(0, days_in_month[t], size=ev_c.size),
                  kind=kinds, channel=chan.astype(np.int8), res=res, outcome=outc.astype(np.int8))

        # Surveys: sparse, more likely after a service request.
        surveyed = active & (rng.random(n) < 0.03 + 0.06 * (n_req > 0))
        sv = np.flatnonzero(surveyed)
        low = dis[sv]
        overall = np.where(low, rng.choice([1, 2, 2, 3], size=sv.size),
                           np.clip(np.round(4.4 - 0.5 * mood[sv] + rng.normal(0, 0.6, sv.size)),
                                   3, 5)).astype(np.int64)
        drivers = [slow[sv] > 0, np.zeros(sv.size, bool), rate_gap[sv] > 1.0,
                   n_coll[sv] > 0, slow[sv] > 0]
        dims = [np.clip(overall + np.round(rng.normal(0, 0.7, sv.size)) - 1 * d, 1, 5)
                for d in drivers]
        surv.add(customer_id=cid[sv], t=np.full(sv.size, t, np.int16),
                 day=rng.integers(0, days_in_month[t], size=sv.size),
                 d0=dims[0], d1=dims[1], d2=dims[2], d3=dims[3], d4=dims[4], overall=overall)

        # Channel use: disengagement before leaving, calls when in trouble or shopping.
        ac = np.flatnonzero(active)
        lam = np.exp(1.3 + 0.6 * engage[ac] + 0.6 * (channel[ac] == 0) - 0.25 * np.clip(mood[ac], 0, 3)
                     - 0.8 * shopping[ac] - 0.4 * shock[ac])
        act.add(customer_id=cid[ac], t=np.full(ac.size, t, np.int16),
                logins=rng.poisson(lam).astype(np.int32),
                calls=rng.poisson(0.15 + 0.5 * shopping[ac] + 0.3 * (missed[ac] > 0)
                                  + 0.2 * dis[ac]).astype(np.int16),
                visits=rng.poisson(0.08 + 0.25 * (channel[ac] == 1)).astype(np.int16))

        # Bureau pulls: at onboarding (the application) and every quarter.
        pulled = ac[(t % 3 == 2) | (onboard_t[ac] == t)]
        if pulled.size:
            score = np.clip(np.round(665 + 55 * q_obs[pulled] - 45 * np.minimum(missed[pulled], 4)
                                     - 25 * shock[pulled] + rng.normal(0, 12, pulled.size)),
                            300, 850)
            bur.add(customer_id=cid[pulled], t=np.full(pulled.size, t, np.int16),
                    score=score.astype(np.int64),
                    income=np.round(income[pulled] * np.exp(rng.normal(0, 0.05, pulled.size)),
                                    2),
                    debt=np.round(ext_debt_base[pulled] * np.exp(rng.normal(0, 0.1, pulled.size)),
                                  2))

        # Truth: true hazards, and label probabilities holding them constant.
        op = np.flatnonzero(open_c)
        pd12 = _pd_horizon(missed[op], p_miss[op], p_roll[op], p_cure[op], 12)
        mat_soon = np.ones(op.size, bool)
        for j in range(N_SLOTS):
            sl = op * N_SLOTS + j
            remaining = np.where(l_product[sl] == 2, l_term[sl] - (t - l_orig_t[sl]),
                                 l_term[sl] - l_npaid[sl])
            mat_soon &= ~l_open[sl] | (remaining <= 6)
        pch6 = _churn_horizon(shopping[op], p_shop[op], p_leave_shopping, 0.15, 6)
        pch6 = 1.0 - (1.0 - pch6) * (1.0 - mat_soon * (1.0 - p_renew[op]))
        pch6 = np.where(missed[op] > 0, pch6 * 0.3, pch6)
        p_obs = 0.45 + 0.55 * 0.04 * 0.75
        pdis3 = 1.0 - (1.0 - p_dis[op] * p_obs) ** 3
        # Truth probabilities kept as float32 while simulating (bounded memory on big books).
        f32 = np.float32
        tru.add(customer_id=cid[op], t=np.full(op.size, t, np.int16),
                p_miss=np.where(missed[op] == 0, p_miss[op], p_roll[op]).astype(f32),
                p_attr=p_attr[op].astype(f32), p_dis=p_dis[op].astype(f32),
                pd12=pd12.astype(f32), pch6=pch6.astype(f32), pdis3=pdis3.astype(f32))
        if progress is not None:
            progress(t + 1, M)

    tables = _assemble(
        cfg, month_ends, month_starts, rng, cid, region, emp, edu, channel, birth_year,
        declared_income, onboard_t, onboard_day, q, s_sens, unemp, policy,
        dict(exists=l_exists, product=l_product, principal=l_principal, rate=l_rate, term=l_term,
             orig_t=l_orig_t, orig_day=l_orig_day, coll_type=l_coll_type,
             coll_value=l_coll_value, close_t=l_close_t, close_day=l_close_day,
             close_reason=l_close_reason),
        rep, act, inter, surv, bur, tru,
    )
    return tables


def _pd_horizon(missed, p_miss, p_roll, p_cure, horizon: int) -> np.ndarray:
    """P(reaching 90+ DPD within `horizon` months) on the roll-rate chain, hazards fixed."""
    n = missed.size
    dist = np.zeros((n, 5))
    dist[np.arange(n), np.minimum(missed, 4)] = 1.0
    absorbed0 = dist[:, 4].copy()
    for _ in range(horizon):
        new = np.zeros_like(dist)
        new[:, 1] += dist[:, 0] * p_miss
        new[:, 0] += dist[:, 0] * (1 - p_miss)
        for k in (1, 2, 3):
            new[:, k + 1] += dist[:, k] * p_roll
            new[:, 0] += dist[:, k] * p_cure
            new[:, k] += dist[:, k] * (1 - p_roll - p_cure)
        new[:, 4] += dist[:, 4]
        dist = new
    return np.where(absorbed0 > 0, 1.0, dist[:, 4])


def _churn_horizon(shopping, p_shop, p_leave, p_stop, horizon: int) -> np.ndarray:
    """P(attrition within `horizon` months) on the two-state shopping chain."""
    idle = (~shopping).astype(float)
    shop = shopping.astype(float)
    left = np.zeros(shopping.size)
    for _ in range(horizon):
        leave_now = shop * (1 - p_stop) * p_leave
        left += leave_now
        shop, idle = (shop * (1 - p_stop) * (1 - p_leave) + idle * p_shop,
                      idle * (1 - p_shop) + shop * p_stop)
    return left


def _assemble(cfg, month_ends, month_starts, rng, cid, region, emp, edu, channel, birth_year,
              declared_income, onboard_t, onboard_day, q, s_sens, unemp, policy, loans,
              rep, act, inter, surv, bur, tru) -> dict[str, pd.DataFrame]:
    """Turn the simulation arrays into schema tables."""
    me = month_ends.to_numpy()
    first = pd.Timestamp(month_ends[0]) - pd.offsets.MonthBegin(1)

    def month_start(t: np.ndarray) -> np.ndarray:
        # Month starts for any month index, including months before the window.
        base = first.year * 12 + first.month - 1
        idx = base + np.asarray(t, np.int64)
        years, months = idx // 12, idx % 12 + 1
        return pd.to_datetime(pd.DataFrame(copy=False, data={"year": years, "month": months, "day": 1})).to_numpy()

    def cat(values: np.ndarray, vocab: tuple[str, ...]) -> np.ndarray:
        return np.asarray(vocab, dtype=object)[values]

    cust_since = month_start(onboard_t) + onboard_day.astype("timedelta64[D]")
    customers = pd.DataFrame(copy=False, data={
        "customer_id": cid,
        "birth_year": birth_year,
        "region": cat(region, S.REGIONS),
        "employment_type": cat(emp, S.EMPLOYMENT_TYPES),
        "education": cat(edu, S.EDUCATION),
        "channel_preference": cat(channel, S.CHANNELS),
        "declared_monthly_income": declared_income,
        "customer_since": cust_since.astype("datetime64[ns]"),
    })
    pii = _synthetic_pii(cid, rng)

    ex = np.flatnonzero(loans["exists"])
    owner = ex // N_SLOTS
    orig_date = month_start(loans["orig_t"][ex]) + loans["orig_day"][ex].astype("timedelta64[D]")
    closed = loans["close_t"][ex] >= 0
    close_t = np.where(closed, loans["close_t"][ex], 0)
    close_date = (month_starts[close_t] + loans["close_day"][ex].astype("timedelta64[D]"))
    close_date = np.where(closed, close_date, np.datetime64("NaT"))
    reason = np.where(closed, cat(np.maximum(loans["close_reason"][ex], 0), S.CLOSE_REASONS), None)
    loans_df = pd.DataFrame(copy=False, data={
        "loan_id": cid[owner] * N_SLOTS + ex % N_SLOTS,
        "customer_id": cid[owner],
        "product": cat(loans["product"][ex], S.PRODUCTS),
        "principal": loans["principal"][ex],
        "annual_rate": loans["rate"][ex],
        "term_months": loans["term"][ex],
        "origination_date": orig_date.astype("datetime64[ns]"),
        "collateral_type": cat(loans["coll_type"][ex], S.COLLATERAL),
        "collateral_value": loans["coll_value"][ex],
        "close_date": pd.to_datetime(close_date).astype("datetime64[ns]"),
        "close_reason": reason,
    })

    r = rep.frame()
    repayments = pd.DataFrame(copy=False, data={
        "loan_id": r["loan_id"], "customer_id": r["customer_id"],
        "statement_date": me[r["t"].astype(np.int64)],
        "scheduled_amount": r["scheduled"], "paid_amount": r["paid"],
        "balance": r["balance"], "dpd": r["dpd"].astype(np.int64),
    })
    del r
    a = act.frame()
    activity = pd.DataFrame(copy=False, data={
        "customer_id": a["customer_id"], "month_end": me[a["t"].astype(np.int64)],
        "app_logins": a["logins"].astype(np.int64), "inbound_calls": a["calls"].astype(np.int64),
        "branch_visits": a["visits"].astype(np.int64),
    })
    del a
    i = inter.frame()
    ti = i["t"].astype(np.int64)
    interactions = pd.DataFrame(copy=False, data={
        "customer_id": i["customer_id"],
        "event_date": month_starts[ti] + i["day"].astype("timedelta64[D]"),
        "kind": cat(i["kind"].astype(np.int64), S.INTERACTION_KINDS),
        "channel": cat(i["channel"].astype(np.int64), S.INTERACTION_CHANNELS),
        "resolution_days": i["res"],
        "outcome": cat(i["outcome"].astype(np.int64), S.CONTACT_OUTCOMES),
    }).sort_values(["event_date", "customer_id", "kind"], kind="stable").reset_index(drop=True)
    del i, ti
    sv = surv.frame()
    ts = sv["t"].astype(np.int64)
    surveys = pd.DataFrame(copy=False, data={
        "customer_id": sv["customer_id"],
        "survey_date": month_starts[ts] + sv["day"].astype("timedelta64[D]"),
        "service_efficiency": sv["d0"].astype(np.int64),
        "service_quality": sv["d1"].astype(np.int64),
        "product_range": sv["d2"].astype(np.int64),
        "staff_attitude": sv["d3"].astype(np.int64),
        "resolution_speed": sv["d4"].astype(np.int64),
        "overall": sv["overall"].astype(np.int64),
    })
    del sv, ts
    b = bur.frame()
    bureau = pd.DataFrame(copy=False, data={
        "customer_id": b["customer_id"], "pull_date": me[b["t"].astype(np.int64)],
        "bureau_score": b["score"].astype(np.int64),
        "verified_monthly_income": b["income"], "external_debt": b["debt"],
    })
    del b
    R = len(S.REGIONS)
    macro = pd.DataFrame(copy=False, data={
        "region": np.tile(np.asarray(S.REGIONS, dtype=object), cfg.n_months),
        "month_end": np.repeat(me, R),
        "unemployment_rate": np.round(unemp.reshape(-1), 3),
        "policy_rate": np.round(np.repeat(policy, R), 3),
    })
    tr = tru.frame()
    pos = np.searchsorted(cid, tr["customer_id"])
    truth = pd.DataFrame(copy=False, data={
        "customer_id": tr["customer_id"], "month_end": me[tr["t"].astype(np.int64)],
        "credit_quality": q[pos], "service_sensitivity": s_sens[pos],
        "p_miss": tr["p_miss"].astype(np.float64), "p_attrition": tr["p_attr"].astype(np.float64),
        "p_dissatisfied": tr["p_dis"].astype(np.float64), "pd_12m": tr["pd12"].astype(np.float64),
        "pchurn_6m": tr["pch6"].astype(np.float64), "pdissat_3m": tr["pdis3"].astype(np.float64),
    })
    return {
        "customers": customers, "customers_pii": pii, "loans": loans_df,
        "repayments": repayments, "activity": activity, "interactions": interactions,
        "surveys": surveys, "bureau": bureau, "macro": macro, "truth": truth,
    }


_GIVEN = np.array(["Wei", "Fang", "Min", "Jing", "Lei", "Yan", "Jun", "Hui", "Anna", "Ben",
                   "Chen", "Dana", "Eli", "Hana", "Ivan", "Lina", "Omar", "Rosa", "Tao", "Yuki"],
                  dtype=object)
_FAMILY = np.array(["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou",
                    "Smith", "Garcia", "Muller", "Rossi", "Kim", "Sato", "Silva", "Novak"],
                   dtype=object)
_STREETS = np.array(["Harbour Rd", "Maple St", "Station Ave", "Lotus Lane", "Jade Rd",
                     "Market St", "River Walk", "Hill Rd"], dtype=object)


def _synthetic_pii(cid: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Fake personal data (stored apart; never joined into features)."""
    n = cid.size
    name = pd.Series(_GIVEN[rng.integers(0, _GIVEN.size, n)]) + " " + \
        pd.Series(_FAMILY[rng.integers(0, _FAMILY.size, n)])
    phone = pd.Series(rng.integers(13_000_000_000, 19_999_999_999, n)).astype(str)
    nid = pd.Series(rng.integers(10**17, 10**18 - 1, n, dtype=np.int64)).astype(str)
    addr = pd.Series(rng.integers(1, 999, n)).astype(str) + " " + \
        pd.Series(_STREETS[rng.integers(0, _STREETS.size, n)])
    return pd.DataFrame({"customer_id": cid, "full_name": name.astype(object),
                         "phone": ("+86 " + phone).astype(object), "national_id": nid.astype(object),
                         "address": addr.astype(object)})
