"""The data profile behind ``postloan check-data``: what a book holds and where it breaks
the contract.

Unlike :func:`postloan.data.schema.validate_table`, which stops at the first broken rule,
:func:`profile_table` collects every violation of a table (with the first offending
rows, PII never shown) so a lender fixes a feed in one pass. :func:`render_html` turns
the profiles into a self-contained HTML page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from postloan.data import schema as S

MAX_ROWS_SHOWN = 5


@dataclass
class Violation:
    """One broken rule: table, column, rule, how many rows, the first of them (as text)."""

    table: str
    column: str | None
    rule: str
    n_rows: int
    rows: str = ""


@dataclass
class TableProfile:
    """What :func:`profile_table` reports for one table.

    Attributes:
        table: canonical name.
        status: ``ok``, ``violations``, ``absent`` (optional, not supplied) or ``error``
            (could not be read or converted at all; the error is the only violation).
        rows: number of rows.
        n_keys: distinct keys (None for a table without a key).
        date_range: first and last value of the table's date column.
        null_share: share of missing values per column.
        violations: every broken rule.
        disables: for an absent table, what it would have fed.
        source: where the rows came from, when known.
    """

    table: str
    status: str = "ok"
    rows: int = 0
    n_keys: int | None = None
    date_range: tuple[str, str] | None = None
    null_share: dict[str, float] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    disables: str = ""
    source: str = ""


def _shown(df: pd.DataFrame, bad: np.ndarray, key: Sequence[str], column: str) -> str:
    idx = np.flatnonzero(bad)[:MAX_ROWS_SHOWN]
    cols = [c for c in (*key, column) if c in df.columns]
    cols = list(dict.fromkeys(cols))
    sub = df.iloc[idx][cols].copy()
    for c in cols:
        if c in S.PII_COLUMNS:
            sub[c] = "<PII hidden>"
    sub.index = pd.Index(idx, name="row")
    return sub.to_string()


def profile_table(name: str, df: pd.DataFrame,
                  vocabularies: Mapping[str, Sequence[str]] | None = None) -> TableProfile:
    """Profile one canonical table and collect every contract violation.

    Args:
        name: canonical table name.
        df: the table (canonical columns; dtypes as read or converted).
        vocabularies: allowed values per category column (default: the schema's).

    Returns:
        The table's profile; ``status`` is ``violations`` when any rule is broken.
    """
    spec = S.TABLES[name]
    vocabularies = vocabularies or {}
    prof = TableProfile(table=name, rows=len(df))
    key = list(spec.key)

    def add(column: str | None, rule: str, bad: np.ndarray | None = None,
            n: int | None = None) -> None:
        rows = _shown(df, bad, key, column or "") if bad is not None else ""
        prof.violations.append(Violation(name, column, rule,
                                         int(n if n is not None else np.count_nonzero(bad)),
                                         rows))

    if len(df) == 0:
        add(None, "table is empty (0 rows)", n=0)
    # An optional column left out is missing, not an error: the rule of
    # postloan.data.schema.validate_table and of ingest (source_columns reads it only when named).
    missing = [c.name for c in spec.columns if c.name not in df.columns and not c.optional]
    for c in missing:
        add(c, "column missing", n=len(df))
    for col in spec.columns:
        if col.name not in df.columns:
            continue
        s = df[col.name]
        isna = s.isna().to_numpy()
        prof.null_share[col.name] = float(isna.mean()) if len(s) else 0.0
        if not col.nullable and isna.any():
            add(col.name, "missing values not allowed", isna)
        if col.kind in ("int", "float"):
            if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                add(col.name, f"expected numbers, got dtype {s.dtype}", n=len(s))
                continue
            v = s.to_numpy(dtype="float64", na_value=np.nan)
            if col.kind == "int" and (bad := ~isna & (np.mod(np.nan_to_num(v), 1) != 0)).any():
                add(col.name, "expected whole numbers", bad)
            if col.min is not None and (bad := ~isna & (v < col.min)).any():
                add(col.name, f"below the minimum {col.min:g}", bad)
            if col.max is not None and (bad := ~isna & (v > col.max)).any():
                add(col.name, f"above the maximum {col.max:g}", bad)
        elif col.kind == "date":
            if not pd.api.types.is_datetime64_any_dtype(s):
                add(col.name, f"expected dates, got dtype {s.dtype}", n=len(s))
                continue
            d = pd.to_datetime(s)
            if (bad := (d.notna() & ((d < S.MIN_DATE) | (d > S.MAX_DATE))).to_numpy()).any():
                add(col.name, f"dates outside {S.MIN_DATE.date()}..{S.MAX_DATE.date()}", bad)
            if col.month_end and (bad := S.not_month_end(d)).any():
                add(col.name, S.MONTH_END_RULE, bad)
        elif col.kind == "category":
            vocab = list(vocabularies.get(col.name, col.categories))
            bad = ~isna & ~s.astype(object).isin(vocab).to_numpy()
            if bad.any():
                add(col.name, f"values outside the vocabulary {vocab}", bad)
    if key and not [c for c in key if c in missing]:
        prof.n_keys = int((~df.duplicated(key)).sum())
        dup = df.duplicated(key, keep=False).to_numpy()
        if dup.any():
            add(",".join(key), f"duplicate keys {key}", dup)
    if spec.date_column and spec.date_column in df.columns and len(df):
        d = pd.to_datetime(df[spec.date_column], errors="coerce")
        if d.notna().any():
            prof.date_range = (f"{d.min():%Y-%m-%d}", f"{d.max():%Y-%m-%d}")
    if prof.violations:
        prof.status = "violations"
    return prof


def absent_profile(name: str, disables: str) -> TableProfile:
    """The profile of an optional table the book does not have (not a violation)."""
    return TableProfile(table=name, status="absent", disables=disables)


def error_profile(name: str, message: str, source: str = "") -> TableProfile:
    """The profile of a table that could not be read or converted at all."""
    return TableProfile(table=name, status="error", source=source,
                        violations=[Violation(name, None, message, 0)])


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def render_html(profiles: Sequence[TableProfile], title: str, money: Mapping | None = None
                ) -> str:
    """A self-contained HTML data profile (one section per table; with `money`, the
    money columns' medians and scale warnings of :mod:`postloan.data.contract.money`)."""
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
             "padding:.2em .5em;text-align:left}pre{background:#f6f6f6;padding:.5em}"
             ".ok{color:#176f2c}.violations,.error{color:#b00020}.absent{color:#666}")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
             f"<style>{style}</style></head><body><h1>{_e(title)}</h1>",
             "<table><tr><th>table</th><th>status</th><th>rows</th><th>keys</th>"
             "<th>date range</th><th>violations</th></tr>"]
    for p in profiles:
        dr = " .. ".join(p.date_range) if p.date_range else ""
        parts.append(f"<tr><td><a href='#{_e(p.table)}'>{_e(p.table)}</a></td>"
                     f"<td class='{p.status}'>{p.status}</td><td>{p.rows:,}</td>"
                     f"<td>{'' if p.n_keys is None else f'{p.n_keys:,}'}</td><td>{dr}</td>"
                     f"<td>{len(p.violations)}</td></tr>")
    parts.append("</table>")
    if money and money.get("medians"):
        cur = money.get("currency") or "(currency not declared)"
        parts.append(f"<h2 id='money'>money ({_e(cur)})</h2><table><tr><th>column</th>"
                     "<th>median</th></tr>" + "".join(
                         f"<tr><td>{_e(c)}</td><td>{v:,.2f}</td></tr>"
                         for c, v in money["medians"].items()) + "</table>")
        for w in money.get("warnings", []):
            parts.append(f"<p class='violations'>warning: {_e(w)}</p>")
    for p in profiles:
        parts.append(f"<h2 id='{_e(p.table)}'>{_e(p.table)} "
                     f"<span class='{p.status}'>({p.status})</span></h2>")
        if p.source:
            parts.append(f"<p>source: {_e(p.source)}</p>")
        if p.status == "absent":
            parts.append(f"<p>Not supplied (optional): {_e(p.disables)}.</p>")
            continue
        if p.null_share:
            parts.append("<table><tr><th>column</th><th>null share</th></tr>" + "".join(
                f"<tr><td>{_e(c)}</td><td>{v:.1%}</td></tr>" for c, v in p.null_share.items())
                + "</table>")
        for v in p.violations:
            parts.append(f"<h3>{_e(v.column or p.table)}: {_e(v.rule)} "
                         f"({v.n_rows:,} rows)</h3>")
            if v.rows:
                parts.append(f"<pre>{_e(v.rows)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
