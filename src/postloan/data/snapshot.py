"""Point-in-time customer snapshots and the labels after the as-of date.

A snapshot is one row per active customer (at least one open loan) as of a date.
Its fields use only records dated on or before the as-of date, and a record's
later-dated facts are masked: a loan that closes after the as-of date is still
open, a complaint resolved after it is still unresolved. Labels use only records
strictly after it; a label whose horizon runs past the end of the data is
missing (NaN), never 0.

The snapshot's fields (not its labels) are the customer snapshot contract: the
HTTP service takes the same fields as JSON, and :func:`postloan.data.features.build_features`
turns either into model features.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from postloan.data import schema as S
from postloan.errors import DataValidationError

log = logging.getLogger(__name__)

LABELS = {"default_12m": 12, "churn_6m": 6, "dissatisfied_3m": 3}

CATEGORY_FIELDS = ("region", "employment_type", "education", "channel_preference",
                   "main_product")

# Numeric snapshot fields; NaN means "not applicable / never happened" as documented.
NUMERIC_FIELDS = (
    "age", "tenure_months", "declared_monthly_income", "verified_monthly_income",
    "income_change_6m", "bureau_score", "bureau_score_avg_12m", "bureau_score_change_6m",
    "external_debt",
    "n_open_loans", "has_mortgage", "has_card", "has_sme", "total_principal", "total_balance",
    "total_instalment", "card_utilisation", "weighted_rate", "market_rate", "months_on_book",
    "min_remaining_months", "secured_share", "max_ltv",
    "dpd_current", "max_dpd_3m", "max_dpd_6m", "max_dpd_12m", "n_missed_3m", "n_missed_6m",
    "n_missed_12m", "paid_ratio_3m", "paid_ratio_6m", "paid_ratio_trend",
    "months_since_delinquent", "ever_90dpd",
    "app_logins_1m", "app_logins_3m", "logins_trend", "inbound_calls_3m", "branch_visits_6m",
    "service_requests_3m", "complaints_3m", "complaints_12m", "open_complaints",
    "max_open_complaint_days", "open_service_requests", "avg_resolution_days_6m",
    "collection_contacts_3m", "collection_refused_3m", "promise_to_pay_3m",
    "last_survey_score", "months_since_survey", "last_survey_min_dimension",
    "unemployment_rate", "unemployment_change_6m", "policy_rate",
)
SNAPSHOT_FIELDS = ("customer_id", "as_of", *CATEGORY_FIELDS, *NUMERIC_FIELDS)

# Feature families that come from one optional table each: when the book does not hold
# the table, every field of its family is missing (NaN) for every customer, never 0
# ("no complaint" and "no complaint table" are different facts). The market rate is the
# regional policy rate plus the product spread, so it goes with the macro table.
FEATURE_FAMILIES: dict[str, tuple[str, ...]] = {
    "bureau": ("verified_monthly_income", "income_change_6m", "bureau_score",
               "bureau_score_avg_12m", "bureau_score_change_6m", "external_debt"),
    "macro": ("unemployment_rate", "unemployment_change_6m", "policy_rate", "market_rate"),
    "activity": ("app_logins_1m", "app_logins_3m", "logins_trend", "inbound_calls_3m",
                 "branch_visits_6m"),
    "interactions": ("service_requests_3m", "complaints_3m", "complaints_12m",
                     "open_complaints", "max_open_complaint_days", "open_service_requests",
                     "avg_resolution_days_6m", "collection_contacts_3m",
                     "collection_refused_3m", "promise_to_pay_3m"),
    "surveys": ("last_survey_score", "months_since_survey", "last_survey_min_dimension"),
}

# Tables each label is observed from, beyond the core tables. dissatisfied_3m is "a
# complaint or a low survey score": with either source missing a 0 would claim "no
# dissatisfaction" where the book simply cannot tell, so the label needs both.
LABEL_SOURCES: dict[str, tuple[str, ...]] = {
    "default_12m": (), "churn_6m": (), "dissatisfied_3m": ("interactions", "surveys")}


def feature_families_present(tables: Iterable[str] | Mapping) -> dict[str, bool]:
    """Family (= optional table) -> whether the book holds it.

    Args:
        tables: the book's tables (a dict of frames) or their names.
    """
    names = set(tables)
    return {family: family in names for family in FEATURE_FAMILIES}


def missing_label_sources(label: str, tables: Iterable[str] | Mapping) -> list[str]:
    """The tables `label` needs that the book lacks ([] = the label can be observed)."""
    names = set(tables)
    return [t for t in LABEL_SOURCES[label] if t not in names]

_DAYS_PER_MONTH = 30.4375


def _shift_months(as_of: pd.Timestamp, k: int) -> pd.Timestamp:
    """`as_of` moved by k months; a month-end date stays a month end.

    Plain ``DateOffset`` maps 30 April back to 30 March, so a "last month" window
    (30 March, 30 April] would take in the 31 March statement too: two months.
    """
    d = as_of + pd.DateOffset(months=k)
    return d + pd.offsets.MonthEnd(0) if as_of.is_month_end else d


def _months_before(as_of: pd.Timestamp, k: int) -> pd.Timestamp:
    return _shift_months(as_of, -k)


def _months_after(as_of: pd.Timestamp, k: int) -> pd.Timestamp:
    return _shift_months(as_of, k)


def data_range(tables: dict[str, pd.DataFrame]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last statement dates of the book.

    A partition of a book (:mod:`postloan.scale`) carries the whole book's range in
    ``tables["repayments"].attrs["book_range"]``, so a partition's labels and as-of
    checks match the whole book's even when its own customers' statements span less.
    """
    rep = tables["repayments"]
    book_range = rep.attrs.get("book_range")
    if book_range is not None:
        return pd.Timestamp(book_range[0]), pd.Timestamp(book_range[1])
    d = rep["statement_date"]
    return pd.Timestamp(d.min()), pd.Timestamp(d.max())


def parse_as_of(value: str | pd.Timestamp) -> pd.Timestamp:
    """Parse an as-of date (``YYYY-MM-DD``), with a clear error."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as e:
        raise DataValidationError("as_of", f"not a date: {value!r} (expected YYYY-MM-DD)") from e
    if pd.isna(ts):
        raise DataValidationError("as_of", f"not a date: {value!r} (expected YYYY-MM-DD)")
    return ts.normalize()


def _check_as_of(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> None:
    first, last = data_range(tables)
    # Between two statement dates the book is current up to the last one; an as-of date
    # on or after the next statement date would need data the book does not hold.
    if as_of < first or as_of >= last + pd.offsets.MonthEnd(1):
        raise DataValidationError(
            "as_of",
            f"as-of date {as_of.date()} is outside the data: statements run from "
            f"{first.date()} to {last.date()}",
        )



def build_snapshot(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp,
                   with_labels: bool = True) -> pd.DataFrame:
    """Build the snapshot of every active customer as of a date.

    Args:
        tables: validated tables (see :func:`postloan.data.io.read_tables`).
        as_of: the as-of date; records dated on or before it are visible.
        with_labels: add the label columns (NaN where the horizon is not observed).

    Returns:
        One row per active customer, columns :data:`SNAPSHOT_FIELDS` (+ labels),
        sorted by customer_id.

    Raises:
        DataValidationError: the as-of date is not a date or lies outside the data, or
            no customer is active at that date.
    """
    as_of = parse_as_of(as_of)
    _check_as_of(tables, as_of)
    absent = [f for f, present in feature_families_present(tables).items() if not present]
    # An absent table reads as an empty one; its family is then set missing below.
    tables = {**tables, **{f: S.empty_table(f) for f in absent}}

    open_loans = _open_loans(tables["loans"], as_of)
    ids = pd.Index(np.sort(open_loans["customer_id"].unique()), name="customer_id")
    out = pd.DataFrame(index=ids)
    out["as_of"] = as_of
    # Each step adds its columns to `out` in turn; later steps read earlier columns
    # (the macro step the region, the loan step the policy rate).
    _add_profile(out, tables["customers"], as_of)
    _add_bureau(out, tables["bureau"], as_of)
    policy_now = _add_macro(out, tables["macro"], as_of)
    rep = tables["repayments"]
    rep = rep[(rep["statement_date"] <= as_of) & rep["customer_id"].isin(ids)]
    _add_open_loans(out, open_loans, rep, policy_now, as_of)
    _add_repayment_record(out, rep, as_of)
    _add_activity(out, tables["activity"], as_of)
    _add_interactions(out, tables["interactions"], as_of)
    _add_surveys(out, tables["surveys"], as_of)

    for family in absent:
        for f in FEATURE_FAMILIES[family]:
            out[f] = np.nan
    out = out.reset_index()
    out["as_of"] = out["as_of"].astype("datetime64[ns]")
    out = out[list(SNAPSHOT_FIELDS)]
    if with_labels:
        present = {k: v for k, v in tables.items() if k not in absent}
        out = pd.concat([out, build_labels(present, as_of, out["customer_id"])], axis=1)
    return out


def _open_loans(loans: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The loans open at the as-of date (close facts after it are invisible).

    Raises:
        DataValidationError: no loan is open at the as-of date.
    """
    visible = loans[loans["origination_date"] <= as_of]
    still_open = visible["close_date"].isna() | (visible["close_date"] > as_of)
    open_loans = visible[still_open.to_numpy()]
    if open_loans.empty:
        raise DataValidationError(
            "loans", f"no loan is open at the as-of date {as_of.date()}: nothing to snapshot"
        )
    return open_loans


def _add_profile(out: pd.DataFrame, cust: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Add the profile fields (region ... declared income) to `out`, indexed by customer.

    Args:
        out: the snapshot under construction, indexed by customer_id; changed in place.
        cust: the customers table.
        as_of: the as-of date.
    """
    c = cust.set_index("customer_id").reindex(out.index)
    for f in ("region", "employment_type", "education", "channel_preference"):
        out[f] = c[f].to_numpy(dtype=object)
    out["age"] = (as_of.year - c["birth_year"]).to_numpy(dtype="float64")
    out["tenure_months"] = ((as_of - c["customer_since"]).dt.days / _DAYS_PER_MONTH).to_numpy()
    out["declared_monthly_income"] = c["declared_monthly_income"].to_numpy(dtype="float64")


def _add_bureau(out: pd.DataFrame, bur: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Add the bureau fields: the latest pull, and the one ~6 months before it.

    Args:
        out: the snapshot under construction, indexed by customer_id; changed in place.
        bur: the bureau table.
        as_of: the as-of date.
    """
    ids = out.index
    bur = bur[(bur["pull_date"] <= as_of) & bur["customer_id"].isin(ids)]
    bur = bur.sort_values(["customer_id", "pull_date"])
    last = bur.groupby("customer_id").tail(1).set_index("customer_id")
    old = bur[bur["pull_date"] <= _months_before(as_of, 6)].groupby("customer_id").tail(1)
    old = old.set_index("customer_id")
    vinc = last["verified_monthly_income"].reindex(ids)
    out["verified_monthly_income"] = vinc.to_numpy(dtype="float64")
    out["income_change_6m"] = (
        vinc / old["verified_monthly_income"].reindex(ids).replace(0.0, np.nan) - 1.0
    ).to_numpy(dtype="float64")
    bscore = last["bureau_score"].reindex(ids).astype("float64")
    out["bureau_score"] = bscore.to_numpy()
    out["bureau_score_change_6m"] = (bscore - old["bureau_score"].reindex(ids)).to_numpy(
        dtype="float64")
    year = bur[bur["pull_date"] > _months_before(as_of, 12)]
    out["bureau_score_avg_12m"] = year.groupby("customer_id")["bureau_score"].mean().reindex(
        ids).to_numpy(dtype="float64")
    out["external_debt"] = last["external_debt"].reindex(ids).to_numpy(dtype="float64")


def _add_macro(out: pd.DataFrame, mac: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series | float:
    """Add the macro fields for the customer's region at the as-of date.

    The latest month on or before the as-of date counts as "now".

    Args:
        out: the snapshot under construction, indexed by customer_id, with its ``region``
            column; changed in place.
        mac: the macro table.
        as_of: the as-of date.

    Returns:
        The policy rate per customer (the ``policy_rate`` column), or NaN when the book
        holds no macro month up to the as-of date: the loan step prices the market
        rate from it.
    """
    mac = mac[mac["month_end"] <= as_of]
    policy_now = np.nan
    if len(mac):
        now = mac[mac["month_end"] == mac["month_end"].max()].set_index("region")
        before = mac[mac["month_end"] <= _months_before(as_of, 6)]
        reg = out["region"]
        out["unemployment_rate"] = reg.map(now["unemployment_rate"]).to_numpy(dtype="float64")
        if len(before):
            b6 = before[before["month_end"] == before["month_end"].max()].set_index("region")
            out["unemployment_change_6m"] = (
                out["unemployment_rate"] - reg.map(b6["unemployment_rate"]).astype("float64")
            ).to_numpy(dtype="float64")
        else:
            out["unemployment_change_6m"] = np.nan
        out["policy_rate"] = reg.map(now["policy_rate"]).to_numpy(dtype="float64")
        policy_now = out["policy_rate"]
    else:
        out["unemployment_rate"] = np.nan
        out["unemployment_change_6m"] = np.nan
        out["policy_rate"] = np.nan
    return policy_now


def _add_open_loans(out: pd.DataFrame, open_loans: pd.DataFrame, rep: pd.DataFrame,
                    policy_now: pd.Series | float, as_of: pd.Timestamp) -> None:
    """Add the fields of the customer's open loans (count, balances, rates, products).

    Args:
        out: the snapshot under construction, indexed by customer_id; changed in place.
        open_loans: the loans open at the as-of date (:func:`_open_loans`).
        rep: the repayments up to the as-of date of the snapshot's customers.
        policy_now: the policy rate per customer, or NaN (:func:`_add_macro`).
        as_of: the as-of date.
    """
    ids = out.index
    ol = _open_loan_terms(open_loans, rep, pd.Series(policy_now, index=out.index), as_of)
    g = ol.groupby("customer_id")
    agg = g.agg(n_open_loans=("product", "size"), total_principal=("principal", "sum"),
                total_balance=("balance", "sum"), total_instalment=("instalment", "sum"),
                card_utilisation=("card_util", "max"), w_rate=("w_rate", "sum"),
                w_mkt=("w_mkt", "sum"), months_on_book=("mob", "max"),
                min_remaining_months=("remaining", "min"), secured=("secured_bal", "sum"),
                max_ltv=("ltv", "max"))
    agg = agg.reindex(ids)
    for f in ("n_open_loans", "total_principal", "total_balance", "total_instalment",
              "card_utilisation", "months_on_book", "min_remaining_months", "max_ltv"):
        out[f] = agg[f].to_numpy(dtype="float64")
    # Rates are balance-weighted; a customer whose balances are all paid down to 0 gets
    # the plain mean instead of a 0/0.
    balpos = agg["total_balance"].where(agg["total_balance"] > 0)
    out["weighted_rate"] = np.where(
        balpos.notna(), agg["w_rate"] / balpos,
        g["annual_rate"].mean().reindex(ids)).astype("float64")
    mkt_plain = g["market"].mean().reindex(ids)
    out["market_rate"] = np.where(balpos.notna(), agg["w_mkt"] / balpos, mkt_plain).astype(
        "float64")
    out["secured_share"] = (agg["secured"] / balpos).fillna(0.0).to_numpy(dtype="float64")
    main = ol.sort_values(["customer_id", "balance", "loan_id"], ascending=[True, False, True])
    out["main_product"] = main.groupby("customer_id")["product"].first().reindex(ids).to_numpy(
        dtype=object)
    for f, p in (("has_mortgage", "mortgage"), ("has_card", "card"), ("has_sme", "sme")):
        out[f] = (ol["product"] == p).groupby(ol["customer_id"]).any().reindex(ids).astype(
            "float64").to_numpy()


def _open_loan_terms(open_loans: pd.DataFrame, rep: pd.DataFrame, policy_now: pd.Series,
                     as_of: pd.Timestamp) -> pd.DataFrame:
    """The open loans, indexed by loan_id, with their per-loan terms as of the date.

    Adds the last statement's balance (the principal before the first statement) and
    instalment, the market rate (product spread + the region's policy rate), months on
    book, remaining months, secured balance, LTV, card utilisation and the
    balance-weighted rate terms.

    Args:
        open_loans: the loans open at the as-of date.
        rep: the repayments up to the as-of date of the snapshot's customers.
        policy_now: the policy rate per customer (all NaN without macro data).
        as_of: the as-of date.
    """
    last_bal = rep.sort_values(["loan_id", "statement_date"]).groupby("loan_id").tail(1)
    last_bal = last_bal.set_index("loan_id")
    ol = open_loans.set_index("loan_id")
    bal = last_bal["balance"].reindex(ol.index).fillna(ol["principal"])
    inst = last_bal["scheduled_amount"].reindex(ol.index).fillna(0.0)
    ol = ol.assign(balance=bal, instalment=inst,
                   market=(np.asarray(ol["product"].map(S.PRODUCT_MARKET_SPREAD), dtype="float64")
                           + np.asarray(policy_now.reindex(
                               ol["customer_id"]).to_numpy(dtype="float64"))),
                   mob=(as_of - ol["origination_date"]).dt.days / _DAYS_PER_MONTH)
    ol["remaining"] = np.where(ol["product"] == "card", np.nan, ol["term_months"] - ol["mob"])
    ol["secured_bal"] = np.where(ol["collateral_type"] != "none", ol["balance"], 0.0)
    ol["ltv"] = np.where(ol["collateral_value"] > 0,
                         ol["balance"] / ol["collateral_value"].replace(0.0, np.nan), np.nan)
    ol["card_util"] = np.where(ol["product"] == "card", ol["balance"] / ol["principal"], np.nan)
    ol["w_rate"] = ol["annual_rate"] * ol["balance"]
    ol["w_mkt"] = ol["market"] * ol["balance"]
    return ol


def _add_repayment_record(out: pd.DataFrame, rep: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Add the repayment-record fields (DPD, missed payments, paid ratios, delinquency).

    Args:
        out: the snapshot under construction, indexed by customer_id; changed in place.
        rep: the repayments up to the as-of date of the snapshot's customers.
        as_of: the as-of date.
    """
    ids = out.index
    # One row per customer-month: the worst DPD and the sums over the customer's loans.
    cm = rep.groupby(["customer_id", "statement_date"], sort=True).agg(
        dpd=("dpd", "max"), scheduled=("scheduled_amount", "sum"), paid=("paid_amount", "sum"))
    cm = cm.reset_index()
    cm["missed"] = (cm["scheduled"] > 0) & (cm["paid"] < 0.95 * cm["scheduled"])
    latest = cm.groupby("customer_id").tail(1).set_index("customer_id")
    out["dpd_current"] = latest["dpd"].reindex(ids).fillna(0.0).to_numpy(dtype="float64")
    for k in (3, 6, 12):
        w = cm[cm["statement_date"] > _months_before(as_of, k)]
        gw = w.groupby("customer_id")
        out[f"max_dpd_{k}m"] = gw["dpd"].max().reindex(ids).fillna(0.0).to_numpy(
            dtype="float64")
        out[f"n_missed_{k}m"] = gw["missed"].sum().reindex(ids).fillna(0.0).to_numpy(
            dtype="float64")
        if k in (3, 6):
            ratio = (gw["paid"].sum() / gw["scheduled"].sum().replace(0.0, np.nan)).clip(upper=5.0)
            out[f"paid_ratio_{k}m"] = ratio.reindex(ids).to_numpy(dtype="float64")
    w_prev = cm[(cm["statement_date"] > _months_before(as_of, 6))
                & (cm["statement_date"] <= _months_before(as_of, 3))]
    gp = w_prev.groupby("customer_id")
    prev_ratio = (gp["paid"].sum() / gp["scheduled"].sum().replace(0.0, np.nan)).clip(upper=5.0)
    out["paid_ratio_trend"] = (out["paid_ratio_3m"] - prev_ratio.reindex(ids).to_numpy(
        dtype="float64")).astype("float64")
    delinquent = cm[cm["dpd"] > 0].groupby("customer_id")["statement_date"].max()
    out["months_since_delinquent"] = (
        (as_of - delinquent.reindex(ids)).dt.days / _DAYS_PER_MONTH
    ).to_numpy(dtype="float64")
    out["ever_90dpd"] = (cm["dpd"] >= S.DEFAULT_DPD).groupby(cm["customer_id"]).any().reindex(
        ids).fillna(False).astype("float64").to_numpy()


def _add_activity(out: pd.DataFrame, act: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Add the channel-activity fields (app logins, calls, branch visits).

    Args:
        out: the snapshot under construction, indexed by customer_id; changed in place.
        act: the activity table.
        as_of: the as-of date.
    """
    ids = out.index
    act = act[(act["month_end"] <= as_of) & act["customer_id"].isin(ids)]

    def act_sum(col: str, k: int, skip: int = 0) -> np.ndarray:
        a = act[(act["month_end"] > _months_before(as_of, k + skip))
                & (act["month_end"] <= _months_before(as_of, skip))]
        return a.groupby("customer_id")[col].sum().reindex(ids).fillna(0.0).to_numpy(
            dtype="float64")

    out["app_logins_1m"] = act_sum("app_logins", 1)
    out["app_logins_3m"] = act_sum("app_logins", 3)
    prev3 = act_sum("app_logins", 3, skip=3)
    out["logins_trend"] = (out["app_logins_3m"] + 1.0) / (prev3 + 1.0)
    out["inbound_calls_3m"] = act_sum("inbound_calls", 3)
    out["branch_visits_6m"] = act_sum("branch_visits", 6)


def _add_interactions(out: pd.DataFrame, it: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Add the service, complaint and collection fields.

    A resolution is visible only once it has happened: a complaint resolved after the
    as-of date is still open at it.

    Args:
        out: the snapshot under construction, indexed by customer_id; changed in place.
        it: the interactions table.
        as_of: the as-of date.
    """
    ids = out.index
    it = it[(it["event_date"] <= as_of) & it["customer_id"].isin(ids)]
    resolved_on = it["event_date"] + pd.to_timedelta(it["resolution_days"], unit="D")
    resolved = it["resolution_days"].notna() & (resolved_on <= as_of)
    it = it.assign(resolved=resolved.to_numpy(),
                   age_days=(as_of - it["event_date"]).dt.days.astype("float64"))

    def count(mask: pd.Series) -> np.ndarray:
        return mask.groupby(it["customer_id"]).sum().reindex(ids).fillna(0.0).to_numpy(
            dtype="float64")

    since3 = it["event_date"] > _months_before(as_of, 3)
    since6 = it["event_date"] > _months_before(as_of, 6)
    since12 = it["event_date"] > _months_before(as_of, 12)
    is_req = it["kind"] == "service_request"
    is_comp = it["kind"] == "complaint"
    is_coll = it["kind"] == "collection_contact"
    out["service_requests_3m"] = count(is_req & since3)
    out["complaints_3m"] = count(is_comp & since3)
    out["complaints_12m"] = count(is_comp & since12)
    open_comp = is_comp & ~it["resolved"]
    out["open_complaints"] = count(open_comp)
    out["max_open_complaint_days"] = it["age_days"].where(open_comp).groupby(
        it["customer_id"]).max().reindex(ids).fillna(0.0).to_numpy(dtype="float64")
    out["open_service_requests"] = count(is_req & ~it["resolved"])
    res6 = it["resolution_days"].where((is_req | is_comp) & it["resolved"] & since6)
    out["avg_resolution_days_6m"] = res6.groupby(it["customer_id"]).mean().reindex(
        ids).to_numpy(dtype="float64")
    out["collection_contacts_3m"] = count(is_coll & since3)
    out["collection_refused_3m"] = count(is_coll & since3 & (it["outcome"] == "refused"))
    out["promise_to_pay_3m"] = count(is_coll & since3 & (it["outcome"] == "promise_to_pay"))


def _add_surveys(out: pd.DataFrame, sv: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Add the fields of the customer's latest survey up to the as-of date.

    Args:
        out: the snapshot under construction, indexed by customer_id; changed in place.
        sv: the surveys table.
        as_of: the as-of date.
    """
    ids = out.index
    sv = sv[(sv["survey_date"] <= as_of) & sv["customer_id"].isin(ids)]
    sv = sv.sort_values(["customer_id", "survey_date"]).groupby("customer_id").tail(1)
    sv = sv.set_index("customer_id").reindex(ids)
    out["last_survey_score"] = sv["overall"].to_numpy(dtype="float64")
    out["months_since_survey"] = ((as_of - sv["survey_date"]).dt.days / _DAYS_PER_MONTH).to_numpy(
        dtype="float64")
    dims = ["service_efficiency", "service_quality", "product_range", "staff_attitude",
            "resolution_speed"]
    out["last_survey_min_dimension"] = sv[dims].min(axis=1).to_numpy(dtype="float64")


def build_labels(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp,
                 customer_ids: pd.Series) -> pd.DataFrame:
    """Labels from records strictly after the as-of date.

    * ``default_12m``: 90+ DPD on any loan within 12 months (missing if already 90+).
    * ``churn_6m``: no open loan left 6 months later, by early closure or no renewal,
      without a default or charge-off in between.
    * ``dissatisfied_3m``: a complaint or a survey score of 2 or less within 3 months.

    A label whose horizon ends after the last statement date is NaN, and so is a label
    whose source table the book lacks (:data:`LABEL_SOURCES`).
    """
    as_of = parse_as_of(as_of)
    _, data_end = data_range(tables)
    ids = pd.Index(customer_ids.to_numpy(), name="customer_id")
    lab = pd.DataFrame(index=ids)
    rep = tables["repayments"]
    rep = rep[rep["customer_id"].isin(ids)]
    at_now = rep[rep["statement_date"] <= as_of]
    in_default_now = (at_now.sort_values("statement_date").groupby("customer_id").tail(1)
                      .set_index("customer_id")["dpd"] >= S.DEFAULT_DPD).reindex(ids).fillna(False)

    def after(k: int) -> tuple[pd.Timestamp, bool]:
        h = _months_after(as_of, k)
        return h, h <= data_end

    h12, ok12 = after(12)
    win = rep[(rep["statement_date"] > as_of) & (rep["statement_date"] <= h12)]
    defaulted = (win["dpd"] >= S.DEFAULT_DPD).groupby(win["customer_id"]).any()
    y = defaulted.reindex(ids).fillna(False).astype("float64")
    y[in_default_now.to_numpy()] = np.nan
    lab["default_12m"] = y.to_numpy() if ok12 else np.nan

    h6, ok6 = after(6)
    loans = tables["loans"]
    loans = loans[loans["customer_id"].isin(ids)]
    open_h = (loans["origination_date"] <= h6) & (loans["close_date"].isna()
                                                  | (loans["close_date"] > h6))
    has_open = open_h.groupby(loans["customer_id"]).any().reindex(ids).fillna(False)
    win6 = rep[(rep["statement_date"] > as_of) & (rep["statement_date"] <= h6)]
    bad6 = (win6["dpd"] >= S.DEFAULT_DPD).groupby(win6["customer_id"]).any().reindex(
        ids).fillna(False)
    co = (loans["close_reason"] == "charged_off") & (loans["close_date"] > as_of) & (
        loans["close_date"] <= h6)
    co = co.groupby(loans["customer_id"]).any().reindex(ids).fillna(False)
    churn = (~has_open & ~bad6 & ~co & ~in_default_now).astype("float64")
    lab["churn_6m"] = churn.to_numpy() if ok6 else np.nan

    h3, ok3 = after(3)
    if missing_label_sources("dissatisfied_3m", tables):
        lab["dissatisfied_3m"] = np.nan
        return lab.reset_index(drop=True)
    it = tables["interactions"]
    it = it[(it["kind"] == "complaint") & (it["event_date"] > as_of) & (it["event_date"] <= h3)]
    sv = tables["surveys"]
    sv = sv[(sv["overall"] <= 2) & (sv["survey_date"] > as_of) & (sv["survey_date"] <= h3)]
    unhappy = ids.isin(it["customer_id"]) | ids.isin(sv["customer_id"])
    lab["dissatisfied_3m"] = unhappy.astype("float64") if ok3 else np.nan
    return lab.reset_index(drop=True)


def build_snapshots(
    tables: dict[str, pd.DataFrame],
    as_of_dates: Iterable[str | pd.Timestamp],
    with_labels: bool = True,
    progress: Callable[[pd.Timestamp], None] | None = None,
) -> pd.DataFrame:
    """Stack snapshots of several as-of dates into one frame (e.g. a training set)."""
    frames = []
    for d in as_of_dates:
        frames.append(build_snapshot(tables, d, with_labels=with_labels))
        if progress:
            progress(parse_as_of(d))
    if not frames:
        raise DataValidationError("as_of", "no as-of date given")
    return pd.concat(frames, ignore_index=True)


def month_end_dates(start: str | pd.Timestamp, end: str | pd.Timestamp,
                    every: int = 1) -> list[pd.Timestamp]:
    """Month-end dates from start to end inclusive, every `every` months."""
    r = pd.date_range(parse_as_of(start) + pd.offsets.MonthEnd(0), parse_as_of(end), freq="ME")
    return list(r[::every])


def oracle_scores(truth: pd.DataFrame, snapshot: pd.DataFrame) -> pd.DataFrame:
    """True label probabilities of the simulator for each snapshot row (NaN if unknown).

    Columns ``default_12m``, ``churn_6m``, ``dissatisfied_3m`` hold the truth table's
    ``pd_12m``, ``pchurn_6m``, ``pdissat_3m`` at the latest month end on or before the
    row's as-of date.
    """
    tr = truth.sort_values("month_end")
    keys = snapshot[["customer_id", "as_of"]].copy()
    keys["as_of"] = keys["as_of"].astype("datetime64[ns]")
    tr = tr.assign(month_end=tr["month_end"].astype("datetime64[ns]"))
    keys["_order"] = np.arange(len(keys))
    keys = keys.sort_values("as_of")
    merged = pd.merge_asof(keys, tr[["customer_id", "month_end", "pd_12m", "pchurn_6m",
                                     "pdissat_3m"]],
                           left_on="as_of", right_on="month_end", by="customer_id",
                           direction="backward")
    merged = merged.sort_values("_order")
    return pd.DataFrame({
        "default_12m": merged["pd_12m"].to_numpy(dtype="float64"),
        "churn_6m": merged["pchurn_6m"].to_numpy(dtype="float64"),
        "dissatisfied_3m": merged["pdissat_3m"].to_numpy(dtype="float64"),
    }, index=snapshot.index)


def to_json_record(row: Mapping) -> dict:
    """The service's JSON customer body for one snapshot row.

    Takes one row of :func:`build_snapshot`'s frame (e.g. from
    ``frame.to_dict("records")``) and returns the fields of :data:`SNAPSHOT_FIELDS`, in
    that order, as plain JSON values: ``as_of`` as a ``YYYY-MM-DD`` string, NaN as
    ``None`` (JSON ``null``: not applicable) and numpy scalars as Python numbers.

    Args:
        row: one snapshot row holding at least every field of :data:`SNAPSHOT_FIELDS`
            (labels and other extra keys are left out).

    Returns:
        A dict ready for ``json.dumps`` as one customer of a request to the service.
    """
    out = {}
    for k in SNAPSHOT_FIELDS:
        v = row[k]
        if k == "as_of":
            out[k] = pd.Timestamp(v).date().isoformat()
            continue
        v = v.item() if hasattr(v, "item") else v  # numpy scalar -> Python
        out[k] = None if isinstance(v, float) and np.isnan(v) else v
    return out
