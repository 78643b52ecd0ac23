"""Portfolio tables: DPD buckets, vintage curves, roll rates, the DPD distribution.

Pure functions of the book's ``loans`` and ``repayments`` tables; the tables behind
``notebooks/01_portfolio.ipynb``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from postloan.data import schema as S
from postloan.errors import DataValidationError

DPD_BUCKETS = ("current", "1-29", "30-59", "60-89", "90+")
"""Labels of :data:`postloan.data.schema.DPD_BUCKET_EDGES` (0, 1, 30, 60, 90)."""


def dpd_bucket(dpd: pd.Series | np.ndarray) -> pd.Categorical:
    """Days past due as an ordered bucket: current, 1-29, 30-59, 60-89, 90+."""
    codes = np.searchsorted(np.asarray(S.DPD_BUCKET_EDGES[1:]), np.asarray(dpd, dtype="float64"),
                            side="right")
    return pd.Categorical.from_codes(codes, categories=list(DPD_BUCKETS), ordered=True)


def _month_index(d: pd.Series) -> np.ndarray:
    d = pd.to_datetime(d)
    return (d.dt.year * 12 + d.dt.month).to_numpy(dtype="int64")


def vintage_curves(loans: pd.DataFrame, repayments: pd.DataFrame, dpd_min: int = 30,
                   freq: str = "Q") -> pd.DataFrame:
    """Cumulative share of each origination cohort's loans that reached `dpd_min`+ DPD.

    A loan's months on book (MOB) count from its origination month to the statement
    month. The share at MOB k is (loans first reaching `dpd_min`+ DPD at MOB <= k) /
    (all loans of the cohort): loans repaid early stay in the denominator as good.
    Only cohorts originated inside the repayment panel are shown (older loans were not
    observed from MOB 0), and a cohort's curve stops at the last MOB that every one of
    its loans could have reached by the last statement.

    Args:
        loans: the ``loans`` table.
        repayments: the ``repayments`` table.
        dpd_min: days past due that count as bad (30 or 90 are usual).
        freq: cohort period (``"Q"`` quarters, ``"M"`` months, ``"Y"`` years).

    Returns:
        Frame indexed by cohort (period as text), one column per MOB (0, 1, ...),
        NaN beyond what is observed; plus ``n_loans``.
    """
    first_stmt = pd.to_datetime(repayments["statement_date"]).min()
    last_month = int(_month_index(pd.Series([repayments["statement_date"].max()]))[0])
    ln = loans[pd.to_datetime(loans["origination_date"])
               >= first_stmt - pd.offsets.MonthEnd(1) + pd.Timedelta(days=1)]
    if ln.empty:
        raise DataValidationError("loans", "no loan originated inside the repayment panel")
    orig_m = pd.Series(_month_index(ln["origination_date"]), index=ln["loan_id"].to_numpy())
    rep = repayments[repayments["dpd"] >= dpd_min]
    rep = rep[rep["loan_id"].isin(orig_m.index)]
    mob_bad = _month_index(rep["statement_date"]) - orig_m.reindex(rep["loan_id"]).to_numpy()
    first_bad = pd.Series(mob_bad).groupby(rep["loan_id"].to_numpy()).min()
    cohort = pd.to_datetime(ln["origination_date"]).dt.to_period(freq).astype(str).to_numpy()
    frame = pd.DataFrame({"cohort": cohort, "orig_m": orig_m.to_numpy(),
                          "first_bad": first_bad.reindex(orig_m.index).to_numpy()})
    max_mob = int(last_month - frame["orig_m"].min())
    rows = {}
    for c, g in frame.groupby("cohort", sort=True):
        observable = last_month - int(g["orig_m"].max())
        fb = g["first_bad"].to_numpy(dtype="float64")
        curve = [float(np.mean(fb <= k)) if k <= observable else np.nan
                 for k in range(max_mob + 1)]
        rows[c] = [*curve, len(g)]
    out = pd.DataFrame.from_dict(rows, orient="index",
                                 columns=[*range(max_mob + 1), "n_loans"])
    out["n_loans"] = out["n_loans"].astype("int64")
    out.index.name = "cohort"
    return out


def roll_rate_matrix(loans: pd.DataFrame, repayments: pd.DataFrame) -> pd.DataFrame:
    """Month-to-month transitions of loans between DPD buckets, as row shares.

    A transition pairs a loan's statement with its next month's statement. A loan
    without a next statement that closed gives ``paid off`` (matured or prepaid) or
    ``charged off``; one still open at the last statement is left out (not yet seen).

    Returns:
        Rows: the bucket this month (:data:`DPD_BUCKETS`); columns: the buckets next
        month, ``paid off``, ``charged off`` (shares summing to 1 per row) and ``n``
        (transitions counted from that bucket).
    """
    rep = repayments[["loan_id", "statement_date", "dpd"]].sort_values(
        ["loan_id", "statement_date"])
    month = _month_index(rep["statement_date"])
    same_loan = rep["loan_id"].to_numpy()[1:] == rep["loan_id"].to_numpy()[:-1]
    nxt_month = np.r_[month[1:], -1]
    has_next = np.r_[same_loan, False] & (nxt_month == month + 1)
    frm = np.asarray(dpd_bucket(rep["dpd"]).astype(str), dtype=object)
    to = np.r_[frm[1:], None].astype(object)
    to = np.where(has_next, to, None)
    # Last statement of a loan: closed loans leave the book, open ones are censored.
    last = np.r_[~same_loan, True]
    reason = loans.set_index("loan_id")["close_reason"].reindex(rep["loan_id"]).to_numpy(
        dtype=object)
    closed = last & pd.notna(reason)
    to = np.where(closed & (reason == "charged_off"), "charged off", to)
    to = np.where(closed & (reason != "charged_off") & pd.notna(reason), "paid off", to)
    keep = pd.notna(to)
    cols = [*DPD_BUCKETS, "paid off", "charged off"]
    counts = pd.crosstab(pd.Categorical(frm[keep], categories=list(DPD_BUCKETS)),
                         pd.Categorical(to[keep].astype(str), categories=cols), dropna=False)
    counts = counts.reindex(index=list(DPD_BUCKETS), columns=cols, fill_value=0)
    n = counts.sum(axis=1)
    out = counts.div(n.replace(0, np.nan), axis=0)
    out["n"] = n.astype("int64")
    out.index.name, out.columns.name = "from", "to"
    return out


def dpd_distribution(repayments: pd.DataFrame, weight: str = "loans") -> pd.DataFrame:
    """Share of open loans (or of balance) per DPD bucket at each statement month.

    Args:
        repayments: the ``repayments`` table.
        weight: ``"loans"`` (count) or ``"balance"`` (outstanding balance).

    Returns:
        Rows: statement dates; columns: :data:`DPD_BUCKETS`; each row sums to 1.
    """
    if weight not in ("loans", "balance"):
        raise ValueError(f"weight must be 'loans' or 'balance', got {weight!r}")
    w = np.ones(len(repayments)) if weight == "loans" else repayments["balance"].to_numpy()
    t = pd.DataFrame({"date": pd.to_datetime(repayments["statement_date"]).to_numpy(),
                      "bucket": dpd_bucket(repayments["dpd"]), "w": w})
    out = t.pivot_table(index="date", columns="bucket", values="w", aggfunc="sum",
                        observed=False).fillna(0.0)
    out = out.reindex(columns=list(DPD_BUCKETS), fill_value=0.0)
    out = out.div(out.sum(axis=1), axis=0)
    out.columns = pd.Index(list(DPD_BUCKETS), name="dpd_bucket")
    return out


__all__ = ["DPD_BUCKETS", "dpd_bucket", "dpd_distribution", "roll_rate_matrix",
           "vintage_curves"]
