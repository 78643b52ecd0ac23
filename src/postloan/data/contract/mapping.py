"""The source mapping: one YAML per lender, declaring how its tables become the book.

A mapping names the lender's sources (a database URL, a DuckDB file, a CSV or parquet
folder) and, per canonical table (:data:`postloan.data.schema.TABLES`), where its rows come
from and how each canonical column is made from the source: a rename, a cast, a code
map, a unit conversion or a constant. ``docs/data-contract.md`` is the user's guide;
``docs/examples/core_banking_mapping.yaml`` a complete example.

Credentials never live in a mapping: a URL with a password is refused (the driver reads
``PGPASSWORD`` / ``~/.pgpass``, or the whole URL comes from an environment variable named
by ``url_env``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from postloan.data import schema as S
from postloan.data.contract.money import MONEY_COLUMNS, MONEY_UNITS
from postloan.errors import ConfigError, DataValidationError

CORE_TABLES = ("customers", "loans", "repayments")
OPTIONAL_TABLES = ("activity", "interactions", "surveys", "bureau", "macro", "customers_pii")
# The simulator's hidden truth is never a lender's table.
MAPPABLE_TABLES = CORE_TABLES + OPTIONAL_TABLES

CASTS = ("integer", "decimal", "date", "text")
# Unit conversions: the factor a source value is multiplied by to get the canonical unit.
UNITS: dict[str, float] = {
    "cents": 0.01,  # minor currency units -> units
    "thousands": 1000.0,  # amounts reported in thousands -> units
    "percent_to_fraction": 0.01,
    "fraction_to_percent": 100.0,  # canonical rates (annual_rate, unemployment) are percent
    "annual_to_monthly": 1.0 / 12.0,  # e.g. an annual income -> monthly income
    "monthly_to_annual": 12.0,  # e.g. a monthly rate -> the canonical annual rate
}


# What each strptime directive a date `format` may use matches, exactly: a value must
# match the whole format (``%Y%m%d`` on the text "202411" is refused, never read as
# 2024-01-01). Text fields (%b, %B) are letters; numeric fields have their full width.
FORMAT_DIRECTIVES: dict[str, str] = {
    "Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "j": r"\d{3}",
    "H": r"\d{2}", "M": r"\d{2}", "S": r"\d{2}", "f": r"\d{1,9}",
    "b": r"[^\W\d_]+", "B": r"[^\W\d_]+", "%": "%",
}
# The directives that name a day: a format without one (a YYYYMM period) must say which
# day of the month it means (`align: month_end`).
DAY_DIRECTIVES = ("%d", "%j")
# Mapping and column-rule keys added after the first release (see fingerprint()).
ADDED_KEYS = ("currency", "money_unit", "prefix", "align")


def format_pattern(fmt: str) -> str:
    """The regular expression a value must match in full to be read with strptime `fmt`.

    Raises:
        ValueError: a directive outside :data:`FORMAT_DIRECTIVES`.
    """
    import re

    out, i = [], 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            d = fmt[i + 1] if i + 1 < len(fmt) else ""
            if d not in FORMAT_DIRECTIVES:
                raise ValueError(f"date format {fmt!r}: directive %{d} is not supported "
                                 f"(use {', '.join('%' + k for k in FORMAT_DIRECTIVES)})")
            out.append(FORMAT_DIRECTIVES[d])
            i += 2
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where rows come from: exactly one of ``url``, ``url_env``, ``duckdb``, ``csv``,
    ``parquet``."""

    url: str | None = Field(None, description="SQLAlchemy URL without a password, e.g. "
                            "postgresql+psycopg://loader@db.bank/core")
    url_env: str | None = Field(None, description="name of an environment variable holding "
                                "the URL (may carry a password: it is masked everywhere)")
    duckdb: Path | None = Field(None, description="a DuckDB database file (needs duckdb)")
    csv: Path | None = Field(None, description="a folder of <table>.csv files")
    parquet: Path | None = Field(None, description="a folder of <table>.parquet files")
    db_schema: str | None = Field(None, alias="schema", description="database schema of "
                                  "the tables named by `table`")
    statement_timeout_s: float | None = Field(None, gt=0, description="abort a query "
                                              "running longer (PostgreSQL)")
    chunk_rows: int = Field(100_000, ge=1, description="rows read per chunk")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        given = [k for k in ("url", "url_env", "duckdb", "csv", "parquet")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of url, url_env, duckdb, csv, parquet "
                             f"(got {given or 'none'})")
        if self.url is not None:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                u = make_url(self.url)
            except ArgumentError as e:
                raise ValueError(f"not a database URL: {e}") from None
            if u.password is not None:
                raise ValueError(
                    "the URL carries a password; credentials never go into a mapping: "
                    "remove it and set PGPASSWORD or ~/.pgpass, or put the whole URL in "
                    "an environment variable named by `url_env`")
        return self

    @property
    def kind(self) -> str:
        """``sql``, ``duckdb``, ``csv`` or ``parquet``."""
        if self.url is not None or self.url_env is not None:
            return "sql"
        return "duckdb" if self.duckdb is not None else ("csv" if self.csv else "parquet")

    def resolved_url(self) -> str:
        """The database URL (from the environment for ``url_env``)."""
        if self.url is not None:
            return self.url
        value = os.environ.get(self.url_env or "")
        if not value:
            raise ConfigError(f"environment variable {self.url_env} (the source's url_env) "
                              "is not set")
        return value


class ColumnRule(_Strict):
    """How one canonical column is made from the source.

    Steps run in this order: take the source column (``from``, default the canonical
    name) or the ``constant``; remove the ``prefix``; map codes (``map``); cast to the
    canonical kind (``cast`` overrides, ``format`` for dates, matched exactly); move
    dates to their month end (``align``); convert units (``unit``, then ``scale``).
    """

    from_: str | None = Field(None, alias="from")
    prefix: str | None = Field(None, min_length=1, description="text every value starts "
                               "with, removed first: prefix C reads C000123 as 000123 "
                               "(then cast integer: 123); a value without it is an error")
    cast: Literal["integer", "decimal", "date", "text"] | None = None
    format: str | None = Field(None, description="strptime format of text dates, "
                               "e.g. %Y%m%d; a value must match it exactly")
    align: Literal["month_end"] | None = Field(
        None, description="month_end: date each value at the last day of its month (a "
        "YYYYMM period, or statements cut on another day)")
    map: dict[str, str | int | float | None] | None = Field(
        None, description="source code -> canonical value; a code not listed is an error")
    unit: tuple[Literal[tuple(UNITS)], ...] = Field(  # type: ignore[valid-type]
        (), description="unit conversion(s), applied in order: one name or a list")
    scale: float | None = Field(None, description="extra multiplier after `unit`")
    constant: str | int | float | None = Field(
        None, description="value for every row when the source lacks the column")
    money_unit: Literal[tuple(MONEY_UNITS)] | None = Field(  # type: ignore[valid-type]
        None, description="this money column's source unit, overriding the mapping's "
        "money_unit (e.g. yuan where the rest is in fen)")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("unit", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        if v is None:
            return ()
        return (v,) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _consistent(self) -> ColumnRule:
        if self.constant is not None and self.from_ is not None:
            raise ValueError("give either `from` or `constant`, not both")
        if self.format is not None and self.cast not in (None, "date"):
            raise ValueError("`format` only applies to dates")
        if self.align is not None and self.cast not in (None, "date"):
            raise ValueError("`align` only applies to dates")
        if self.format is not None:
            format_pattern(self.format)  # an unsupported directive is refused here
            if self.align is None and not any(d in self.format for d in DAY_DIRECTIVES):
                raise ValueError(f"format {self.format!r} has no day of the month: add "
                                 "`align: month_end` to date each value at its month's "
                                 "last day")
        if self.prefix is not None and self.constant is not None:
            raise ValueError("`prefix` applies to source values, not to a `constant`")
        return self


class TableMapping(_Strict):
    """One canonical table: its source, a table name or a query, and its columns."""

    source: str
    table: str | None = None
    query: str | None = None
    columns: dict[str, ColumnRule] = Field(default_factory=dict)

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, v: object) -> object:
        # `canonical: source_name` is shorthand for a plain rename.
        if isinstance(v, dict):
            return {k: ({"from": r} if isinstance(r, str) else (r or {})) for k, r in v.items()}
        return v

    @model_validator(mode="after")
    def _table_or_query(self) -> TableMapping:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` or `query`")
        return self


class SourceMapping(_Strict):
    """A lender's whole mapping (the YAML file)."""

    version: Literal[1] = 1
    lender: str = Field(..., min_length=1)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="ISO 4217 "
                                 "code of the book's money, e.g. CNY: its scale is checked")
    money_unit: Literal[tuple(MONEY_UNITS)] | None = Field(  # type: ignore[valid-type]
        None, description="the unit of every money column in the sources (fen, cents: "
        "divided by 100; wan: times 10,000); a column's own money_unit overrides it")
    sources: dict[str, Source]
    vocabularies: dict[str, list[str]] = Field(
        default_factory=dict, description="the lender's category values per column "
        "(default: the simulator's, postloan.data.schema)")
    tables: dict[str, TableMapping]
    _fingerprint: str | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _cross_checks(self) -> SourceMapping:
        errors = []
        for name, tm in self.tables.items():
            if name not in MAPPABLE_TABLES:
                errors.append(f"tables.{name}: unknown canonical table; known: "
                              f"{list(MAPPABLE_TABLES)}")
                continue
            if tm.source not in self.sources:
                errors.append(f"tables.{name}.source: unknown source {tm.source!r}; "
                              f"declared: {sorted(self.sources)}")
            elif tm.query is not None and self.sources[tm.source].kind in ("csv", "parquet"):
                errors.append(f"tables.{name}.query: a {self.sources[tm.source].kind} "
                              "folder has no SQL; name the file with `table`")
            spec = S.TABLES[name]
            for col, rule in tm.columns.items():
                if col not in spec.column_names:
                    errors.append(f"tables.{name}.columns.{col}: unknown canonical column; "
                                  f"{name} has {spec.column_names}")
                    continue
                kind = spec.column(col).kind
                if rule.constant is not None and (col in spec.key or col == spec.date_column
                                                  or col == "customer_id"):
                    errors.append(f"tables.{name}.columns.{col}.constant: a key or date "
                                  "column cannot be a constant")
                if rule.unit and kind not in ("int", "float"):
                    errors.append(f"tables.{name}.columns.{col}.unit: {col} is not a number")
                if rule.format is not None and kind != "date":
                    errors.append(f"tables.{name}.columns.{col}.format: {col} is not a date")
                if rule.align is not None and kind != "date":
                    errors.append(f"tables.{name}.columns.{col}.align: {col} is not a date")
                money = col in MONEY_COLUMNS.get(name, ())
                if rule.money_unit is not None and not money:
                    errors.append(f"tables.{name}.columns.{col}.money_unit: {col} is not "
                                  f"money (money columns: {_money_list()})")
                if money and set(rule.unit) & {"cents", "thousands"} and (
                        rule.money_unit is not None or self.money_unit is not None):
                    errors.append(f"tables.{name}.columns.{col}.unit: the money unit is "
                                  "given twice (unit and money_unit); keep money_unit")
        missing = [t for t in CORE_TABLES if t not in self.tables]
        if missing:
            errors.append(f"tables: core table(s) {missing} must be mapped")
        try:  # the book's rules: only region, employment, education and channels are free
            S.resolve_vocabularies(self.vocabularies)
        except DataValidationError as e:
            errors.append(f"vocabularies.{e.column}: {e.rule}"
                          + (f" (got {e.rows})" if e.rows is not None else ""))
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def table(self, name: str) -> TableMapping:
        """A table's mapping with the mapping's ``money_unit`` written into each money
        column's rule (a column's own ``money_unit`` wins)."""
        tm = self.tables[name]
        if self.money_unit is None:
            return tm
        cols = dict(tm.columns)
        for c in MONEY_COLUMNS.get(name, ()):
            rule = cols.get(c) or ColumnRule()
            if rule.money_unit is None:
                cols[c] = rule.model_copy(update={"money_unit": self.money_unit})
        return tm.model_copy(update={"columns": cols})

    def vocabulary(self, column: str) -> tuple[str, ...]:
        """The lender's allowed values of a category column (default: the schema's)."""
        if column in self.vocabularies:
            return tuple(self.vocabularies[column])
        return S.DEFAULT_VOCABULARIES[column]

    def effective_vocabularies(self) -> dict[str, list[str]]:
        """Every category column's vocabulary, the lender's where declared."""
        return {c: list(self.vocabulary(c)) for c in sorted(S.DEFAULT_VOCABULARIES)}

    def fingerprint(self) -> str:
        """SHA-256 of the mapping's normalised content (not of its YAML formatting), as
        written: folders relative to the file stay relative, so the same mapping has
        the same fingerprint on every machine."""
        if self._fingerprint is not None:
            return self._fingerprint
        data = self.model_dump(mode="json", by_alias=True)
        # Keys added after the first release count only when given: a mapping that does
        # not use them keeps the fingerprint it had (books ingested before stay "same").
        for k in ADDED_KEYS:
            if data.get(k) is None:
                data.pop(k, None)
        for tm in data["tables"].values():
            for rule in tm["columns"].values():
                for k in ADDED_KEYS:
                    if rule.get(k) is None:
                        rule.pop(k, None)
        body = json.dumps(data, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


def _money_list() -> list[str]:
    return [f"{t}.{c}" for t, cols in MONEY_COLUMNS.items() for c in cols]


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if p not in ("function-after", "function-before"))


def parse_mapping(data: object, origin: str = "mapping") -> SourceMapping:
    """Validate a mapping already parsed from YAML.

    Raises:
        ConfigError: naming each offending key path (``tables.loans.columns.principal.unit``).
    """
    try:
        return SourceMapping.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            where = _loc(err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {where}: {msg}")
        raise ConfigError(f"{origin} is not a valid source mapping:\n" + "\n".join(lines)) from None


def load_mapping(path: Path) -> SourceMapping:
    """Read and validate a mapping YAML file; relative folders resolve against its folder.

    Raises:
        ConfigError: the file is missing, is not YAML, or breaks the mapping's rules.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read source mapping {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    mapping = parse_mapping(data, origin=str(path))
    fingerprint = mapping.fingerprint()
    mapping = _resolve_paths(mapping, path.parent)
    mapping._fingerprint = fingerprint
    return mapping


def _resolve_paths(mapping: SourceMapping, base: Path) -> SourceMapping:
    sources = {}
    for name, src in mapping.sources.items():
        upd = {k: base / getattr(src, k) for k in ("duckdb", "csv", "parquet")
               if getattr(src, k) is not None and not getattr(src, k).is_absolute()}
        sources[name] = src.model_copy(update=upd) if upd else src
    return mapping.model_copy(update={"sources": sources})
