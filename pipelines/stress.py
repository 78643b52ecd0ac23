"""Stress run: score the book as it is and under a macro scenario, side by side."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from postloan import io, strategy
from postloan.bundle import ModelBundle
from postloan.errors import DataValidationError
from postloan.plots import save_figure, stress_figure
from postloan.snapshot import build_snapshot
from postloan.stress import Scenario, compare, stress_decisions


def run_stress(data: Path, as_of: str, scenario: Scenario, bundles: dict[str, ModelBundle],
               out: Path) -> pd.DataFrame:
    """Before/after table by segment; writes table (parquet + CSV) and a PNG atomically."""
    tables = io.read_tables(data)
    if "macro" not in tables:
        raise DataValidationError(
            "macro", "a stress run cannot be computed on this book: scenarios move regional "
            "unemployment and the policy rate, which come from the macro table, and the "
            "book has none (declared absent in manifest.json); add a macro feed to the book")
    snap = build_snapshot(tables, as_of, with_labels=False)
    before, after = stress_decisions(snap, scenario, bundles, strategy.load_strategy_config())
    table = compare(before, after)
    io.write_frames_atomic({"stress": table}, Path(out))
    save_figure(stress_figure(table, scenario), Path(out) / "stress.png")
    return table
