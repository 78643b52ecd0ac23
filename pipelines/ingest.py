"""Ingest a lender's book through its source mapping, and profile a book against the
contract (``postloan ingest`` and ``postloan check-data``)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipelines.console import err_console
from postloan.data import io
from postloan.data.contract import DISABLES, MappedBook, absent_tables, ingest_meta, load_mapping
from postloan.data.contract.ingest import read_canonical
from postloan.data.contract.mapping import CORE_TABLES, MAPPABLE_TABLES, OPTIONAL_TABLES
from postloan.data.contract.money import money_check
from postloan.data.contract.profile import (
    TableProfile,
    absent_profile,
    error_profile,
    profile_table,
    render_html,
)
from postloan.errors import DataValidationError, SourceError

log = logging.getLogger(__name__)


@contextmanager
def _row_progress(names: list[str]):
    """One line per table counting source rows read (totals are unknown while streaming)."""
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"),
                  TextColumn("{task.fields[rows]:>12,} rows"), TimeElapsedColumn(),
                  console=err_console, transient=False) as prog:
        tasks = {n: prog.add_task(n, total=None, rows=0, start=False) for n in names}

        def update(name: str, rows: int) -> None:
            prog.start_task(tasks[name])
            prog.update(tasks[name], rows=rows)

        yield update


def run_ingest(mapping_path: Path, out: Path, partitions: int | None = None,
               overwrite: bool = False) -> dict:
    """Read every mapped table, convert, validate and write the canonical book.

    The book (plain, or partitioned with `partitions`) appears only once every table has
    passed; any error leaves nothing (or the previous book) at `out`.

    Returns:
        The manifest written.
    """
    mapping = load_mapping(mapping_path)
    names = [t for t in MAPPABLE_TABLES if t in mapping.tables]
    with _row_progress(names) as update:
        book = MappedBook(mapping, progress=update)
        # The sources entry fills in as each table is read; the writers put `meta` into
        # the manifest only after the last table.
        meta = {**ingest_meta(mapping, book), "mapping_file": Path(mapping_path).name}
        # The writers record the lender's vocabularies and the absent optional tables in
        # the manifest (one source of truth for every book, ingested or simulated).
        vocab = mapping.vocabularies or None
        try:
            if partitions:
                from postloan.scale.partitions import write_partitioned_book

                return write_partitioned_book(book, out, partitions,
                                              meta={**meta, "vocabularies": vocab},
                                              overwrite=overwrite, consume=True)
            return io.write_tables(book, out, meta=meta, overwrite=overwrite, consume=True,
                                   vocabularies=vocab)
        finally:
            book.close()  # a table read ahead and never asked for (a failed write)


def profile_book(data: Path) -> tuple[list[TableProfile], str, dict]:
    """Profile every table of a book folder (plain layout) against its manifest's
    vocabularies (the schema's by default).

    Returns:
        The table profiles, a title, and the money report (medians and scale warnings
        for the currency the manifest records, :mod:`postloan.data.contract.money`).
    """
    import pyarrow.parquet as pq

    data = Path(data)
    if not data.is_dir():
        raise DataValidationError("book", f"data folder not found: {data}")
    manifest = io.read_manifest(data)
    if manifest.get("layout"):
        raise DataValidationError("book", f"{data} is a partitioned book; check the plain "
                                  "book it was made from (or `--source` the mapping)")
    vocab = manifest.get("vocabularies") or {}
    declared_absent = set(manifest.get("absent_tables") or [])
    money = money_check(manifest)
    profiles = []
    for name in (*CORE_TABLES, *OPTIONAL_TABLES):
        path = data / f"{name}.parquet"
        # The rule of io.read_tables (snapshot, train, score): an optional table is absent
        # only when the manifest declares it so; a file missing without that declaration,
        # or present despite it, is an error.
        if not path.exists():
            if name in CORE_TABLES:
                profiles.append(error_profile(name, f"core table missing: {path.name}"))
            elif name in declared_absent:
                profiles.append(absent_profile(name, DISABLES[name]))
            elif name != "customers_pii":  # never read by snapshot, train or score
                profiles.append(error_profile(
                    name, f"file not found: {path.name} (the table is not declared absent "
                    "in manifest.json's absent_tables; snapshot, train and score refuse "
                    "the book)"))
            continue
        if name in declared_absent:
            profiles.append(error_profile(name, "manifest.json declares the table absent "
                                          f"but its file exists: {path.name}"))
            continue
        try:
            df = pq.read_table(path).to_pandas()
        except Exception as e:  # pyarrow raises several types for corrupt files
            profiles.append(error_profile(name, f"unreadable parquet file: {e}"))
            continue
        p = profile_table(name, df, vocab)
        money.add(name, df)
        want = manifest.get("tables", {}).get(name, {}).get("rows")
        if want is not None and want != len(df):
            from postloan.data.contract.profile import Violation

            p.violations.append(Violation(name, None, f"row count {len(df)} differs from "
                                          f"manifest.json ({want})", abs(want - len(df))))
            p.status = "violations"
        profiles.append(p)
    return profiles, f"data profile of {data}", money.report


def profile_source(mapping_path: Path) -> tuple[list[TableProfile], str, dict]:
    """Read every mapped table through the mapping and profile the converted rows.

    A table whose source cannot be read or whose values cannot be converted is reported
    with that error; the other tables are still profiled.

    Returns:
        As :func:`profile_book`, for the mapping's declared currency and money unit.
    """
    mapping = load_mapping(mapping_path)
    money = money_check(mapping)
    vocab = mapping.effective_vocabularies()
    profiles = []
    names = [t for t in MAPPABLE_TABLES if t in mapping.tables]
    with _row_progress(names) as update:
        for name in MAPPABLE_TABLES:
            if name not in mapping.tables:
                if name in absent_tables(mapping):
                    profiles.append(absent_profile(name, DISABLES[name]))
                continue
            try:
                df = read_canonical(mapping, name, update, validate=False)
            except (DataValidationError, SourceError) as e:
                profiles.append(error_profile(name, str(e)))
                continue
            p = profile_table(name, df, vocab)
            p.source = df.attrs.get("source", "")
            money.add(name, df)
            profiles.append(p)
    return (profiles, f"data profile of {mapping.lender} ({Path(mapping_path).name})",
            money.report)


def write_profile(profiles: list[TableProfile], title: str, out: Path,
                  money: dict | None = None) -> Path:
    """Write the HTML data profile atomically."""
    return io.write_text_atomic(render_html(profiles, title, money), out)
