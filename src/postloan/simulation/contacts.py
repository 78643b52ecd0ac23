"""Outreach: who the lender contacts, what a contact does, and its true effect.

Each month (before its mechanisms run) the contact policy decides on what the lender
saw at the previous month end; a contact then shifts that month's mechanisms through
:class:`~postloan.simulation.steps.Levers`. What a contact does depends on the
customer's latent traits, so effects differ from one customer to the next and can
be harmful (the handbook's warning: pressure sours the relationship):

=========================  ===============================================================
action                     mechanism (``r`` = receptiveness, latent, unit variance)
=========================  ===============================================================
payment_reminder           lowers the roll to the next DPD bucket and raises the cure for
                           receptive, engaged customers (``sigmoid(1.5 r + 0.5 engage)``);
                           annoys service-sensitive customers (mood up, more so when they
                           are paying), who then shop around a little more.
restructuring_offer        a repayment plan for RELIEF_MONTHS months: lowers the roll
                           and the miss and raises the cure every month of the plan,
                           most for customers after a job loss and of weak credit
                           quality; the help lifts mood a little.
retention_offer            stops shopping and leaving for receptive customers, more when
                           their rate is well above the market; very service-sensitive
                           customers are put off (mood and shopping up).
service_recovery_call      lowers mood for service-sensitive, receptive customers (less
                           dissatisfaction, less shopping); customers who dislike calls
                           are annoyed.
=========================  ===============================================================

A contact reaches the customer with probability ``p_reach = sigmoid(1.6 - 0.8
reach_pref)``; only a reached customer feels it, so every effect is intent to treat.

All draws of the contact step are one uniform per customer from the month's
``contacts`` stream (holdout, capacity, reach), so a replay that contacts other
customers leaves every customer's numbers unchanged (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from postloan.data import schema as S
from postloan.simulation.config import ContactPolicy
from postloan.simulation.steps import (
    MOOD_DECAY,
    P_LEAVE_SHOPPING,
    P_SURVEY_OBSERVED,
    SHOP_MOOD,
    Levers,
    Month,
    churn_horizon,
    maturing_soon,
    pd_horizon,
)
from postloan.simulation.tables import Records
from postloan.simulation.world import DEFAULT_MISSED, State, World, sigmoid

NO_CONTACT = -1
RELIEF_MONTHS = 6  # months a restructuring plan eases the repayments
_RESTRUCTURE = S.CONTACT_ACTIONS.index("restructuring_offer")
_ACTION = {a: i for i, a in enumerate(S.CONTACT_ACTIONS)}
_RULE = {r: i for i, r in enumerate(S.ELIGIBILITY_RULES)}
_ASSIGN = {a: i for i, a in enumerate(S.CONTACT_ASSIGNMENTS)}
_REACHED = S.CONTACT_OUTCOMES.index("reached")
_NO_ANSWER = S.CONTACT_OUTCOMES.index("no_answer")
_NONE = S.CONTACT_OUTCOMES.index("none")


@dataclass
class Plan:
    """This month's contacts.

    Attributes:
        action: per customer, the action code (index in ``schema.CONTACT_ACTIONS``) or
            NO_CONTACT.
        reached: per customer, whether a contact made reaches them.
        p_reach: per customer, the probability a contact reaches them.
        eligible: customers eligible under the policy's rule (indices), or None for
            a plan that is not the policy's (a replayed queue).
        rule: eligibility rule code of each eligible customer.
        rule_action: the rule's action code of each eligible customer.
        assignment: assignment code of each eligible customer.
        propensity: probability each eligible customer had of being contacted.
        eligible_levers: per action, its levers on the eligible customers, taken on
            the state the decision saw (for the contact truth).
    """

    action: np.ndarray
    reached: np.ndarray
    p_reach: np.ndarray
    eligible: np.ndarray | None = None
    rule: np.ndarray | None = None
    rule_action: np.ndarray | None = None
    assignment: np.ndarray | None = None
    propensity: np.ndarray | None = None
    eligible_levers: list[Levers] | None = None


def _reach(w: World, u_reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p_reach = sigmoid(1.6 - 0.8 * w.reach_pref)
    return p_reach, u_reach < p_reach


def _draws(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Holdout, capacity and reach uniforms: one each per customer, always drawn."""
    return rng.random(n), rng.random(n), rng.random(n)


def policy_plan(w: World, s: State, t: int, policy: ContactPolicy,
                rng: np.random.Generator) -> Plan:
    """The historical policy's contacts this month: rule, randomised holdout, capacity.

    Eligibility reads the state at the previous month end (what the lender knew):
    missed instalments, a job loss, the rate gap and last month's complaints.
    """
    n = w.n
    u_hold, u_cap, u_reach = _draws(n, rng)
    p_reach, reached = _reach(w, u_reach)
    action = np.full(n, NO_CONTACT, np.int64)
    if t < policy.start_month:
        return Plan(action, reached, p_reach)
    open_c = np.bincount(s.slot_owner, weights=s.l_open, minlength=n) > 0
    live = open_c & ~s.gone
    early = live & (s.missed >= 1) & (s.missed < DEFAULT_MISSED)
    rule = np.full(n, -1, np.int64)
    rule = np.where(early & s.shock, _RULE["hardship_delinquency"], rule)
    rule = np.where(early & ~s.shock, _RULE["early_delinquency"], rule)
    current = live & (s.missed == 0)
    rule = np.where(current & s.complained, _RULE["recent_complaint"], rule)
    rule = np.where(current & ~s.complained & (s.rate_gap >= policy.rate_gap_min),
                    _RULE["rate_shopper"], rule)
    rule_to_action = np.array([_ACTION["payment_reminder"], _ACTION["restructuring_offer"],
                               _ACTION["retention_offer"], _ACTION["service_recovery_call"]])
    elig = np.flatnonzero(rule >= 0)
    r_act = rule_to_action[rule[elig]]
    hold = u_hold[elig] < policy.holdout
    assignment = np.where(hold, _ASSIGN["holdout"], _ASSIGN["contacted"])
    propensity = np.zeros(elig.size)
    for code, name in enumerate(S.CONTACT_ACTIONS):
        cap = policy.spec(name).capacity
        mine = (r_act == code)
        cand = np.flatnonzero(mine & ~hold)
        share = 1.0 if cand.size <= cap else cap / cand.size
        if cand.size > cap:
            # Over capacity: a random subset (the lowest capacity uniforms) is called.
            order = cand[np.argsort(u_cap[elig[cand]], kind="stable")]
            assignment[order[cap:]] = _ASSIGN["over_capacity"]
        propensity[mine] = (1.0 - policy.holdout) * share
    contacted = assignment == _ASSIGN["contacted"]
    action[elig[contacted]] = r_act[contacted]
    levers = [action_levers(w, s, code, elig) for code in range(len(S.CONTACT_ACTIONS))]
    return Plan(action, reached, p_reach, elig, rule[elig], r_act, assignment, propensity,
                levers)


def queue_plan(w: World, action: np.ndarray, rng: np.random.Generator) -> Plan:
    """A given queue's contacts (customer index -> action code), same reach draws."""
    _, _, u_reach = _draws(w.n, rng)
    p_reach, reached = _reach(w, u_reach)
    return Plan(np.asarray(action, np.int64), reached, p_reach)


def action_levers(w: World, s: State, code: int, idx: np.ndarray) -> Levers:
    """What action `code` does to customers `idx` if it reaches them (see module doc)."""
    k = idx.size
    z = np.zeros(k)
    r, ss, q = w.receptive[idx], w.s_sens[idx], w.q[idx]
    paying = s.missed[idx] == 0
    name = S.CONTACT_ACTIONS[code]
    if name == "payment_reminder":
        resp = sigmoid(1.5 * r + 0.5 * w.engage[idx])
        annoy = np.maximum(ss, 0.0) * (0.35 + 0.3 * paying)
        return Levers(miss=-0.5 * resp, roll=-0.9 * resp, cure=0.6 * resp, mood=annoy,
                      shop=0.25 * np.maximum(ss - 0.5, 0.0), leave=z)
    if name == "restructuring_offer":
        resp = sigmoid(1.0 * r + 1.5 * s.shock[idx] - 0.5 * q)
        return Levers(miss=-0.8 * resp, roll=-1.6 * resp, cure=1.0 * resp, mood=-0.3 * resp,
                      shop=z, leave=z)
    if name == "retention_offer":
        resp = sigmoid(1.5 * r + 0.4 * np.clip(s.rate_gap[idx], 0.0, 4.0) - 0.5)
        put_off = np.maximum(ss - 1.0, 0.0)
        return Levers(miss=z, roll=z, cure=z, mood=-0.1 * resp + 0.25 * put_off,
                      shop=-1.2 * resp + 0.5 * put_off, leave=-1.0 * resp)
    # service_recovery_call
    resp = sigmoid(1.2 * ss + 0.8 * r)
    return Levers(miss=z, roll=z, cure=z, mood=-1.0 * resp + 0.4 * (w.reach_pref[idx] > 1.0),
                  shop=-0.3 * resp, leave=z)


def plan_levers(w: World, s: State, plan: Plan | None) -> Levers:
    """This month's levers: the plan's contacts plus running restructuring plans.

    A restructuring reached this month starts a plan of RELIEF_MONTHS months (this
    one included) whose delinquency shifts apply every month it runs.
    """
    lev = Levers.zeros(w.n)
    if plan is not None:
        for code in range(len(S.CONTACT_ACTIONS)):
            idx = np.flatnonzero((plan.action == code) & plan.reached)
            if idx.size == 0:
                continue
            a = action_levers(w, s, code, idx)
            for f in ("miss", "roll", "cure", "mood", "shop", "leave"):
                getattr(lev, f)[idx] = getattr(a, f)
            if code == _RESTRUCTURE:
                s.relief_left[idx] = RELIEF_MONTHS
                s.relief_miss[idx], s.relief_roll[idx], s.relief_cure[idx] = a.miss, a.roll, a.cure
    running = np.flatnonzero(s.relief_left > 0)
    if running.size:
        # A plan started this month is already in `lev`; setting, not adding, keeps it once.
        lev.miss[running] = s.relief_miss[running]
        lev.roll[running] = s.relief_roll[running]
        lev.cure[running] = s.relief_cure[running]
        s.relief_left[running] -= 1
    return lev


def record_outreach(w: World, t: int, plan: Plan, policy: ContactPolicy,
                    rng: np.random.Generator, rec: Records) -> None:
    """One ``outreach`` interactions row per eligible customer of the month."""
    e = plan.eligible
    if e is None or e.size == 0:
        return
    contacted = plan.assignment == _ASSIGN["contacted"]
    chan = np.array([S.INTERACTION_CHANNELS.index(policy.spec(a).channel)
                     for a in S.CONTACT_ACTIONS])[plan.rule_action]
    outcome = np.where(contacted, np.where(plan.reached[e], _REACHED, _NO_ANSWER), _NONE)
    rec.outreach.add(customer_id=w.cid[e], t=np.full(e.size, t, np.int16),
                     day=rng.integers(0, w.days_in_month[t], size=e.size),
                     channel=chan.astype(np.int8), outcome=outcome.astype(np.int8),
                     action=plan.rule_action.astype(np.int8), eligibility=plan.rule.astype(np.int8),
                     assignment=plan.assignment.astype(np.int8),
                     propensity=plan.propensity.astype(np.float32))


def _outcome_probabilities(w: World, s: State, m: Month, idx: np.ndarray,
                           lev: Levers | None, relief_months: int = 1
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(default 12m), P(churn 6m), P(dissatisfied 3m) for `idx`, contacted with `lev`.

    The truth table's approximations (hazards of this month held over the horizon),
    with the contact's delinquency shifts in its first `relief_months` months, its
    shopping shifts in the first, and its mood shift decaying after. The control
    arm is the month without this month's contact (a plan already running is left
    out of both arms: eligible customers are rarely in one).
    """
    z = np.zeros(idx.size)
    lev = lev or Levers(z, z, z, z, z, z)
    p_roll0 = sigmoid(m.roll_logit0[idx])
    h0 = (sigmoid(m.miss_logit0[idx]), p_roll0, (1.0 - p_roll0) * sigmoid(m.cure_logit0[idx]))
    p_roll1 = sigmoid(m.roll_logit0[idx] + lev.roll)
    h1 = (sigmoid(m.miss_logit0[idx] + lev.miss), p_roll1,
          (1.0 - p_roll1) * sigmoid(m.cure_logit0[idx] + lev.cure))
    missed = m.prev_missed[idx]
    pd12 = pd_horizon(missed, [h1] * relief_months + [h0] * (12 - relief_months))
    # Mood moves this month's dissatisfaction and, from the next month, shopping.
    shop0 = m.shop_logit0[idx]
    haz = [(sigmoid(shop0 + lev.shop), np.minimum(P_LEAVE_SHOPPING * np.exp(lev.leave), 0.95))]
    haz += [(sigmoid(shop0 + SHOP_MOOD * lev.mood * MOOD_DECAY ** k), P_LEAVE_SHOPPING)
            for k in range(5)]
    pch6 = churn_horizon(m.shopping0[idx], haz)
    mat_soon = maturing_soon(w, s, m.t, idx)
    pch6 = 1.0 - (1.0 - pch6) * (1.0 - mat_soon * (1.0 - m.p_renew[idx]))
    pch6 = np.where(missed > 0, pch6 * 0.3, pch6)
    base = -3.4 + 0.35 * w.s_sens[idx]
    stay = np.ones(idx.size)
    for k in range(3):
        p_dis = sigmoid(base + 1.25 * (m.mood0[idx] + lev.mood * MOOD_DECAY ** k))
        stay *= 1.0 - p_dis * P_SURVEY_OBSERVED
    return pd12, pch6, 1.0 - stay


def record_contact_truth(w: World, s: State, m: Month, plan: Plan, rec: Records) -> None:
    """The true effect of every action for each eligible customer of the month."""
    e = plan.eligible
    if e is None or e.size == 0:
        return
    base = _outcome_probabilities(w, s, m, e, None)
    cols = {f"base_{o}": b for o, b in zip(S.CONTACT_OUTCOME_LABELS, base, strict=True)}
    for code, a in enumerate(S.CONTACT_ACTIONS):
        treated = _outcome_probabilities(w, s, m, e, plan.eligible_levers[code],
                                         RELIEF_MONTHS if code == _RESTRUCTURE else 1)
        for o, p1, p0 in zip(S.CONTACT_OUTCOME_LABELS, treated, base, strict=True):
            cols[f"effect_{a}_{o}"] = plan.p_reach[e] * (p1 - p0)
    rec.contact_truth.add(customer_id=w.cid[e], t=np.full(e.size, m.t, np.int16),
                          eligibility=plan.rule.astype(np.int8),
                          action=plan.rule_action.astype(np.int8),
                          assignment=plan.assignment.astype(np.int8),
                          receptiveness=w.receptive[e], p_reach=plan.p_reach[e],
                          **{k: v.astype(np.float32) for k, v in cols.items()})
