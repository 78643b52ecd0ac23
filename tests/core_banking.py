"""Load a simulated book into PostgreSQL under a typical core-banking schema.

The schema differs from the canonical book on purpose, in every way
``docs/examples/core_banking_mapping.yaml`` has to undo: other table and column names,
money in cents as NUMERIC, rates in basis points, an annual income, dates as
``YYYYMMDD`` text (bureau pulls as a real DATE), customer numbers as zero-padded text,
product / employment / collateral codes ("01"), region names in Chinese, macro read
through a SQL query, and (by default) no surveys table.

Used by the end-to-end ingest test and ``benchmarks/ingest.py``.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd

from postloan.data import schema as S

SCHEMA = "core"
REGION_ZH = {"north": "华北", "south": "华南", "east": "华东", "west": "华西",
             "central": "华中", "northeast": "东北", "southwest": "西南", "coastal": "沿海"}
EMPLOYMENT_CODES = {v: f"{i + 1:02d}" for i, v in enumerate(S.EMPLOYMENT_TYPES)}
PRODUCT_CODES = {v: f"{i + 1:02d}" for i, v in enumerate(S.PRODUCTS)}
EDUCATION_CODES = {v: i + 1 for i, v in enumerate(S.EDUCATION)}  # a SMALLINT code
COLLATERAL_CODES = {"none": "N", "property": "P", "vehicle": "V", "deposit": "D"}
CLOSE_CODES = {"matured": "M", "prepaid": "P", "charged_off": "C"}
EVENT_CODES = {"service_request": "SR", "complaint": "CP", "collection_contact": "CC",
               "outreach": "OR"}
EVENT_CHANNELS = {"app": "A", "branch": "B", "phone": "P", "letter": "L"}

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE {SCHEMA}.cust_master (cust_no text PRIMARY KEY, birth_yr integer,
  region_nm text, emp_cd text, edu_cd smallint, chnl_pref text,
  annual_income_cents numeric(20,0), open_dt char(8));
CREATE TABLE {SCHEMA}.loan_acct (acct_no bigint PRIMARY KEY, cust_no text, prod_cd text,
  principal_cents numeric(20,0), rate_bp integer, term_mths integer, open_dt char(8),
  coll_cd char(1), coll_value_cents numeric(20,0), close_dt char(8), close_rsn_cd text);
CREATE TABLE {SCHEMA}.repay_stmt (acct_no bigint, cust_no text, stmt_dt char(8),
  due_cents numeric(20,0), paid_cents numeric(20,0), bal_cents numeric(20,0), dpd integer);
CREATE TABLE {SCHEMA}.chnl_usage (cust_no text, mth_end char(8), app_logins integer,
  calls integer, visits integer);
CREATE TABLE {SCHEMA}.crm_event (cust_no text, evt_dt char(8), evt_type text, chnl text,
  res_days numeric(10,1), outcome text, action_cd text, elig_rule text, assign_cd text,
  propensity double precision);
CREATE TABLE {SCHEMA}.nps_survey (cust_no text, survey_dt char(8), q_eff smallint,
  q_quality smallint, q_range smallint, q_staff smallint, q_speed smallint, q_overall smallint);
CREATE TABLE {SCHEMA}.bureau_pull (cust_no text, pull_dt date, score integer,
  verified_income_cents numeric(20,0), ext_debt_cents numeric(20,0));
CREATE TABLE {SCHEMA}.macro_region (region_nm text, mth date, unemp_pct numeric(10,3),
  policy_rate_pct numeric(10,3));
"""
# The mapping of the survey table for a lender that keeps one (the example lender does
# not; the file-source tests add it).
SURVEYS_MAPPING = {"source": "core", "table": "nps_survey", "columns": {
    "customer_id": {"from": "cust_no", "cast": "integer"},
    "survey_date": {"from": "survey_dt", "format": "%Y%m%d"},
    "service_efficiency": "q_eff", "service_quality": "q_quality", "product_range": "q_range",
    "staff_attitude": "q_staff", "resolution_speed": "q_speed", "overall": "q_overall"}}


def _cents(x: pd.Series) -> pd.Series:
    return pd.Series(np.rint(x.to_numpy(dtype="float64") * 100), index=x.index).astype("Int64")


def _ymd(d: pd.Series) -> pd.Series:
    # Vectorised YYYYMMDD (strftime formats one value at a time).
    t = pd.to_datetime(d)
    ok = t.notna().to_numpy()
    num = (t.dt.year * 10000 + t.dt.month * 100 + t.dt.day).to_numpy(dtype="float64")
    text = np.where(ok, np.nan_to_num(num).astype("int64").astype(str), None)
    return pd.Series(text, index=d.index, dtype=object)


def _cust(ids: pd.Series) -> pd.Series:
    if len(ids) == 0:
        return pd.Series([], index=ids.index, dtype=object)
    return pd.Series(np.char.zfill(ids.to_numpy().astype("int64").astype(str), 10),
                     index=ids.index, dtype=object)


def _customers(c: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "cust_no": _cust(c["customer_id"]), "birth_yr": c["birth_year"],
        "region_nm": c["region"].map(REGION_ZH),
        "emp_cd": c["employment_type"].map(EMPLOYMENT_CODES),
        "edu_cd": c["education"].map(EDUCATION_CODES),
        "chnl_pref": c["channel_preference"].str.upper(),
        "annual_income_cents": _cents(c["declared_monthly_income"]) * 12,
        "open_dt": _ymd(c["customer_since"])})


def _loans(ln: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "acct_no": ln["loan_id"], "cust_no": _cust(ln["customer_id"]),
        "prod_cd": ln["product"].map(PRODUCT_CODES),
        "principal_cents": _cents(ln["principal"]),
        "rate_bp": np.rint(ln["annual_rate"] * 100).astype("int64"),
        "term_mths": ln["term_months"], "open_dt": _ymd(ln["origination_date"]),
        "coll_cd": ln["collateral_type"].map(COLLATERAL_CODES),
        "coll_value_cents": _cents(ln["collateral_value"]),
        "close_dt": _ymd(ln["close_date"]),
        "close_rsn_cd": ln["close_reason"].map(CLOSE_CODES)})


def _repayments(r: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "acct_no": r["loan_id"], "cust_no": _cust(r["customer_id"]),
        "stmt_dt": _ymd(r["statement_date"]), "due_cents": _cents(r["scheduled_amount"]),
        "paid_cents": _cents(r["paid_amount"]), "bal_cents": _cents(r["balance"]),
        "dpd": r["dpd"]})


def _activity(a: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "cust_no": _cust(a["customer_id"]), "mth_end": _ymd(a["month_end"]),
        "app_logins": a["app_logins"], "calls": a["inbound_calls"],
        "visits": a["branch_visits"]})


def _interactions(it: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "cust_no": _cust(it["customer_id"]), "evt_dt": _ymd(it["event_date"]),
        "evt_type": it["kind"].map(EVENT_CODES), "chnl": it["channel"].map(EVENT_CHANNELS),
        "res_days": it["resolution_days"], "outcome": it["outcome"],
        "action_cd": it["action"], "elig_rule": it["eligibility"],
        "assign_cd": it["assignment"], "propensity": it["propensity"]})


def _surveys(s: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "cust_no": _cust(s["customer_id"]), "survey_dt": _ymd(s["survey_date"]),
        "q_eff": s["service_efficiency"], "q_quality": s["service_quality"],
        "q_range": s["product_range"], "q_staff": s["staff_attitude"],
        "q_speed": s["resolution_speed"], "q_overall": s["overall"]})


def _bureau(b: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "cust_no": _cust(b["customer_id"]), "pull_dt": pd.to_datetime(b["pull_date"]).dt.date,
        "score": b["bureau_score"],
        "verified_income_cents": _cents(b["verified_monthly_income"]),
        "ext_debt_cents": _cents(b["external_debt"])})


def _macro(m: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "region_nm": m["region"].map(REGION_ZH), "mth": pd.to_datetime(m["month_end"]).dt.date,
        "unemp_pct": m["unemployment_rate"], "policy_rate_pct": m["policy_rate"]})


# canonical table -> (core-banking table, how a chunk of its rows is reshaped)
FOREIGN = {"customers": ("cust_master", _customers), "loans": ("loan_acct", _loans),
           "repayments": ("repay_stmt", _repayments), "activity": ("chnl_usage", _activity),
           "interactions": ("crm_event", _interactions), "surveys": ("nps_survey", _surveys),
           "bureau": ("bureau_pull", _bureau), "macro": ("macro_region", _macro)}


def _wanted(tables: dict, with_surveys: bool) -> list[str]:
    return [t for t in FOREIGN if t in tables and (with_surveys or t != "surveys")]


def foreign_frames(tables: dict[str, pd.DataFrame], with_surveys: bool = False
                   ) -> dict[str, pd.DataFrame]:
    """The canonical tables re-shaped into the core-banking schema (one frame per table)."""
    return {FOREIGN[t][0]: FOREIGN[t][1](tables[t]) for t in _wanted(tables, with_surveys)}


def load_core_banking(tables: dict[str, pd.DataFrame], url: str, with_surveys: bool = False,
                      chunk_rows: int = 200_000,
                      progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Create the core-banking schema in the database at `url` and COPY the book into it.

    Args:
        tables: a canonical book (e.g. from :func:`postloan.simulation.simulate`).
        url: SQLAlchemy-style PostgreSQL URL (the password from ``PGPASSWORD``).
        with_surveys: also load the surveys (the default lender has none).
        chunk_rows: rows per COPY chunk.
        progress: called with (foreign table, rows loaded).

    Returns:
        Rows loaded per foreign table.
    """
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    counts = {}
    with psycopg.connect(conninfo) as conn:
        conn.execute(DDL)
        for canon in _wanted(tables, with_surveys):
            name, reshape = FOREIGN[canon]
            src = tables[canon]
            cols = ", ".join(reshape(src.iloc[:0]).columns)
            with conn.cursor().copy(f"COPY {SCHEMA}.{name} ({cols}) FROM STDIN "
                                    "WITH (FORMAT csv, NULL '\\N')") as cp:
                # Reshaped a chunk at a time: the foreign copy of a large book never sits
                # in memory whole.
                for start in range(0, len(src), chunk_rows):
                    buf = io.StringIO()
                    reshape(src.iloc[start:start + chunk_rows]).to_csv(
                        buf, index=False, header=False, na_rep="\\N")
                    cp.write(buf.getvalue().encode("utf-8"))
                    if progress:
                        progress(name, min(start + chunk_rows, len(src)))
            counts[name] = len(src)
        conn.commit()
    return counts
