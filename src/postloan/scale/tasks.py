"""The jobs over a partitioned book: snapshots and scoring, one task per partition.

Every task writes its part into the run's staging folder; the output folder and its
manifest appear only once every partition has succeeded (a failed or killed run
leaves the previous output, or none). Scoring runs the one batch step
(:func:`postloan.decisions.batch.score_tables`) per partition. The few results that need the
whole book are computed exactly from small per-partition pieces: the outreach queue
(the global top-k is the top-k of the per-partition top-k lists, because the queue's
order is a total order) and the warning rank inside each level (a second, cheap pass
writes the global rank into every part).
"""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from postloan.data import io
from postloan.errors import DataValidationError, EngineError
from postloan.scale.partitions import (
    _check_staging,
    _staging,
    book_manifest,
    part_name,
    read_output,
    read_partition,
)
from postloan.scale.runners import DaskRunner, LocalRunner


# --------------------------------------------------------------------------- snapshot
def _partition_snapshots(tables: dict, dates: Sequence[pd.Timestamp],
                         with_labels: bool) -> list[pd.DataFrame]:
    from postloan.data.snapshot import build_snapshot

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
    from postloan.data.snapshot import LABELS

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
    from postloan.data.snapshot import LABELS

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
    from postloan.data.snapshot import parse_as_of

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
    from postloan.models.store import load_bundles_from_dir

    return load_bundles_from_dir(Path(model_dir))


def _model_stamp(model_dir: Path) -> float:
    return max((p.stat().st_mtime for p in Path(model_dir).rglob("*") if p.is_file()),
               default=0.0)


_RANK_KEYS = ("customer_id", "warning_level", "warning_score", "expected_loss", "segment",
              "ead", "customer_value", "recommended_action", "net_benefit")


def _load_uplift(uplift_dir: str | None) -> dict:
    """Uplift bundles by action from ``<uplift_dir>/<action>/`` (none: the constants)."""
    from postloan.models.uplift import UpliftBundle

    if uplift_dir is None:
        return {}
    return {p.name: UpliftBundle.load(p) for p in sorted(Path(uplift_dir).iterdir())
            if p.is_dir()}


def _score_task(k: int, book: str, as_of: str, model_dir: str, stamp: float,
                cfg_path: str | None, capacity: int | None, with_reasons: bool,
                tmp: str, uplift_dir: str | None = None) -> dict | None:
    from postloan.decisions import strategy
    from postloan.decisions.batch import flat_frame, score_tables

    cfg = strategy.load_strategy_config(cfg_path)
    bundles = _load_bundles(model_dir, stamp)
    res = score_tables(read_partition(Path(book), k), as_of, bundles, cfg, capacity,
                       with_reasons, uplift=_load_uplift(uplift_dir))
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
    customer_id ascending (:func:`postloan.decisions.strategy.apply_strategy`).
    """
    from postloan.decisions.strategy import rank_within_level

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
               with_reasons: bool = True, uplift_dir: Path | None = None) -> dict[str, Any]:
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
        uplift_dir: uplift bundles (``<dir>/<action>/``, visible to every worker): each
            action decided on its learned effects where its gate admits them, as the
            local engine's; None = the strategy constants.

    Returns:
        ``manifest``, ``queue`` and ``decisions`` (the per-customer columns
        :func:`postloan.decisions.strategy.summarise` needs, not the full decision table).

    Raises:
        EngineError: a partition failed beyond the engine's retries.
        DataValidationError, ModelNotFoundError, ConfigError: bad inputs.
    """
    from postloan.data.snapshot import parse_as_of
    from postloan.decisions import strategy
    from postloan.decisions.batch import flat_frame, model_versions
    from postloan.models.store import load_bundles_from_dir

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
                         str(tmp), None if uplift_dir is None else str(uplift_dir))
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
        queue = strategy.merge_queues(cands, capacity, cfg)  # each piece holds its share
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
                        "decision_basis": strategy.decision_bases(_load_uplift(
                            None if uplift_dir is None else str(uplift_dir))),
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
