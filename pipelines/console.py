"""Shared console helpers for the pipelines: rich output and progress bars."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
