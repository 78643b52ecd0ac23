"""Build as-of snapshots (features' inputs and labels) from a book of tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines.console import progress_bar
from postloan.data import io
from postloan.data.snapshot import LABELS, build_snapshot, parse_as_of


def run_snapshot(data: Path, as_of: list[str], out: Path, with_labels: bool = True
                 ) -> pd.DataFrame:
    """Read and validate the book, build one snapshot per as-of date, write them stacked."""
    dates = [parse_as_of(d) for d in as_of]
    tables = io.read_tables(data)
    frames = []
    with progress_bar("building snapshots", len(dates)) as advance:
        for d in dates:
            frames.append(build_snapshot(tables, d, with_labels=with_labels))
            advance()
    snap = pd.concat(frames, ignore_index=True)
    io.write_frame_atomic(snap, out)
    return snap


def run_snapshot_engine(data: Path, as_of: list[str], out: Path, engine_name: str = "local",
                        scheduler: str | None = None, partitions: int | None = None,
                        with_labels: bool = True) -> pd.DataFrame:
    """Snapshots through the partition engine (local streaming or Dask).

    Writes `out` as a folder of ``part-XXXXX.parquet`` plus ``_manifest.json`` and
    returns the summary table (customers and label rates per as-of date).
    """
    from pipelines.scale import partitioned_book, runner
    from postloan import scale

    dates = [parse_as_of(d) for d in as_of]
    with partitioned_book(data, partitions) as book:
        n = scale.book_manifest(book)["n_partitions"]
        with runner(engine_name, scheduler, "snapshot partitions", n) as r:
            res = scale.snapshot_book(book, dates, out, r, with_labels=with_labels)
    return _format_summary(scale.summarise_snapshot_stats(res["stats"]))


def summarise(snap: pd.DataFrame) -> pd.DataFrame:
    """Customers and label rates per as-of date ("-" where the horizon is not observed)."""
    g = snap.groupby("as_of")
    rates = pd.DataFrame({"customers": g.size()})
    for lab in LABELS:
        if lab in snap.columns:
            rates[lab] = g[lab].mean()
    return _format_summary(rates)


def _format_summary(rates: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"customers": rates["customers"].map("{:,}".format)}, index=rates.index)
    for lab in LABELS:
        if lab in rates.columns:
            out[lab] = [("-" if pd.isna(r) else f"{r:.1%}") for r in rates[lab]]
    out.index = [f"{d:%Y-%m-%d}" for d in out.index]
    out.index.name = "as of"
    return out
