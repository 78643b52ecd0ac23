"""Read a lender's source tables in chunks: SQL databases, DuckDB, CSV and parquet folders.

Every reader yields DataFrames of at most ``chunk_rows`` source rows, so memory is
bounded by a chunk, not the table: PostgreSQL through the ADBC driver as binary COPY
into Arrow, or, when the driver is missing or cannot connect, as ``COPY ... TO STDOUT``
in CSV parsed by pyarrow (a server-side cursor for column types neither COPY path
reads, and for other databases SQLAlchemy's ``stream_results``), CSV through pandas'
chunked reader,
parquet through pyarrow record batches, DuckDB through its record-batch reader.

Credentials come from the environment (``PGPASSWORD``, ``~/.pgpass`` read by libpq, or a
URL in the variable named by ``url_env``). A URL is only ever shown masked
(:func:`mask_url`) and a password is scrubbed from every error text.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from postloan.data.contract.mapping import Source, TableMapping
from postloan.data.database import mask_url
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

        # The ADBC driver's errors (adbc_driver_manager.Error) carry a SQLSTATE too.
        if isinstance(e, psycopg.Error) or type(e).__module__.startswith("adbc_driver"):
            raise _db_error(e, source, label) from None
        raise
    finally:
        engine.dispose()


# PostgreSQL type OIDs the COPY path reads, and the Arrow type each is parsed as: the
# values psycopg would give (ints, NUMERIC as the nearest double like its FloatLoader,
# text, DATE as datetime.date). A result with any other type is read through the cursor.
_COPY_TYPES = {
    20: "int64", 21: "int64", 23: "int64",          # int8, int2, int4
    700: "float64", 701: "float64", 1700: "float64",  # float4, float8, numeric
    25: "string", 1043: "string", 1042: "string", 19: "string",  # text, varchar, char, name
    1082: "date32",                                  # date
}


def _psycopg_chunks(conn, stmt, chunk_rows: int, columns: list[str], label: str,
                    check: bool, copy: bool = True) -> Iterator[pd.DataFrame]:
    """Stream a statement from PostgreSQL in chunks of `chunk_rows` source rows.

    The statement is first declared as a named (server-side) cursor, which describes the
    result without running it. When every result column has a type of
    :data:`_ARROW_OIDS`, the ADBC PostgreSQL driver reads it as binary COPY into Arrow
    (:func:`_arrow_chunks`); else, or without the driver, when every type is in
    :data:`_COPY_TYPES` (and `copy`), the rows stream as ``COPY (statement) TO STDOUT``
    in CSV and each chunk is parsed by pyarrow's CSV reader (:func:`_copy_chunks`):
    no Python object per value either way. Otherwise each ``fetchmany`` is one ``FETCH
    FORWARD chunk_rows`` of plain tuples (SQLAlchemy's Row objects cost more than the
    fetch). All give the same DataFrames (tests/data/test_ingest_copy.py).
    """
    from sqlalchemy.sql.elements import TextClause

    # Sent without parameters, so psycopg passes it on untouched: a lender's query goes
    # as written (compiling it would double every '%', as did an extra escape here).
    sql = (stmt.text if isinstance(stmt, TextClause) else
           str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})))
    raw = conn.connection.driver_connection
    with raw.cursor(name="postloan_ingest") as cur:
        cur.itersize = chunk_rows
        cur.execute(sql)
        keys = [d.name for d in cur.description]
        oids = [d.type_code for d in cur.description]
        if check:
            _missing_columns(label, keys, columns)
        use_copy = copy and all(o in _COPY_TYPES for o in oids) and len(set(keys)) == len(keys)
        if not use_copy:
            while rows := cur.fetchmany(chunk_rows):
                yield pd.DataFrame.from_records(rows, columns=keys)
            return
    types = [_COPY_TYPES[o] for o in oids]
    if all(o in _ARROW_OIDS for o in oids):
        stream = _arrow_stream(raw, _numeric_as_float8(raw, sql, keys, oids), label)
        if stream is not None:
            yield from _arrow_chunks(stream, keys, types, chunk_rows, label)
            return
    yield from _copy_chunks(raw, sql, keys, types, chunk_rows, label)


# The OIDs the Arrow reader (ADBC, binary COPY) reads into exactly the Arrow values the
# CSV path parses: not float4, whose text form ("0.1") is not the double its binary
# value widens to (0.100000001...).
_ARROW_OIDS = frozenset(_COPY_TYPES) - {700}
# Days from 1970-01-01 of 0001-01-01 and 9999-12-31: the dates the CSV path can parse
# (a 5-digit year, BC or +-infinity is an unreadable value there, and here).
_DATE32_RANGE = (-719162, 2932896)


def _numeric_as_float8(raw, sql: str, keys: list[str], oids: list[int]) -> str:
    """The statement with its NUMERIC columns cast to float8 by the server.

    The driver hands NUMERIC over as decimal text it builds itself, which costs more
    than the rest of the read. PostgreSQL's numeric-to-float8 cast formats the value
    as text and parses it with strtod: the nearest double, what the CSV path's parser
    gives for the same text (NaN and +-Infinity included; tests/data/test_ingest_copy.py).
    """
    if 1700 not in oids:
        return sql
    from psycopg import sql as pgsql

    cols = [pgsql.SQL("{0}::float8 AS {0}" if o == 1700 else "{0}").format(
        pgsql.Identifier(k)) for k, o in zip(keys, oids, strict=True)]
    body = sql.rstrip().rstrip(";").rstrip()
    return (pgsql.SQL("SELECT ") + pgsql.SQL(", ").join(cols)).as_string(raw) + \
        f" FROM ({body}\n) AS postloan_source"


def _arrow_stream(raw, sql: str, label: str):
    """The statement's rows as an Arrow record-batch stream read by the ADBC PostgreSQL
    driver (libpq, binary COPY), or None when the COPY-as-CSV path must read them.

    The driver connects with the psycopg connection's own parameters (host, user,
    statement timeout, application name; the password is libpq's as well: PGPASSWORD,
    ~/.pgpass or the URL's). None when the driver is not installed, or when it fails
    before the first row (logged as a warning): the CSV path then reads the table, and
    reports the database's own error if there is one. A statement timeout is raised.
    """
    try:
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError:
        log.debug("adbc-driver-postgresql not installed: %s read as COPY CSV", label)
        return None
    from psycopg.conninfo import make_conninfo

    info = raw.info
    conninfo = make_conninfo(info.dsn, client_encoding="UTF8",
                             **({"password": info.password} if info.password else {}))
    conn = cur = None
    try:
        conn = adbc.connect(conninfo)
        cur = conn.cursor()
        # A query may end with ';' or a -- comment (the driver wraps it in COPY (...)).
        cur.execute(sql.rstrip().rstrip(";").rstrip() + "\n")
        reader = cur.fetch_record_batch()
    except Exception as e:
        for c in (cur, conn):
            if c is not None:
                with contextlib.suppress(Exception):
                    c.close()
        if getattr(e, "sqlstate", None) == _QUERY_CANCELED:
            raise
        log.warning("table %s: the Arrow reader failed (%s); reading it as COPY CSV",
                    label, scrub(str(e).strip().splitlines()[0] if str(e).strip()
                                 else type(e).__name__))
        return None
    return reader, cur, conn


def _arrow_chunks(stream, keys: list[str], types: list[str], chunk_rows: int, label: str
                  ) -> Iterator[pd.DataFrame]:
    """Chunks of exactly `chunk_rows` rows from an ADBC record-batch stream, as the
    DataFrames the CSV path gives (:func:`_arrow_frame`).

    The driver's types are cast to the CSV path's (int2/int4 to int64; NUMERIC, cast
    to float8 by the server, see :func:`_numeric_as_float8`).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    reader, cur, conn = stream
    target = [getattr(pa, t)() for t in types]
    log.debug("table %s: read through the ADBC driver (Arrow)", label)

    def normalise(tbl):
        cols = []
        for i, (k, want) in enumerate(zip(keys, target, strict=True)):
            col = tbl.column(i)
            if isinstance(col.type, pa.ExtensionType):
                col = pa.chunked_array([c.storage for c in col.chunks], col.type.storage_type)
            if want == pa.date32():
                span = pc.min_max(col.cast(pa.int32()))
                lo, hi = span["min"].as_py(), span["max"].as_py()
                if lo is not None and (lo < _DATE32_RANGE[0] or hi > _DATE32_RANGE[1]):
                    raise SourceError(f"table {label}: a value PostgreSQL sent cannot be "
                                      f"read as date32 in column '{k}': a date outside "
                                      "0001-01-01..9999-12-31 (or infinity)")
            if col.type != want:
                col = pc.cast(col, want)
            cols.append(col)
        return pa.Table.from_arrays(cols, names=keys)

    def produce(put: Callable[[pd.DataFrame], None]) -> None:
        pending: list = []
        have = 0
        for batch in reader:
            pending.append(batch)
            have += batch.num_rows
            while have >= chunk_rows:
                tbl = pa.Table.from_batches(pending)
                put(_arrow_frame(normalise(tbl.slice(0, chunk_rows)), keys))
                rest = tbl.slice(chunk_rows)
                pending, have = rest.to_batches(), rest.num_rows
        if have:
            put(_arrow_frame(normalise(pa.Table.from_batches(pending)), keys))

    try:
        yield from _prefetched(produce)
    finally:
        for c in (reader, cur, conn):
            with contextlib.suppress(Exception):
                c.close()


def _arrow_frame(tbl, keys: list[str]) -> pd.DataFrame:
    """A chunk as a DataFrame: strings as pandas' str dtype, ints with NULL as float64
    (NaN), dates as datetime.date objects, a column NULL throughout the chunk as None
    objects: what DataFrame.from_records makes of psycopg's tuples."""
    df = tbl.combine_chunks().to_pandas()
    for k in keys:
        if tbl.num_rows and tbl.column(k).null_count == tbl.num_rows:
            df[k] = pd.Series([None] * tbl.num_rows, index=df.index, dtype=object)
    return df


def _copy_chunks(raw, sql: str, keys: list[str], types: list[str], chunk_rows: int,
                 label: str) -> Iterator[pd.DataFrame]:
    """``COPY (sql) TO STDOUT`` in CSV, parsed by pyarrow in chunks of `chunk_rows` rows.

    The server sends one CopyData message per row, so a chunk is exactly `chunk_rows`
    rows. CSV keeps NULL (an unquoted empty field) apart from the empty string (``""``);
    quotes, commas, newlines and any UTF-8 text inside values are quoted by the server.
    DateStyle ISO and UTF-8 are set for the session so dates and text parse the same
    whatever the server's defaults.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    arrow_types = {k: getattr(pa, t)() for k, t in zip(keys, types, strict=True)}
    read = pcsv.ReadOptions(column_names=keys, encoding="utf8",
                            block_size=64 << 20)
    parse = pcsv.ParseOptions(newlines_in_values=True)
    convert = pcsv.ConvertOptions(column_types=arrow_types, null_values=[""],
                                  strings_can_be_null=True, quoted_strings_can_be_null=False)

    def frame(parts: list) -> pd.DataFrame:
        try:
            tbl = pcsv.read_csv(pa.py_buffer(b"".join(parts)), read_options=read,
                                parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as e:
            raise SourceError(f"table {label}: a value PostgreSQL sent cannot be read as "
                              f"{_column_of(str(e), keys, types)}: {e}") from None
        return _arrow_frame(tbl, keys)

    def produce(put: Callable[[pd.DataFrame], None]) -> None:
        with raw.cursor() as cur:
            cur.execute("SET DateStyle TO ISO")
            cur.execute("SET client_encoding TO 'UTF8'")
            parts: list = []
            # A query may end with ';' or a -- comment: neither may end inside COPY (...).
            body = sql.rstrip().rstrip(";").rstrip()
            with cur.copy(f"COPY ({body}\n) TO STDOUT (FORMAT csv)") as cp:
                for row in cp:
                    parts.append(bytes(row))
                    if len(parts) >= chunk_rows:
                        put(frame(parts))
                        parts = []
            if parts:
                put(frame(parts))

    # The next chunk is fetched and parsed in a thread while the caller converts this
    # one: the socket wait and pyarrow's parser run without the GIL.
    yield from _prefetched(produce)


class _Stop(Exception):
    """The consumer of :func:`_prefetched` went away."""


# Chunks a reader thread may hold ready (about 6 MB each at 100,000 rows): enough to
# keep reading the next table while the ingest validates and writes the one before
# (contract.ingest reads one table ahead); 16 left the reader idle most of that time.
PREFETCH_CHUNKS = 48


def _prefetched(produce: Callable[[Callable[[pd.DataFrame], None]], None],
                depth: int = PREFETCH_CHUNKS) -> Iterator[pd.DataFrame]:
    """Run ``produce(put)`` in a thread and yield what it puts, at most `depth` ahead.

    An exception in the producer is raised here; when the consumer stops early (an
    error converting a chunk), the producer is stopped and joined before returning, so
    the connection it uses is free again.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: object) -> None:
        while True:
            if stop.is_set():
                raise _Stop
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def run() -> None:
        try:
            produce(put)
            put((done, None))
        except _Stop:
            pass
        except BaseException as e:  # handed to the consumer, raised there
            try:
                put((done, e))
            except _Stop:
                pass

    t = threading.Thread(target=run, name="postloan-copy", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if isinstance(item, tuple) and item and item[0] is done:
                if item[1] is not None:
                    raise item[1]
                return
            yield item
    finally:
        stop.set()
        t.join()


def _column_of(message: str, keys: list[str], types: list[str]) -> str:
    """'column x (type)' from pyarrow's "In CSV column #3: ..." message."""
    import re

    m = re.search(r"column #(\d+)", message)
    if m and int(m.group(1)) < len(keys):
        i = int(m.group(1))
        return f"{types[i]} in column '{keys[i]}'"
    return "the column's type"


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
