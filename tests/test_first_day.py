"""A lender's first day (issue 20): what broke when a bank's own schema came in.

The core-banking schema of tests/core_banking.py, written as a parquet folder, is read
through the shipped example mapping edited the way that lender's schema needs: outreach
columns left out, ids with letter prefixes, money in fen, periods as YYYYMM text.
"""

from __future__ import annotations

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
from postloan import io
from postloan import schema as S

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "core_banking_mapping.yaml"
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
    d["tables"]["surveys"] = SURVEYS_MAPPING
    d["tables"]["macro"].pop("query")
    d["tables"]["macro"]["table"] = "macro_region"
    return d


def save(d: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def cli(*args: str, root: Path):
    from pipelines.cli import app

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return CliRunner().invoke(app, list(args),
                              env={**env, "POSTLOAN_ROOT": str(root), "COLUMNS": "200"})


# ------------------------------------------------------------------ item 3: one rule
def test_check_data_and_ingest_agree_on_outreach_columns_left_out(frames, tmp_path):
    write_parquet_source(frames, tmp_path / "src")
    d = example_mapping()
    for c in OUTREACH:  # the lender's log has no such columns: the mapping leaves them out
        d["tables"]["interactions"]["columns"].pop(c)
    m = save(d, tmp_path / "m.yaml")
    profiles, _ = profile_source(m)
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
    profiles, _ = profile_book(book)
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
    profiles, _ = profile_book(book)
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
