"""Scale out: a book split into customer partitions, run locally or on a Dask cluster.

A *partitioned book* holds every customer-keyed table as ``<table>/part-XXXXX.parquet``
(customers assigned by a stable hash of ``customer_id``, so a customer never straddles
partitions), the region-keyed ``macro`` table whole, and a ``manifest.json`` listing
every part and its row count. :func:`read_partition` returns partition *k* as the same
dict of validated tables :func:`postloan.io.read_tables` returns, so
:func:`~postloan.snapshot.build_snapshot`, :func:`~postloan.scoring.score_snapshot` and
:func:`~postloan.strategy.apply_strategy` run on it unchanged.

One function per partition serves both engines: the **local** engine loops over the
partitions (one partition in memory at a time: memory is bounded by the largest
partition, not the book), the **dask** engine submits one task per partition to a
``distributed`` cluster. Every task writes its part into a temporary sibling of the
output folder; the folder and its manifest appear only once every partition has
succeeded (a failed or killed run leaves the previous output, or none).

The few results that need the whole book are computed exactly from small per-partition
pieces: the outreach queue (the global top-k is the top-k of the per-partition top-k
lists, because the queue's order is a total order) and the warning rank inside each
level (a second, cheap pass writes the global rank into every part).

Paths (book, models, outputs) must be visible to every worker: a local disk for a
``LocalCluster``, a shared file system for a remote cluster.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from postloan import io
from postloan import schema as S
from postloan.errors import DataValidationError, EngineError, PostloanError

log = logging.getLogger(__name__)

LAYOUT = "postloan-partitioned-book/1"
ENGINES = ("local", "dask")
WHOLE_TABLES = frozenset(n for n, t in S.TABLES.items() if "customer_id" not in t.column_names)
# PII stays in the source book: no scoring or training step reads it.
SKIP_TABLES = frozenset({"customers_pii"})
SCORE_CHUNK = 20_000  # customers scored per step inside a partition
_MIX = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio (Fibonacci hashing)


# --------------------------------------------------------------------------- layout
def partition_of(customer_id: Iterable[int] | pd.Series | np.ndarray,
                 n_partitions: int) -> np.ndarray:
    """Partition index (0..n-1) of each customer id: stable across runs and machines.

    Fibonacci hashing (multiply by 2^64/phi modulo 2^64, keep the high bits mixed in),
    never Python's salted ``hash()``; a different multiplier than
    :func:`postloan.modeling.validation_customers`, so partitions are not aligned with
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


def _write_partitioned_table(name: str, df: pd.DataFrame, tmp: Path, n: int) -> dict:
    df = S.validate_table(name, df)
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
    names = [n for n in src.get("tables", {}) if n not in SKIP_TABLES] or list(S.REQUIRED_TABLES)
    for n in S.REQUIRED_TABLES:
        if n not in names:
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
    with _staging(out_dir) as tmp:
        entries, book_range = {}, None
        for name, df in items:
            if name == "repayments":
                d = df["statement_date"]
                book_range = [str(pd.Timestamp(d.min()).date()), str(pd.Timestamp(d.max()).date())]
            entries[name] = _write_partitioned_table(name, df, tmp, n)
            del df
        missing = [t for t in S.REQUIRED_TABLES if t not in entries]
        if missing:
            raise DataValidationError("book", f"required tables missing: {missing}")
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
    :func:`postloan.snapshot.data_range`), so snapshots and labels of a partition equal
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
    out = {}
    for name in names:
        entry = manifest["tables"].get(name)
        if entry is None:
            raise DataValidationError(name, f"table missing from the partitioned book {book}")
        if "file" in entry:
            out[name] = io.read_table(book, name)
            continue
        path = book / entry["folder"] / part_name(k)
        if not path.is_file():
            raise DataValidationError(name, f"partition {k} is missing: {path} not found")
        try:
            df = pq.read_table(path).to_pandas()
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise DataValidationError(name, f"unreadable part {path}: {e}") from e
        df = S.validate_table(name, df)
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


# --------------------------------------------------------------------------- runners
class LocalRunner:
    """Run partition tasks one after another in this process (bounded memory)."""

    name = "local"

    def __init__(self, progress: Callable[[int], None] | None = None) -> None:
        self.progress = progress

    def map(self, fn: Callable, ks: Sequence[int], *args: Any, **kwargs: Any) -> list:
        out = []
        for k in ks:
            try:
                out.append(fn(k, *args, **kwargs))
            except PostloanError:
                raise
            except Exception as e:
                e.add_note(f"(while processing partition {k})")
                raise
            if self.progress:
                self.progress(1)
        return out


class DaskRunner:
    """Run partition tasks on a ``distributed`` cluster, one task per partition.

    Dask retries a task whose worker died (up to ``distributed.scheduler.allowed-failures``
    times); beyond that the run fails with :class:`EngineError` naming the partition.
    """

    name = "dask"

    def __init__(self, client: Any, progress: Callable[[int], None] | None = None) -> None:
        self.client = client
        self.progress = progress

    def map(self, fn: Callable, ks: Sequence[int], *args: Any, **kwargs: Any) -> list:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        stamp = f"{getattr(fn, '__name__', 'task')}-{time.time_ns()}"
        futures = [self.client.submit(fn, k, *args, key=f"{stamp}-partition-{k:05d}",
                                      pure=False, **kwargs) for k in ks]
        by_key = {f.key: k for f, k in zip(futures, ks, strict=True)}
        results: dict[int, Any] = {}
        try:
            for fut in as_completed(futures):
                k = by_key[fut.key]
                try:
                    results[k] = fut.result()
                except KilledWorker as e:
                    raise EngineError(
                        f"partition {k} failed: its worker died while running it, more often "
                        "than Dask retries (distributed.scheduler.allowed-failures); nothing "
                        f"was written. Check worker memory and logs. ({e})") from None
                except PostloanError:
                    raise
                except (OSError, TimeoutError) as e:
                    raise EngineError(f"partition {k} failed: lost contact with the Dask "
                                      f"cluster ({type(e).__name__}: {e}); nothing was "
                                      "written") from e
                except Exception as e:
                    e.add_note(f"(while processing partition {k} on Dask)")
                    raise
                if self.progress:
                    self.progress(1)
        finally:
            self.client.cancel([f for f in futures if not f.done()])
        return [results[k] for k in ks]


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None,
                threads_per_worker: int = 1, memory_limit: str | None = "auto",
                connect_timeout: str = "10s") -> Iterator[Any]:
    """A ``distributed.Client``: connected to `scheduler`, else on a fresh LocalCluster.

    The LocalCluster is sized to the machine (one single-threaded worker process per
    core, memory split evenly) and closed on exit. Dask's own logs are kept to errors.

    Raises:
        EngineError: dask is not installed, or the scheduler address cannot be reached.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:  # pragma: no cover - dask is a dependency
        raise EngineError("the dask engine needs dask[distributed]: pip install "
                          "'postloan[scale]'") from e
    for name in ("distributed", "distributed.nanny", "distributed.scheduler",
                 "distributed.worker", "distributed.core", "distributed.comm"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as e:
            raise EngineError(f"cannot reach the Dask scheduler at {scheduler!r}: {e}. Is "
                              "`dask scheduler` running there and the port open?") from None
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    n = n_workers or os.cpu_count() or 1
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in each worker, which also switches off
    # glibc's dynamic mmap threshold: every large pandas allocation then maps and unmaps
    # fresh pages, and a partition task ran about 1.5-2x slower than in the parent
    # process (measured). Keep only the one-thread-per-worker BLAS/OpenMP/numba settings
    # (numba drives the TreeSHAP threads of postloan.treeshap).
    threads = str(threads_per_worker)
    spawn_env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
                 "OPENBLAS_NUM_THREADS": threads, "NUMBA_NUM_THREADS": threads}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker,
                               processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR, memory_limit=memory_limit)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _n_workers(runner: Any) -> int:
    if isinstance(runner, DaskRunner):
        return len(runner.client.scheduler_info(n_workers=-1)["workers"]) or 1
    return 1


# --------------------------------------------------------------------------- snapshot
def _partition_snapshots(tables: dict, dates: Sequence[pd.Timestamp],
                         with_labels: bool) -> list[pd.DataFrame]:
    from postloan.snapshot import build_snapshot

    frames = []
    for d in dates:
        try:
            frames.append(build_snapshot(tables, d, with_labels=with_labels))
        except DataValidationError as e:
            if e.table != "loans":  # "no loan is open": this partition has nobody at d
                raise
    return frames


def _snapshot_stats(snap: pd.DataFrame) -> pd.DataFrame:
    """Per as-of date: customers, and per label its sum and observed count (additive)."""
    from postloan.snapshot import LABELS

    g = snap.groupby("as_of")
    stats = pd.DataFrame({"customers": g.size()})
    for lab in LABELS:
        if lab in snap.columns:
            stats[f"{lab}_sum"] = g[lab].sum()
            stats[f"{lab}_n"] = g[lab].count()
    return stats


def _snapshot_task(k: int, book: str, dates: list[str], with_labels: bool,
                   tmp: str) -> pd.DataFrame | None:
    tables = read_partition(Path(book), k)
    frames = _partition_snapshots(tables, [pd.Timestamp(d) for d in dates], with_labels)
    if not frames:
        return None
    snap = pd.concat(frames, ignore_index=True)
    io.write_frame_atomic(snap, _check_staging(tmp) / part_name(k))
    return _snapshot_stats(snap)


def summarise_snapshot_stats(stats: pd.DataFrame) -> pd.DataFrame:
    """Customers and label rates per as-of date from :func:`snapshot_book`'s ``stats``."""
    from postloan.snapshot import LABELS

    out = pd.DataFrame({"customers": stats["customers"].astype("int64")}, index=stats.index)
    for lab in LABELS:
        if f"{lab}_sum" in stats.columns:
            n = stats[f"{lab}_n"]
            out[lab] = (stats[f"{lab}_sum"] / n).where(n > 0)
    return out


def snapshot_book(book: Path, as_of: Sequence[str | pd.Timestamp], out: Path, runner: Any,
                  with_labels: bool = True) -> dict:
    """Snapshots of a partitioned book at the as-of dates, written as a partitioned output.

    Args:
        book: partitioned book folder.
        as_of: as-of dates.
        out: output folder: ``part-XXXXX.parquet`` (one per non-empty partition, all
            dates stacked, sorted by as_of then customer_id inside a part) and
            ``_manifest.json`` (underscore: ``pandas.read_parquet(out)`` reads the parts).
        runner: :class:`LocalRunner` or :class:`DaskRunner`.
        with_labels: add the labels after the as-of dates.

    Returns:
        The output manifest plus ``stats`` (customers and label sums per as-of date, see
        :func:`summarise_snapshot_stats`).

    Raises:
        DataValidationError: a date is invalid or outside the data, or no customer is
            active at any date.
        EngineError: a partition failed beyond the engine's retries.
    """
    from postloan.snapshot import parse_as_of

    manifest = book_manifest(book)
    dates = [parse_as_of(d) for d in as_of]
    if not dates:
        raise DataValidationError("as_of", "no as-of date given")
    n = manifest["n_partitions"]
    with _staging(Path(out)) as tmp:
        res = runner.map(_snapshot_task, range(n), str(book), [str(d.date()) for d in dates],
                         with_labels, str(tmp))
        done = [r for r in res if r is not None]
        if not done:
            raise DataValidationError("loans", "no loan is open at the as-of date(s) "
                                      f"{[str(d.date()) for d in dates]}: nothing to snapshot")
        stats = pd.concat(done).groupby(level=0).sum().sort_index()
        rows = [0 if r is None else int(r["customers"].sum()) for r in res]
        out_manifest = {"kind": "snapshots", "engine": runner.name, "n_partitions": n,
                        "as_of": [str(d.date()) for d in dates], "rows": int(sum(rows)),
                        "part_rows": rows, "complete": True,
                        "book_content_hash": manifest.get("source_content_hash")}
        io.write_json_atomic(out_manifest, tmp / "_manifest.json")
    return {**out_manifest, "stats": stats}


# --------------------------------------------------------------------------- scoring
@functools.lru_cache(maxsize=4)
def _load_bundles(model_dir: str, stamp: float) -> dict:
    """Bundles loaded once per worker process (`stamp` invalidates on change)."""
    from postloan.scoring import load_bundles_from_dir

    return load_bundles_from_dir(Path(model_dir))


def _model_stamp(model_dir: Path) -> float:
    return max((p.stat().st_mtime for p in Path(model_dir).rglob("*") if p.is_file()),
               default=0.0)


def flatten_reasons(scored: pd.DataFrame) -> pd.DataFrame:
    """Top "up" reason texts as plain ``<model>_top_reasons`` columns (parquet/CSV friendly)."""
    from postloan.bundle import MODELS

    out = scored.drop(columns=[c for c in scored.columns if c.startswith("reasons_")])
    for model in MODELS:
        col = f"reasons_{model}"
        if col in scored.columns:
            out[f"{model}_top_reasons"] = [
                " | ".join(r["text_en"] for r in cell["up"]) for cell in scored[col]]
    return out


def flat_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Lists and dicts as text, so every output reads back from parquet and CSV."""
    flat = df.copy()
    for c in flat.columns:
        if flat[c].map(lambda v: isinstance(v, (list, dict))).any():
            flat[c] = flat[c].map(lambda v: " | ".join(map(str, v)) if isinstance(v, list)
                                  else str(v))
    return flat


def score_tables(tables: dict, as_of: str | pd.Timestamp, bundles: dict, cfg: Any,
                 capacity: int | None, with_reasons: bool = True,
                 progress: Callable[[int], None] | None = None
                 ) -> dict[str, pd.DataFrame] | None:
    """Score, decide and pre-queue the customers of one book or partition.

    Returns:
        ``scores`` (flattened reasons), ``decisions`` (with ``version_<model>``), ``queue``
        (this piece's top `capacity` candidates) and ``snapshot``; None when nobody in
        `tables` is active at `as_of`.
    """
    from postloan.snapshot import build_snapshot

    try:
        snap = build_snapshot(tables, as_of, with_labels=False)
    except DataValidationError as e:
        if e.table == "loans":
            return None
        raise
    return {**score_and_decide(snap, bundles, cfg, capacity, with_reasons, progress),
            "snapshot": snap}


def score_and_decide(snap: pd.DataFrame, bundles: dict, cfg: Any, capacity: int | None,
                     with_reasons: bool = True,
                     progress: Callable[[int], None] | None = None) -> dict[str, pd.DataFrame]:
    """Scores (in chunks of :data:`SCORE_CHUNK`: bounded memory), decisions and queue.

    The one scoring step of every engine (and of ``postloan score`` on a plain book).

    Returns:
        ``scores`` (flattened reasons), ``decisions`` (with ``version_<model>``) and
        ``queue`` (the top `capacity` of these customers).
    """
    from postloan import strategy
    from postloan.scoring import model_versions, score_snapshot

    parts = []
    for start in range(0, len(snap), SCORE_CHUNK):
        chunk = snap.iloc[start:start + SCORE_CHUNK]
        parts.append(score_snapshot(bundles, chunk, with_reasons=with_reasons))
        if progress:
            progress(len(chunk))
    scored = pd.concat(parts)
    decisions = strategy.apply_strategy(scored, snap, cfg)
    queue = strategy.outreach_queue(decisions, capacity, cfg)
    versions = model_versions(bundles)
    decisions = decisions.assign(**{f"version_{m}": v for m, v in versions.items()})
    return {"scores": flatten_reasons(scored), "decisions": decisions, "queue": queue}


_RANK_KEYS = ("customer_id", "warning_level", "warning_score", "expected_loss", "segment",
              "ead", "customer_value")


def _score_task(k: int, book: str, as_of: str, model_dir: str, stamp: float,
                cfg_path: str | None, capacity: int | None, with_reasons: bool,
                tmp: str) -> dict | None:
    from postloan import strategy

    cfg = strategy.load_strategy_config(cfg_path)
    bundles = _load_bundles(model_dir, stamp)
    res = score_tables(read_partition(Path(book), k), as_of, bundles, cfg, capacity,
                       with_reasons)
    if res is None:
        return None
    tmp = _check_staging(tmp)
    io.write_frame_atomic(flat_frame(res["scores"]), tmp / "scores" / part_name(k))
    io.write_frame_atomic(flat_frame(res["decisions"]), tmp / ".pre" / part_name(k))
    d = res["decisions"]
    keys = d[list(_RANK_KEYS)].copy()
    return {"keys": keys, "queue": res["queue"], "rows": len(d)}


def global_warning_rank(level_code: np.ndarray, warning_score: np.ndarray,
                        expected_loss: np.ndarray, customer_id: np.ndarray) -> np.ndarray:
    """The rank inside each warning level over the whole book, as apply_strategy ranks.

    1 = most urgent: warning_score descending, then expected loss descending, then
    customer_id ascending (:func:`postloan.strategy.apply_strategy`).
    """
    from postloan.strategy import rank_within_level

    return rank_within_level(level_code, warning_score, expected_loss, customer_id)


def _rank_task(k: int, tmp: str, ranks: np.ndarray) -> int:
    tmp = _check_staging(tmp)
    pre = tmp / ".pre" / part_name(k)
    table = pq.read_table(pre)
    i = table.schema.get_field_index("warning_rank")
    import pyarrow as pa

    table = table.set_column(i, "warning_rank", pa.array(ranks, type=pa.int64()))
    io.write_parquet_atomic(table, tmp / "decisions" / part_name(k))
    pre.unlink()
    return len(ranks)


def score_book(book: Path, as_of: str, out: Path, model_dir: Path, runner: Any,
               capacity: int | None = None, config: Path | None = None,
               with_reasons: bool = True) -> dict[str, Any]:
    """Score every active customer of a partitioned book; write a partitioned output.

    The output folder holds ``scores/`` and ``decisions/`` (``part-XXXXX.parquet`` per
    non-empty partition; the same columns as the local engine's files), the global
    ``queue.parquet`` / ``queue.csv`` and a ``manifest.json`` written last.

    Args:
        book: partitioned book folder.
        as_of: as-of date.
        out: output folder (appears only when every partition succeeded).
        model_dir: bundle folder (``<dir>/<model>/...``) visible to every worker.
        runner: :class:`LocalRunner` or :class:`DaskRunner`.
        capacity: outreach capacity (default from the strategy config).
        config: strategy YAML.
        with_reasons: compute the reason codes (TreeSHAP).

    Returns:
        ``manifest``, ``queue`` and ``decisions`` (the per-customer columns
        :func:`postloan.strategy.summarise` needs, not the full decision table).

    Raises:
        EngineError: a partition failed beyond the engine's retries.
        DataValidationError, ModelNotFoundError, ConfigError: bad inputs.
    """
    from postloan import strategy
    from postloan.scoring import load_bundles_from_dir, model_versions
    from postloan.snapshot import parse_as_of

    manifest = book_manifest(book)
    as_of_ts = parse_as_of(as_of)
    cfg = strategy.load_strategy_config(config)  # fail fast on a bad config
    if capacity is None:
        capacity = cfg.outreach.capacity
    versions = model_versions(load_bundles_from_dir(Path(model_dir)))  # fail fast, too
    n = manifest["n_partitions"]
    with _staging(Path(out)) as tmp:
        res = runner.map(_score_task, range(n), str(book), str(as_of_ts.date()),
                         str(Path(model_dir).resolve()), _model_stamp(model_dir),
                         None if config is None else str(config), capacity, with_reasons,
                         str(tmp))
        done = [(k, r) for k, r in enumerate(res) if r is not None]
        if not done:
            raise DataValidationError("loans", f"no loan is open at the as-of date "
                                      f"{as_of_ts.date()}: nothing to score")
        keys = pd.concat([r["keys"] for _, r in done], ignore_index=True)
        level = keys["warning_level"].cat.codes.to_numpy().astype("int64")
        ranks = global_warning_rank(level, keys["warning_score"].to_numpy(),
                                    keys["expected_loss"].to_numpy(),
                                    keys["customer_id"].to_numpy())
        bounds = np.cumsum([0] + [r["rows"] for _, r in done])
        ks = [k for k, _ in done]
        slices = {k: ranks[bounds[i]:bounds[i + 1]] for i, k in enumerate(ks)}
        if isinstance(runner, DaskRunner):
            runner_2 = DaskRunner(runner.client)  # a quick second pass: no bar
        else:
            runner_2 = LocalRunner()
        _map_with(runner_2, _rank_task, ks, str(tmp), slices)
        shutil.rmtree(tmp / ".pre", ignore_errors=True)
        cands = pd.concat([r["queue"] for _, r in done], ignore_index=True)
        queue = strategy.outreach_queue(cands.drop(columns="queue_rank"), capacity, cfg)
        flat_q = flat_frame(queue)
        io.write_frame_atomic(flat_q, tmp / "queue.parquet")
        io.write_frame_atomic(flat_q, tmp / "queue.csv")
        part_rows = [0] * n
        for k, r in done:
            part_rows[k] = int(r["rows"])
        out_manifest = {"kind": "scores", "engine": runner.name, "n_partitions": n,
                        "as_of": str(as_of_ts.date()), "rows": int(len(keys)),
                        "part_rows": part_rows, "queue_rows": int(len(queue)),
                        "capacity": int(capacity), "with_reasons": with_reasons,
                        "model_versions": versions, "complete": True,
                        "book_content_hash": manifest.get("source_content_hash")}
        io.write_json_atomic(out_manifest, tmp / io.MANIFEST)
    summary = keys.assign(warning_rank=ranks)
    return {"manifest": out_manifest, "queue": queue, "decisions": summary}


def _map_with(runner: Any, fn: Callable, ks: list[int], tmp: str,
              slices: dict[int, np.ndarray]) -> list:
    """Run `fn(k, tmp, slices[k])` per partition (each task gets only its own slice)."""
    if isinstance(runner, DaskRunner):
        from distributed import wait

        futs = [runner.client.submit(fn, k, tmp, slices[k], pure=False,
                                     key=f"{fn.__name__}-{time.time_ns()}-partition-{k:05d}")
                for k in ks]
        wait(futs)
        out = []
        for k, f in zip(ks, futs, strict=True):
            try:
                out.append(f.result())
            except Exception as e:
                raise EngineError(f"partition {k} failed while writing its decisions: "
                                  f"{type(e).__name__}: {e}; nothing was written") from None
        return out
    return [fn(k, tmp, slices[k]) for k in ks]


def read_score_output(out: Path) -> dict[str, pd.DataFrame]:
    """Read a partitioned score output back: ``scores``, ``decisions``, ``queue``."""
    out = Path(out)
    manifest = io.read_manifest(out)
    if not manifest.get("complete"):
        raise DataValidationError("output", f"{out} has no complete manifest.json")
    return {"scores": read_output(out / "scores"), "decisions": read_output(out / "decisions"),
            "queue": pd.read_parquet(out / "queue.parquet")}


# --------------------------------------------------------------------------- training
_SAMPLE_MIX = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 constant: independent of the others


def sample_customers(customer_id: np.ndarray | pd.Series, share: float) -> np.ndarray:
    """Deterministic customer sample (True = in it) of about `share` of the customers.

    Independent of the partitions and of the validation hold-out, so a sample keeps
    both the partition mix and the 1-in-5 validation share.
    """
    if share >= 1.0:
        return np.ones(len(customer_id), dtype=bool)
    ids = np.asarray(customer_id).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = ids * _SAMPLE_MIX
    h ^= h >> np.uint64(31)
    return (h % np.uint64(1_000_000)) < np.uint64(int(share * 1_000_000))


def _train_task(k: int, book: str, dates: list[str], share: float, with_truth: bool,
                tmp: str) -> dict | None:
    from postloan.features import build_features
    from postloan.modeling import validation_customers

    names = [*S.REQUIRED_TABLES, *(["truth"] if with_truth else [])]
    tables = read_partition(Path(book), k, names)
    frames = _partition_snapshots(tables, [pd.Timestamp(d) for d in dates], True)
    if not frames:
        return None
    snap = pd.concat(frames, ignore_index=True)
    from postloan.snapshot import LABELS

    part = build_features(snap)
    part["as_of"] = snap["as_of"].to_numpy()
    part["held"] = validation_customers(snap["customer_id"])
    for lab in LABELS:
        part[lab] = snap[lab].to_numpy()
    io.write_frame_atomic(part, Path(tmp) / part_name(k))
    in_sample = sample_customers(snap["customer_id"], share)
    truth = None
    if with_truth:
        tr = tables["truth"]
        truth = tr[tr["customer_id"].isin(snap.loc[in_sample, "customer_id"].unique())]
    return {"sample": snap[in_sample].reset_index(drop=True), "truth": truth,
            "rows": len(snap)}


def prepare_training(book: Path, dates: Sequence[pd.Timestamp], runner: Any, work_dir: Path,
                     max_sample_customers: int = 50_000, with_truth: bool = True) -> dict:
    """Labelled snapshots of every partition at `dates`, for :func:`train_one_dask`.

    Every partition's features and labels are written to ``work_dir/part-XXXXX.parquet``
    (the distributed training set); a deterministic customer sample of at most about
    `max_sample_customers` comes back to the caller as snapshot rows (and truth rows).

    Returns:
        ``parts`` (paths), ``sample`` (stacked snapshot rows of the sampled customers),
        ``truth`` (their truth rows or None), ``share`` (the sampled share), ``rows``.
    """
    manifest = book_manifest(book)
    n_customers = manifest["tables"]["customers"]["rows"]
    share = min(1.0, max_sample_customers / max(n_customers, 1))
    with_truth = with_truth and "truth" in manifest["tables"]
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    res = runner.map(_train_task, range(manifest["n_partitions"]), str(book),
                     [str(pd.Timestamp(d).date()) for d in dates], share, with_truth,
                     str(work_dir))
    done = [r for r in res if r is not None]
    if not done:
        raise DataValidationError("loans", "no loan is open at the training dates")
    truth = pd.concat([r["truth"] for r in done], ignore_index=True) if with_truth else None
    return {"parts": [str(work_dir / part_name(k)) for k, r in enumerate(res) if r is not None],
            "sample": pd.concat([r["sample"] for r in done], ignore_index=True),
            "truth": truth, "share": share, "rows": int(sum(r["rows"] for r in done)),
            "book_range": manifest.get("book_range")}


def fit_lightgbm_dask(client: Any, parts: Sequence[str], label: str,
                      train_dates: Sequence[pd.Timestamp], params: Any,
                      categorical_features: Sequence[str], monotone: dict | None,
                      n_rounds: int) -> Any:
    """Fit LightGBM with ``lightgbm.dask`` on the training rows of every partition.

    Training rows: as-of in `train_dates`, outside the validation hold-out, label
    observed (the rule of :func:`postloan.modeling.train_one`). ``lightgbm.dask`` has
    no early stopping: the round count is given.

    Returns:
        The fitted :class:`lightgbm.Booster`.
    """
    import dask.dataframe as dd
    import lightgbm as lgb
    from lightgbm.dask import DaskLGBMClassifier

    from postloan.features import FEATURE_NAMES
    from postloan.training import lightgbm_params

    ddf = dd.read_parquet(list(parts))
    dates = [pd.Timestamp(d) for d in train_dates]
    ddf = ddf[ddf["as_of"].isin(dates) & ~ddf["held"] & ddf[label].notnull()]
    X = ddf[list(FEATURE_NAMES)]
    y = ddf[label].astype("int64")
    p = lightgbm_params(params, list(FEATURE_NAMES), monotone)
    p.pop("metric", None)
    p.pop("num_threads", None)  # lightgbm.dask uses each worker's own thread count
    clf = DaskLGBMClassifier(client=client, n_estimators=int(n_rounds), **p)
    with warnings.catch_warnings():  # "n_jobs will be ignored": lightgbm.dask sets threads
        warnings.filterwarnings("ignore", message="Parameter .* will be ignored")
        clf.fit(X, y,
                categorical_feature=[c for c in categorical_features if c in FEATURE_NAMES])
    booster: lgb.Booster = clf.booster_
    return booster


def train_one_dask(model: str, client: Any, prepared: dict,
                   splits: dict[str, list[pd.Timestamp]], cfg: Any) -> Any:
    """:func:`postloan.modeling.train_one` with the booster fitted on the Dask cluster.

    The round count comes from LightGBM's early stopping on the customer sample (its
    training rows against the hold-out customers, exactly the local rule); the final
    booster is then fitted on every partition's training rows with that many rounds.
    Calibration, the baseline, the OOT metrics and SHAP use the sample.

    Returns:
        A :class:`postloan.modeling.TrainOutput` (same bundle type as the local engine).
    """
    from postloan.modeling import train_one
    from postloan.train_config import MODEL_LABELS
    from postloan.training import fit_lightgbm

    label = MODEL_LABELS[model]
    facts: dict[str, Any] = {}

    def fit(X_tr, y_tr, X_va, y_va, params, cats, monotone):
        probe = fit_lightgbm(X_tr, y_tr, X_va, y_va, params, cats, monotone)
        rounds = max(int(probe.best_iteration), 1)
        facts.update(rounds=rounds, sample_train_rows=len(X_tr))
        booster = fit_lightgbm_dask(client, prepared["parts"], label, splits["train"],
                                    params, cats, monotone, rounds)
        booster.best_iteration = rounds
        return booster

    out = train_one(model, prepared["sample"], splits, cfg, prepared["truth"], fit=fit)
    out.bundle.metadata["engine"] = {
        "name": "dask", "n_workers": len(client.scheduler_info(n_workers=-1)["workers"]),
        "rounds": facts["rounds"],
        "rounds_from": "early stopping on the customer sample",
        "sample_share": prepared["share"], "sample_train_rows": facts["sample_train_rows"],
        "calibration_baseline_evaluation": "customer sample"}
    return out


__all__ = [
    "ENGINES", "EngineError", "LocalRunner", "DaskRunner", "dask_client", "partition_of",
    "write_partitioned_book", "partition_book", "is_partitioned", "book_manifest",
    "read_partition", "snapshot_book", "score_book", "score_tables", "read_output",
    "read_score_output", "global_warning_rank", "summarise_snapshot_stats",
    "sample_customers", "prepare_training", "fit_lightgbm_dask", "train_one_dask", "flatten_reasons", "flat_frame",
]
