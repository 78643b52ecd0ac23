"""The data-quality gate in the runs (:func:`postloan.data.quality.gate`), printed.

`score`, `train`, `stress` and `cycle` call :func:`run_gate` after building the snapshot
and before writing anything: a hard finding the operator did not accept raises
:class:`~postloan.errors.DataQualityError` (the CLI exits 4, nothing is written);
soft findings are printed and returned for the output manifest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from pipelines.console import err_console
from postloan.data.quality import QualityReport, gate
from postloan.models.bundle import ModelBundle


def print_report(report: QualityReport) -> None:
    """Blocking and accepted findings in red/yellow, warnings in yellow, with examples."""
    accepted = {f.rule for f in report.accepted_findings}
    for f in report.findings:
        tag = ("[bold red]blocking[/]" if f in report.blocking else
               "[bold yellow]accepted[/]" if f.rule in accepted else "[yellow]warning[/]")
        where = f"feed {f.feed}" + (f", column {f.column}" if f.column else "")
        err_console.print(f"{tag} {f.rule} ({where}): {f.message}; {f.share:.1%} of "
                          f"customers (n={f.n_affected})", markup=True, highlight=False)
        if f in report.blocking:
            for ex in f.examples:
                err_console.print("    e.g. " + ", ".join(f"{k}={v}" for k, v in ex.items()),
                                  markup=False, highlight=False)


def run_gate(tables: dict[str, pd.DataFrame], snapshot: pd.DataFrame,
             bundles: Mapping[str, ModelBundle], accepted: Iterable[str] = (),
             config: Path | None = None, features=None) -> QualityReport | None:
    """:func:`postloan.data.quality.gate`, its findings printed; raises on a blocking one.

    Raises:
        DataQualityError: a hard finding that was not accepted.
    """
    report = gate(tables, snapshot, bundles, accepted, config, features)
    if report is None:
        err_console.print("[yellow]warning:[/] the champions carry no data expectations "
                          "(trained before the data-quality gate); the book is not checked",
                          markup=True)
        return None
    print_report(report)
    report.raise_if_blocking()
    return report


def parse_accepted(value: str | None) -> list[str]:
    """``--accept-data-issues RULE,RULE`` as a list (empty for None)."""
    return [r.strip() for r in (value or "").split(",") if r.strip()]
