"""Stress run: score the book as it is and under a macro scenario, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipelines.quality import run_gate
from postloan.data import io
from postloan.data.quality import gate_record
from postloan.data.snapshot import build_snapshot
from postloan.decisions import strategy
from postloan.errors import DataValidationError
from postloan.models.bundle import ModelBundle
from postloan.operations.stress import Scenario, check_vocabularies, compare, stress_decisions
from postloan.reporting.figures import save_figure, stress_figure


def run_stress(data: Path, as_of: str, scenario: Scenario, bundles: dict[str, ModelBundle],
               out: Path, accept_data_issues: Sequence[str] = (),
               data_quality: Path | None = None) -> pd.DataFrame:
    """Before/after table by segment; writes table (parquet + CSV) and a PNG atomically.

    The book is checked against the champions' data expectations first (a hard finding
    raises DataQualityError and nothing is written)."""
    tables = io.read_tables(data)
    if "macro" not in tables:
        raise DataValidationError(
            "macro", "a stress run cannot be computed on this book: scenarios move regional "
            "unemployment and the policy rate, which come from the macro table, and the "
            "book has none (declared absent in manifest.json); add a macro feed to the book")
    check_vocabularies(scenario, io.book_vocabularies(io.read_manifest(data)))
    snap = build_snapshot(tables, as_of, with_labels=False)
    report = run_gate(tables, snap, bundles, accept_data_issues, data_quality)
    before, after = stress_decisions(snap, scenario, bundles, strategy.load_strategy_config())
    table = compare(before, after)
    io.write_frames_atomic({"stress": table}, Path(out),
                           json_files={"data_quality.json": gate_record(report)})
    save_figure(stress_figure(table, scenario), Path(out) / "stress.png")
    return table
