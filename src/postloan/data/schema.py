"""Every table of a post-loan book: columns, dtypes, ranges, categories, keys, PII.

The simulator writes these tables and a lender's own extract must follow the same
schema; :func:`validate_table` checks one table and raises
:class:`~postloan.errors.DataValidationError` naming the table, the column, the
broken rule and the first offending rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from postloan.errors import DataValidationError

# Category vocabularies. Their order fixes the integer codes the feature function
# uses, so never reorder: only append.
REGIONS = ("north", "south", "east", "west", "central", "northeast", "southwest", "coastal")
EMPLOYMENT_TYPES = ("salaried", "self_employed", "civil_servant", "retired", "gig_worker")
EDUCATION = ("primary", "secondary", "bachelor", "postgraduate")
CHANNELS = ("app", "branch", "phone")
PRODUCTS = ("consumer", "mortgage", "card", "sme")
COLLATERAL = ("none", "property", "vehicle", "deposit")
CLOSE_REASONS = ("matured", "prepaid", "charged_off")
INTERACTION_KINDS = ("service_request", "complaint", "collection_contact", "outreach")
INTERACTION_CHANNELS = ("app", "branch", "phone", "letter")
CONTACT_OUTCOMES = ("none", "reached", "no_answer", "refused", "promise_to_pay")
# Outreach (``kind == "outreach"`` rows of interactions): the action, the rule that
# made the customer eligible, and what was done. The actions are the strategy's
# recommended actions (``postloan.decisions.strategy.ACTIONS``, same order).
CONTACT_ACTIONS = ("payment_reminder", "restructuring_offer", "retention_offer",
                   "service_recovery_call")
ELIGIBILITY_RULES = ("early_delinquency", "hardship_delinquency", "rate_shopper",
                     "recent_complaint")
CONTACT_ASSIGNMENTS = ("contacted", "holdout", "over_capacity")
# The outcomes a contact is judged on (snapshot labels).
CONTACT_OUTCOME_LABELS = ("default_12m", "churn_6m", "dissatisfied_3m")

# Market lending rate of each product = regional policy rate + this spread (percent points).
PRODUCT_MARKET_SPREAD = {"consumer": 6.0, "mortgage": 1.8, "card": 14.0, "sme": 4.0}

# DPD buckets used by roll rates and features: current, 1-29, 30-59, 60-89, 90+.
DPD_BUCKET_EDGES = (0, 1, 30, 60, 90)
DEFAULT_DPD = 90

MIN_DATE = pd.Timestamp("1990-01-01")
MAX_DATE = pd.Timestamp("2100-12-31")


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Attributes:
        name: column name.
        kind: one of ``int``, ``float``, ``str``, ``category``, ``date``, ``bool``.
        nullable: whether missing values are allowed.
        min: smallest allowed value (numbers) or None.
        max: largest allowed value (numbers) or None.
        categories: allowed values for ``category`` columns.
        pii: True for personal data: never a feature, never logged.
        optional: the column may be absent from a table read in (books written
            before it existed, extracts without it); it is then filled with missing
            values. Only for nullable columns.
        month_end: a date that must fall on the last day of its month (monthly
            statements and monthly series are dated at month end; a snapshot as of a
            month end sees exactly the months that closed by then).
    """

    name: str
    kind: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] = ()
    pii: bool = False
    optional: bool = False
    month_end: bool = False


@dataclass(frozen=True)
class Table:
    """One table: its columns, its key and the column that dates each record."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    date_column: str | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _c(name: str, kind: str, **kw) -> Column:
    return Column(name, kind, **kw)


MONEY = {"min": 0.0}

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "customers",
            (
                _c("customer_id", "int", min=0),
                _c("birth_year", "int", min=1900, max=2100),
                _c("region", "category", categories=REGIONS),
                _c("employment_type", "category", categories=EMPLOYMENT_TYPES),
                _c("education", "category", categories=EDUCATION),
                _c("channel_preference", "category", categories=CHANNELS),
                _c("declared_monthly_income", "float", **MONEY),
                _c("customer_since", "date"),
            ),
            key=("customer_id",),
            date_column="customer_since",
            description="Profile at onboarding (no PII).",
        ),
        Table(
            "customers_pii",
            (
                _c("customer_id", "int", min=0),
                _c("full_name", "str", pii=True),
                _c("phone", "str", pii=True),
                _c("national_id", "str", pii=True),
                _c("address", "str", pii=True),
            ),
            key=("customer_id",),
            description="Personal data, stored apart; never joined into features.",
        ),
        Table(
            "loans",
            (
                _c("loan_id", "int", min=0),
                _c("customer_id", "int", min=0),
                _c("product", "category", categories=PRODUCTS),
                _c("principal", "float", min=0.01),
                _c("annual_rate", "float", min=0.0, max=100.0),
                _c("term_months", "int", min=1, max=480),
                _c("origination_date", "date"),
                _c("collateral_type", "category", categories=COLLATERAL),
                _c("collateral_value", "float", **MONEY),
                _c("close_date", "date", nullable=True),
                _c("close_reason", "category", nullable=True, categories=CLOSE_REASONS),
            ),
            key=("loan_id",),
            date_column="origination_date",
            description="One row per loan; close_date/close_reason are events known only "
            "once they happen.",
        ),
        Table(
            "repayments",
            (
                _c("loan_id", "int", min=0),
                _c("customer_id", "int", min=0),
                _c("statement_date", "date", month_end=True),
                _c("scheduled_amount", "float", **MONEY),
                _c("paid_amount", "float", **MONEY),
                _c("balance", "float", **MONEY),
                _c("dpd", "int", min=0, max=3650),
            ),
            key=("loan_id", "statement_date"),
            date_column="statement_date",
            description="Monthly panel per open loan, dated at the month-end statement.",
        ),
        Table(
            "activity",
            (
                _c("customer_id", "int", min=0),
                _c("month_end", "date", month_end=True),
                _c("app_logins", "int", min=0),
                _c("inbound_calls", "int", min=0),
                _c("branch_visits", "int", min=0),
            ),
            key=("customer_id", "month_end"),
            date_column="month_end",
            description="Monthly use of the lender's channels.",
        ),
        Table(
            "interactions",
            (
                _c("customer_id", "int", min=0),
                _c("event_date", "date"),
                _c("kind", "category", categories=INTERACTION_KINDS),
                _c("channel", "category", categories=INTERACTION_CHANNELS),
                _c("resolution_days", "float", nullable=True, min=0.0),
                _c("outcome", "category", categories=CONTACT_OUTCOMES),
                _c("action", "category", nullable=True, categories=CONTACT_ACTIONS,
                   optional=True),
                _c("eligibility", "category", nullable=True, categories=ELIGIBILITY_RULES,
                   optional=True),
                _c("assignment", "category", nullable=True, categories=CONTACT_ASSIGNMENTS,
                   optional=True),
                _c("propensity", "float", nullable=True, min=0.0, max=1.0, optional=True),
            ),
            key=(),
            date_column="event_date",
            description="Service requests, complaints (resolution_days known once resolved: "
            "event_date + resolution_days), collection contacts and outreach. An "
            "``outreach`` row is one eligible customer-month of the contact policy: "
            "``action`` the rule's action, ``eligibility`` the rule, ``assignment`` "
            "contacted / holdout (randomised control) / over_capacity, ``propensity`` "
            "the probability of being contacted given eligibility, ``channel`` the "
            "action's channel and ``outcome`` reached / no_answer (``none`` when not "
            "contacted). The four outreach columns are null for other kinds.",
        ),
        Table(
            "surveys",
            (
                _c("customer_id", "int", min=0),
                _c("survey_date", "date"),
                _c("service_efficiency", "int", min=1, max=5),
                _c("service_quality", "int", min=1, max=5),
                _c("product_range", "int", min=1, max=5),
                _c("staff_attitude", "int", min=1, max=5),
                _c("resolution_speed", "int", min=1, max=5),
                _c("overall", "int", min=1, max=5),
            ),
            key=("customer_id", "survey_date"),
            date_column="survey_date",
            description="Sparse satisfaction surveys on the five dimensions of the handbook.",
        ),
        Table(
            "bureau",
            (
                _c("customer_id", "int", min=0),
                _c("pull_date", "date"),
                _c("bureau_score", "int", min=300, max=850),
                _c("verified_monthly_income", "float", **MONEY),
                _c("external_debt", "float", **MONEY),
            ),
            key=("customer_id", "pull_date"),
            date_column="pull_date",
            description="Quarterly credit-bureau pulls with verified income.",
        ),
        Table(
            "macro",
            (
                _c("region", "category", categories=REGIONS),
                _c("month_end", "date", month_end=True),
                _c("unemployment_rate", "float", min=0.0, max=100.0),
                _c("policy_rate", "float", min=-5.0, max=50.0),
            ),
            key=("region", "month_end"),
            date_column="month_end",
            description="Monthly regional macro series.",
        ),
        Table(
            "truth",
            (
                _c("customer_id", "int", min=0),
                _c("month_end", "date"),
                _c("credit_quality", "float"),
                _c("service_sensitivity", "float"),
                _c("p_miss", "float", min=0.0, max=1.0),
                _c("p_attrition", "float", min=0.0, max=1.0),
                _c("p_dissatisfied", "float", min=0.0, max=1.0),
                _c("pd_12m", "float", min=0.0, max=1.0),
                _c("pchurn_6m", "float", min=0.0, max=1.0),
                _c("pdissat_3m", "float", min=0.0, max=1.0),
            ),
            key=("customer_id", "month_end"),
            date_column="month_end",
            description="Simulator only: latent traits and true probabilities; never features.",
        ),
        Table(
            "contact_truth",
            (
                _c("customer_id", "int", min=0),
                _c("as_of", "date"),
                _c("eligibility", "category", categories=ELIGIBILITY_RULES),
                _c("action", "category", categories=CONTACT_ACTIONS),
                _c("assignment", "category", categories=CONTACT_ASSIGNMENTS),
                _c("receptiveness", "float"),
                _c("p_reach", "float", min=0.0, max=1.0),
                *(_c(f"base_{o}", "float", min=0.0, max=1.0) for o in CONTACT_OUTCOME_LABELS),
                *(_c(f"effect_{a}_{o}", "float", min=-1.0, max=1.0)
                  for a in CONTACT_ACTIONS for o in CONTACT_OUTCOME_LABELS),
            ),
            key=("customer_id", "as_of"),
            date_column="as_of",
            description="Simulator only: for each eligible customer-month of the contact "
            "policy, the true effect of each action (contact in the month after "
            "``as_of``) on the probability of each outcome label, from the simulator's "
            "own hazards: ``effect_<action>_<label>`` = P(label | contacted) - "
            "P(label | not contacted), intent to treat (reach included; negative = "
            "fewer defaults / churners / unhappy customers). ``base_<label>`` is "
            "P(label | not contacted). Never features.",
        ),
    )
}

# Core tables: every book holds them, never empty.
CORE_TABLES = ("customers", "loans", "repayments")
# Optional tables: a lender's book may lack any of them (the manifest lists it in
# ``absent_tables``); the snapshot then leaves that feature family missing (NaN).
# A present optional table may be empty (no complaints in the window is a fact).
OPTIONAL_TABLES = ("activity", "interactions", "surveys", "bureau", "macro")
# The tables snapshots, training and scoring read: the core ones must be present, the
# optional ones are read when the book holds them. `customers_pii` (stored apart, never
# read by a model), `truth` and `contact_truth` (simulator only) are not among them.
REQUIRED_TABLES = (*CORE_TABLES, *OPTIONAL_TABLES)
# Tables a book may declare absent in its manifest.
ABSENT_ALLOWED = frozenset({*OPTIONAL_TABLES, "customers_pii"})
PII_COLUMNS = frozenset(c.name for t in TABLES.values() for c in t.columns if c.pii)


def _rows(df: pd.DataFrame, mask: np.ndarray | pd.Series, cols: list[str], n: int = 5) -> str:
    mask = np.asarray(mask, dtype=bool)
    sub = df.loc[mask, [c for c in cols if c in df.columns]].head(n)
    return sub.to_string()


MONTH_END_RULE = ("dates must be month ends (rule month_end: statements and monthly "
                  "rows are dated at the last day of their month; a source mapping can "
                  "move them there with `align: month_end`)")


def not_month_end(dates: pd.Series) -> np.ndarray:
    """Mask of non-missing dates that are not the last day of their month."""
    d = pd.to_datetime(dates)
    return (d.notna() & ~d.dt.is_month_end).to_numpy()


_NS_PER_DAY = 86_400 * 10**9


def _duplicated(df: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """``df.duplicated(keys, keep=False)``; integer and date keys are first folded into
    one int64 (mixed radix over each key's range, when it fits), hashed once."""
    cols = [df[k].to_numpy() for k in keys]
    if len(cols) > 1 and all(c.dtype.kind in "iM" for c in cols):
        folded, radix = np.zeros(len(df), dtype=np.int64), 1
        for c in reversed(cols):
            v = c.view("int64")
            if c.dtype.kind == "M" and not (v % _NS_PER_DAY).any():
                v = v // _NS_PER_DAY  # dates: count days, not nanoseconds
            lo, hi = (int(v.min()), int(v.max())) if len(v) else (0, 0)
            span = hi - lo + 1
            if radix * span >= 2**62:
                break
            folded += (v - lo) * radix
            radix *= span
        else:
            ordered = np.sort(folded)  # the usual answer, none, found faster by a sort
            if not (ordered[1:] == ordered[:-1]).any():
                return np.zeros(len(df), dtype=bool)
            return pd.Series(folded).duplicated(keep=False).to_numpy()
    return df.duplicated(keys, keep=False).to_numpy()


def _arrow_held(s: pd.Series) -> bool:
    """Whether pandas holds the column's text in Arrow (its ``str`` dtype)."""
    return isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"


def validate_table(name: str, df: pd.DataFrame,
                   vocabularies: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Check a table against its schema and return it with normalised dtypes.

    Integers become int64, floats float64, dates datetime64[ns], categories and text
    plain Python-string object columns (pandas 3 reads text as ``str``; LightGBM
    and the fixed category codes need one representation).

    Core tables may not be empty; an optional table may (see :data:`OPTIONAL_TABLES`).

    Args:
        name: table name, a key of :data:`TABLES`.
        df: the table as read.
        vocabularies: allowed values per category column, as
            :func:`resolve_vocabularies` returns them (the book's manifest);
            None = the default contract (:data:`DEFAULT_VOCABULARIES`).

    Returns:
        The validated table with normalised dtypes (a copy).

    Raises:
        DataValidationError: on the first broken rule, naming table, column, rule and
            the first offending rows.
    """
    if name not in TABLES:
        raise DataValidationError(name, f"unknown table; known tables: {sorted(TABLES)}")
    spec = TABLES[name]
    if len(df) == 0 and name not in OPTIONAL_TABLES:
        raise DataValidationError(name, "table is empty (0 rows)")
    vocab = DEFAULT_VOCABULARIES if vocabularies is None else vocabularies
    missing = [c.name for c in spec.columns if c.name not in df.columns and not c.optional]
    if missing:
        raise DataValidationError(
            name, f"missing column(s) {missing}; found {list(df.columns)}", column=missing[0]
        )
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    src = df.reset_index(drop=True)
    # Columns are checked in schema order, so the first broken rule reported is the
    # same whatever the source's column order.
    for col in spec.columns:
        s = _source_column(src, col)
        isna = s.isna().to_numpy()
        if not col.nullable and isna.any():
            raise DataValidationError(
                name, "missing values not allowed", col.name, _rows(src, isna, [col.name])
            )
        if col.kind in ("int", "float"):
            out[col.name] = _numeric_column(spec, col, s, isna, src)
        elif col.kind == "date":
            out[col.name] = _date_column(spec, col, s, src)
        elif col.kind in ("category", "str"):
            out[col.name] = _text_column(spec, col, s, isna, src, vocab)
        elif col.kind == "bool":
            out[col.name] = s.astype(bool).to_numpy()
        else:  # pragma: no cover - schema declaration error
            raise ValueError(f"unknown column kind {col.kind}")
    if spec.key:
        dup = _duplicated(out, list(spec.key))
        if dup.any():
            raise DataValidationError(
                name, f"duplicate keys {list(spec.key)}", ",".join(spec.key),
                _rows(out, dup, list(spec.key)),
            )
    return out


def _source_column(src: pd.DataFrame, col: Column) -> pd.Series:
    """The column as read, or all missing when it is an optional column left out."""
    if col.name in src.columns:
        return src[col.name]
    numeric = col.kind in ("int", "float")
    return pd.Series(np.full(len(src), np.nan) if numeric else [None] * len(src),
                     dtype="float64" if numeric else object)


def _numeric_column(spec: Table, col: Column, s: pd.Series, isna: np.ndarray,
                    src: pd.DataFrame) -> np.ndarray:
    """Check an ``int``/``float`` column (type, finite, whole, bounds) and normalise it.

    Args:
        spec: the table's schema.
        col: the column's schema.
        s: the column as read.
        isna: its missing-value mask.
        src: the table as read (for the offending rows in an error).

    Returns:
        int64 values for an int column without missing values, else float64 (NaN
        for missing: int64 cannot hold them).

    Raises:
        DataValidationError: the column is not numeric, or holds infinite values,
            fractions (int) or values outside its bounds.
    """
    name = spec.name
    if len(s) == 0 and not pd.api.types.is_numeric_dtype(s):
        s = s.astype("float64")  # an empty column read without a type
    if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
        raise DataValidationError(
            name, f"expected a numeric ({col.kind}) column, got dtype {s.dtype}", col.name
        )
    vals = s.to_numpy(dtype="float64", na_value=np.nan)
    if np.isinf(vals).any():
        bad = np.isinf(vals)
        raise DataValidationError(
            name, "infinite values", col.name, _rows(src, bad, [col.name])
        )
    if col.kind == "int" and s.dtype.kind not in "iu":  # int dtypes are whole
        frac = ~isna & (np.floor(np.where(isna, 0, vals)) != np.where(isna, 0, vals))
        if frac.any():
            raise DataValidationError(
                name, "expected whole numbers", col.name, _rows(src, frac, [col.name])
            )
    if col.min is not None:
        bad = ~isna & (vals < col.min)
        if bad.any():
            raise DataValidationError(
                name, f"values below the minimum {col.min}", col.name,
                _rows(src, bad, list(spec.key) + [col.name]),
            )
    if col.max is not None:
        bad = ~isna & (vals > col.max)
        if bad.any():
            raise DataValidationError(
                name, f"values above the maximum {col.max}", col.name,
                _rows(src, bad, list(spec.key) + [col.name]),
            )
    return vals.astype("int64") if col.kind == "int" and not isna.any() else vals


def _date_column(spec: Table, col: Column, s: pd.Series, src: pd.DataFrame) -> np.ndarray:
    """Check a ``date`` column (type, range, month end) and normalise it to datetime64[ns].

    Args:
        spec: the table's schema.
        col: the column's schema.
        s: the column as read.
        src: the table as read (for the offending rows in an error).

    Raises:
        DataValidationError: the column is not a date column, or holds dates outside
            :data:`MIN_DATE`..:data:`MAX_DATE` or (``month_end`` columns) not at a
            month end.
    """
    name = spec.name
    if len(s) == 0 and not pd.api.types.is_datetime64_any_dtype(s):
        s = s.astype("datetime64[ns]")
    if not pd.api.types.is_datetime64_any_dtype(s):
        raise DataValidationError(
            name, f"expected a date column, got dtype {s.dtype}", col.name
        )
    d = pd.to_datetime(s).astype("datetime64[ns]")
    bad = d.notna().to_numpy() & ((d < MIN_DATE) | (d > MAX_DATE)).to_numpy()
    if bad.any():
        raise DataValidationError(
            name, f"dates outside {MIN_DATE.date()}..{MAX_DATE.date()}", col.name,
            _rows(src, bad, list(spec.key) + [col.name]),
        )
    if col.month_end and (bad := not_month_end(d)).any():
        raise DataValidationError(
            name, MONTH_END_RULE, col.name,
            _rows(src, bad, list(spec.key) + [col.name]),
        )
    return d.to_numpy()


def _text_column(spec: Table, col: Column, s: pd.Series, isna: np.ndarray, src: pd.DataFrame,
                 vocab: Mapping[str, Sequence[str]]
                 ) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """Check a ``category``/``str`` column and normalise it to Python strings (object), or
    keep it in Arrow when pandas already holds it there (an ingested chunk).

    Args:
        spec: the table's schema.
        col: the column's schema.
        s: the column as read.
        isna: its missing-value mask.
        src: the table as read (for the offending rows in an error).
        vocab: allowed values per category column; a column not in it keeps its
            declared categories.

    Raises:
        DataValidationError: the column holds numbers, or (category) values outside
            the allowed categories.
    """
    name = spec.name
    if pd.api.types.is_numeric_dtype(s) and not isna.all():
        raise DataValidationError(
            name, f"expected text, got dtype {s.dtype}", col.name
        )
    if _arrow_held(s) and not isna.all():
        # Text pandas holds in Arrow (an ingested chunk): checked in Arrow and kept as it
        # is, the dtype a DataFrame infers from Python strings.
        if col.kind == "category":
            allowed = vocab.get(col.name, col.categories)
            arr = pa.chunked_array(pa.array(s.array))
            known = pc.is_in(arr, value_set=pa.array(list(allowed), type=arr.type))
            bad = ~isna & ~known.to_numpy(zero_copy_only=False)
            if bad.any():
                raise DataValidationError(
                    name, f"values outside the allowed categories {list(allowed)}",
                    col.name, _rows(src, bad, list(spec.key) + [col.name]))
        return s.array.copy()  # Arrow buffers shared, never mutated
    obj = s.astype(object).where(~isna, None)
    if col.kind == "category":
        allowed = vocab.get(col.name, col.categories)
        bad = ~isna & ~obj.isin(set(allowed)).to_numpy()
        if bad.any():
            raise DataValidationError(
                name, f"values outside the allowed categories {list(allowed)}",
                col.name, _rows(src, bad, list(spec.key) + [col.name]),
            )
    return obj.to_numpy(dtype=object)


def category_code(column: str, values: pd.Series, table: str = "snapshot",
                  vocabulary: Sequence[str] | None = None,
                  unknown: str = "raise") -> np.ndarray:
    """Map category values to their codes: the position in the vocabulary.

    Args:
        column: snapshot category field (a key of :data:`CATEGORY_VOCABULARIES`).
        values: the values.
        table: table name for the error message.
        vocabulary: the categories, in code order (a model's feature spec, a book's
            manifest); None = the default contract.
        unknown: ``raise`` on a value outside the vocabulary, or ``missing`` to code it
            NaN (scoring: a category the model never saw tells it nothing).

    Returns:
        float64 codes; missing values are NaN.

    Raises:
        DataValidationError: a value outside the vocabulary (``unknown="raise"``).
    """
    vocab = CATEGORY_VOCABULARIES[column] if vocabulary is None else tuple(vocabulary)
    obj = values.astype(object)
    codes = obj.map({v: float(i) for i, v in enumerate(vocab)})
    bad = obj.notna().to_numpy() & codes.isna().to_numpy()
    if bad.any() and unknown == "raise":
        frame = pd.DataFrame({column: obj})
        raise DataValidationError(
            table, f"unknown category; allowed {list(vocab)}", column,
            _rows(frame, bad, [column]),
        )
    return codes.to_numpy(dtype="float64")


CATEGORY_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "region": REGIONS,
    "employment_type": EMPLOYMENT_TYPES,
    "education": EDUCATION,
    "channel_preference": CHANNELS,
    "main_product": PRODUCTS,
}
"""Default vocabulary of each snapshot category field (the simulator's contract)."""

# The book column each snapshot category field takes its values from.
SNAPSHOT_CATEGORY_SOURCE = {"region": "region", "employment_type": "employment_type",
                            "education": "education",
                            "channel_preference": "channel_preference",
                            "main_product": "product"}

DEFAULT_VOCABULARIES: dict[str, tuple[str, ...]] = {
    c.name: c.categories for t in TABLES.values() for c in t.columns if c.kind == "category"}
"""Allowed values of every category column of the book: the default data contract."""

# Category columns a lender may declare with its own values (its regions, its own
# employment or education classes, its channels): they carry no rule in the code, only
# codes the models learn. The other category columns carry domain rules and stay fixed:
# products (LGD by product, market spread, card utilisation and term rules), collateral
# ("none" = unsecured), close reasons (charge-off, prepayment: the labels), interaction
# kinds and contact outcomes (complaints, promises to pay). A lender maps its own codes
# onto them in its source mapping (e.g. product "01" -> consumer).
DECLARABLE_VOCABULARIES = frozenset({"region", "employment_type", "education",
                                     "channel_preference", "channel"})


def resolve_vocabularies(declared: Mapping[str, Sequence[str]] | None = None
                         ) -> dict[str, tuple[str, ...]]:
    """A book's vocabularies: the defaults, overridden by what the book declares.

    Args:
        declared: column -> allowed values (a manifest's ``vocabularies``); None or {}
            = the default contract.

    Returns:
        Every category column of :data:`DEFAULT_VOCABULARIES` -> its allowed values.

    Raises:
        DataValidationError: an unknown column, an empty or duplicated list, a non-text
            value, or a fixed column (products, ...) declared with values outside its
            canonical classes.
    """
    out = dict(DEFAULT_VOCABULARIES)
    for col, values in (declared or {}).items():
        if col not in DEFAULT_VOCABULARIES:
            raise DataValidationError("manifest", f"vocabulary for an unknown category "
                                      f"column; known: {sorted(DEFAULT_VOCABULARIES)}", col)
        vals = tuple(values) if isinstance(values, (list, tuple)) else None
        if not vals or not all(isinstance(v, str) and v for v in vals):
            raise DataValidationError("manifest", "a vocabulary is a non-empty list of "
                                      "non-empty strings", col, repr(values)[:200])
        dup = sorted({v for v in vals if vals.count(v) > 1})
        if dup:
            raise DataValidationError("manifest", "duplicated values in the vocabulary",
                                      col, dup[:5])
        if col in DECLARABLE_VOCABULARIES:
            out[col] = vals
            continue
        canonical = DEFAULT_VOCABULARIES[col]
        extra = [v for v in vals if v not in canonical]
        if extra:
            raise DataValidationError(
                "manifest", f"'{col}' values carry domain rules and are fixed to "
                f"{list(canonical)}; map the lender's own codes onto them in the source "
                "mapping (a code map)", col, extra[:5])
        # A subset of a fixed vocabulary keeps the canonical list: its codes stay stable.
    return out


def snapshot_categories(vocabularies: Mapping[str, Sequence[str]] | None = None
                        ) -> dict[str, list[str]]:
    """Snapshot category field -> its categories in code order, for a book's vocabularies.

    This is what a model's feature spec stores (``categories``).
    """
    v = resolve_vocabularies(None) if vocabularies is None else vocabularies
    return {f: list(v[src]) for f, src in SNAPSHOT_CATEGORY_SOURCE.items()}


def empty_table(name: str) -> pd.DataFrame:
    """A validated table with no rows: the schema's columns and dtypes."""
    dtypes = {"int": "int64", "float": "float64", "date": "datetime64[ns]", "bool": "bool"}
    return pd.DataFrame({c.name: pd.Series([], dtype=dtypes.get(c.kind, object))
                         for c in TABLES[name].columns})
