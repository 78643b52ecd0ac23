"""A lender's first day (issue 20): what broke when a bank's own schema came in.

The core-banking schema of tests/core_banking.py, written as a parquet folder, is read
through the shipped example mapping edited the way that lender's schema needs: outreach
columns left out, ids with letter prefixes, money in fen, periods as YYYYMM text.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from core_banking import SURVEYS_MAPPING, foreign_frames
from pipelines.ingest import profile_book, profile_source, run_ingest
from postloan.data import io
from postloan.data import schema as S

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "core_banking_mapping.yaml"
OUTREACH = ("action", "eligibility", "assignment", "propensity")


@pytest.fixture(scope="module")
def frames(small_tables) -> dict[str, pd.DataFrame]:
    return foreign_frames(small_tables, with_surveys=True)


def write_parquet_source(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False),
                       folder / f"{name}.parquet")


def example_mapping(folder: str = "src") -> dict:
    """The example mapping pointed at a parquet folder (macro read as a table)."""
    d = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    d["sources"] = {"core": {"parquet": folder, "chunk_rows": 5_000}}
    d["tables"]["surveys"] = copy.deepcopy(SURVEYS_MAPPING)  # tests edit it
    d["tables"]["macro"].pop("query")
    d["tables"]["macro"]["table"] = "macro_region"
    return d


def save(d: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def cli(*args: str, root: Path):
    from pipelines.cli import app

    # None unsets: an earlier test's in-process mlflow.set_tracking_uri exported
    # MLFLOW_TRACKING_URI, which would point this run at that test's store.
    return CliRunner().invoke(app, list(args),
                              env={"MLFLOW_TRACKING_URI": None, "POSTLOAN_ROOT": str(root),
                                   "COLUMNS": "200"})


# ------------------------------------------------------------------ item 3: one rule
def test_check_data_and_ingest_agree_on_outreach_columns_left_out(frames, tmp_path):
    write_parquet_source(frames, tmp_path / "src")
    d = example_mapping()
    for c in OUTREACH:  # the lender's log has no such columns: the mapping leaves them out
        d["tables"]["interactions"]["columns"].pop(c)
    m = save(d, tmp_path / "m.yaml")
    profiles, *_ = profile_source(m)
    inter = next(p for p in profiles if p.table == "interactions")
    assert inter.status == "ok", [v.rule for v in inter.violations]
    manifest = run_ingest(m, tmp_path / "book")
    assert manifest["tables"]["interactions"]["rows"] == len(frames["crm_event"])
    got = io.read_tables(tmp_path / "book", ["interactions"])["interactions"]
    assert got["action"].isna().all()


# ------------------------------------------------------------------ item 4: one rule
def test_check_data_refuses_a_missing_optional_file_not_declared_absent(small_book, tmp_path):
    book = tmp_path / "book"
    shutil.copytree(small_book, book)
    (book / "activity.parquet").unlink()
    with pytest.raises(Exception, match="file not found"):  # what snapshot and train say
        io.read_tables(book)
    profiles, *_ = profile_book(book)
    act = next(p for p in profiles if p.table == "activity")
    assert act.status == "error"
    assert "not declared absent" in act.violations[0].rule
    r = cli("check-data", "--data", str(book), root=tmp_path)
    assert r.exit_code == 2, r.output
    assert "activity" in r.output and "not declared absent" in r.output
    # Declared absent in the manifest, the same book is fine everywhere.
    manifest = json.loads((book / "manifest.json").read_text())
    manifest["absent_tables"] = sorted({*manifest["absent_tables"], "activity"})
    manifest["tables"].pop("activity")
    (book / "manifest.json").write_text(json.dumps(manifest))
    assert "activity" not in io.read_tables(book)
    r = cli("check-data", "--data", str(book), root=tmp_path)
    assert r.exit_code == 0, r.output
    assert "activity absent (optional): no channel-use features" in r.output


def test_check_data_refuses_a_file_declared_absent(small_book, tmp_path):
    book = tmp_path / "book"
    shutil.copytree(small_book, book)
    manifest = json.loads((book / "manifest.json").read_text())
    manifest["absent_tables"] = sorted({*manifest["absent_tables"], "bureau"})
    (book / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="declares the table absent"):
        io.read_tables(book)
    profiles, *_ = profile_book(book)
    assert next(p for p in profiles if p.table == "bureau").status == "error"


# ------------------------------------------------------------------ item 7: messages
def test_check_data_writes_no_profile_unless_asked(small_tables, tmp_path):
    io.write_tables({k: small_tables[k] for k in S.CORE_TABLES}, tmp_path / "bank")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        r = cli("check-data", "--data", "bank", root=tmp_path)
    finally:
        os.chdir(cwd)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank"]  # nothing written
    assert not list(tmp_path.rglob("*.html"))
    # No "no nothing": every absent table's line reads as a sentence.
    assert "no nothing" not in r.output
    assert "customers_pii absent (optional): nothing is lost" in r.output
    r = cli("check-data", "--data", str(tmp_path / "bank"), "--profile",
            str(tmp_path / "p.html"), root=tmp_path)
    assert r.exit_code == 0, r.output
    assert "<h2 id='loans'>" in (tmp_path / "p.html").read_text(encoding="utf-8")


def test_ingest_summary_says_what_an_absent_table_costs(frames, tmp_path):
    write_parquet_source(frames, tmp_path / "src")
    d = example_mapping()
    d["tables"].pop("surveys")
    m = save(d, tmp_path / "m.yaml")
    r = cli("ingest", "--source", str(m), "--out", str(tmp_path / "book"), root=tmp_path)
    assert r.exit_code == 0, r.output
    assert "no nothing" not in r.output
    assert "customers_pii (optional): nothing is lost" in r.output
    assert "surveys (optional): no survey features" in r.output


# ------------------------------------------------------------------ item 1: train all
@pytest.mark.integration
def test_train_all_skips_uplift_when_the_outreach_log_has_no_actions(small_tables, tmp_path):
    """A lender's outreach log without action/assignment columns: default risk and churn
    (and satisfaction) register, uplift is skipped with a one-line reason, exit 0."""
    # Like the lender: no surveys (satisfaction is skipped too, with its reason).
    tables = {k: small_tables[k] for k in S.REQUIRED_TABLES if k != "surveys"}
    tables["interactions"] = tables["interactions"].drop(columns=list(OUTREACH))
    assert (tables["interactions"]["kind"] == "outreach").any()
    book = tmp_path / "book"
    io.write_tables(tables, book)
    small = {"lgbm": {"max_rounds": 40}}
    cfg = save({"shap_sample": 100, "splits": {"n_train": 2, "n_valid": 1, "n_oot": 1},
                "models": {"default_risk": small, "churn": small}}, tmp_path / "train.yaml")
    r = cli("train", "--target", "all", "--data", str(book), "--config", str(cfg),
            root=tmp_path)
    assert r.exit_code == 0, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "Traceback" not in r.output and "KeyError" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("uplift models skipped")]
    assert len(lines) == 1 and "no action" in lines[0], r.output
    assert "default_risk" in r.output and "churn" in r.output
    assert "satisfaction skipped" in r.output
    # Asked for by name, uplift is refused with the reason (exit 2), never a traceback.
    r = cli("train", "--target", "uplift", "--data", str(book), root=tmp_path)
    assert r.exit_code == 2, r.output
    assert "carry no action" in r.output


def test_uplift_skip_reason_names_what_the_log_lacks(small_tables, tmp_path):
    from pipelines.train import uplift_skip_reason

    full = {k: small_tables[k] for k in S.REQUIRED_TABLES}
    io.write_tables(full, tmp_path / "full")
    assert uplift_skip_reason(tmp_path / "full") is None
    no_assign = {**full, "interactions": full["interactions"].drop(columns=["assignment"])}
    io.write_tables(no_assign, tmp_path / "no_assign")
    assert "no assignment" in uplift_skip_reason(tmp_path / "no_assign")
    io.write_tables({k: full[k] for k in S.CORE_TABLES}, tmp_path / "core")
    assert "no interactions table" in uplift_skip_reason(tmp_path / "core")


# ------------------------------------------------------------------ item 7: signatures
@pytest.mark.integration  # trains, runs the CLI in a process or a cluster
def test_uplift_models_are_logged_with_a_signature(small_tables, tmp_path, caplog):
    """`make demo` printed MLflow's "Failed to infer model signature" once per uplift
    model: they are logged with an input example and a signature (effects out)."""
    import logging

    import mlflow
    import numpy as np

    from postloan.data.features import FEATURE_NAMES
    from postloan.data.snapshot import build_snapshot
    from postloan.models import registry
    from postloan.models import uplift as U

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    t = (rng.random(600) < 0.5).astype(float)
    y = (rng.random(600) < 0.3).astype(float)
    p = U.UpliftParams(effect_rounds=5, outcome_rounds=5, num_threads=1)
    bundle = U.UpliftBundle("payment_reminder", {lab: U.fit_effect(X, y, t, np.full(600, 0.5), p)
                                                 for lab in U.UPLIFT_LABELS}, {"k": 1})
    snap = build_snapshot(small_tables, pd.Timestamp("2023-06-30"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry.configure(uri)
    exp = registry.ensure_experiment("sig", tmp_path / "art")
    with caplog.at_level(logging.WARNING), mlflow.start_run(experiment_id=exp):
        model_uri, _ = registry.log_bundle(bundle, register=False, example=snap.head(5))
    assert "Failed to infer model signature" not in caplog.text
    info = mlflow.models.get_model_info(model_uri)
    assert info.signature is not None
    assert {f"effect_{lab}" for lab in U.UPLIFT_LABELS} <= set(info.signature.outputs.input_names())
    assert "region" in info.signature.inputs.input_names()


# ------------------------------------------------------------------ item 2: dates
def _yyyymm(frames: dict, folder: Path) -> dict:
    """The bank's repayment statements keyed by a YYYYMM period (text)."""
    f = dict(frames)
    f["repay_stmt"] = f["repay_stmt"].assign(stmt_dt=f["repay_stmt"]["stmt_dt"].str[:6])
    write_parquet_source(f, folder)
    return f


def test_a_day_format_on_yyyymm_text_is_refused_not_read_as_january(frames, tmp_path):
    from postloan.data.contract import load_mapping, read_canonical
    from postloan.errors import DataValidationError

    f = _yyyymm(frames, tmp_path / "src")
    assert f["repay_stmt"]["stmt_dt"].str[4:].isin(["11", "12"]).any()  # Nov/Dec present
    m = save(example_mapping(), tmp_path / "m.yaml")  # still says %Y%m%d
    with pytest.raises(DataValidationError, match=r"format %Y%m%d \(matched exactly\)") as ei:
        read_canonical(load_mapping(m), "repayments")
    assert "202301" in str(ei.value)  # the first offending source rows are shown
    # Every value is refused, November and December ones included (strptime alone read
    # "202411" and "202412" as dates in January 2024).
    from postloan.data.contract.convert import cast_date

    parsed, bad = cast_date(f["repay_stmt"]["stmt_dt"], "%Y%m%d")
    assert bad.all() and parsed.isna().all()


def test_a_yyyymm_period_needs_align_and_becomes_the_month_end(frames, small_tables, tmp_path):
    from postloan.data.contract import load_mapping, read_canonical
    from postloan.errors import ConfigError

    _yyyymm(frames, tmp_path / "src")
    d = example_mapping()
    d["tables"]["repayments"]["columns"]["statement_date"] = {"from": "stmt_dt",
                                                              "format": "%Y%m"}
    with pytest.raises(ConfigError, match="statement_date.*no day of the month.*align"):
        load_mapping(save(d, tmp_path / "m.yaml"))
    d["tables"]["repayments"]["columns"]["statement_date"]["align"] = "month_end"
    got = read_canonical(load_mapping(save(d, tmp_path / "m.yaml")), "repayments")
    pd.testing.assert_series_equal(got["statement_date"],
                                   small_tables["repayments"]["statement_date"])


def test_statement_dates_that_are_not_month_ends_are_refused_unless_aligned(
        frames, small_tables, tmp_path):
    from postloan.data.contract import load_mapping, read_canonical
    from postloan.errors import DataValidationError

    f = dict(frames)  # statements cut on the 25th of each month
    f["repay_stmt"] = f["repay_stmt"].assign(stmt_dt=f["repay_stmt"]["stmt_dt"].str[:6] + "25")
    write_parquet_source(f, tmp_path / "src")
    d = example_mapping()
    m = save(d, tmp_path / "m.yaml")
    with pytest.raises(DataValidationError, match="rule month_end") as ei:
        read_canonical(load_mapping(m), "repayments")
    assert ei.value.column.startswith("statement_date")
    profiles, *_ = profile_source(m)  # check-data --source names the same rule
    rep = next(p for p in profiles if p.table == "repayments")
    assert any("rule month_end" in v.rule and v.column == "statement_date"
               for v in rep.violations)
    d["tables"]["repayments"]["columns"]["statement_date"]["align"] = "month_end"
    got = read_canonical(load_mapping(save(d, tmp_path / "m.yaml")), "repayments")
    pd.testing.assert_series_equal(got["statement_date"],
                                   small_tables["repayments"]["statement_date"])
    # A written book is held to the same rule on every read.
    bad = small_tables["repayments"].copy()
    bad.loc[0, "statement_date"] -= pd.Timedelta(days=3)
    with pytest.raises(DataValidationError, match="rule month_end"):
        S.validate_table("repayments", bad)


# ------------------------------------------------------------------ item 6: mapping rules
def test_letter_prefixed_ids_are_read_with_a_prefix_rule(frames, small_tables, tmp_path):
    from postloan.data.contract import load_mapping, read_canonical
    from postloan.errors import DataValidationError

    f = {k: (v.assign(cust_no="C" + v["cust_no"]) if "cust_no" in v else v)
         for k, v in frames.items()}
    f["loan_acct"] = f["loan_acct"].assign(acct_no="L" + f["loan_acct"]["acct_no"].astype(str))
    f["repay_stmt"] = f["repay_stmt"].assign(
        acct_no="L" + f["repay_stmt"]["acct_no"].astype(str))
    write_parquet_source(f, tmp_path / "src")
    d = example_mapping()
    for tm in d["tables"].values():
        for rule in tm["columns"].values():
            if isinstance(rule, dict) and rule.get("from") == "cust_no":
                rule["prefix"] = "C"
        if "loan_id" in tm["columns"]:
            tm["columns"]["loan_id"] = {"from": "acct_no", "prefix": "L", "cast": "integer"}
    m = save(d, tmp_path / "m.yaml")
    run_ingest(m, tmp_path / "book")
    got = io.read_tables(tmp_path / "book", ["customers", "loans", "repayments"])
    for name in ("loans", "repayments"):
        pd.testing.assert_frame_equal(got[name], small_tables[name], obj=name)
    assert got["customers"]["customer_id"].equals(small_tables["customers"]["customer_id"])
    # A value without the prefix names the rule and the row.
    f["cust_master"].loc[4, "cust_no"] = "X0000000004"
    write_parquet_source(f, tmp_path / "src")
    with pytest.raises(DataValidationError, match="does not start with the prefix 'C'") as ei:
        read_canonical(load_mapping(m), "customers")
    assert "X0000000004" in str(ei.value)


def test_outcome_defaults_to_none_for_requests_and_complaints(frames, small_tables, tmp_path):
    from postloan.data.contract import load_mapping, read_canonical
    from postloan.errors import DataValidationError

    f = dict(frames)
    crm = f["crm_event"].copy()
    not_contact = crm["evt_type"].isin(["SR", "CP"])
    assert not_contact.any()
    crm.loc[not_contact, "outcome"] = None  # the CRM leaves it empty: no contact
    f["crm_event"] = crm
    write_parquet_source(f, tmp_path / "src")
    m = save(example_mapping(), tmp_path / "m.yaml")
    got = read_canonical(load_mapping(m), "interactions")
    pd.testing.assert_series_equal(got["outcome"], small_tables["interactions"]["outcome"])
    crm.loc[crm.index[crm["evt_type"] == "CC"][0], "outcome"] = None  # a contact's is a fact
    write_parquet_source({**f, "crm_event": crm}, tmp_path / "src")
    with pytest.raises(DataValidationError, match="missing values not allowed"):
        read_canonical(load_mapping(m), "interactions")


# ------------------------------------------------------------------ item 5: money unit
def _fen_mapping(money_unit: str | None = "fen") -> dict:
    """The example mapping with its per-column `unit: cents` replaced by the mapping's
    currency and money unit (the sources hold fen)."""
    d = example_mapping()
    d["currency"] = "CNY"
    d["money_unit"] = money_unit
    if money_unit is None:
        d.pop("money_unit")
    for tm in d["tables"].values():
        for rule in tm["columns"].values():
            if isinstance(rule, dict) and "unit" in rule:
                units = [u for u in ([rule["unit"]] if isinstance(rule["unit"], str)
                                     else rule["unit"]) if u != "cents"]
                if units:
                    rule["unit"] = units
                else:
                    rule.pop("unit")
    return d


def test_money_unit_converts_and_medians_are_shown_without_warnings(
        frames, small_tables, tmp_path):
    write_parquet_source(frames, tmp_path / "src")
    m = save(_fen_mapping(), tmp_path / "m.yaml")
    r = cli("ingest", "--source", str(m), "--out", str(tmp_path / "book"), root=tmp_path)
    assert r.exit_code == 0, r.output
    got = io.read_tables(tmp_path / "book", ["loans", "repayments", "bureau"])
    for name in ("loans", "repayments", "bureau"):
        pd.testing.assert_frame_equal(got[name], small_tables[name], obj=name)
    money = io.read_manifest(tmp_path / "book")["money"]
    assert money["currency"] == "CNY" and money["money_unit"] == "fen"
    want = small_tables["customers"]["declared_monthly_income"].median()
    assert money["medians"]["customers.declared_monthly_income"] == pytest.approx(want)
    assert money["warnings"] == []  # a clean book raises no false alarm
    assert "money medians, in CNY (source unit fen)" in r.output
    assert "repayments.scheduled_amount" in r.output and "warning" not in r.output
    r = cli("check-data", "--data", str(tmp_path / "book"), root=tmp_path)
    assert r.exit_code == 0 and "warning" not in r.output, r.output
    assert "customers.declared_monthly_income" in r.output


def test_money_left_in_fen_is_named_by_ingest_and_check_data(frames, tmp_path):
    write_parquet_source(frames, tmp_path / "src")
    m = save(_fen_mapping(money_unit=None), tmp_path / "m.yaml")  # forgot the unit
    r = cli("check-data", "--source", str(m), root=tmp_path)
    assert "warning customers.declared_monthly_income: median" in r.output, r.output
    assert "implausible for CNY" in r.output
    r = cli("ingest", "--source", str(m), "--out", str(tmp_path / "book"), root=tmp_path)
    assert r.exit_code == 0, r.output  # a warning, not a refusal: the lender may know better
    assert "implausible for CNY" in r.output
    assert io.read_manifest(tmp_path / "book")["money"]["warnings"]


def test_money_columns_in_different_units_disagree_by_name(frames, tmp_path):
    write_parquet_source(frames, tmp_path / "src")
    d = _fen_mapping()
    # One column declared in yuan though its source holds fen: 100x the others.
    d["tables"]["repayments"]["columns"]["scheduled_amount"] = {"from": "due_cents",
                                                                "money_unit": "yuan"}
    d["tables"]["bureau"]["columns"]["verified_monthly_income"] = {
        "from": "verified_income_cents", "money_unit": "yuan"}
    m = save(d, tmp_path / "m.yaml")
    *_, money = profile_source(m)
    text = "\n".join(money["warnings"])
    assert "repayments.scheduled_amount disagrees with the annuity of loans.principal" in text
    assert "repayments.paid_amount disagrees with repayments.scheduled_amount" in text
    assert ("bureau.verified_monthly_income disagrees with customers.declared_monthly_income"
            in text)
    # The income itself is plausible: no scale warning on it.
    assert not any(w.startswith("customers.declared_monthly_income") for w in money["warnings"])


def test_money_unit_given_twice_or_on_a_non_money_column_is_refused():
    from postloan.data.contract import parse_mapping
    from postloan.errors import ConfigError

    d = _fen_mapping()
    d["tables"]["loans"]["columns"]["principal"] = {"from": "principal_cents", "unit": "cents"}
    with pytest.raises(ConfigError, match="principal.unit: the money unit is given twice"):
        parse_mapping(d)
    d = _fen_mapping()
    d["tables"]["loans"]["columns"]["term_months"] = {"from": "term_mths", "money_unit": "fen"}
    with pytest.raises(ConfigError, match="term_months.money_unit: term_months is not money"):
        parse_mapping(d)
    d = _fen_mapping()
    d["currency"] = "yuan"
    with pytest.raises(ConfigError, match="currency"):
        parse_mapping(d)
