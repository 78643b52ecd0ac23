"""The partitioned book: layout, the customer -> partition hash, reading and writing.

A *partitioned book* holds every customer-keyed table as ``<table>/part-XXXXX.parquet``
(customers assigned by a stable hash of ``customer_id``, so a customer never straddles
partitions), the region-keyed ``macro`` table whole, and a ``manifest.json`` listing
every part and its row count. :func:`read_partition` returns partition *k* as the same
dict of validated tables :func:`postloan.data.io.read_tables` returns. Outputs are staged in
a temporary sibling folder and swapped in only when complete (:func:`_staging`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from postloan.data import io
from postloan.data import schema as S
from postloan.errors import DataValidationError, EngineError, PostloanError

LAYOUT = "postloan-partitioned-book/1"
WHOLE_TABLES = frozenset(n for n, t in S.TABLES.items() if "customer_id" not in t.column_names)
# PII stays in the source book: no scoring or training step reads it.
SKIP_TABLES = frozenset({"customers_pii"})
_MIX = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio (Fibonacci hashing)


# --------------------------------------------------------------------------- layout
def partition_of(customer_id: Iterable[int] | pd.Series | np.ndarray,
                 n_partitions: int) -> np.ndarray:
    """Partition index (0..n-1) of each customer id: stable across runs and machines.

    Fibonacci hashing (multiply by 2^64/phi modulo 2^64, keep the high bits mixed in),
    never Python's salted ``hash()``; a different multiplier than
    :func:`postloan.models.training.validation_customers`, so partitions are not aligned with
    the validation hold-out.
    """
    if n_partitions < 1:
        raise EngineError(f"the number of partitions must be >= 1, got {n_partitions}")
    ids = np.asarray(customer_id).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = ids * _MIX
    h ^= h >> np.uint64(29)
    return (h % np.uint64(n_partitions)).astype(np.int64)


def part_name(k: int) -> str:
    return f"part-{k:05d}.parquet"


def is_partitioned(book: Path) -> bool:
    """Whether `book` is a partitioned book (see the module docstring)."""
    return io.read_manifest(Path(book)).get("layout") == LAYOUT if Path(book).is_dir() else False


def book_manifest(book: Path) -> dict:
    """The manifest of a partitioned book, with a clear error when it is not one."""
    book = Path(book)
    if not book.is_dir():
        raise DataValidationError("book", f"data folder not found: {book}")
    manifest = io.read_manifest(book)
    if manifest.get("layout") != LAYOUT:
        raise EngineError(
            f"{book} is not a partitioned book; the partition engines need one. Create it "
            f"with `postloan partition --data {book} --out <folder> --partitions N` (or "
            "`postloan generate --partitions N`), or pass `--partitions N` to partition "
            "it on the fly")
    return manifest


def _write_partitioned_table(name: str, df: pd.DataFrame, tmp: Path, n: int,
                             vocabularies: dict | None = None) -> dict:
    df = S.validate_table(name, df, vocabularies)
    if name in WHOLE_TABLES:
        arrow = io._to_arrow(name, df)
        pq.write_table(arrow, tmp / f"{name}.parquet", compression="zstd")
        return {"file": f"{name}.parquet", "rows": int(arrow.num_rows),
                "sha256": io.file_sha256(tmp / f"{name}.parquet")}
    part = partition_of(df["customer_id"].to_numpy(), n)
    order = np.argsort(part, kind="stable")  # keeps each partition's rows in book order
    bounds = np.searchsorted(part[order], np.arange(n + 1))
    (tmp / name).mkdir()
    rows, digests = [], []
    for k in range(n):
        sub = df.iloc[order[bounds[k]:bounds[k + 1]]]
        path = tmp / name / part_name(k)
        pq.write_table(io._to_arrow(name, sub), path, compression="zstd")
        rows.append(int(len(sub)))
        digests.append(io.file_sha256(path))
    return {"folder": name, "rows": int(sum(rows)), "part_rows": rows, "part_sha256": digests}


def write_partitioned_book(tables: dict[str, pd.DataFrame], out_dir: Path, n_partitions: int,
                           meta: dict | None = None, overwrite: bool = False,
                           consume: bool = False) -> dict:
    """Validate in-memory tables and write them as a partitioned book, atomically.

    Args:
        tables: tables keyed by schema name (``customers_pii`` is left out).
        out_dir: destination folder; it appears only once every part is written.
        n_partitions: number of customer partitions.
        meta: extra manifest fields (seed, dates, source hash).
        overwrite: replace an existing non-empty folder.
        consume: drop each table from `tables` once written (bounds peak memory).

    Returns:
        The manifest written.
    """
    return _write_book(((n, (tables.pop(n) if consume else tables[n]))
                        for n in list(tables) if n not in SKIP_TABLES),
                       out_dir, n_partitions, meta, overwrite)


def partition_book(src_dir: Path, out_dir: Path, n_partitions: int,
                   overwrite: bool = False) -> dict:
    """Split an ordinary book folder into a partitioned book, one table in memory at a time.

    Raises:
        DataValidationError: a source table is missing or breaks the schema.
    """
    src_dir = Path(src_dir)
    src = io.read_manifest(src_dir)
    absent = io.absent_tables(src)
    names = [n for n in src.get("tables", {}) if n not in SKIP_TABLES] or list(S.REQUIRED_TABLES)
    for n in S.REQUIRED_TABLES:
        if n not in names and n not in absent:
            names.append(n)
    meta = {k: v for k, v in src.items() if k not in ("tables", "content_hash")}
    meta["source_content_hash"] = src.get("content_hash")
    return _write_book(((n, io.read_tables(src_dir, [n])[n]) for n in names), out_dir,
                       n_partitions, meta, overwrite)


def _write_book(items: Iterable[tuple[str, pd.DataFrame]], out_dir: Path, n: int,
                meta: dict | None, overwrite: bool) -> dict:
    if n < 1:
        raise EngineError(f"the number of partitions must be >= 1, got {n}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise PostloanError(f"output folder {out_dir} exists and is not empty; "
                            "pass --overwrite to replace it")
    meta = dict(meta or {})
    vocab = S.resolve_vocabularies(meta.pop("vocabularies", None))
    with _staging(out_dir) as tmp:
        entries, book_range = {}, None
        for name, df in items:
            if name == "repayments":
                d = df["statement_date"]
                book_range = [str(pd.Timestamp(d.min()).date()), str(pd.Timestamp(d.max()).date())]
            entries[name] = _write_partitioned_table(name, df, tmp, n, vocab)
            del df
        missing = [t for t in S.CORE_TABLES if t not in entries]
        if missing:
            raise DataValidationError("book", f"required tables missing: {missing}")
        # Optional tables not written are absent (customers_pii stays in the source book).
        meta["absent_tables"] = [t for t in S.OPTIONAL_TABLES if t not in entries]
        meta["vocabularies"] = {k: list(v) for k, v in vocab.items()}
        digest = hashlib.sha256(json.dumps(
            {k: v.get("sha256") or v["part_sha256"] for k, v in sorted(entries.items())}
        ).encode()).hexdigest()
        manifest = {**(meta or {}), "layout": LAYOUT, "n_partitions": n, "tables": entries,
                    "book_range": book_range, "partition_hash": "fibonacci-64/customer_id",
                    "content_hash": digest}
        io.write_json_atomic(manifest, tmp / io.MANIFEST)
    return manifest


def read_partition(book: Path, k: int, names: Sequence[str] = S.REQUIRED_TABLES,
                   manifest: dict | None = None) -> dict[str, pd.DataFrame]:
    """Partition `k` of a partitioned book as validated tables (plus ``macro`` whole).

    The repayments table carries the whole book's statement range (see
    :func:`postloan.data.snapshot.data_range`), so snapshots and labels of a partition equal
    the same customers' rows of the whole book's snapshot.

    Raises:
        DataValidationError: a part is missing, unreadable, breaks the schema or its row
            count differs from the manifest.
    """
    book = Path(book)
    manifest = manifest or book_manifest(book)
    n = manifest["n_partitions"]
    if not 0 <= k < n:
        raise EngineError(f"partition {k} does not exist (the book has {n})")
    absent = set(io.absent_tables(manifest))
    vocab = io.book_vocabularies(manifest)
    out = {}
    for name in names:
        entry = manifest["tables"].get(name)
        if entry is None and name in absent:
            continue  # an optional table the book does not hold (see io.read_tables)
        if entry is None:
            raise DataValidationError(name, f"table missing from the partitioned book {book}")
        if "file" in entry:
            out[name] = io.read_table(book, name, vocabularies=vocab)
            continue
        path = book / entry["folder"] / part_name(k)
        if not path.is_file():
            raise DataValidationError(name, f"partition {k} is missing: {path} not found")
        try:
            df = pq.read_table(path).to_pandas()
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise DataValidationError(name, f"unreadable part {path}: {e}") from e
        df = S.validate_table(name, df, vocab)
        want = entry["part_rows"][k]
        if len(df) != want:
            raise DataValidationError(name, f"partition {k} has {len(df)} rows, manifest.json "
                                      f"says {want}: the file changed after it was written")
        out[name] = df
    if "repayments" in out and manifest.get("book_range"):
        out["repayments"].attrs["book_range"] = tuple(manifest["book_range"])
    return out


# --------------------------------------------------------------------------- outputs
@contextlib.contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    """A temporary sibling folder swapped in for `out_dir` only if the block succeeds."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        yield tmp
        io._swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_staging(tmp: str | Path) -> Path:
    """The run's staging folder; gone means the run failed or was cancelled meanwhile.

    A task still running when another partition fails must not recreate the folder
    the failed run removed (Dask cannot interrupt a running task).
    """
    tmp = Path(tmp)
    if not tmp.is_dir():
        raise EngineError(f"staging folder {tmp} is gone: the run was cancelled")
    return tmp


def read_output(folder: Path) -> pd.DataFrame:
    """Read a partitioned output (a folder of ``part-*.parquet``) as one frame."""
    parts = sorted(Path(folder).glob("part-*.parquet"))
    if not parts:
        raise DataValidationError("output", f"no parts in {folder}")
    return pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
