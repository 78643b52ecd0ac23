"""Bring your own book, end to end on a real PostgreSQL server.

A simulated book is loaded into PostgreSQL under a core-banking schema that differs on
purpose (tests/core_banking.py): no surveys table, region names in Chinese (declared as
the lender's vocabulary), codes, cents, YYYYMMDD text. The shipped example mapping
ingests it through the real ``postloan`` command; the snapshots must equal, feature for
feature, those of the original book after the declared conversions (survey features
NaN, surveys declared absent), and default risk and churn train and score on it. Every
bad-input path exits 2 with a clear message and writes nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import cli_env
from core_banking import REGION_ZH, load_core_banking
from postloan.data import io
from postloan.data import schema as S
from postloan.data.snapshot import FEATURE_FAMILIES, build_snapshot

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent / "postloan"
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "core_banking_mapping.yaml"
AS_OF = ("2024-06-30", "2024-12-31")
URL_ENV = "POSTLOAN_CORE_BANKING_URL"
# The lender: no surveys table, its region names in Chinese declared as its own.
REGIONS_ZH = [REGION_ZH[r] for r in S.REGIONS]


@pytest.fixture(scope="module")
def bank(pg_server, small_tables) -> str:
    """The small book in PostgreSQL under the core-banking schema; returns its URL."""
    url = pg_server.create_database("corebank")
    with pg_server.password_env():
        counts = load_core_banking(small_tables, url)
    assert counts["repay_stmt"] == len(small_tables["repayments"])
    assert "nps_survey" not in counts
    return url


def mapping_dict() -> dict:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def write_mapping(path: Path, d: dict) -> Path:
    path.write_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], cwd=cwd, env=env or cli_env(cwd),
                          capture_output=True, text=True, timeout=600)


def invoke(*args: str, env: dict | None = None):
    """The real command in-process (typer's runner): same code path and exit codes as the
    installed `postloan`, without paying the interpreter start per error case."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    r = CliRunner().invoke(app, list(args), env=env)
    # rich wraps long messages at 140 columns: compare with whitespace collapsed.
    r.flat = " ".join((r.stderr + r.stdout).split())
    return r


def bank_env(cwd: Path, pg_server, url: str, password: str | None = None) -> dict:
    return cli_env(cwd, **{URL_ENV: url, "PGPASSWORD": password or pg_server.password})


@pytest.fixture(scope="module")
def ingested(bank, pg_server, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ingest")
    m = write_mapping(root / "bank.yaml", mapping_dict())
    r = run(root, "ingest", "--source", str(m), "--out", str(root / "book"),
            env=bank_env(root, pg_server, bank))
    assert r.returncode == 0, r.stdout + r.stderr
    return root / "book"


def expected_snapshot(small_tables: dict, as_of: str) -> pd.DataFrame:
    """The original book's snapshot after the mapping's declared conversions: regions
    in the lender's names, the survey family and the dissatisfaction label missing."""
    want = build_snapshot(small_tables, as_of)
    survey = list(FEATURE_FAMILIES["surveys"])
    assert want[survey].notna().any().all() and want["dissatisfied_3m"].notna().all()
    want["region"] = want["region"].map(REGION_ZH)
    want[survey] = np.nan
    want["dissatisfied_3m"] = np.nan
    return want


def test_ingested_snapshots_equal_the_original_feature_for_feature(ingested, small_tables):
    tables = io.read_tables(ingested)
    assert "surveys" not in tables
    for name, df in tables.items():
        assert len(df) == len(small_tables[name]), name
    for d in AS_OF:
        got = build_snapshot(tables, d)
        pd.testing.assert_frame_equal(got, expected_snapshot(small_tables, d),
                                      check_exact=True)
        assert got["dpd_current"].notna().all() and got["region"].isin(REGIONS_ZH).all()
        assert got["unemployment_rate"].notna().all()  # macro joins on the Chinese names


def test_the_arrow_reader_and_copy_csv_give_the_same_book(bank, pg_server, tmp_path,
                                                          monkeypatch, caplog):
    """Issue 20, item 10: each table is read through the ADBC driver (Arrow) when it is
    installed, COPY-as-CSV otherwise; the canonical books are identical, byte for byte."""
    import hashlib
    import logging

    from pipelines.ingest import run_ingest
    from postloan.data.contract import readers

    monkeypatch.setenv(URL_ENV, bank)
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    m = write_mapping(tmp_path / "bank.yaml", mapping_dict())
    with caplog.at_level(logging.DEBUG, logger="postloan.data.contract.readers"):
        run_ingest(m, tmp_path / "arrow")
    assert caplog.text.count("read through the ADBC driver") == 7  # every mapped table
    caplog.clear()
    with monkeypatch.context() as mp, caplog.at_level(logging.DEBUG,
                                                       logger="postloan.data.contract.readers"):
        mp.setattr(readers, "_ARROW_OIDS", frozenset())
        run_ingest(m, tmp_path / "csv")
    assert "ADBC" not in caplog.text
    files = sorted(p.name for p in (tmp_path / "arrow").glob("*.parquet"))
    assert len(files) == 7 and files == sorted(p.name for p in (tmp_path / "csv").glob(
        "*.parquet"))
    for f in files:
        a, b = (pq.read_table(tmp_path / d / f) for d in ("arrow", "csv"))
        assert a.equals(b), f
        assert (hashlib.sha256((tmp_path / "arrow" / f).read_bytes()).hexdigest()
                == hashlib.sha256((tmp_path / "csv" / f).read_bytes()).hexdigest()), f
    arrow, csv = io.read_tables(tmp_path / "arrow"), io.read_tables(tmp_path / "csv")
    for name in arrow:
        pd.testing.assert_frame_equal(arrow[name], csv[name], check_exact=True)
    ma, mc = io.read_manifest(tmp_path / "arrow"), io.read_manifest(tmp_path / "csv")
    assert ma["sources"] == mc["sources"] and ma["money"] == mc["money"]


@pytest.mark.parametrize("broken", ["loans", "repayments"])
def test_a_failed_ingest_stops_the_table_read_ahead(bank, pg_server, tmp_path, monkeypatch,
                                                     broken):
    """The next table's read begins while one is written; when a table fails, that read
    stops at once: no reader thread, no open connection, nothing written."""
    import threading

    import sqlalchemy as sa

    from pipelines.ingest import run_ingest
    from postloan.errors import DataValidationError

    monkeypatch.setenv(URL_ENV, bank)
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    d = mapping_dict()
    if broken == "loans":  # a code outside the map: fails while converting
        d["tables"]["loans"]["columns"]["product"]["map"].pop("02")
    else:  # fails validating the whole table, after its last chunk was read
        d["tables"]["repayments"]["columns"]["dpd"] = {"from": "dpd", "scale": -1}
    with pytest.raises(DataValidationError, match=broken):
        run_ingest(write_mapping(tmp_path / "bank.yaml", d), tmp_path / "book")
    assert not (tmp_path / "book").exists()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("postloan-")]
    engine = sa.create_engine(bank)
    with engine.connect() as conn:
        left = conn.exec_driver_sql("SELECT count(*) FROM pg_stat_activity WHERE "
                                    "application_name = 'postloan-ingest'").scalar()
    engine.dispose()
    assert left == 0


def test_manifest_records_mapping_sources_and_no_password(ingested, pg_server, small_tables):
    m = io.read_manifest(ingested)
    assert m["lender"] == "example-core-bank" and len(m["mapping_sha256"]) == 64
    assert m["sources"]["repayments"]["rows"] == len(small_tables["repayments"])
    assert "repay_stmt" in m["sources"]["repayments"]["source"]
    assert m["absent_tables"] == ["customers_pii", "surveys"]
    assert m["feature_families_present"]["surveys"] is False
    assert m["feature_families_present"]["interactions"] is True
    assert m["vocabularies"]["region"] == REGIONS_ZH
    assert m["vocabularies"]["product"] == list(S.PRODUCTS)
    assert pg_server.password not in (ingested / "manifest.json").read_text(encoding="utf-8")


def test_the_ingested_book_trains_scores_and_skips_satisfaction(ingested, tmp_path):
    """Default risk and churn train on the ingested book (real LightGBM, MLflow in a
    temp dir) and score it; satisfaction is skipped with its one-line reason."""
    from pipelines.score import run_score
    from pipelines.train import run_train
    from postloan.models.bundle import MODELS
    from postloan.models.store import load_bundles_from_dir
    from postloan.models.training import Splits, TrainConfig

    cfg = TrainConfig(shap_sample=200, splits=Splits(n_train=6),
                      models={m: {"family": "lightgbm"} for m in MODELS})
    res = {r["model"]: r for r in run_train(
        ingested, list(MODELS), cfg, f"sqlite:///{tmp_path / 'mlflow.db'}",
        tmp_path / "mlartifacts", tmp_path / "models", tmp_path)}
    reason = res["satisfaction"]["skipped"]
    assert "satisfaction skipped" in reason and "surveys" in reason and "\n" not in reason
    for model in ("default_risk", "churn"):
        assert res[model]["metrics"]["oot_auc"] > 0.6, model
    bundles = load_bundles_from_dir(tmp_path / "models")
    assert sorted(bundles) == ["churn", "default_risk"]
    assert bundles["default_risk"].categories["region"] == REGIONS_ZH
    out = run_score(ingested, AS_OF[1], tmp_path / "scores", bundles)
    dec = out["decisions"]
    assert len(dec) > 100 and dec["pd_12m"].between(0, 1).all()
    assert dec["p_churn_6m"].between(0, 1).all()
    assert dec["p_dissatisfied_3m"].isna().all()  # no model: missing, never 0
    assert (tmp_path / "scores" / "queue.csv").is_file()


def test_ingest_writes_a_partitioned_book(bank, pg_server, tmp_path, small_tables):
    from postloan.scale import partitions

    m = write_mapping(tmp_path / "bank.yaml", mapping_dict())
    r = run(tmp_path, "ingest", "--source", str(m), "--out", str(tmp_path / "parts"),
            "--partitions", "3", env=bank_env(tmp_path, pg_server, bank))
    assert r.returncode == 0, r.stderr
    assert partitions.is_partitioned(tmp_path / "parts")
    part_rows = sum(len(partitions.read_partition(tmp_path / "parts", k)["repayments"])
                    for k in range(3))
    assert part_rows == len(small_tables["repayments"])


def test_check_data_on_the_ingested_book_is_clean(ingested, tmp_path):
    out = tmp_path / "profile.html"
    r = run(tmp_path, "check-data", "--data", str(ingested), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "repayments" in r.stdout and "ok" in r.stdout
    page = out.read_text(encoding="utf-8")
    assert "<h2 id='loans'>" in page and "null share" in page


def test_check_data_reports_every_violation_with_rows(ingested, tmp_path):
    book = tmp_path / "bad"
    book.mkdir()
    for f in ingested.iterdir():
        (book / f.name).write_bytes(f.read_bytes())
    loans = pq.read_table(ingested / "loans.parquet").to_pandas()
    loans.loc[[3, 5], "principal"] = -1.0
    loans.loc[7, "product"] = "gold"
    pq.write_table(pq.read_table(ingested / "loans.parquet").from_pandas(
        loans, preserve_index=False), book / "loans.parquet")
    (book / "activity.parquet").unlink()
    r = run(tmp_path, "check-data", "--data", str(book), "--out", str(tmp_path / "p.html"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "below the minimum 0" in r.stdout and "(2 rows)" in r.stdout
    assert "outside the vocabulary" in r.stdout and "gold" in r.stdout
    # A file missing without being declared absent: what snapshot and train refuse.
    assert "activity" in r.stdout and "not declared absent" in r.stdout
    assert (tmp_path / "p.html").exists()


def test_check_data_through_the_mapping(bank, pg_server, tmp_path):
    d = mapping_dict()
    d["tables"].pop("activity")
    m = write_mapping(tmp_path / "bank.yaml", d)
    r = run(tmp_path, "check-data", "--source", str(m), "--out", str(tmp_path / "p.html"),
            env=bank_env(tmp_path, pg_server, bank))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "activity absent (optional)" in r.stdout


def _edit(path: list, value) -> callable:
    def f(d: dict) -> None:
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return f


CASES = {
    "unknown table": (_edit(["tables", "loans", "table"], "loan_acctx"),
                      ["loan_acctx", "not found in the database", "loan_acct"]),
    "unknown column": (_edit(["tables", "loans", "columns", "principal"],
                             {"from": "principal_centz"}),
                       ["principal_centz", "not found", "loans"]),
    "failing cast": (_edit(["tables", "customers", "columns", "customer_id", "from"],
                           "region_nm"),
                     ["cast 'integer' failed", "region_nm", "cust_master", "source row"]),
    "code outside the map": (_edit(["tables", "loans", "columns", "product", "map"],
                                   {"01": "consumer", "02": "mortgage", "03": "card"}),
                             ["code not in the mapping's map", "prod_cd", "04"]),
    "code outside the vocabulary": (
        _edit(["tables", "loans", "columns", "product", "map"],
              {"01": "consumer", "02": "mortgage", "03": "card", "04": "gold"}),
        ["outside the vocabulary", "gold", "prod_cd"]),
    "unparseable date": (_edit(["tables", "loans", "columns", "origination_date", "format"],
                               "%d%m%Y"),
                         ["a date in the format %d%m%Y", "open_dt", "loan_acct"]),
    "duplicate keys": (_edit(["tables", "loans", "columns", "loan_id"],
                             {"from": "cust_no", "cast": "integer"}),
                       ["duplicate keys ['loan_id']", "loan_acct"]),
    "negative money": (_edit(["tables", "loans", "columns", "principal"],
                             {"from": "principal_cents", "scale": -0.01}),
                       ["after conversion", "below the minimum", "principal_cents"]),
    "statement timeout": (lambda d: (
        _edit(["sources", "core", "statement_timeout_s"], 0.5)(d),
        d["tables"]["customers"].pop("table"),
        _edit(["tables", "customers", "query"],
              "SELECT *, pg_sleep(0.01) AS z FROM core.cust_master")(d)),
        ["statement timeout of 0.5 s", "customers", "query"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_mapping_or_data_exits_2_names_the_source_and_writes_nothing(
        case, bank, pg_server, tmp_path):
    edit, needles = CASES[case]
    d = mapping_dict()
    edit(d)
    m = write_mapping(tmp_path / "bank.yaml", d)
    r = invoke("ingest", "--source", str(m), "--out", str(tmp_path / "book"),
               env={URL_ENV: bank, "PGPASSWORD": pg_server.password})
    assert r.exit_code == 2, r.flat
    for n in needles:
        assert n in r.flat, (n, r.flat)
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert not (tmp_path / "book").exists()
    assert not list(tmp_path.glob(".book*")), "a temporary folder was left behind"
    assert pg_server.password not in r.flat


@pytest.mark.parametrize("what", ["refused connection", "wrong password",
                                  "password-bearing URL from the environment"])
def test_connection_failures_exit_2_without_leaking_the_password(what, bank, pg_server,
                                                                  tmp_path):
    from postgres import free_port

    url, password = bank, pg_server.password
    if what == "refused connection":
        url, needle = bank.replace(f":{pg_server.port}/", f":{free_port()}/"), "cannot connect"
    elif what == "wrong password":
        password, needle = "not-the-password", "password authentication failed"
    else:
        url, needle = pg_server.url("nodb", password=True), 'database "nodb" does not exist'
    m = write_mapping(tmp_path / "bank.yaml", mapping_dict())
    r = invoke("ingest", "--source", str(m), "--out", str(tmp_path / "book"),
               env={URL_ENV: url, "PGPASSWORD": password})
    assert r.exit_code == 2, r.flat
    assert needle in r.flat
    for secret in (pg_server.password, "not-the-password"):
        assert secret not in r.flat
    assert not (tmp_path / "book").exists()


def test_password_in_the_mapping_is_refused(pg_server, tmp_path):
    d = mapping_dict()
    d["sources"]["core"] = {"url": pg_server.url("corebank", password=True), "schema": "core"}
    m = write_mapping(tmp_path / "bank.yaml", d)
    r = run(tmp_path, "ingest", "--source", str(m), "--out", str(tmp_path / "book"))
    assert r.returncode == 2
    assert "sources.core" in r.stderr and "carries a password" in r.stderr
    assert pg_server.password not in r.stderr + r.stdout
    assert not (tmp_path / "book").exists()
