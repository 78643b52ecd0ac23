"""Every bad-table class gives a clear error naming table, column and rows; no output."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from postloan.data import io
from postloan.data import schema as S
from postloan.errors import DataValidationError, PostloanError


def _rewrite(book, tmp_path, name, df):
    """Copy the book and overwrite one table's parquet file with `df`."""
    dst = tmp_path / "book"
    shutil.copytree(book, dst)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), dst / f"{name}.parquet")
    return dst


BAD_CASES = [
    ("missing column", "loans", lambda d: d.drop(columns=["principal"]), "principal",
     "missing column"),
    ("wrong dtype", "repayments", lambda d: d.assign(dpd=d["dpd"].astype(str)), "dpd",
     "expected a numeric"),
    ("negative money", "repayments",
     lambda d: d.assign(paid_amount=np.where(d.index == 3, -5.0, d["paid_amount"])),
     "paid_amount", "below the minimum"),
    ("negative dpd", "repayments", lambda d: d.assign(dpd=np.where(d.index == 7, -1, d["dpd"])),
     "dpd", "below the minimum"),
    ("duplicate keys", "customers", lambda d: pd.concat([d, d.head(2)]), "customer_id",
     "duplicate keys"),
    ("date out of range", "surveys",
     lambda d: d.assign(survey_date=d["survey_date"].where(d.index != 0,
                                                            pd.Timestamp("1850-01-01"))),
     "survey_date", "dates outside"),
    ("unknown category", "customers",
     lambda d: d.assign(region=d["region"].where(d.index != 1, "atlantis")), "region",
     "allowed categories"),
    ("empty table", "loans", lambda d: d.head(0), None, "empty"),  # a core table
    ("missing values", "loans",
     lambda d: d.assign(annual_rate=d["annual_rate"].where(d.index != 2, np.nan)),
     "annual_rate", "missing values"),
]


@pytest.mark.parametrize("case,table,mutate,column,rule", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_table_is_named(small_book, tmp_path, case, table, mutate, column, rule):
    df = pq.read_table(small_book / f"{table}.parquet").to_pandas()
    book = _rewrite(small_book, tmp_path, table, mutate(df))
    with pytest.raises(DataValidationError) as ei:
        io.read_tables(book)
    err = ei.value
    assert err.table == table
    assert rule in str(err)
    if column:
        assert column in str(err)
    if case not in ("missing column", "wrong dtype", "empty table"):
        assert "first offending rows" in str(err)


def test_unreadable_and_truncated_files(small_book, tmp_path):
    dst = tmp_path / "book"
    shutil.copytree(small_book, dst)
    data = (dst / "loans.parquet").read_bytes()
    (dst / "loans.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataValidationError, match="unreadable parquet"):
        io.read_tables(dst)
    (dst / "loans.parquet").unlink()
    with pytest.raises(DataValidationError, match="file not found"):
        io.read_tables(dst)
    with pytest.raises(DataValidationError, match="data folder not found"):
        io.read_tables(tmp_path / "nope")


def test_row_count_must_match_manifest(small_book, tmp_path):
    df = pq.read_table(small_book / "activity.parquet").to_pandas()
    book = _rewrite(small_book, tmp_path, "activity", df.iloc[:-5])
    with pytest.raises(DataValidationError, match="differs from manifest"):
        io.read_tables(book)


def test_failed_write_leaves_no_output(small_tables, tmp_path):
    tables = {k: v for k, v in small_tables.items()}
    bad = tables["repayments"].copy()
    bad.loc[bad.index[-1], "balance"] = -1.0
    tables["repayments"] = bad
    out = tmp_path / "out"
    with pytest.raises(DataValidationError, match="balance"):
        io.write_tables(tables, out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temp folder left behind


def test_existing_output_needs_overwrite(small_tables, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    few = {k: small_tables[k] for k in S.CORE_TABLES}
    with pytest.raises(PostloanError, match="--overwrite"):
        io.write_tables(few, out)
    io.write_tables(few, out, overwrite=True)
    assert (out / "loans.parquet").exists() and not (out / "keep.txt").exists()


def test_round_trip_keeps_values(small_book, small_tables):
    back = io.read_tables(small_book)
    for name in S.REQUIRED_TABLES:
        pd.testing.assert_frame_equal(back[name], small_tables[name], check_dtype=False)


def test_pii_is_declared_and_kept_apart():
    assert {"full_name", "phone", "national_id", "address"} <= S.PII_COLUMNS
    for name, t in S.TABLES.items():
        if name != "customers_pii":
            assert not set(t.column_names) & S.PII_COLUMNS
