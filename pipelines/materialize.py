"""Materialise the online snapshot store: every active customer's snapshot, keyed by id."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd

from pipelines.console import progress_bar
from postloan.data import io
from postloan.data.online import SnapshotStore
from postloan.data.snapshot import build_snapshot, parse_as_of


def book_hash(data: Path) -> str:
    """The book's content hash (from its manifest; partitioned books have their own)."""
    from postloan import scale

    manifest = scale.book_manifest(data) if scale.is_partitioned(data) else \
        io.read_manifest(data)
    return str(manifest.get("content_hash", "unknown"))


def build_current_snapshot(data: Path, as_of: str, engine_name: str = "local",
                           scheduler: str | None = None,
                           partitions: int | None = None) -> pd.DataFrame:
    """The as-of snapshot of every active customer, without labels.

    A plain book is read whole; a partitioned book (or ``--engine dask``) goes through
    the partition engine and its parts are read back: the same feature function either
    way, so the store holds the numbers batch scoring would use.
    """
    from pipelines.scale import uses_partitions
    from pipelines.snapshot import run_snapshot_engine
    from postloan import scale

    if not uses_partitions(engine_name, data, partitions):
        return build_snapshot(io.read_tables(data), as_of, with_labels=False)
    tmp = Path(tempfile.mkdtemp(prefix=".materialize-"))
    try:
        run_snapshot_engine(data, [as_of], tmp / "snap", engine_name, scheduler, partitions,
                            with_labels=False)
        return scale.read_output(tmp / "snap")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_materialize(data: Path, as_of: str, store_url: str, table_prefix: str = "postloan_",
                    keep: int = 3, engine_name: str = "local", scheduler: str | None = None,
                    partitions: int | None = None) -> dict:
    """Build the snapshot at `as_of` and write it to the store in one transaction."""
    as_of = parse_as_of(as_of).date().isoformat()
    snap = build_current_snapshot(Path(data), as_of, engine_name, scheduler, partitions)
    store = SnapshotStore(store_url, table_prefix, keep=keep)
    try:
        with progress_bar("writing snapshots to the online store", len(snap)) as advance:
            return store.materialize(snap, book_hash(Path(data)), progress=advance)
    finally:
        store.close()
