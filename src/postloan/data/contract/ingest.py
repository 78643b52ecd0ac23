"""Turn a lender's sources into canonical tables, one table at a time.

:func:`read_canonical` streams one table's source rows in chunks, converts each chunk
(:mod:`postloan.data.contract.convert`) and validates the whole table against the schema
and the lender's vocabularies. :class:`MappedBook` exposes every mapped table as a
lazily read mapping, so :func:`postloan.data.io.write_tables` (and the partitioned-book
writer) pull, validate and write one table before reading the next: peak memory is one
canonical table plus one source chunk, never the whole book or a whole source table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, MutableMapping

import pandas as pd

from postloan.data import schema as S
from postloan.data.contract.convert import (
    Where,
    convert_chunk,
    source_columns,
    source_key_columns,
)
from postloan.data.contract.mapping import MAPPABLE_TABLES, OPTIONAL_TABLES, SourceMapping
from postloan.data.contract.money import money_check
from postloan.data.contract.readers import describe, read_chunks
from postloan.errors import DataValidationError

log = logging.getLogger(__name__)

# What the book loses without each optional table, as a phrase that reads on its own
# after "<table> absent (optional): " (check-data, the ingest summary, the HTML profile).
DISABLES = {
    "activity": "no channel-use features (app logins, inbound calls, branch visits)",
    "interactions": "no service, complaint and collection-contact features; complaints "
                    "no longer count in the dissatisfaction label",
    "surveys": "no survey features (last score, months since survey); survey scores no "
               "longer count in the dissatisfaction label",
    "bureau": "no bureau score, verified income or external-debt features",
    "macro": "no regional unemployment or policy-rate features, market-rate gap or "
             "stress scenarios",
    "customers_pii": "nothing is lost (PII is never a feature; outreach lists carry "
                     "customer ids only)",
}


def absent_tables(mapping: SourceMapping) -> list[str]:
    """Optional tables the mapping does not map (``customers_pii`` excepted: it is never
    part of a scoring book)."""
    return [t for t in OPTIONAL_TABLES if t not in mapping.tables and t != "customers_pii"]


def _rewrap(e: DataValidationError, name: str, where: Where, cols: dict[str, str]
            ) -> DataValidationError:
    col = e.column
    src = cols.get(col or "")
    column = col if src in (None, col) else f"{col} (source column {src})"
    pii = col in S.PII_COLUMNS
    return DataValidationError(where.label(), f"after conversion: {e.rule}", column,
                               None if pii else e.rows)


def _source_chunks(mapping: SourceMapping, name: str) -> Iterator[pd.DataFrame]:
    """The source chunks of one canonical table (not yet converted)."""
    tm = mapping.table(name)
    source = mapping.sources[tm.source]
    label = describe(source, tm, tm.source)
    cols = source_columns(name, tm)
    return read_chunks(source, tm, sorted(set(cols.values())), f"{name} (source {label})")


_END = object()


class _ReadAhead:
    """The next table's source read, begun in a thread while this one is validated and
    written: its connection, first chunk and the reader's prefetched chunks are ready
    when it is asked for (the reader is the slower half of an ingest)."""

    def __init__(self, name: str, chunks: Iterator[pd.DataFrame]) -> None:
        import threading

        self.name, self._chunks = name, chunks
        self._first: object = _END
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, name="postloan-read-ahead",
                                        daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            self._first = next(self._chunks, _END)
        except BaseException as e:  # raised where the table is read
            self._error = e

    def chunks(self) -> Iterator[pd.DataFrame]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._first is not _END:
            yield self._first
            self._first = _END
            yield from self._chunks

    def close(self) -> None:
        """Stop the read (its reader thread and connection) when it is not wanted."""
        import contextlib

        self._thread.join()
        with contextlib.suppress(Exception):  # errors of a read nobody wants any more
            self._chunks.close()


def read_canonical(mapping: SourceMapping, name: str,
                   progress: Callable[[str, int], None] | None = None,
                   validate: bool = True,
                   chunks: Iterator[pd.DataFrame] | None = None) -> pd.DataFrame:
    """Read one canonical table from its source: stream, convert, validate.

    Args:
        mapping: the lender's mapping.
        name: canonical table name (mapped in `mapping`).
        progress: called with (table, source rows read so far) after every chunk.
        validate: check the converted table against the schema (ranges, missing values,
            keys); ``check-data`` profiles it instead, to report every violation.
        chunks: the table's source chunks when their read has begun already
            (:class:`MappedBook` reads one table ahead); read here by default.

    Returns:
        The validated canonical table; ``attrs["source_rows"]`` holds the number of
        source rows read and ``attrs["source"]`` the masked source description.

    Raises:
        DataValidationError: a column is missing, a value cannot be converted, or the
            converted table breaks the contract (ranges, missing values, vocabulary,
            duplicate keys), naming the source table and column.
        SourceError: the source cannot be read.
    """
    tm = mapping.table(name)  # the mapping's money_unit written into money columns
    source = mapping.sources[tm.source]
    label = describe(source, tm, tm.source)
    cols = source_columns(name, tm)
    where = Where(name, label, source_key_columns(name, tm))
    vocab = {c: mapping.vocabulary(c) for c in _category_columns(name)}
    parts, n = [], 0
    for chunk in (chunks if chunks is not None else _source_chunks(mapping, name)):
        parts.append(convert_chunk(chunk, name, tm, Where(name, label, where.key_columns, n),
                                   vocab))
        n += len(chunk)
        del chunk
        if progress:
            progress(name, n)
    df = (pd.concat(parts, ignore_index=True) if parts
          else pd.DataFrame({c: [] for c in S.TABLES[name].column_names}))
    del parts
    if validate:
        try:
            df = _validate(name, df, mapping)
        except DataValidationError as e:
            raise _rewrap(e, name, where, cols) from None
    df.attrs.update(source_rows=n, source=label)
    log.info("read %s: %d source rows from %s", name, n, label)
    return df


def _category_columns(name: str) -> list[str]:
    return [c.name for c in S.TABLES[name].columns if c.kind == "category"]


def _validate(name: str, df: pd.DataFrame, mapping: SourceMapping) -> pd.DataFrame:
    # Vocabularies were checked per chunk against the lender's; the schema's range,
    # missing-value and key rules run here on the whole table, against the same
    # vocabularies (a lender's own regions are not outside the contract).
    return S.validate_table(name, df, S.resolve_vocabularies(mapping.vocabularies))


class MappedBook(MutableMapping):
    """Every mapped table, read from its source only when asked for.

    Hand it to :func:`postloan.data.io.write_tables` with ``consume=True``: each table is read,
    written and dropped before the next is read. ``source_rows`` collects each table's
    source row count and source description for the manifest.
    """

    def __init__(self, mapping: SourceMapping,
                 progress: Callable[[str, int], None] | None = None) -> None:
        self.mapping = mapping
        self.progress = progress
        self._names = [t for t in MAPPABLE_TABLES if t in mapping.tables]
        self._ahead: _ReadAhead | None = None
        self.source_rows: dict[str, dict] = {}
        # Money medians and scale warnings, filled in as each table is read.
        self.money = money_check(mapping)
        # Every table it returns passed validate_table against these vocabularies
        # (write_tables does not validate it again).
        try:
            self.validated_vocabularies = S.resolve_vocabularies(mapping.vocabularies)
        except DataValidationError:
            self.validated_vocabularies = None  # reported where the tables are read

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(name)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.name != name:  # asked out of order: read afresh
            ahead.close()
            ahead = None
        try:
            df = read_canonical(self.mapping, name, self.progress,
                                chunks=ahead.chunks() if ahead is not None else None)
        except BaseException:
            if ahead is not None:  # stopped now, not whenever the garbage collector runs
                ahead.close()
            raise
        # Begin reading the next table while the caller validates and writes this one.
        later = self._names[self._names.index(name) + 1:]
        if later:
            self._ahead = _ReadAhead(later[0], _source_chunks(self.mapping, later[0]))
        self.source_rows[name] = {"source": df.attrs["source"], "rows": df.attrs["source_rows"]}
        self.money.add(name, df)
        return df

    def close(self) -> None:
        """Stop a read begun ahead and not asked for (the write failed)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.close()

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)

    def __setitem__(self, name: str, value: pd.DataFrame) -> None:
        raise TypeError("a MappedBook is read-only")

    def __contains__(self, name: object) -> bool:
        # Mapping's default __contains__ calls __getitem__: it would read, convert and
        # validate the whole table just to answer `name in book` (write_tables asks that
        # for every core and optional table), so each table was read up to three times.
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


def ingest_meta(mapping: SourceMapping, book: MappedBook) -> dict:
    """Manifest fields of an ingested book (call after every table was read)."""
    return {
        "generator": "postloan.data.contract",
        "lender": mapping.lender,
        "mapping_sha256": mapping.fingerprint(),
        "sources": book.source_rows,
        # Filled in as the tables are read (the writers dump the manifest after the last).
        "money": book.money.report,
    }
