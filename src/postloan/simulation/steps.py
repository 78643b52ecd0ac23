"""The monthly mechanisms, one step function each, in the order a month runs them.

Each step reads the fixed :class:`~postloan.simulation.world.World`, moves the
:class:`~postloan.simulation.world.State`, leaves what later steps of the same month
need in :class:`Month`, and draws only from the generator it is given. Steps that
write rows of the book take the :class:`~postloan.simulation.tables.Records`.
A contact's effect enters as :class:`Levers` (shifts of the steps' logits and of
mood); without a contact policy ``levers`` is None and the arithmetic is that of
the simulator before contacts, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from postloan.simulation.tables import Records
from postloan.simulation.world import (
    CHARGE_OFF_MISSED,
    DEFAULT_MISSED,
    EMP_JOB_LOSS,
    N_SLOTS,
    PRODUCT_MISS_SHIFT,
    SPREAD,
    State,
    World,
    annuity_balance,
    annuity_payment,
    originate,
    sigmoid,
)

P_LEAVE_SHOPPING = 0.35  # monthly chance a customer shopping around leaves
P_STOP_SHOPPING = 0.15  # monthly chance they stop shopping
MOOD_DECAY = 0.72  # share of last month's mood carried into this month
SHOP_MOOD = 0.9  # weight of mood in the shopping logit
P_SURVEY_OBSERVED = 0.45 + 0.55 * 0.04 * 0.75  # dissatisfaction seen as complaint/survey


@dataclass
class Levers:
    """Per-customer shifts a contact makes this month (zeros: no contact).

    Attributes:
        miss: added to the logit of missing an instalment (current customers).
        roll: added to the roll logit to the next DPD bucket (delinquent customers).
        cure: added to the cure logit (delinquent customers).
        mood: added to mood (dissatisfaction), which then decays by MOOD_DECAY a month.
        shop: added to the logit of starting to shop around.
        leave: log-multiplier of the chance a shopping customer leaves.
    """

    miss: np.ndarray
    roll: np.ndarray
    cure: np.ndarray
    mood: np.ndarray
    shop: np.ndarray
    leave: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> Levers:
        return cls(*(np.zeros(n) for _ in range(6)))


class Month:
    """What one month's steps pass on to the later steps of the same month."""

    def __init__(self, t: int):
        self.t = t


def arrivals(w: World, s: State, m: Month, rng: np.random.Generator) -> None:
    """New customers arrive with their first loan."""
    originate(w, s, np.flatnonzero(w.onboard_t == m.t), m.t, rng)


def job_loss(w: World, s: State, m: Month, rng: np.random.Generator) -> None:
    """Job-loss spells whose hazard rises with regional unemployment; income falls."""
    t, n = m.t, w.n
    m.du = w.unemp[t][w.region] - w.base_unemp[w.region]
    m.dpol = w.policy[t] - w.base_policy
    hazard = EMP_JOB_LOSS[w.emp] * np.exp(0.35 * m.du - 0.3 * w.q)
    enter = rng.random(n) < hazard
    leave = rng.random(n) < 0.12
    s.shock = np.where(s.shock, ~leave, enter)
    m.income = w.base_income * np.where(s.shock, 0.45, 1.0) * (1.0 + 0.002 * t)


def bills(w: World, s: State, m: Month) -> None:
    """This month's instalments per loan and per customer, and debt-to-income."""
    n, t = w.n, m.t
    m.billing = s.l_open & (s.l_orig_t < t)
    m.mrate = s.l_rate / 1200.0
    amort_pay = annuity_payment(s.l_principal, m.mrate, np.maximum(s.l_term, 1))
    m.card = s.l_product == 2
    card_bal = s.l_principal * s.l_util
    instalment = np.where(m.card, np.maximum(0.03 * card_bal, np.minimum(25.0, card_bal)),
                          amort_pay)
    m.instalment = np.where(m.billing, instalment, 0.0)
    inst_c = np.bincount(s.slot_owner, weights=m.instalment, minlength=n)
    m.has_bill = np.bincount(s.slot_owner, weights=m.billing, minlength=n) > 0
    m.dti = inst_c / np.maximum(m.income, 1.0)
    m.prod_shift = np.zeros(n)
    np.maximum.at(m.prod_shift, s.slot_owner[m.billing],
                  PRODUCT_MISS_SHIFT[s.l_product[m.billing]])


def delinquency(w: World, s: State, m: Month, rng: np.random.Generator,
                lev: Levers | None) -> None:
    """The roll-rate chain: miss, roll to the next DPD bucket, stay, or cure."""
    n, q, shock = w.n, w.q, s.shock
    dti_c = np.clip(m.dti - 0.3, -0.3, 1.5)
    m.miss_logit0 = (-4.75 - 0.95 * q + 2.3 * shock + 2.6 * dti_c + 0.22 * m.du
                     + 0.12 * m.dpol + m.prod_shift)
    k = np.minimum(s.missed, 3)
    m.roll_logit0 = np.array([0.0, -1.0, -0.45, 0.1])[k] - 1.0 * q + 1.9 * shock \
        + 1.2 * dti_c + 0.08 * m.du
    # Collection contacts in the last months cut roll rates a little.
    m.roll_logit0 -= 0.12 * np.minimum(s.coll_hist.sum(axis=0), 4)
    m.cure_logit0 = 0.7 + 0.8 * q - 1.4 * shock
    if lev is None:
        m.p_miss = sigmoid(m.miss_logit0)
        m.p_roll = sigmoid(m.roll_logit0)
        m.p_cure = (1.0 - m.p_roll) * sigmoid(m.cure_logit0)
    else:
        m.p_miss = sigmoid(m.miss_logit0 + lev.miss)
        m.p_roll = sigmoid(m.roll_logit0 + lev.roll)
        m.p_cure = (1.0 - m.p_roll) * sigmoid(m.cure_logit0 + lev.cure)
    p_miss, p_roll, p_cure = m.p_miss, m.p_roll, m.p_cure
    u = rng.random(n)
    missed = s.missed
    cur = missed == 0
    in_default = missed >= DEFAULT_MISSED
    outcome = np.zeros(n, np.int64)  # 0 pay, 1 miss, 2 cure, 3 pay one (stay)
    outcome = np.where(cur & (u < p_miss), 1, outcome)
    outcome = np.where(~cur & ~in_default & (u < p_roll), 1, outcome)
    outcome = np.where(~cur & ~in_default & (u >= p_roll) & (u < p_roll + p_cure), 2, outcome)
    outcome = np.where(~cur & ~in_default & (u >= p_roll + p_cure), 3, outcome)
    outcome = np.where(in_default, 1, outcome)
    m.outcome = np.where(m.has_bill, outcome, 0)
    m.prev_missed = missed.copy()
    new_entry = (m.outcome == 1) & (missed == 0)
    s.dpd_day = np.where(new_entry, rng.integers(1, 30, size=n), s.dpd_day)
    missed = np.where(m.outcome == 1, missed + 1, missed)
    s.missed = np.where(m.outcome == 2, 0, missed)
    m.partial = rng.random(n) < 0.35


def payments(w: World, s: State, m: Month, rng: np.random.Generator) -> None:
    """Payments, amortisation, card utilisation, maturity and charge-off per loan."""
    t, so = m.t, s.slot_owner
    o_s = m.outcome[so]
    pm_s = m.prev_missed[so]
    factor = np.select(
        [o_s == 0, o_s == 1, o_s == 2, o_s == 3],
        [1.0, np.where(m.partial[so], 0.4, 0.0), pm_s + 1.0, 1.0],
    )
    billing, card = m.billing, m.card
    m.paid = np.where(billing, np.round(m.instalment * factor, 2), 0.0)
    inc = np.select([o_s == 0, o_s == 2, o_s == 3], [1, pm_s + 1, 1], 0)
    s.l_npaid = np.where(billing & ~card, s.l_npaid + inc, s.l_npaid)
    s.l_util = np.where(
        card & billing,
        np.clip(0.85 * s.l_util + 0.15 * sigmoid(-0.6 - 0.8 * w.q + 1.5 * s.shock)[so]
                + rng.normal(0.0, 0.04, size=so.size), 0.0, 1.0),
        s.l_util,
    )
    balance = np.where(card, s.l_principal * s.l_util,
                       annuity_balance(s.l_principal, m.mrate, s.l_term, s.l_npaid))
    m.matured = billing & np.where(card, (t - s.l_orig_t) >= s.l_term, s.l_npaid >= s.l_term) \
        & (s.missed[so] == 0)
    m.balance = np.where(m.matured, 0.0, balance)
    m.dpd_c = np.where(s.missed > 0, 30 * (s.missed - 1) + s.dpd_day, 0)
    # Charge-off at 180 DPD.
    m.charged = billing & (s.missed[so] >= CHARGE_OFF_MISSED)


def churn(w: World, s: State, m: Month, rng: np.random.Generator, lev: Levers | None) -> None:
    """Shopping around (rate gap, mood, competitors, pressure) and attrition by prepayment."""
    n, t, so = w.n, m.t, s.slot_owner
    balance, l_open = m.balance, s.l_open
    rate_w = np.bincount(so, weights=s.l_rate * balance * l_open, minlength=n)
    bal_c = np.bincount(so, weights=balance * l_open, minlength=n)
    mkt_w = np.bincount(so, weights=(w.policy[t] + SPREAD[s.l_product]) * balance * l_open,
                        minlength=n)
    m.rate_gap = np.where(bal_c > 0, (rate_w - mkt_w) / np.maximum(bal_c, 1.0), 0.0)
    coll3 = s.coll_hist.sum(axis=0)
    tenure_y = np.clip((t - w.onboard_t) / 12.0, 0.0, 10.0)
    m.shop_logit0 = (-5.3 + 0.55 * np.clip(m.rate_gap, -2.0, 6.0) + SHOP_MOOD * s.mood
                     + w.competitor_pull[w.region] + 0.25 * np.minimum(coll3, 4)
                     - 0.12 * tenure_y + 0.35 * (w.channel == 0))
    m.shopping0 = s.shopping
    if lev is None:
        m.p_shop = sigmoid(m.shop_logit0)
        m.p_leave = P_LEAVE_SHOPPING
    else:
        m.p_shop = sigmoid(m.shop_logit0 + lev.shop)
        m.p_leave = np.minimum(P_LEAVE_SHOPPING * np.exp(lev.leave), 0.95)
    eligible = m.has_bill & (s.missed == 0) & ~s.gone
    start_shop = eligible & ~s.shopping & (rng.random(n) < m.p_shop)
    stop_shop = s.shopping & (rng.random(n) < P_STOP_SHOPPING)
    attrit = eligible & s.shopping & ~stop_shop & (rng.random(n) < m.p_leave)
    s.shopping = (s.shopping | start_shop) & ~stop_shop & ~attrit
    m.p_attr = np.where(s.shopping, m.p_leave, m.p_shop * m.p_leave)
    prepaid = l_open & attrit[so] & ~m.charged & ~m.matured
    m.paid = np.where(prepaid & m.billing, np.round(m.paid + balance, 2), m.paid)
    m.balance = np.where(prepaid, 0.0, balance)

    close_now = m.matured | m.charged | prepaid
    s.l_close_t = np.where(close_now, t, s.l_close_t)
    s.l_close_reason = np.where(m.matured, 0, s.l_close_reason)
    s.l_close_reason = np.where(prepaid, 1, s.l_close_reason)
    s.l_close_reason = np.where(m.charged, 2, s.l_close_reason)
    day_now = np.where(prepaid, rng.integers(0, 28, size=so.size), w.days_in_month[t] - 1)
    s.l_close_day = np.where(close_now, day_now, s.l_close_day)
    s.l_open = l_open & ~close_now
    s.gone |= attrit
    s.gone |= np.bincount(so, weights=m.charged, minlength=n) > 0
    s.rate_gap = m.rate_gap


def record_repayments(w: World, s: State, m: Month, rec: Records) -> None:
    """One repayment row for every loan billed this month."""
    b = np.flatnonzero(m.billing)
    owner = s.slot_owner[b]
    rec.rep.add(
        loan_id=(w.cid[owner] * N_SLOTS + b % N_SLOTS), customer_id=w.cid[owner],
        t=np.full(b.size, m.t, np.int16), scheduled=np.round(m.instalment[b], 2),
        paid=m.paid[b], balance=np.round(m.balance[b], 2),
        dpd=m.dpd_c[owner].astype(np.int32),
    )


def renewal(w: World, s: State, m: Month, rng: np.random.Generator,
            ev: np.random.Generator | None = None) -> None:
    """Maturity without another open loan: renew or leave; cross-sell to good payers.

    `ev` draws the new loans (as many draws as loans): kept apart from `rng` so that
    who renews does not shift anyone else's numbers (the same generator on the
    single legacy stream).
    """
    n, t, so = w.n, m.t, s.slot_owner
    ev = rng if ev is None else ev
    open_c = np.bincount(so, weights=s.l_open, minlength=n) > 0
    mat_c = np.zeros(n, bool)
    mat_c[so[m.matured]] = True
    renew_logit = 2.2 - 0.9 * s.mood - 0.35 * np.clip(m.rate_gap, -2.0, 6.0) \
        - w.competitor_pull[w.region]
    m.p_renew = sigmoid(renew_logit)
    decide = mat_c & ~open_c & ~s.gone
    renew = decide & (rng.random(n) < m.p_renew) & (s.n_used < N_SLOTS)
    s.gone |= decide & ~renew
    last_prod = np.zeros(n, np.int64)
    last_prod[so[m.matured]] = s.l_product[m.matured]
    originate(w, s, np.flatnonzero(renew), t, ev, product=last_prod[np.flatnonzero(renew)])
    xs = (~s.gone & m.has_bill & (s.missed == 0) & (s.n_used < N_SLOTS)
          & (rng.random(n) < 0.006 * np.exp(0.3 * w.q)))
    originate(w, s, np.flatnonzero(xs), t, ev)


def service(w: World, s: State, m: Month, rng: np.random.Generator, lev: Levers | None,
            rec: Records, ev: np.random.Generator | None = None) -> None:
    """Requests, collection pressure, mood, dissatisfaction and complaints (logged).

    `rng` draws one number per customer; `ev` the per-event details (resolution
    times, outcomes, channels, days), so a change in one customer's events leaves
    every other customer's per-customer draws alone (the same generator on the
    single legacy stream).
    """
    n, t = w.n, m.t
    ev = rng if ev is None else ev
    open_c = np.bincount(s.slot_owner, weights=s.l_open, minlength=n) > 0
    m.open_c = open_c
    m.active = active = open_c | m.has_bill
    m.n_req = n_req = rng.poisson(0.10 * np.exp(0.3 * w.engage)) * active
    res_req_scale = 3.0 * w.service_slowness[w.region]
    lam_coll = (np.where(s.missed > 0, 1.1 * np.minimum(s.missed, 4), 0.0)
                + 0.25 * ((w.q_obs < -1.3) & (s.missed == 0)))
    if w.per_customer:
        # By inversion of one uniform each: numpy's Poisson sampler uses a varying
        # number of random bits depending on the rate, which would shift every later
        # customer's numbers when one customer's delinquency changes.
        m.n_coll = n_coll = poisson_inverse(rng.random(n), lam_coll) * active
    else:
        m.n_coll = n_coll = rng.poisson(lam_coll) * active
    s.coll_hist = np.vstack([s.coll_hist[1:], n_coll[None, :]])
    # Requests: resolution days, slow ones sour the mood.
    req_c = np.repeat(np.arange(n), n_req)
    if w.per_customer:
        # Resolution times feed mood: one draw per customer and request slot, so
        # another customer's requests do not shift them (beyond 3 requests: events).
        z = rng.normal(size=(n, 3))
        j = np.arange(req_c.size) - np.repeat(np.cumsum(n_req) - n_req, n_req)
        zz = z[req_c, np.minimum(j, 2)]
        extra = j >= 3
        zz[extra] = ev.normal(size=int(extra.sum()))
        req_res = np.round(np.exp(np.log(res_req_scale[req_c]) + 0.8 * zz), 1)
    else:
        req_res = np.round(ev.lognormal(np.log(res_req_scale[req_c]), 0.8), 1)
    m.slow = np.bincount(req_c, weights=req_res > 10.0, minlength=n)
    mood = (MOOD_DECAY * s.mood + 0.28 * 0.8 * w.s_sens + 0.5 * m.slow
            + 0.28 * np.minimum(n_coll, 3) + 0.12 * np.clip(m.rate_gap, 0.0, 6.0)
            + 0.18 * s.shock + rng.normal(0.0, 0.3, size=n))
    m.mood0 = mood  # before any contact's effect: the truth's counterfactual
    s.mood = mood if lev is None else mood + lev.mood
    m.p_dis = sigmoid(-3.4 + 1.25 * s.mood + 0.35 * w.s_sens)
    m.dis = dis = active & (rng.random(n) < m.p_dis)
    complain = dis & (rng.random(n) < 0.45)
    s.complained = complain
    comp_c = np.flatnonzero(complain)
    comp_res = np.round(ev.lognormal(np.log(2.0 * res_req_scale[comp_c]), 0.9), 1)
    coll_c = np.repeat(np.arange(n), n_coll)
    p_refuse = sigmoid(-1.8 + 0.8 * w.reach_pref[coll_c] + 0.6 * s.mood[coll_c])
    uo = ev.random(coll_c.size)
    coll_out = np.where(uo < p_refuse, 3, np.where(uo < p_refuse + 0.25, 2,
                        np.where(uo < p_refuse + 0.45, 4, 1)))
    kinds = np.concatenate([np.zeros(req_c.size, np.int8), np.ones(comp_c.size, np.int8),
                            np.full(coll_c.size, 2, np.int8)])
    ev_c = np.concatenate([req_c, comp_c, coll_c])
    chan = np.concatenate([
        np.where(ev.random(req_c.size) < 0.5, w.channel[req_c], 2),
        np.where(ev.random(comp_c.size) < 0.2, 3, w.channel[comp_c]),
        np.where(ev.random(coll_c.size) < 0.85, 2, 3),
    ])
    res = np.concatenate([req_res, comp_res, np.full(coll_c.size, np.nan)])
    outc = np.concatenate([np.zeros(req_c.size + comp_c.size, np.int64), coll_out])
    rec.inter.add(customer_id=w.cid[ev_c], t=np.full(ev_c.size, t, np.int16),
                  day=ev.integers(0, w.days_in_month[t], size=ev_c.size),
                  kind=kinds, channel=chan.astype(np.int8), res=res,
                  outcome=outc.astype(np.int8))


def surveys(w: World, s: State, m: Month, rng: np.random.Generator, rec: Records) -> None:
    """Sparse surveys, more likely after a service request."""
    n, t = w.n, m.t
    surveyed = m.active & (rng.random(n) < 0.03 + 0.06 * (m.n_req > 0))
    sv = np.flatnonzero(surveyed)
    if w.per_customer:
        # One draw per customer for every answer, kept for those surveyed: who else was
        # surveyed (another arm's contacts) does not move this customer's answers.
        low_pick = rng.choice([1, 2, 2, 3], size=n)[sv]
        noise = rng.normal(0, 0.6, n)[sv]
        dim_noise = rng.normal(0, 0.7, (5, n))[:, sv]
        day = rng.integers(0, w.days_in_month[t], size=n)[sv]
    else:
        low_pick = rng.choice([1, 2, 2, 3], size=sv.size)
        noise = rng.normal(0, 0.6, sv.size)
        dim_noise = None
    low = m.dis[sv]
    overall = np.where(low, low_pick,
                       np.clip(np.round(4.4 - 0.5 * s.mood[sv] + noise), 3, 5)).astype(np.int64)
    drivers = [m.slow[sv] > 0, np.zeros(sv.size, bool), m.rate_gap[sv] > 1.0,
               m.n_coll[sv] > 0, m.slow[sv] > 0]
    dims = [np.clip(overall + np.round(rng.normal(0, 0.7, sv.size) if dim_noise is None
                                       else dim_noise[i]) - 1 * d, 1, 5)
            for i, d in enumerate(drivers)]
    if dim_noise is None:
        day = rng.integers(0, w.days_in_month[t], size=sv.size)
    rec.surv.add(customer_id=w.cid[sv], t=np.full(sv.size, t, np.int16),
                 day=day, d0=dims[0], d1=dims[1], d2=dims[2], d3=dims[3], d4=dims[4],
                 overall=overall)


def channel_use(w: World, s: State, m: Month, rng: np.random.Generator, rec: Records) -> None:
    """App logins fall before leaving; calls rise when in trouble or shopping."""
    ac = np.flatnonzero(m.active)
    m.ac = ac
    lam = np.exp(1.3 + 0.6 * w.engage[ac] + 0.6 * (w.channel[ac] == 0)
                 - 0.25 * np.clip(s.mood[ac], 0, 3) - 0.8 * s.shopping[ac] - 0.4 * s.shock[ac])
    lam_calls = (0.15 + 0.5 * s.shopping[ac] + 0.3 * (s.missed[ac] > 0) + 0.2 * m.dis[ac])
    lam_visits = 0.08 + 0.25 * (w.channel[ac] == 1)
    if w.per_customer:
        # By inversion of one uniform per customer and count (as collection contacts):
        # numpy's array Poisson uses a varying number of random bits per rate, so one
        # contacted customer's changed rate would shift every later customer's counts.
        u = rng.random((3, w.n))[:, ac]
        logins, calls, visits = (poisson_inverse(u[0], lam), poisson_inverse(u[1], lam_calls),
                                 poisson_inverse(u[2], lam_visits))
    else:
        logins, calls, visits = (rng.poisson(lam), rng.poisson(lam_calls),
                                 rng.poisson(lam_visits))
    rec.act.add(customer_id=w.cid[ac], t=np.full(ac.size, m.t, np.int16),
                logins=logins.astype(np.int32), calls=calls.astype(np.int16),
                visits=visits.astype(np.int16))


def bureau(w: World, s: State, m: Month, rng: np.random.Generator, rec: Records) -> None:
    """Bureau pulls at onboarding (the application) and every quarter."""
    ac, t = m.ac, m.t
    pulled = ac[(t % 3 == 2) | (w.onboard_t[ac] == t)]
    if pulled.size:
        k = pulled.size
        if w.per_customer:  # one draw per customer: others' activity does not move it
            z = rng.normal(size=(3, w.n))[:, pulled]
            e_score, e_inc, e_debt = 12 * z[0], 0.05 * z[1], 0.1 * z[2]
        else:
            e_score = rng.normal(0, 12, k)
            e_inc = e_debt = None
        score = np.clip(np.round(665 + 55 * w.q_obs[pulled] - 45 * np.minimum(s.missed[pulled], 4)
                                 - 25 * s.shock[pulled] + e_score),
                        300, 850)
        if e_inc is None:
            e_inc = rng.normal(0, 0.05, k)
        income = np.round(m.income[pulled] * np.exp(e_inc), 2)
        if e_debt is None:
            e_debt = rng.normal(0, 0.1, k)
        rec.bur.add(customer_id=w.cid[pulled], t=np.full(k, t, np.int16),
                    score=score.astype(np.int64), income=income,
                    debt=np.round(w.ext_debt_base[pulled] * np.exp(e_debt), 2))


def maturing_soon(w: World, s: State, t: int, cust: np.ndarray) -> np.ndarray:
    """Whether every open loan of each customer in `cust` ends within 6 months."""
    mat_soon = np.ones(cust.size, bool)
    for j in range(N_SLOTS):
        sl = cust * N_SLOTS + j
        remaining = np.where(s.l_product[sl] == 2, s.l_term[sl] - (t - s.l_orig_t[sl]),
                             s.l_term[sl] - s.l_npaid[sl])
        mat_soon &= ~s.l_open[sl] | (remaining <= 6)
    return mat_soon


def truth(w: World, s: State, m: Month, rec: Records) -> None:
    """True hazards, and label probabilities holding them constant over the horizon."""
    op = np.flatnonzero(m.open_c)
    pd12 = pd_horizon(s.missed[op], [(m.p_miss[op], m.p_roll[op], m.p_cure[op])] * 12)
    mat_soon = maturing_soon(w, s, m.t, op)
    p_leave = m.p_leave if np.ndim(m.p_leave) == 0 else m.p_leave[op]
    pch6 = churn_horizon(s.shopping[op], [(m.p_shop[op], p_leave)] * 6)
    pch6 = 1.0 - (1.0 - pch6) * (1.0 - mat_soon * (1.0 - m.p_renew[op]))
    pch6 = np.where(s.missed[op] > 0, pch6 * 0.3, pch6)
    pdis3 = 1.0 - (1.0 - m.p_dis[op] * P_SURVEY_OBSERVED) ** 3
    # Truth probabilities kept as float32 while simulating (bounded memory on big books).
    f32 = np.float32
    rec.tru.add(customer_id=w.cid[op], t=np.full(op.size, m.t, np.int16),
                p_miss=np.where(s.missed[op] == 0, m.p_miss[op], m.p_roll[op]).astype(f32),
                p_attr=m.p_attr[op].astype(f32), p_dis=m.p_dis[op].astype(f32),
                pd12=pd12.astype(f32), pch6=pch6.astype(f32), pdis3=pdis3.astype(f32))


def poisson_inverse(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson(lam) draws from uniforms `u` by inverting the CDF (one uniform each)."""
    k = np.zeros(u.size, np.int64)
    p = np.exp(-lam)
    c = p.copy()
    for i in range(1, 100):
        more = u > c
        if not more.any():
            break
        k += more
        p = p * lam / i
        c = c + p
    return k


def pd_horizon(missed: np.ndarray, hazards: list[tuple]) -> np.ndarray:
    """P(reaching 90+ DPD within ``len(hazards)`` months on the roll-rate chain.

    Args:
        missed: missed instalments now.
        hazards: per month ahead, ``(p_miss, p_roll, p_cure)`` arrays (or scalars).
    """
    n = missed.size
    dist = np.zeros((n, 5))
    dist[np.arange(n), np.minimum(missed, 4)] = 1.0
    absorbed0 = dist[:, 4].copy()
    for p_miss, p_roll, p_cure in hazards:
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


def churn_horizon(shopping: np.ndarray, hazards: list[tuple],
                  p_stop: float = P_STOP_SHOPPING) -> np.ndarray:
    """P(attrition within ``len(hazards)`` months on the two-state shopping chain.

    Args:
        shopping: whether each customer shops around now.
        hazards: per month ahead, ``(p_shop, p_leave)`` arrays (or scalars).
        p_stop: monthly chance of stopping to shop.
    """
    idle = (~shopping).astype(float)
    shop = shopping.astype(float)
    left = np.zeros(shopping.size)
    for p_shop, p_leave in hazards:
        leave_now = shop * (1 - p_stop) * p_leave
        left += leave_now
        shop, idle = (shop * (1 - p_stop) * (1 - p_leave) + idle * p_shop,
                      idle * (1 - p_shop) + shop * p_stop)
    return left
