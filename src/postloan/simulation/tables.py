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
    cfg, month_ends, month_starts = w.cfg, w.month_ends, w.month_starts
    cid, q, s_sens, onboard_t, onboard_day = w.cid, w.q, w.s_sens, w.onboard_t, w.onboard_day
    loans = dict(exists=s.l_exists, product=s.l_product, principal=s.l_principal,
                 rate=s.l_rate, term=s.l_term, orig_t=s.l_orig_t, orig_day=s.l_orig_day,
                 coll_type=s.l_coll_type, coll_value=s.l_coll_value, close_t=s.l_close_t,
                 close_day=s.l_close_day, close_reason=s.l_close_reason)
    rep, act, inter, surv, bur, tru = rec.rep, rec.act, rec.inter, rec.surv, rec.bur, rec.tru
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
        "birth_year": w.birth_year,
        "region": cat(w.region, S.REGIONS),
        "employment_type": cat(w.emp, S.EMPLOYMENT_TYPES),
        "education": cat(w.edu, S.EDUCATION),
        "channel_preference": cat(w.channel, S.CHANNELS),
        "declared_monthly_income": w.declared_income,
        "customer_since": cust_since.astype("datetime64[ns]"),
    })
    pii = _synthetic_pii(cid, rng) if rng is not None else None

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
    })
    del i, ti
    none = np.full(len(interactions), None, dtype=object)
    interactions["action"] = none
    interactions["eligibility"] = none
    interactions["assignment"] = none
    interactions["propensity"] = np.full(len(interactions), np.nan)
    if contacts:
        o = rec.outreach.frame()
        to = o["t"].astype(np.int64)
        outreach = pd.DataFrame(copy=False, data={
            "customer_id": o["customer_id"],
            "event_date": month_starts[to] + o["day"].astype("timedelta64[D]"),
            "kind": np.full(to.size, "outreach", dtype=object),
            "channel": cat(o["channel"].astype(np.int64), S.INTERACTION_CHANNELS),
            "resolution_days": np.full(to.size, np.nan),
            "outcome": cat(o["outcome"].astype(np.int64), S.CONTACT_OUTCOMES),
            "action": cat(o["action"].astype(np.int64), S.CONTACT_ACTIONS),
            "eligibility": cat(o["eligibility"].astype(np.int64), S.ELIGIBILITY_RULES),
            "assignment": cat(o["assignment"].astype(np.int64), S.CONTACT_ASSIGNMENTS),
            "propensity": o["propensity"].astype(np.float64),
        })
        interactions = pd.concat([interactions, outreach], ignore_index=True)
        del o, to, outreach
    interactions = interactions.sort_values(["event_date", "customer_id", "kind"],
                                            kind="stable").reset_index(drop=True)
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
        "unemployment_rate": np.round(w.unemp.reshape(-1), 3),
        "policy_rate": np.round(np.repeat(w.policy, R), 3),
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
