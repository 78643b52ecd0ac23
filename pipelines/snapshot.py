"""Build as-of snapshots (features' inputs and labels) from a book of tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines.console import progress_bar
from postloan import io
from postloan.snapshot import LABELS, build_snapshot, parse_as_of


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


def summarise(snap: pd.DataFrame) -> pd.DataFrame:
    """Customers and label rates per as-of date ("-" where the horizon is not observed)."""
    g = snap.groupby("as_of")
    out = pd.DataFrame({"customers": g.size().map("{:,}".format)})
    for lab in LABELS:
        if lab in snap.columns:
            rate = g[lab].mean()
            out[lab] = [("-" if pd.isna(r) else f"{r:.1%}") for r in rate]
    out.index = [f"{d:%Y-%m-%d}" for d in out.index]
    out.index.name = "as of"
    return out
