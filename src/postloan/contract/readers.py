"""Read a lender's source tables in chunks: SQL databases, DuckDB, CSV and parquet folders.

Every reader yields DataFrames of at most ``chunk_rows`` source rows, so memory is
bounded by a chunk, not the table: PostgreSQL through a server-side cursor
(SQLAlchemy ``stream_results``), CSV through pandas' chunked reader, parquet through
pyarrow record batches, DuckDB through its record-batch reader.

Credentials come from the environment (``PGPASSWORD``, ``~/.pgpass`` read by libpq, or a
URL in the variable named by ``url_env``). A URL is only ever shown masked
(:func:`mask_url`) and a password is scrubbed from every error text.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from postloan.contract.mapping import Source, TableMapping
from postloan.database import mask_url
from postloan.errors import DataValidationError, SourceError

log = logging.getLogger(__name__)

# PostgreSQL's SQLSTATE for a query cancelled by statement_timeout.
_QUERY_CANCELED = "57014"


def _secrets(url: str | None) -> list[str]:
    out = [os.environ.get("PGPASSWORD", "")]
    if url:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            out.append(make_url(url).password or "")
        except ArgumentError:
            pass
    return [s for s in out if s]


def scrub(text: str, url: str | None = None) -> str:
    """`text` with any password (of `url` or ``PGPASSWORD``) replaced by ``***``."""
    for s in _secrets(url):
        text = text.replace(s, "***")
    return text


def describe(source: Source, tm: TableMapping, source_name: str) -> str:
    """How a table's source is named in messages and the manifest (URL masked)."""
    what = tm.table if tm.table is not None else "query"
    if source.kind == "sql":
        where = (mask_url(source.url) if source.url is not None
                 else f"${{{source.url_env}}}")
        schema = f"{source.db_schema}." if source.db_schema and tm.table else ""
        return f"'{source_name}': {schema}{what} at {where}"
    folder = source.duckdb or source.csv or source.parquet
    return f"'{source_name}': {what} in {folder}"


def read_chunks(source: Source, tm: TableMapping, columns: Sequence[str], label: str
                ) -> Iterator[pd.DataFrame]:
    """Yield the source rows of one table in chunks of at most ``source.chunk_rows``.

    Args:
        source: the source declared in the mapping.
        tm: the table's mapping (``table`` or ``query``).
        columns: source columns to read (a query returns what it selects).
        label: how errors name the table (see :func:`describe`).

    Raises:
        SourceError: the source cannot be reached or read (refused connection, wrong
            password, missing table or file, statement timeout).
        DataValidationError: a named column does not exist in the source table.
    """
    kind = source.kind
    if kind == "sql":
        yield from _read_sql(source, tm, list(columns), label)
    elif kind == "duckdb":
        yield from _read_duckdb(source, tm, list(columns), label)
    elif kind == "csv":
        yield from _read_csv(source, tm, list(columns), label)
    else:
        yield from _read_parquet(source, tm, list(columns), label)


def _missing_columns(label: str, have: Sequence[str], want: Sequence[str]) -> None:
    missing = [c for c in want if c not in have]
    if missing:
        raise DataValidationError(
            label, f"source column(s) {missing} not found; the source has {list(have)}",
            missing[0])


# --------------------------------------------------------------------------- SQL
def sql_engine(source: Source):
    """A SQLAlchemy engine for a SQL source (psycopg 3 for PostgreSQL, no pool).

    The statement timeout is set per session through libpq's ``options``, so it bounds
    every query the ingest sends.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = make_url(source.resolved_url())
    connect_args: dict = {}
    if url.get_backend_name() == "postgresql":
        if url.get_driver_name() != "psycopg":
            url = url.set(drivername="postgresql+psycopg")
        if source.statement_timeout_s is not None:
            ms = int(source.statement_timeout_s * 1000)
            connect_args["options"] = f"-c statement_timeout={ms}"
        connect_args["application_name"] = "postloan-ingest"
    elif source.statement_timeout_s is not None:
        log.warning("statement_timeout_s is applied on PostgreSQL only; ignored for %s",
                    url.get_backend_name())
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    if url.get_backend_name() == "postgresql":
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _numeric_as_float(dbapi_conn, _record) -> None:
            # NUMERIC arrives as float (the nearest double, as float(Decimal) would give)
            # straight from psycopg's C loader: a Decimal object per money value costs
            # more than the rest of the read, and every canonical number is a float.
            from psycopg.types.numeric import FloatLoader

            dbapi_conn.adapters.register_loader("numeric", FloatLoader)

    return engine


def _db_error(e: Exception, source: Source, label: str) -> SourceError:
    url = source.url if source.url is not None else os.environ.get(source.url_env or "")
    orig = getattr(e, "orig", None) or e
    detail = scrub(str(orig).strip().splitlines()[0] if str(orig).strip() else repr(orig), url)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == _QUERY_CANCELED:
        return SourceError(f"table {label}: the query exceeded the statement timeout of "
                           f"{source.statement_timeout_s:g} s (statement_timeout_s); "
                           f"the server said: {detail}")
    operational = type(orig).__name__ == "OperationalError" or type(e).__name__ == \
        "OperationalError"
    if (operational and sqlstate is None) or (sqlstate or "").startswith(("08", "28")):
        # Class 08: connection exception; 28: invalid authorization (wrong password).
        return SourceError(f"table {label}: cannot connect to the database: {detail} "
                           "(credentials come from PGPASSWORD, ~/.pgpass or url_env)")
    return SourceError(f"table {label}: the database refused the read: {detail}")


def _read_sql(source: Source, tm: TableMapping, columns: list[str], label: str
              ) -> Iterator[pd.DataFrame]:
    from sqlalchemy import column, inspect, select, table, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = sql_engine(source)
    try:
        with engine.connect() as conn:
            if tm.table is not None:
                insp = inspect(conn)
                if not insp.has_table(tm.table, schema=source.db_schema):
                    names = sorted(insp.get_table_names(schema=source.db_schema))
                    raise SourceError(f"table {label}: not found in the database; tables "
                                      f"in schema {source.db_schema or '(default)'}: "
                                      f"{names[:30]}")
                have = [c["name"] for c in insp.get_columns(tm.table, schema=source.db_schema)]
                _missing_columns(label, have, columns)
                stmt = select(*[column(c) for c in columns]).select_from(
                    table(tm.table, schema=source.db_schema))
            else:
                stmt = text(tm.query)
            if engine.dialect.driver == "psycopg":
                yield from _psycopg_chunks(conn, stmt, source.chunk_rows, columns, label,
                                           check=tm.query is not None)
                return
            # Any other dialect: SQLAlchemy's server-side cursor (yield_per implies
            # stream_results) where the driver has one.
            result = conn.execution_options(yield_per=source.chunk_rows).execute(stmt)
            keys = list(result.keys())
            if tm.query is not None:
                _missing_columns(label, keys, columns)
            for part in result.partitions(source.chunk_rows):
                yield pd.DataFrame.from_records([tuple(r) for r in part], columns=keys)
    except SQLAlchemyError as e:
        raise _db_error(e, source, label) from None
    except Exception as e:
        import psycopg

        if isinstance(e, psycopg.Error):
            raise _db_error(e, source, label) from None
        raise
    finally:
        engine.dispose()


def _psycopg_chunks(conn, stmt, chunk_rows: int, columns: list[str], label: str,
                    check: bool) -> Iterator[pd.DataFrame]:
    """Stream a statement through a psycopg named (server-side) cursor.

    Plain tuples straight from psycopg: SQLAlchemy's Row objects cost more per row than
    the fetch itself. Each ``fetchmany`` is one ``FETCH FORWARD chunk_rows``.
    """
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    raw = conn.connection.driver_connection
    with raw.cursor(name="postloan_ingest") as cur:
        cur.itersize = chunk_rows
        cur.execute(sql.replace("%", "%%") if "%" in sql else sql)
        keys = [d.name for d in cur.description]
        if check:
            _missing_columns(label, keys, columns)
        while rows := cur.fetchmany(chunk_rows):
            yield pd.DataFrame.from_records(rows, columns=keys)


# --------------------------------------------------------------------------- DuckDB
def _read_duckdb(source: Source, tm: TableMapping, columns: list[str], label: str
                 ) -> Iterator[pd.DataFrame]:
    try:
        import duckdb
    except ImportError:
        raise SourceError(f"table {label}: a DuckDB source needs the duckdb package "
                          "(pip install 'postloan[duckdb]')") from None
    path = Path(source.duckdb)
    if not path.exists():
        raise SourceError(f"table {label}: DuckDB file not found: {path}")
    con = duckdb.connect(str(path), read_only=True)
    try:
        if tm.table is not None:
            ref = ".".join(f'"{p}"' for p in ([source.db_schema] if source.db_schema else [])
                           + [tm.table])
            try:
                have = [r[0] for r in con.execute(f"DESCRIBE {ref}").fetchall()]
            except duckdb.Error as e:
                raise SourceError(f"table {label}: not found: {str(e).splitlines()[0]}") from None
            _missing_columns(label, have, columns)
            sql = "SELECT " + ", ".join(f'"{c}"' for c in columns) + f" FROM {ref}"
        else:
            sql = tm.query
        try:
            rel = con.sql(sql)
            # duckdb >= 1.4 names it to_arrow_reader; older releases fetch_record_batch.
            reader = (rel.to_arrow_reader(source.chunk_rows) if hasattr(rel, "to_arrow_reader")
                      else rel.fetch_record_batch(source.chunk_rows))
            first = True
            for batch in reader:
                df = batch.to_pandas()
                if first and tm.query is not None:
                    _missing_columns(label, list(df.columns), columns)
                first = False
                yield df
        except duckdb.Error as e:
            raise SourceError(f"table {label}: the query failed: {str(e).splitlines()[0]}"
                              ) from None
    finally:
        con.close()


# --------------------------------------------------------------------------- files
def _file(folder: Path, name: str, suffix: str, label: str) -> Path:
    path = Path(folder) / (name if name.endswith(suffix) else name + suffix)
    if not path.is_file():
        raise SourceError(f"table {label}: file not found: {path}")
    return path


def _read_csv(source: Source, tm: TableMapping, columns: list[str], label: str
              ) -> Iterator[pd.DataFrame]:
    path = _file(source.csv, tm.table, ".csv", label)
    # Everything as text: zero-padded codes keep their zeros; the mapping's casts decide.
    opts = dict(dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    try:
        header = list(pd.read_csv(path, nrows=0, **opts).columns)
        _missing_columns(label, header, columns)
        yield from pd.read_csv(path, usecols=columns, chunksize=source.chunk_rows, **opts)
    except (UnicodeDecodeError, pd.errors.ParserError) as e:
        raise SourceError(f"table {label}: unreadable CSV {path}: {e}") from None


def _read_parquet(source: Source, tm: TableMapping, columns: list[str], label: str
                  ) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _file(source.parquet, tm.table, ".parquet", label)
    try:
        f = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        raise SourceError(f"table {label}: unreadable parquet file {path}: {e}") from None
    _missing_columns(label, f.schema_arrow.names, columns)
    for batch in f.iter_batches(batch_size=source.chunk_rows, columns=columns):
        yield batch.to_pandas()
