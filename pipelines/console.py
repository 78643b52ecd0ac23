"""Shared console helpers for the pipelines: rich output and progress bars."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:  # pandas is not imported just to start the CLI
    import pandas as pd

# Piped output (CI logs, `make demo | tee`) gets 140 columns instead of rich's 80, so
# the wide summary tables stay readable.
console = Console(stderr=False, width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)


@contextmanager
def progress_bar(description: str, total: int):
    """A rich progress bar; yields an ``advance(n=1)`` callable."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=False) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)


def print_frame(df: pd.DataFrame, title: str) -> None:
    """Print a small DataFrame as a rich table (index first, numbers right-aligned)."""
    t = Table(title=title, show_lines=False)
    t.add_column(df.index.name or "", style="bold")
    for c in df.columns:
        t.add_column(str(c), justify="right")
    for idx, row in df.iterrows():
        t.add_row(str(idx), *[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)
