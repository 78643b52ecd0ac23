"""The file sources of a mapping: a CSV folder, a parquet folder and a DuckDB file.

The core-banking schema of tests/core_banking.py is written as files; the shipped
example mapping, pointed at them, must give back the original tables exactly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from core_banking import REGION_ZH, SCHEMA, SURVEYS_MAPPING, foreign_frames
from pipelines.ingest import run_ingest
from postloan.data import io
from postloan.data.contract import load_mapping, read_canonical
from postloan.errors import DataValidationError, SourceError

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "core_banking_mapping.yaml"
TABLES = ("customers", "loans", "repayments", "activity", "interactions", "surveys", "bureau",
          "macro")


@pytest.fixture(scope="module")
def frames(small_tables) -> dict[str, pd.DataFrame]:
    return foreign_frames(small_tables, with_surveys=True)


def mapping_for(tmp: Path, source: dict) -> Path:
    d = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    d["sources"] = {"core": source}
    d["tables"]["surveys"] = SURVEYS_MAPPING
    if "duckdb" not in source:  # files have no SQL: read the macro table itself
        d["tables"]["macro"].pop("query")
        d["tables"]["macro"]["table"] = "macro_region"
    path = tmp / "files.yaml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    return path


def write_source(kind: str, frames: dict, folder: Path) -> dict:
    folder.mkdir()
    if kind == "csv":
        for name, df in frames.items():
            df.to_csv(folder / f"{name}.csv", index=False)
        return {"csv": folder.name, "chunk_rows": 5_000}
    if kind == "parquet":
        for name, df in frames.items():
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False),
                           folder / f"{name}.parquet")
        return {"parquet": folder.name, "chunk_rows": 5_000}
    import duckdb  # optional extra `postloan[duckdb]`, part of the dev extra
    con = duckdb.connect(str(folder / "bank.duckdb"))
    con.execute(f"CREATE SCHEMA {SCHEMA}")
    for name, df in frames.items():
        con.register("frame", df)
        con.execute(f"CREATE TABLE {SCHEMA}.{name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.close()
    return {"duckdb": f"{folder.name}/bank.duckdb", "schema": SCHEMA, "chunk_rows": 5_000}


@pytest.mark.parametrize("kind", ["csv", "parquet", "duckdb"])
def test_file_sources_give_back_the_original_tables(kind, frames, small_tables, tmp_path):
    m = mapping_for(tmp_path, write_source(kind, frames, tmp_path / "src"))
    manifest = run_ingest(m, tmp_path / "book")
    tables = io.read_tables(tmp_path / "book", TABLES)
    for name in TABLES:
        got, want = tables[name], small_tables[name]
        if "region" in want:  # the example declares the lender's Chinese region names
            want = want.assign(region=want["region"].map(REGION_ZH))
        if name == "macro":  # the example's SQL query orders its rows its own way
            got = got.sort_values(["month_end", "region"], ignore_index=True)
            want = want.sort_values(["month_end", "region"], ignore_index=True)
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)
    assert manifest["sources"]["repayments"]["rows"] == len(small_tables["repayments"])


def test_missing_file_and_column_are_clear_errors(frames, tmp_path):
    m = mapping_for(tmp_path, write_source("csv", frames, tmp_path / "src"))
    (tmp_path / "src" / "chnl_usage.csv").unlink()
    with pytest.raises(SourceError, match="activity .*file not found: .*chnl_usage.csv"):
        read_canonical(load_mapping(m), "activity")
    df = frames["bureau_pull"].drop(columns=["score"])
    df.to_csv(tmp_path / "src" / "bureau_pull.csv", index=False)
    with pytest.raises(DataValidationError, match=r"source column\(s\) \['score'\] not found"):
        read_canonical(load_mapping(m), "bureau")
    with pytest.raises((SourceError, DataValidationError)):  # whichever table comes first
        run_ingest(m, tmp_path / "book")
    assert not (tmp_path / "book").exists()
