"""The COPY path of the PostgreSQL reader gives the same rows as the cursor path.

``_psycopg_chunks`` streams a result as ``COPY ... TO STDOUT`` in CSV parsed by pyarrow
when every column has a plain type, and through a server-side cursor otherwise. Both
must give equal DataFrames chunk by chunk, and the converted canonical columns must be
identical, for the values a CSV could get wrong: NULL against the empty string, commas,
quotes, newlines, backslashes, the literal text ``\\N`` and ``NULL``, Chinese text,
padded CHAR, NUMERIC NaN / Infinity / 20 digits, float NaN and infinities, integer
NULLs, dates, all-NULL chunks and ``%`` in a query.
"""

from __future__ import annotations

import pandas as pd
import pytest

from postloan.data.contract import readers
from postloan.data.contract.convert import Where, convert_chunk
from postloan.data.contract.ingest import MappedBook
from postloan.data.contract.mapping import ColumnRule, Source, TableMapping, parse_mapping
from postloan.errors import SourceError

pytestmark = pytest.mark.integration

DDL = r"""
CREATE TABLE edge (id integer, txt text, code char(4), vc varchar(20), small smallint,
  big bigint, amount numeric, ratio double precision, d date, ymd char(8));
INSERT INTO edge VALUES
 (1, 'plain', 'A', 'x', 1, 10000000000, 1234.50, 0.1, '2024-01-31', '20240131'),
 (2, '', '', '', NULL, NULL, NULL, NULL, NULL, NULL),
 (3, NULL, NULL, NULL, 3, 3, 'NaN', 'NaN', '1999-12-31', '19991231'),
 (4, 'a,b', 'B', 'y', -4, -4, 'Infinity', 'Infinity', '2000-02-29', '20000229'),
 (5, 'say "hi"', 'C', 'z', 5, 5, '-Infinity', '-Infinity', '1900-01-01', '19000101'),
 (6, E'two\nlines\r\nand cr', 'D', NULL, 6, 6, 12345678901234567890.12, 1e300,
  '2024-12-31', '20241231'),
 (7, '华北 沿海', '东北', '华中', 7, 7, 0.01, -0.0, '2024-06-30', '20240630'),
 (8, E'back\\slash \\N', 'E', '\\N', 8, 8, -99.99, 5e-324, '2024-07-01', '20240701'),
 (9, 'NULL', 'F', 'NULL', 9, 9, 1e-2, 1.7976931348623157e308, '2024-07-02', '20240702'),
 (10, ' padded ', 'G', ' ', 10, 10, 100, 2.5, '2024-07-03', '20240703'),
 (11, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (12, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (13, '"', ',', '''', 13, 13, 13, 13, '2024-07-04', '20240704');
CREATE TABLE odd (id integer, flag boolean, ts timestamp);
INSERT INTO odd VALUES (1, true, '2024-01-01 10:00'), (2, NULL, NULL);
"""


@pytest.fixture(scope="module")
def edge_db(pg_server) -> str:
    url = pg_server.create_database("edge")
    import sqlalchemy as sa

    with pg_server.password_env():
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(DDL)
        engine.dispose()
    return url


def chunks(url: str, pg_server, table: str | None = None, query: str | None = None,
           columns=(), chunk_rows: int = 4, copy: bool = True, monkeypatch=None
           ) -> list[pd.DataFrame]:
    source = Source(url=url, chunk_rows=chunk_rows)
    tm = TableMapping(source="db", table=table, query=query)
    if not copy:
        monkeypatch.setattr(readers, "_COPY_TYPES", {})
    try:
        with pg_server.password_env():
            return list(readers.read_chunks(source, tm, list(columns), "t"))
    finally:
        if not copy:
            monkeypatch.undo()


COLS = ["id", "txt", "code", "vc", "small", "big", "amount", "ratio", "d", "ymd"]


@pytest.mark.parametrize("chunk_rows", [4, 100])
def test_copy_chunks_equal_cursor_chunks(edge_db, pg_server, monkeypatch, chunk_rows):
    via_copy = chunks(edge_db, pg_server, "edge", columns=COLS, chunk_rows=chunk_rows)
    via_cursor = chunks(edge_db, pg_server, "edge", columns=COLS, chunk_rows=chunk_rows,
                        copy=False, monkeypatch=monkeypatch)
    assert [len(c) for c in via_copy] == [len(c) for c in via_cursor]
    assert sum(len(c) for c in via_copy) == 13
    for a, b in zip(via_copy, via_cursor, strict=True):
        pd.testing.assert_frame_equal(a, b, check_dtype=True)
    whole = pd.concat(via_copy, ignore_index=True)
    assert whole.loc[1, "txt"] == "" and pd.isna(whole.loc[2, "txt"])   # '' is not NULL
    assert whole.loc[5, "txt"] == "two\nlines\r\nand cr"
    assert whole.loc[7, "txt"] == "back\\slash \\N" and whole.loc[8, "txt"] == "NULL"
    assert whole.loc[6, "code"] == "东北  "                              # CHAR(4) pads
    assert whole.loc[0, "code"] == "A   "                                # CHAR pads
    assert whole.loc[5, "amount"] == 12345678901234567890.12
    assert whole.loc[0, "big"] == 10000000000


def test_query_with_percent_and_all_null_chunk(edge_db, pg_server, monkeypatch):
    q = "SELECT id, txt, amount, d FROM edge WHERE txt LIKE '%a%' OR txt IS NULL ORDER BY id"
    a = chunks(edge_db, pg_server, query=q, columns=["id"], chunk_rows=2)
    b = chunks(edge_db, pg_server, query=q, columns=["id"], chunk_rows=2, copy=False,
               monkeypatch=monkeypatch)
    assert len(a) == len(b) > 1
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)


def test_converted_columns_identical(edge_db, pg_server, monkeypatch):
    """The canonical columns the converters make from either path are identical."""
    tm = TableMapping(source="db", table="edge", columns={
        "customer_id": ColumnRule(**{"from": "id", "cast": "integer"}),
        "month_end": ColumnRule(**{"from": "ymd", "format": "%Y%m%d"}),
        "inbound_calls": ColumnRule(**{"from": "small"}),
        "branch_visits": ColumnRule(**{"from": "big"}),
        "app_logins": ColumnRule(**{"from": "id"}),
    })
    cols = ["id", "ymd", "small", "big"]
    good = "id NOT IN (2, 3, 11, 12)"   # rows whose date text is a date or NULL only
    q = f"SELECT {', '.join(cols)} FROM edge WHERE {good} ORDER BY id"
    a = chunks(edge_db, pg_server, query=q, columns=cols, chunk_rows=3)
    b = chunks(edge_db, pg_server, query=q, columns=cols, chunk_rows=3, copy=False,
               monkeypatch=monkeypatch)
    tmq = tm.model_copy(update={"table": None, "query": q})
    for x, y in zip(a, b, strict=True):
        cx = convert_chunk(x, "activity", tmq, Where("activity", "edge"), {})
        cy = convert_chunk(y, "activity", tmq, Where("activity", "edge"), {})
        pd.testing.assert_frame_equal(cx, cy)


def test_other_types_fall_back_to_the_cursor(edge_db, pg_server):
    (df,) = chunks(edge_db, pg_server, "odd", columns=["id", "flag", "ts"], chunk_rows=10)
    assert df["flag"].tolist()[0] is True or bool(df["flag"].tolist()[0]) is True
    assert str(df.loc[0, "ts"]).startswith("2024-01-01 10:00")


def test_unreadable_value_names_table_and_column(edge_db, pg_server):
    q = "SELECT 'infinity'::date AS d"
    with pytest.raises(SourceError, match=r"table t: .*'d'"):
        chunks(edge_db, pg_server, query=q, columns=["d"])


def test_contains_does_not_read_the_table(monkeypatch):
    """`name in book` must not read, convert and validate the table."""
    from postloan.data.contract import ingest

    m = parse_mapping({
        "version": 1, "lender": "t",
        "sources": {"f": {"csv": "/nonexistent"}},
        "tables": {n: {"source": "f", "table": n}
                   for n in ("customers", "loans", "repayments")}})
    calls = []
    monkeypatch.setattr(ingest, "read_canonical", lambda *a, **k: calls.append(a))
    book = MappedBook(m)
    assert "customers" in book and "bureau" not in book
    assert calls == []


def test_stopping_early_stops_the_copy(edge_db, pg_server):
    """A consumer that stops after one chunk (a conversion error) ends the COPY and its
    thread; the next read works."""
    import threading

    source = Source(url=edge_db, chunk_rows=2)
    tm = TableMapping(source="db", table="edge")
    with pg_server.password_env():
        gen = readers.read_chunks(source, tm, COLS, "t")
        first = next(gen)
        gen.close()
        assert len(first) == 2
        assert not [t for t in threading.enumerate() if t.name == "postloan-copy"]
        again = list(readers.read_chunks(source, tm, COLS, "t"))
    assert sum(len(c) for c in again) == 13


def test_write_tables_does_not_validate_a_mapped_book_twice(monkeypatch, tmp_path, small_tables):
    """A MappedBook's tables were validated by read_canonical; write_tables trusts that
    for the same vocabularies, and validates anything else."""
    from postloan.data import io
    from postloan.data import schema as S

    calls = []
    real = S.validate_table
    monkeypatch.setattr(S, "validate_table", lambda n, *a, **k: calls.append(n) or real(n, *a, **k))

    class Book(dict):
        validated_vocabularies = S.resolve_vocabularies(None)

    io.write_tables(Book(small_tables), tmp_path / "a")
    assert calls == []
    io.write_tables(dict(small_tables), tmp_path / "b")
    assert set(calls) == set(small_tables)
    Book.validated_vocabularies = S.resolve_vocabularies({"region": ["a", "b"]})
    calls.clear()
    io.write_tables(Book(small_tables), tmp_path / "c")
    assert set(calls) == set(small_tables)


@pytest.mark.parametrize("tail", [";", " ;\n", "\n-- the lender's note", "\n"])
def test_query_ending_with_semicolon_or_comment(edge_db, pg_server, tail):
    q = "SELECT id, txt FROM edge ORDER BY id" + tail
    (df,) = chunks(edge_db, pg_server, query=q, columns=["id"], chunk_rows=100)
    assert df["id"].tolist() == list(range(1, 14))


def test_percent_signs_reach_the_server_unchanged(edge_db, pg_server, monkeypatch):
    """A query is sent as written (it used to arrive with every '%' quadrupled)."""
    q = "SELECT id, '%' AS p, '100%%' AS pp, 'a%%b%' AS q FROM edge WHERE id = 1"
    (a,) = chunks(edge_db, pg_server, query=q, columns=["id"])
    (b,) = chunks(edge_db, pg_server, query=q, columns=["id"], copy=False,
                  monkeypatch=monkeypatch)
    assert a[["p", "pp", "q"]].iloc[0].tolist() == ["%", "100%%", "a%%b%"]
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------- Arrow reader
# With the ADBC PostgreSQL driver installed (a project dependency), a result of plain
# types is read through it (binary COPY into Arrow); COPY-as-CSV is the fallback. Both
# must give the same DataFrames, chunk for chunk.
def csv_chunks(url: str, pg_server, monkeypatch, **kw) -> list[pd.DataFrame]:
    """The same read with the Arrow reader ruled out (the COPY-as-CSV path)."""
    with monkeypatch.context() as m:
        m.setattr(readers, "_ARROW_OIDS", frozenset())
        return chunks(url, pg_server, **kw)


@pytest.mark.parametrize("chunk_rows", [4, 5, 100])
def test_arrow_chunks_equal_csv_chunks(edge_db, pg_server, monkeypatch, caplog, chunk_rows):
    import logging

    with caplog.at_level(logging.DEBUG, logger="postloan.data.contract.readers"):
        via_arrow = chunks(edge_db, pg_server, "edge", columns=COLS, chunk_rows=chunk_rows)
    assert "read through the ADBC driver" in caplog.text
    via_csv = csv_chunks(edge_db, pg_server, monkeypatch, table="edge", columns=COLS,
                         chunk_rows=chunk_rows)
    assert [len(c) for c in via_arrow] == [len(c) for c in via_csv]
    for a, b in zip(via_arrow, via_csv, strict=True):
        pd.testing.assert_frame_equal(a, b, check_dtype=True)
    whole = pd.concat(via_arrow, ignore_index=True)
    import math

    assert math.isnan(whole.loc[2, "amount"]) and whole.loc[3, "amount"] == math.inf
    assert whole.loc[4, "amount"] == -math.inf and whole.loc[1, "txt"] == ""


def test_float4_is_read_as_its_text(edge_db, pg_server, monkeypatch):
    """A `real` column keeps the CSV path: 0.1 stays 0.1, not the widened float32."""
    q = "SELECT 1 AS id, 0.1::real AS x"
    (a,) = chunks(edge_db, pg_server, query=q, columns=["id"])
    assert a.loc[0, "x"] == 0.1


def test_fallback_when_the_driver_is_not_installed(edge_db, pg_server, monkeypatch, caplog):
    import logging
    import sys

    with monkeypatch.context() as m, caplog.at_level(logging.DEBUG,
                                                      logger="postloan.data.contract.readers"):
        m.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)  # import fails
        got = chunks(edge_db, pg_server, "edge", columns=COLS, chunk_rows=5)
    assert "not installed" in caplog.text and "ADBC driver" not in caplog.text
    want = csv_chunks(edge_db, pg_server, monkeypatch, table="edge", columns=COLS,
                      chunk_rows=5)
    for a, b in zip(got, want, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_fallback_when_the_arrow_reader_cannot_connect(edge_db, pg_server, monkeypatch,
                                                       caplog):
    """A loader role allowed one connection: the Arrow reader's second connection is
    refused by the server, the table is read as COPY CSV on the first, with a warning."""
    import logging

    from sqlalchemy.engine import make_url

    pg_server.execute("DROP ROLE IF EXISTS one_conn; CREATE ROLE one_conn LOGIN "
                      "PASSWORD 'one-pw' CONNECTION LIMIT 1", "edge")
    pg_server.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO one_conn", "edge")
    url = make_url(edge_db).set(username="one_conn").render_as_string(hide_password=False)
    source = Source(url=url, chunk_rows=5)
    tm = TableMapping(source="db", table="edge")
    monkeypatch.setenv("PGPASSWORD", "one-pw")
    with caplog.at_level(logging.WARNING, logger="postloan.data.contract.readers"):
        got = list(readers.read_chunks(source, tm, COLS, "t"))
    assert "the Arrow reader failed" in caplog.text and "too many connections" in caplog.text
    assert "one-pw" not in caplog.text
    monkeypatch.delenv("PGPASSWORD")
    want = csv_chunks(edge_db, pg_server, monkeypatch, table="edge", columns=COLS,
                      chunk_rows=5)
    for a, b in zip(got, want, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_numeric_reads_as_the_same_doubles(edge_db, pg_server, monkeypatch):
    """NUMERIC is cast to float8 by the server on the Arrow path, parsed from text by
    pyarrow on the CSV path: the same nearest doubles, over many digits and scales."""
    import random

    import sqlalchemy as sa

    rng = random.Random(20)
    vals = ["0", "-0", "0.1", "0.3", "1e-20", "123456789012345678901234567890.123456789",
            "9007199254740993", "2.675", "1.0000000000000002220446049250313"]
    for _ in range(3000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30)))
        cut = rng.randint(0, len(digits))
        vals.append(("-" if rng.random() < 0.3 else "") + (digits[:cut] or "0") + "."
                    + (digits[cut:] or "0"))
    with pg_server.password_env():
        engine = sa.create_engine(edge_db)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS nums; CREATE TABLE nums "
                                 "(i integer, n numeric, m numeric(40,0))")
            conn.exec_driver_sql("INSERT INTO nums VALUES " + ", ".join(
                f"({i}, '{v}', round('{v}'::numeric))" for i, v in enumerate(vals)))
        engine.dispose()
    q = "SELECT i, n, m FROM nums ORDER BY i"
    a = chunks(edge_db, pg_server, query=q, columns=["i"], chunk_rows=1000)
    b = csv_chunks(edge_db, pg_server, monkeypatch, query=q, columns=["i"], chunk_rows=1000)
    assert len(a) == len(b) == 4
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y, check_exact=True)
        assert (x["n"].to_numpy().view("int64") == y["n"].to_numpy().view("int64")).all()
