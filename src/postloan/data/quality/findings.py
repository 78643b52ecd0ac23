"""Findings of the data-quality gate and the report that gathers them."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from postloan.data import schema as S
from postloan.errors import DataQualityError

HARD, SOFT = "hard", "soft"
MAX_EXAMPLES = 3


def _json_value(v: object) -> object:
    if isinstance(v, pd.Timestamp | np.datetime64):
        return pd.Timestamp(v).date().isoformat()
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        # Readable examples: six significant digits say enough about a value.
        return float(f"{v:.6g}") if np.isfinite(v) else None
    return v


def examples(rows: pd.DataFrame, columns: Sequence[str], n: int = MAX_EXAMPLES) -> list[dict]:
    """The first `n` rows as JSON-able dicts, PII columns left out whatever is asked."""
    keep = [c for c in columns if c in rows.columns and c not in S.PII_COLUMNS]
    return [{k: _json_value(v) for k, v in r.items()}
            for r in rows[keep].head(n).to_dict("records")]


@dataclass
class Finding:
    """One broken expectation.

    Attributes:
        rule: the rule's id, ``<feed>[.<column>].<check>`` (what
            ``--accept-data-issues`` names), e.g. ``bureau.verified_monthly_income.scale``.
        feed: the feed or frame checked (``bureau``, ..., ``snapshot``, ``features``).
        column: the column, or None for a whole-feed rule.
        check: ``freshness``, ``completeness``, ``scale``, ``impossible``, ``null_share``,
            ``range``, ...
        severity: ``hard`` (stops the run) or ``soft`` (a warning).
        share: share of active customers affected.
        n_affected: customers affected.
        expected: the reference value (None when not a number).
        observed: the value found.
        message: one plain sentence.
        examples: a few offending rows (customer id, date, value), never PII.
    """

    rule: str
    feed: str
    column: str | None
    check: str
    severity: str
    share: float
    n_affected: int
    expected: float | None
    observed: float | None
    message: str
    examples: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("share", "expected", "observed"):
            d[k] = _json_value(d[k]) if d[k] is not None else None
        return d

    def describe(self) -> str:
        """One line for a console or a log: rule, share affected, message."""
        return (f"[{self.severity}] {self.rule}: {self.message} "
                f"({self.share:.1%} of customers, n={self.n_affected})")


def _matches(rule: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(rule, p) for p in patterns)


@dataclass
class QualityReport:
    """Every finding of one check of a book, and the rules the operator accepted.

    Attributes:
        as_of: the as-of date checked (``YYYY-MM-DD``).
        findings: all findings, hard first.
        accepted: rule ids or glob patterns (``bureau.*``) accepted with
            ``--accept-data-issues``: their hard findings do not stop the run.
    """

    as_of: str
    findings: list[Finding]
    accepted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.findings = sorted(self.findings, key=lambda f: (f.severity != HARD, f.rule))

    @property
    def blocking(self) -> list[Finding]:
        """Hard findings not accepted: any one stops the run."""
        return [f for f in self.findings if f.severity == HARD
                and not _matches(f.rule, self.accepted)]

    @property
    def accepted_findings(self) -> list[Finding]:
        """Hard findings the operator accepted deliberately."""
        return [f for f in self.findings if f.severity == HARD
                and _matches(f.rule, self.accepted)]

    @property
    def warnings(self) -> list[Finding]:
        """Soft findings."""
        return [f for f in self.findings if f.severity == SOFT]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def to_dict(self) -> dict:
        """JSON data for an output manifest or an MLflow artifact."""
        return {"as_of": self.as_of, "ok": self.ok, "accepted": list(self.accepted),
                "blocking": [f.rule for f in self.blocking],
                "accepted_findings": [f.rule for f in self.accepted_findings],
                "warnings": [f.rule for f in self.warnings],
                "findings": [f.to_dict() for f in self.findings]}

    def render(self) -> str:
        """A plain-text report: one paragraph per finding with its example rows."""
        if not self.findings:
            return f"data quality as of {self.as_of}: no findings"
        lines = [f"data quality as of {self.as_of}: {len(self.blocking)} blocking, "
                 f"{len(self.accepted_findings)} accepted, {len(self.warnings)} warning(s)"]
        for f in self.findings:
            tag = ("accepted" if f in self.accepted_findings else f.severity)
            lines.append(f"- [{tag}] {f.rule} (feed {f.feed}"
                         + (f", column {f.column}" if f.column else "")
                         + f"): {f.message}; {f.share:.1%} of customers (n={f.n_affected})")
            for ex in f.examples:
                lines.append("    e.g. " + ", ".join(f"{k}={v}" for k, v in ex.items()))
        return "\n".join(lines)

    def raise_if_blocking(self) -> None:
        """Raise :class:`~postloan.errors.DataQualityError` when a hard finding remains.

        Raises:
            DataQualityError: naming every blocking rule; ``.report`` is this report.
        """
        if self.blocking:
            rules = ", ".join(f.rule for f in self.blocking)
            raise DataQualityError(
                self, f"the book breaks hard data-quality rule(s): {rules}; nothing was "
                "written. Fix the feed, or pass --accept-data-issues RULE,... to go ahead "
                f"deliberately.\n{self.render()}")
