"""The data-quality gate: the book as of one date against the champions' expectations.

The one place a run decides whether the book may be scored: ``postloan score``,
``train``, ``stress`` and the monthly cycle call :func:`gate` after building the
snapshot and before writing anything. A hard finding the operator did not accept makes
:meth:`~postloan.data.quality.findings.QualityReport.raise_if_blocking` raise
:class:`~postloan.errors.DataQualityError` (the CLI exits 4, nothing is written); soft
findings travel in the output manifest (:func:`gate_record`). The service checks single
records with :func:`~postloan.data.quality.checks.record_flags`, against the same limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from postloan.data.features import FeatureCache
from postloan.data.quality.checks import check_book
from postloan.data.quality.config import load_data_quality_config
from postloan.data.quality.expectations import DataExpectations
from postloan.data.quality.findings import QualityReport


def champion_expectations(bundles: Mapping[str, Any]) -> DataExpectations | None:
    """The data expectations the gate uses: the default-risk champion's, else any.

    Args:
        bundles: the champions by model (model bundles: their ``expectations``).
    """
    order = ["default_risk", *sorted(bundles)]
    for name in order:
        b = bundles.get(name)
        if b is not None and b.expectations is not None:
            return b.expectations
    return None


def gate(tables: dict[str, pd.DataFrame], snapshot: pd.DataFrame, bundles: Mapping[str, Any],
         accepted: Iterable[str] = (), config: Path | None = None,
         features: FeatureCache | None = None) -> QualityReport | None:
    """Check the book as of the snapshot's date against the champion's expectations.

    Args:
        tables: the book's tables.
        snapshot: the snapshot of the checked date.
        bundles: the champions by model; the default-risk one's expectations are used.
        accepted: rules the operator accepted (``--accept-data-issues``).
        config: a data-quality YAML (default: the shipped one).
        features: the run's :class:`~postloan.data.features.FeatureCache` of `snapshot`
            (the features the models then score: built once); None builds them here.

    Returns:
        The report (call its ``raise_if_blocking``), or None when no champion carries
        expectations (bundles trained before the gate existed).
    """
    exp = champion_expectations(bundles)
    if exp is None:
        return None
    # The champion's own vocabularies: its expectations were learned on those features.
    categories = bundles["default_risk"].categories if "default_risk" in bundles else None
    X = (features if features is not None else FeatureCache(snapshot)).get(categories)
    return check_book(tables, snapshot, exp, load_data_quality_config(config), X,
                      list(accepted))


def gate_record(report: QualityReport | None) -> dict:
    """What an output manifest records of the gate: findings, accepted rules, warnings."""
    if report is None:
        return {"checked": False, "reason": "the champions carry no data expectations"}
    return {"checked": True, **report.to_dict()}


__all__ = ["champion_expectations", "gate", "gate_record"]
