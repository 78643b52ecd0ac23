"""The data-quality gate in the runs: the book against the champion's expectations.

`score`, `train` and `stress` call :func:`run_gate` after building the snapshot and
before writing anything: a hard finding the operator did not accept raises
:class:`~postloan.errors.DataQualityError` (the CLI exits 4, nothing is written);
soft findings are printed and returned for the output manifest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from pipelines.console import err_console
from postloan.bundle import ModelBundle
from postloan.quality import (
    DataExpectations,
    QualityReport,
    check_book,
    load_data_quality_config,
)


def champion_expectations(bundles: Mapping[str, ModelBundle]) -> DataExpectations | None:
    """The data expectations the gate uses: the default-risk champion's, else any."""
    order = ["default_risk", *sorted(bundles)]
    for name in order:
        b = bundles.get(name)
        if b is not None and b.expectations is not None:
            return b.expectations
    return None


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
    """Check the book as of the snapshot's date against the champion's expectations.

    Args:
        tables: the book's tables.
        snapshot: the snapshot of the checked date.
        bundles: the champions; the default-risk one's expectations are used.
        accepted: rules the operator accepted (``--accept-data-issues``).
        config: a data-quality YAML (default: the shipped one).
        features: the run's :class:`postloan.batch.FeatureCache` of `snapshot` (the
            features the models then score: built once); None builds them here.

    Returns:
        The report (None when no champion carries expectations: bundles trained before
        the gate existed; a warning says so).

    Raises:
        DataQualityError: a hard finding that was not accepted.
    """
    from postloan.batch import FeatureCache

    exp = champion_expectations(bundles)
    if exp is None:
        err_console.print("[yellow]warning:[/] the champions carry no data expectations "
                          "(trained before the data-quality gate); the book is not checked",
                          markup=True)
        return None
    # The champion's own vocabularies: its expectations were learned on those features.
    categories = bundles["default_risk"].categories if "default_risk" in bundles else None
    X = (features if features is not None else FeatureCache(snapshot)).get(categories)
    report = check_book(tables, snapshot, exp, load_data_quality_config(config), X,
                        list(accepted))
    print_report(report)
    report.raise_if_blocking()
    return report


def gate_record(report: QualityReport | None) -> dict:
    """What an output manifest records of the gate: findings, accepted rules, warnings."""
    if report is None:
        return {"checked": False, "reason": "the champions carry no data expectations"}
    return {"checked": True, **report.to_dict()}


def parse_accepted(value: str | None) -> list[str]:
    """``--accept-data-issues RULE,RULE`` as a list (empty for None)."""
    return [r.strip() for r in (value or "").split(",") if r.strip()]
