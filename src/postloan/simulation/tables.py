"""Recording the simulation and assembling the book's tables from the records."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from postloan.data import schema as S
from postloan.simulation.world import N_SLOTS, State, World


class Recorder:
    """Collects per-month column chunks and concatenates them once at the end."""

    def __init__(self, columns: list[str], keep: bool = True):
        self.columns = columns
        self.keep = keep
        self.chunks: dict[str, list[np.ndarray]] = {c: [] for c in columns}

    def add(self, **cols: np.ndarray) -> None:
        if not self.keep:  # a replay's warm-up: nothing is kept
            return
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


_OUTREACH_COLUMNS = ["customer_id", "t", "day", "channel", "outcome", "action", "eligibility",
                     "assignment", "propensity"]
_CONTACT_TRUTH_COLUMNS = ["customer_id", "t", "eligibility", "action", "assignment",
                          "receptiveness", "p_reach",
                          *(f"base_{o}" for o in S.CONTACT_OUTCOME_LABELS),
                          *(f"effect_{a}_{o}" for a in S.CONTACT_ACTIONS
                            for o in S.CONTACT_OUTCOME_LABELS)]


@dataclass
class Records:
    """Everything the monthly steps log, one :class:`Recorder` per table."""

    rep: Recorder = field(default_factory=lambda: Recorder(
        ["loan_id", "customer_id", "t", "scheduled", "paid", "balance", "dpd"]))
    act: Recorder = field(default_factory=lambda: Recorder(
        ["customer_id", "t", "logins", "calls", "visits"]))
    inter: Recorder = field(default_factory=lambda: Recorder(
        ["customer_id", "t", "day", "kind", "channel", "res", "outcome"]))
    surv: Recorder = field(default_factory=lambda: Recorder(
        ["customer_id", "t", "day", "d0", "d1", "d2", "d3", "d4", "overall"]))
    bur: Recorder = field(default_factory=lambda: Recorder(
        ["customer_id", "t", "score", "income", "debt"]))
    tru: Recorder = field(default_factory=lambda: Recorder(
        ["customer_id", "t", "p_miss", "p_attr", "p_dis", "pd12", "pch6", "pdis3"]))
    outreach: Recorder = field(default_factory=lambda: Recorder(_OUTREACH_COLUMNS))
    contact_truth: Recorder = field(default_factory=lambda: Recorder(_CONTACT_TRUTH_COLUMNS))
    keep: bool = True

    def __post_init__(self) -> None:
        for f in ("rep", "act", "inter", "surv", "bur", "tru", "outreach", "contact_truth"):
            getattr(self, f).keep = self.keep


def assemble(w: World, s: State, rec: Records, rng: np.random.Generator | None,
             contacts: bool) -> dict[str, pd.DataFrame]:
    """Turn the simulation arrays and records into schema tables.

    Args:
        w: the world simulated.
        s: the state at the end of the simulated months.
        rec: the records (consumed).
        rng: draws the fake personal data; None leaves ``customers_pii`` out.
        contacts: whether a contact policy ran (adds ``contact_truth``).
    """
    me = w.month_ends.to_numpy()
    first = pd.Timestamp(w.month_ends[0]) - pd.offsets.MonthBegin(1)
    # One table at a time: each record is consumed (its chunks released) as its table
    # is built, so only one copy of a large table's columns is alive at once.
    customers = _customers_table(w, first)
    pii = _synthetic_pii(w.cid, rng) if rng is not None else None
    loans_df = _loans_table(w, s, first)
    repayments = _repayments_table(rec.rep, me)
    activity = _activity_table(rec.act, me)
    interactions = _interactions_table(rec, w.month_starts, contacts)
    surveys = _surveys_table(rec.surv, w.month_starts)
    bureau = _bureau_table(rec.bur, me)
    macro = _macro_table(w, me)
    truth = _truth_table(w, rec.tru, me)
    out = {
        "customers": customers, "customers_pii": pii, "loans": loans_df,
        "repayments": repayments, "activity": activity, "interactions": interactions,
        "surveys": surveys, "bureau": bureau, "macro": macro, "truth": truth,
    }
    if pii is None:
        del out["customers_pii"]
    if contacts:
        out["contact_truth"] = _contact_truth(rec.contact_truth.frame(), me)
    return out


def _month_start(first: pd.Timestamp, t: np.ndarray) -> np.ndarray:
    """Month starts for month indices `t` counted from `first` (index 0).

    Works for any month index, including months before the simulated window (a
    customer onboarded or a loan originated before it).
    """
    base = first.year * 12 + first.month - 1
    idx = base + np.asarray(t, np.int64)
    years, months = idx // 12, idx % 12 + 1
    return pd.to_datetime(pd.DataFrame(copy=False, data={"year": years, "month": months, "day": 1})).to_numpy()


def _cat(values: np.ndarray, vocab: tuple[str, ...]) -> np.ndarray:
    """Category codes -> their labels in `vocab` (an object array)."""
    return np.asarray(vocab, dtype=object)[values]


def _customers_table(w: World, first: pd.Timestamp) -> pd.DataFrame:
    """The customers table from the world's profiles.

    Args:
        w: the world simulated.
        first: the first simulated month's start (month index 0).
    """
    cust_since = _month_start(first, w.onboard_t) + w.onboard_day.astype("timedelta64[D]")
    return pd.DataFrame(copy=False, data={
        "customer_id": w.cid,
        "birth_year": w.birth_year,
        "region": _cat(w.region, S.REGIONS),
        "employment_type": _cat(w.emp, S.EMPLOYMENT_TYPES),
        "education": _cat(w.edu, S.EDUCATION),
        "channel_preference": _cat(w.channel, S.CHANNELS),
        "declared_monthly_income": w.declared_income,
        "customer_since": cust_since.astype("datetime64[ns]"),
    })


def _loans_table(w: World, s: State, first: pd.Timestamp) -> pd.DataFrame:
    """The loans table: one row per loan slot that ever held a loan.

    Args:
        w: the world simulated.
        s: the state at the end of the simulated months.
        first: the first simulated month's start (month index 0).
    """
    cid = w.cid
    ex = np.flatnonzero(s.l_exists)
    owner = ex // N_SLOTS
    orig_date = _month_start(first, s.l_orig_t[ex]) + s.l_orig_day[ex].astype("timedelta64[D]")
    closed = s.l_close_t[ex] >= 0
    close_t = np.where(closed, s.l_close_t[ex], 0)
    close_date = (w.month_starts[close_t] + s.l_close_day[ex].astype("timedelta64[D]"))
    close_date = np.where(closed, close_date, np.datetime64("NaT"))
    reason = np.where(closed, _cat(np.maximum(s.l_close_reason[ex], 0), S.CLOSE_REASONS), None)
    return pd.DataFrame(copy=False, data={
        "loan_id": cid[owner] * N_SLOTS + ex % N_SLOTS,
        "customer_id": cid[owner],
        "product": _cat(s.l_product[ex], S.PRODUCTS),
        "principal": s.l_principal[ex],
        "annual_rate": s.l_rate[ex],
        "term_months": s.l_term[ex],
        "origination_date": orig_date.astype("datetime64[ns]"),
        "collateral_type": _cat(s.l_coll_type[ex], S.COLLATERAL),
        "collateral_value": s.l_coll_value[ex],
        "close_date": pd.to_datetime(close_date).astype("datetime64[ns]"),
        "close_reason": reason,
    })


def _repayments_table(rep: Recorder, me: np.ndarray) -> pd.DataFrame:
    """The repayments table from the repayment records (consumed); `me`: month ends."""
    r = rep.frame()
    return pd.DataFrame(copy=False, data={
        "loan_id": r["loan_id"], "customer_id": r["customer_id"],
        "statement_date": me[r["t"].astype(np.int64)],
        "scheduled_amount": r["scheduled"], "paid_amount": r["paid"],
        "balance": r["balance"], "dpd": r["dpd"].astype(np.int64),
    })


def _activity_table(act: Recorder, me: np.ndarray) -> pd.DataFrame:
    """The activity table from the activity records (consumed); `me`: month ends."""
    a = act.frame()
    return pd.DataFrame(copy=False, data={
        "customer_id": a["customer_id"], "month_end": me[a["t"].astype(np.int64)],
        "app_logins": a["logins"].astype(np.int64), "inbound_calls": a["calls"].astype(np.int64),
        "branch_visits": a["visits"].astype(np.int64),
    })


def _interactions_table(rec: Records, month_starts: np.ndarray,
                        contacts: bool) -> pd.DataFrame:
    """The interactions table: service events and, under a contact policy, outreach.

    The customer's own events carry no action, eligibility, assignment or propensity
    (they were not the policy's doing); outreach rows carry all four.

    Args:
        rec: the records; the interaction and (with `contacts`) outreach ones are consumed.
        month_starts: the simulated months' start dates.
        contacts: whether a contact policy ran.

    Returns:
        The table sorted by event date, customer and kind.
    """
    i = rec.inter.frame()
    ti = i["t"].astype(np.int64)
    interactions = pd.DataFrame(copy=False, data={
        "customer_id": i["customer_id"],
        "event_date": month_starts[ti] + i["day"].astype("timedelta64[D]"),
        "kind": _cat(i["kind"].astype(np.int64), S.INTERACTION_KINDS),
        "channel": _cat(i["channel"].astype(np.int64), S.INTERACTION_CHANNELS),
        "resolution_days": i["res"],
        "outcome": _cat(i["outcome"].astype(np.int64), S.CONTACT_OUTCOMES),
    })
    del i, ti
    none = np.full(len(interactions), None, dtype=object)
    interactions["action"] = none
    interactions["eligibility"] = none
    interactions["assignment"] = none
    interactions["propensity"] = np.full(len(interactions), np.nan)
    if contacts:
        outreach = _outreach_rows(rec.outreach, month_starts)
        interactions = pd.concat([interactions, outreach], ignore_index=True)
        del outreach
    return interactions.sort_values(["event_date", "customer_id", "kind"],
                                    kind="stable").reset_index(drop=True)


def _outreach_rows(outreach: Recorder, month_starts: np.ndarray) -> pd.DataFrame:
    """The contact policy's outreach as interaction rows (kind ``outreach``; consumed)."""
    o = outreach.frame()
    to = o["t"].astype(np.int64)
    return pd.DataFrame(copy=False, data={
        "customer_id": o["customer_id"],
        "event_date": month_starts[to] + o["day"].astype("timedelta64[D]"),
        "kind": np.full(to.size, "outreach", dtype=object),
        "channel": _cat(o["channel"].astype(np.int64), S.INTERACTION_CHANNELS),
        "resolution_days": np.full(to.size, np.nan),
        "outcome": _cat(o["outcome"].astype(np.int64), S.CONTACT_OUTCOMES),
        "action": _cat(o["action"].astype(np.int64), S.CONTACT_ACTIONS),
        "eligibility": _cat(o["eligibility"].astype(np.int64), S.ELIGIBILITY_RULES),
        "assignment": _cat(o["assignment"].astype(np.int64), S.CONTACT_ASSIGNMENTS),
        "propensity": o["propensity"].astype(np.float64),
    })


def _surveys_table(surv: Recorder, month_starts: np.ndarray) -> pd.DataFrame:
    """The surveys table from the survey records (consumed)."""
    sv = surv.frame()
    ts = sv["t"].astype(np.int64)
    return pd.DataFrame(copy=False, data={
        "customer_id": sv["customer_id"],
        "survey_date": month_starts[ts] + sv["day"].astype("timedelta64[D]"),
        "service_efficiency": sv["d0"].astype(np.int64),
        "service_quality": sv["d1"].astype(np.int64),
        "product_range": sv["d2"].astype(np.int64),
        "staff_attitude": sv["d3"].astype(np.int64),
        "resolution_speed": sv["d4"].astype(np.int64),
        "overall": sv["overall"].astype(np.int64),
    })


def _bureau_table(bur: Recorder, me: np.ndarray) -> pd.DataFrame:
    """The bureau table from the bureau-pull records (consumed); `me`: month ends."""
    b = bur.frame()
    return pd.DataFrame(copy=False, data={
        "customer_id": b["customer_id"], "pull_date": me[b["t"].astype(np.int64)],
        "bureau_score": b["score"].astype(np.int64),
        "verified_monthly_income": b["income"], "external_debt": b["debt"],
    })


def _macro_table(w: World, me: np.ndarray) -> pd.DataFrame:
    """The macro table: one row per region and month end (rates rounded to 0.001)."""
    R = len(S.REGIONS)
    return pd.DataFrame(copy=False, data={
        "region": np.tile(np.asarray(S.REGIONS, dtype=object), w.cfg.n_months),
        "month_end": np.repeat(me, R),
        "unemployment_rate": np.round(w.unemp.reshape(-1), 3),
        "policy_rate": np.round(np.repeat(w.policy, R), 3),
    })


def _truth_table(w: World, tru: Recorder, me: np.ndarray) -> pd.DataFrame:
    """The truth table: the latent traits and true probabilities per customer-month.

    Args:
        w: the world simulated (its customer ids are sorted: looked up by search).
        tru: the truth records (consumed).
        me: the simulated months' end dates.
    """
    tr = tru.frame()
    pos = np.searchsorted(w.cid, tr["customer_id"])
    return pd.DataFrame(copy=False, data={
        "customer_id": tr["customer_id"], "month_end": me[tr["t"].astype(np.int64)],
        "credit_quality": w.q[pos], "service_sensitivity": w.s_sens[pos],
        "p_miss": tr["p_miss"].astype(np.float64), "p_attrition": tr["p_attr"].astype(np.float64),
        "p_dissatisfied": tr["p_dis"].astype(np.float64), "pd_12m": tr["pd12"].astype(np.float64),
        "pchurn_6m": tr["pch6"].astype(np.float64), "pdissat_3m": tr["pdis3"].astype(np.float64),
    })


def _contact_truth(c: dict[str, np.ndarray], me: np.ndarray) -> pd.DataFrame:
    """The contact_truth table: one row per eligible customer-month, dated at the as-of.

    A contact in month t is decided on what was known at the end of month t - 1, the
    as-of of the snapshot a model would score it on.
    """
    t = c.pop("t").astype(np.int64)
    data = {"customer_id": c.pop("customer_id"), "as_of": me[t - 1]}
    for col, vocab in (("eligibility", S.ELIGIBILITY_RULES), ("action", S.CONTACT_ACTIONS),
                       ("assignment", S.CONTACT_ASSIGNMENTS)):
        data[col] = np.asarray(vocab, dtype=object)[c.pop(col).astype(np.int64)]
    for col in list(c):
        data[col] = c.pop(col).astype(np.float64)
    return pd.DataFrame(copy=False, data=data).sort_values(
        ["as_of", "customer_id"], kind="stable").reset_index(drop=True)


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
