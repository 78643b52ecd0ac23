"""Pure conversions from a lender's rows to canonical columns (DataFrame in, DataFrame out).

Each rule of a :class:`~postloan.data.contract.mapping.ColumnRule` is one function here; a
value a rule cannot convert raises :class:`~postloan.errors.DataValidationError` naming
the source table, the source and canonical column, the rule and the first offending
source rows (their row number, the source's key columns and the offending value; a PII
column's values are never shown).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from postloan.data import schema as S
from postloan.data.contract.mapping import UNITS, ColumnRule, TableMapping, format_pattern
from postloan.data.contract.money import MONEY_UNITS
from postloan.errors import DataValidationError

MAX_ROWS_SHOWN = 5
_INT_TEXT = r"^\s*[+-]?\d+\s*$"
# ISO 8601 calendar dates, optionally with a time of day ("2024-01" is not a date).
_ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DEFAULT_CAST = {"int": "integer", "float": "decimal", "date": "date", "category": "text",
                 "str": "text", "bool": "integer"}


@dataclass(frozen=True)
class Where:
    """What an error names: the canonical table, its source and the source's key columns.

    Attributes:
        table: canonical table name.
        source: how the source is shown, e.g. ``core.loan_master at
            postgresql://loader@db/core`` (URL masked).
        key_columns: source column names shown beside an offending value.
        row_offset: source row number of the chunk's first row (0-based).
    """

    table: str
    source: str
    key_columns: tuple[str, ...] = ()
    row_offset: int = 0

    def label(self) -> str:
        return f"{self.table} (source {self.source})"


def source_columns(name: str, tm: TableMapping) -> dict[str, str]:
    """Canonical column -> source column for every canonical column read from the source."""
    out = {}
    for c in S.TABLES[name].columns:
        if getattr(c, "optional", False) and c.name not in tm.columns:
            continue  # an optional column is read only when the mapping names it
        rule = tm.columns.get(c.name) or ColumnRule()
        if rule.constant is None:
            out[c.name] = rule.from_ or c.name
    return out


def source_key_columns(name: str, tm: TableMapping) -> tuple[str, ...]:
    """Source names of the columns that identify a row (the key, else customer_id)."""
    spec = S.TABLES[name]
    cols = source_columns(name, tm)
    key = [c for c in (spec.key or ("customer_id",)) if c in cols]
    return tuple(cols[c] for c in key)


def offending_rows(raw: pd.DataFrame, bad: np.ndarray, where: Where, column: str,
                   pii: bool = False) -> str:
    """The first offending source rows as text: row number, key columns, the value."""
    idx = np.flatnonzero(bad)[:MAX_ROWS_SHOWN]
    cols = [c for c in where.key_columns if c in raw.columns and c != column]
    shown = raw.iloc[idx][cols].copy()
    if column in raw.columns:
        shown[column] = "<PII hidden>" if pii else raw.iloc[idx][column].to_numpy()
    shown.index = pd.Index(idx + where.row_offset, name="source row")
    more = int(np.count_nonzero(bad)) - len(idx)
    text = shown.to_string()
    return text + (f"\n... and {more:,} more" if more > 0 else "")


def _fail(where: Where, col: str, src_col: str | None, rule: str, raw: pd.DataFrame,
          bad: np.ndarray) -> DataValidationError:
    pii = col in S.PII_COLUMNS
    column = col if src_col in (None, col) else f"{col} (source column {src_col})"
    rows = offending_rows(raw, bad, where, src_col or col, pii) if bad is not None else None
    return DataValidationError(where.label(), rule, column, rows)


def _arrow_text(values: pd.Series) -> pa.Array | None:
    """The values as one Arrow string array, without a copy, when pandas holds them in
    Arrow (its ``str`` dtype, as the PostgreSQL readers give text); else None.

    The fast paths below work on it: no Python object per value.
    """
    dtype = values.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return None
    arr = pa.array(values.array)  # __arrow_array__: the storage itself
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _str_series(arr: pa.Array, index: pd.Index) -> pd.Series:
    """Arrow strings as a Series of pandas' ``str`` dtype (what a DataFrame infers from
    Python strings and None), without a Python object per value."""
    out = pa.chunked_array([arr], type=arr.type).to_pandas()
    out.index = index
    return out


def _objects(arr: pa.Array) -> np.ndarray:
    """Arrow strings as an object array of Python strings and None, one object per
    distinct value (codes and categories repeat: most of the cost is in making them)."""
    enc = pc.dictionary_encode(arr)
    uniq = np.empty(len(enc.dictionary) + 1, dtype=object)
    uniq[:-1] = enc.dictionary.to_numpy(zero_copy_only=False)
    uniq[-1] = None
    return uniq[enc.indices.fill_null(len(uniq) - 1).to_numpy(zero_copy_only=False)]


def _as_text(values: pd.Series) -> pd.Series:
    """Values as text; whole numbers print without a decimal point (1.0 -> "1")."""
    if (arr := _arrow_text(values)) is not None:
        return pd.Series(_objects(arr), index=values.index, dtype=object)
    if pd.api.types.is_string_dtype(values.dtype) and pd.api.types.infer_dtype(
            values, skipna=True) in ("string", "empty"):
        # Already text (object or pandas' str dtype): no per-value work.
        return values.astype(object).where(values.notna(), None)

    def one(v: object) -> object:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
            return None
        if isinstance(v, (float, np.floating, Decimal)) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return pd.Series([one(v) for v in values.to_numpy(dtype=object)], index=values.index,
                     dtype=object)


def map_codes(values: pd.Series, codes: Mapping[str, object]) -> tuple[pd.Series, np.ndarray]:
    """Replace each code by its canonical value (codes compared as text).

    Returns:
        The mapped values and a mask of non-missing values whose code is not listed.
    """
    arr = _arrow_text(values)
    targets = list(codes.values())
    if arr is not None and len(arr) and all(isinstance(k, str) for k in codes) and all(
            v is None or isinstance(v, str) for v in targets):
        # Arrow-held text: each code's position in the map, then the canonical values
        # taken by position (a ``str`` Series, as a DataFrame would infer it).
        idx = pc.index_in(arr, value_set=pa.array(list(codes), type=arr.type))
        bad = pc.and_(arr.is_valid(), idx.is_null()).to_numpy(zero_copy_only=False)
        mapped = pc.take(pa.array(targets, type=pa.large_string()), idx)
        if mapped.null_count < len(mapped):
            return _str_series(mapped, values.index), bad
        return pd.Series([None] * len(values), index=values.index, dtype=object), bad
    text = _as_text(values)
    bad = text.notna().to_numpy() & ~text.isin(list(codes)).to_numpy()
    mapped = text.map(dict(codes)).astype(object)
    return mapped.where(~bad & mapped.notna().to_numpy(), None), bad


def cast_integer(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Whole numbers from numbers or digit strings (zero-padded codes such as "000123").

    Returns:
        int64 values (float64 with NaN where any is missing or bad) and the mask of bad
        values.
    """
    isna = values.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        num = values.to_numpy(dtype="float64", na_value=np.nan)
        bad = ~isna & (np.isinf(num) | (np.mod(np.nan_to_num(num), 1) != 0))
        return _whole(np.where(bad, np.nan, num), values.index), bad
    arr = _arrow_text(values)
    if arr is not None and pc.all(pc.ascii_is_decimal(arr)).as_py():
        # Arrow-held text of ASCII digits only (no sign, no space: the usual zero-padded
        # customer number): what the pattern below accepts, parsed straight away.
        num = pc.cast(arr, pa.int64())
        ok = np.zeros(len(values), dtype=bool)
        span = pc.min_max(num)
        if not num.null_count and -2**53 <= span["min"].as_py() <= span["max"].as_py() <= 2**53:
            # Whole and exact as float64: what the float round trip below gives.
            return pd.Series(num.to_numpy(), index=values.index), ok
        return _whole(num.to_numpy(zero_copy_only=False).astype("float64"), values.index), ok
    if arr is None:
        arr = pa.array(_as_text(values).to_numpy(dtype=object), type=pa.string())
    # Digits only (zero padding allowed): "1.5", "1e3" and "12a" are not codes. Match and
    # parse run vectorised in Arrow: a Python call per value costs seconds per million.
    ok = pc.match_substring_regex(arr, _INT_TEXT).fill_null(False)
    bad = ~isna & ~ok.to_numpy(zero_copy_only=False)
    digits = pc.replace_substring_regex(pc.utf8_trim_whitespace(arr), r"^\+", "")
    num = pc.cast(pc.if_else(ok, digits, pa.scalar(None, pa.string())), pa.int64())
    return _whole(num.to_numpy(zero_copy_only=False).astype("float64"), values.index), bad


def _whole(num: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(num if np.isnan(num).any() else num.astype("int64"), index=index)


def cast_decimal(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Numbers from numbers, NUMERIC (Decimal) or text ("1234.50").

    Returns:
        float64 values and the mask of values that are not numbers.
    """
    isna = values.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        num = values.to_numpy(dtype="float64", na_value=np.nan)
    else:
        obj = values.to_numpy(dtype=object)
        num = pd.to_numeric(pd.Series([v if not isinstance(v, str) else v.strip() for v in obj],
                                      index=values.index, dtype=object),
                            errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = ~isna & (np.isnan(num) | np.isinf(num))
    return pd.Series(np.where(bad, np.nan, num), index=values.index), bad


def cast_date(values: pd.Series, fmt: str | None = None) -> tuple[pd.Series, np.ndarray]:
    """Dates from dates/timestamps, or from text in a strptime format (``%Y%m%d``).

    Without a format, text must be an ISO 8601 date (``2024-01-31``, optionally with a
    time of day). Integers such as 20240131 are read as their digits. Text must match
    its format exactly (:func:`~postloan.data.contract.mapping.format_pattern`): strptime
    alone reads "202411" with ``%Y%m%d`` as 2024-01-01, a wrong date, not an error.

    Returns:
        datetime64[ns] values (NaT where missing or bad) and the mask of bad values.
    """
    isna = values.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(values) and fmt is None:
        out = pd.to_datetime(values).dt.tz_localize(None) if getattr(
            values.dt, "tz", None) is not None else pd.to_datetime(values)
        return out.astype("datetime64[ns]"), np.zeros(len(values), dtype=bool)
    if fmt is None and pd.api.types.infer_dtype(values, skipna=True) in ("date", "datetime"):
        # DATE / TIMESTAMP values from a driver (datetime.date objects).
        parsed = pd.to_datetime(values.astype(object), errors="coerce")
    elif (fast := _fast_dates(values, fmt)) is not None:
        parsed = fast
    else:
        text = _as_text(values)
        arr = pa.array(text.to_numpy(dtype=object), type=pa.string())
        # Exact match first (vectorised in Arrow; surrounding spaces, e.g. of CHAR
        # columns, allowed), then strptime on the matching values only.
        pattern = _ISO_DATE if fmt is None else format_pattern(fmt)
        ok = pc.match_substring_regex(arr, f"^(?:{pattern})$").fill_null(False)
        ok = ok.to_numpy(zero_copy_only=False)
        if not ok[~isna].all():  # rare: trim and match again before refusing
            arr = pc.utf8_trim_whitespace(arr)
            ok = pc.match_substring_regex(arr, f"^(?:{pattern})$").fill_null(False)
            ok = ok.to_numpy(zero_copy_only=False)
            text = pd.Series(arr.to_numpy(zero_copy_only=False), index=values.index,
                             dtype=object).where(ok, None)
        parsed = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce")
    if parsed.dtype != "datetime64[ns]":
        # pandas 3 parses year 0 or 9999 at a coarser unit: such dates are refused
        # (they are no book's dates), never an OutOfBoundsDatetime traceback.
        lo, hi = pd.Timestamp.min, pd.Timestamp.max
        parsed = parsed.where((parsed >= lo) & (parsed <= hi))
    parsed = parsed.astype("datetime64[ns]")
    bad = ~isna & parsed.isna().to_numpy()
    return parsed, bad


# Formats the Arrow fast path parses: %Y, %m and %d once each, and literal characters.
_FAST_DATE_FORMAT = r"^(?:%[Ymd]|[^%])+$"
# The dates datetime64[ns] holds (pandas' bounds, in seconds), inside which it runs.
_NS_RANGE = (pd.Timestamp.min.ceil("D").value // 10**9,
             pd.Timestamp.max.floor("D").value // 10**9)


def _fast_dates(values: pd.Series, fmt: str | None) -> pd.Series | None:
    """:func:`cast_date` of Arrow-held text in a plain year-month-day format, parsed in
    Arrow; None when anything is unusual (then the strptime path decides).

    Every value must match the format's pattern untrimmed, so each holds its digits at
    the same byte positions. Arrow's strptime rolls an impossible day over (20240230 ->
    2024-03-01) where strptime refuses it: a date counts only when its day of month is
    the day written. Dates outside datetime64[ns]'s range go the strptime path too.
    """
    import re

    arr = _arrow_text(values)
    if (arr is None or fmt is None or not re.match(_FAST_DATE_FORMAT, fmt) or not len(arr)
            or sorted(re.findall(r"%([Ymd])", fmt)) != ["Y", "d", "m"]):
        return None
    if fmt == "%Y%m%d":
        return _yyyymmdd(arr, values.index)
    if not pc.all(pc.match_substring_regex(arr, f"^(?:{format_pattern(fmt)})$")).as_py():
        return None
    ts = pc.strptime(arr, format=fmt, unit="s", error_is_null=True)
    span = pc.min_max(ts.cast(pa.int64()))  # seconds (year 0 is no Python datetime)
    lo, hi = span["min"].as_py(), span["max"].as_py()
    if lo is not None and (lo < _NS_RANGE[0] or hi > _NS_RANGE[1]):
        return None
    # Byte position of the day's two digits in every value.
    head = re.split(r"%d", fmt)[0]
    pos = sum(4 if t == "%Y" else 2 if t == "%m" else len(t.encode())
              for t in re.findall(r"%[Ym]|[^%]", head))
    written = _two_digits_at(arr, pos)
    day = pc.day(ts).fill_null(0).to_numpy(zero_copy_only=False)
    out = ts.cast(pa.timestamp("ns")).to_numpy(zero_copy_only=False, writable=True)
    out[day != written] = np.datetime64("NaT")
    return pd.Series(out, index=values.index)


def _yyyymmdd(arr: pa.Array, index: pd.Index) -> pd.Series | None:
    """YYYYMMDD text (8 ASCII digits, years 1678-2261) as dates by integer arithmetic:
    a date counts when its month is 1-12 and its day exists in that month."""
    if not (pc.all(pc.ascii_is_decimal(arr)).as_py()
            and pc.all(pc.equal(pc.binary_length(arr), 8)).as_py()):
        return None
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    v = pc.cast(arr, pa.int64()).fill_null(19700101).to_numpy(zero_copy_only=False)
    y, m, d = v // 10000, v // 100 % 100, v % 100
    if y.min() < 1678 or y.max() > 2261:  # near datetime64[ns]'s bounds: strptime decides
        return None
    months = ((y - 1970) * 12 + (m - 1)).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (d - 1).astype("timedelta64[D]")
    ok = valid & (m >= 1) & (m <= 12) & (d >= 1) & (days.astype("datetime64[M]") == months)
    out = days.astype("datetime64[ns]")
    out[~ok] = np.datetime64("NaT")
    return pd.Series(out, index=index)


def _two_digits_at(arr: pa.Array, pos: int) -> np.ndarray:
    """The number written by the two ASCII digits at byte `pos` of each string (read
    from Arrow's buffers; meaningless for NULL slots)."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64 if pa.types.is_large_string(
        arr.type) else np.int32)[arr.offset:arr.offset + len(arr)]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    if len(data) < pos + 2:
        return np.full(len(arr), -1)
    start = np.minimum(offsets + pos, len(data) - 2)
    return (data[start].astype(np.int64) - 48) * 10 + (data[start + 1].astype(np.int64) - 48)


def align_month_end(dates: pd.Series) -> pd.Series:
    """Each date moved forward to the last day of its month (a month end stays).

    Forward, never back: a record dated later than it happened is seen later by a
    snapshot, never earlier (no look-ahead)."""
    return (dates.dt.normalize() + pd.offsets.MonthEnd(0)).astype("datetime64[ns]")


def strip_prefix(values: pd.Series, prefix: str) -> tuple[pd.Series, np.ndarray]:
    """Values as text without `prefix` (``C000123`` -> ``000123``).

    Returns:
        The stripped text and the mask of non-missing values that do not start with it.
    """
    text = _as_text(values)
    arr = pa.array(text.to_numpy(dtype=object), type=pa.string())
    ok = pc.starts_with(arr, prefix).fill_null(False).to_numpy(zero_copy_only=False)
    bad = text.notna().to_numpy() & ~ok
    out = pd.Series(pc.utf8_slice_codeunits(arr, len(prefix)).to_numpy(zero_copy_only=False),
                    index=values.index, dtype=object)
    return out.where(ok, None), bad


def cast_text(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Text (whole numbers without a decimal point); never fails.

    Arrow-held text (pandas' ``str`` dtype, not NULL throughout) is returned as it is:
    a DataFrame infers that dtype from the Python strings anyway.
    """
    ok = np.zeros(len(values), dtype=bool)
    if (arr := _arrow_text(values)) is not None and arr.null_count < len(arr):
        return values, ok
    return _as_text(values), ok


def convert_units(values: pd.Series, units: tuple[str, ...] = (),
                  scale: float | None = None, money_unit: str | None = None) -> pd.Series:
    """Apply unit conversions (:data:`~postloan.data.contract.mapping.UNITS`), a scale and a
    money unit (:data:`~postloan.data.contract.money.MONEY_UNITS`: fen -> yuan is /100).

    A factor that is the inverse of a whole number (cents: 1/100, annual to monthly:
    1/12) divides instead of multiplying: 1234567 / 100 is exactly the double nearest to
    12345.67, 1234567 * 0.01 is not, and the ingested book must equal the lender's
    amounts to the cent.
    """
    factor = float(np.prod([UNITS[u] for u in units])) if units else 1.0
    if scale is not None:
        factor *= scale
    if money_unit is not None:
        factor *= MONEY_UNITS[money_unit]
    if factor == 1.0:
        return values
    inverse = 1.0 / factor
    if abs(inverse - round(inverse)) < 1e-9 * abs(inverse):
        return values / round(inverse)
    return values * factor


def convert_column(raw: pd.DataFrame, col: str, rule: ColumnRule, kind: str, where: Where,
                   vocabulary: tuple[str, ...] | None = None) -> pd.Series:
    """One canonical column from the source rows, applying the rule's steps in order.

    Args:
        raw: the source rows (source column names).
        col: canonical column name.
        rule: its rule from the mapping.
        kind: the canonical kind (:class:`postloan.data.schema.Column`).
        where: what an error names.
        vocabulary: allowed values of a category column.

    Raises:
        DataValidationError: a code outside the map, a cast that fails, or a category
            outside the vocabulary, with the first offending source rows.
    """
    src = rule.from_ or col
    if rule.constant is not None:
        values = pd.Series([rule.constant] * len(raw), index=raw.index, dtype=object)
    else:
        values = raw[src]
    if rule.prefix is not None:
        values, bad = strip_prefix(values, rule.prefix)
        if bad.any():
            raise _fail(where, col, src, f"value does not start with the prefix "
                        f"{rule.prefix!r}", raw, bad)
    if rule.map is not None:
        values, bad = map_codes(values, rule.map)
        if bad.any():
            listed = list(rule.map)[:20]
            raise _fail(where, col, src, f"code not in the mapping's map (map: {listed})", raw,
                        bad)
    cast = rule.cast or _DEFAULT_CAST[kind]
    if cast == "integer":
        out, bad = cast_integer(values)
    elif cast == "decimal":
        out, bad = cast_decimal(values)
    elif cast == "date":
        out, bad = cast_date(values, rule.format)
    else:
        out, bad = cast_text(values)
    if bad.any():
        what = {"integer": "a whole number", "decimal": "a number",
                "date": f"a date in the format {rule.format or 'ISO 8601 (%Y-%m-%d)'} "
                "(matched exactly)",
                "text": "text"}[cast]
        raise _fail(where, col, src, f"cast '{cast}' failed: value is not {what}", raw, bad)
    if rule.align == "month_end":
        out = align_month_end(out)
    if rule.unit or rule.scale is not None or rule.money_unit is not None:
        out = convert_units(out, rule.unit, rule.scale, rule.money_unit)
    if kind == "category" and vocabulary is not None:
        if (arr := _arrow_text(out)) is not None:  # text held in Arrow: no NaN, no object
            known = pc.is_in(arr, value_set=pa.array(list(vocabulary), type=arr.type))
            bad = pc.and_(arr.is_valid(), pc.invert(known)).to_numpy(zero_copy_only=False)
        else:
            obj = out.to_numpy(dtype=object)
            allowed = set(vocabulary)
            bad = np.array([v is not None and v not in allowed for v in obj], dtype=bool)
        if bad.any():
            obj = out.to_numpy(dtype=object)
            raise _fail(where, col, src, f"value outside the vocabulary {list(vocabulary)}",
                        raw.assign(**{src: obj}) if src in raw.columns else
                        raw.assign(**{col: obj}), bad)
    return out


def convert_chunk(raw: pd.DataFrame, name: str, tm: TableMapping, where: Where,
                  vocabularies: Mapping[str, tuple[str, ...]]) -> pd.DataFrame:
    """Convert one chunk of source rows into the canonical table's columns.

    Args:
        raw: source rows (source column names); its index is ignored.
        name: canonical table name.
        tm: the table's mapping.
        where: what an error names (its ``row_offset`` numbers the rows).
        vocabularies: allowed values per category column.

    Returns:
        The canonical columns in schema order (not yet checked for ranges, missing
        values or duplicate keys: :func:`postloan.data.schema.validate_table` does that on
        the whole table).

    Raises:
        DataValidationError: a source column is missing or a value cannot be converted.
    """
    raw = raw.reset_index(drop=True)
    spec = S.TABLES[name]
    wanted = source_columns(name, tm)
    missing = [s for s in wanted.values() if s not in raw.columns]
    if missing:
        canon = [c for c, s in wanted.items() if s in missing]
        raise DataValidationError(
            where.label(), f"source column(s) {missing} not found (for {canon}); the source "
            f"has {list(raw.columns)}", missing[0])
    out = {}
    for c in spec.columns:
        if getattr(c, "optional", False) and c.name not in tm.columns:
            continue  # left out: the schema reads an absent optional column as missing
        rule = tm.columns.get(c.name) or ColumnRule()
        vocab = vocabularies.get(c.name) if c.kind == "category" else None
        col = convert_column(raw, c.name, rule, c.kind, where, vocab)
        # Arrow-held text stays so (the DataFrame would infer the same ``str`` dtype
        # from its Python strings, at a cost per value).
        out[c.name] = col.array if _arrow_text(col) is not None else col.to_numpy()
    if name == "interactions":
        _default_outcome(out)
    return pd.DataFrame(out)


# Interaction kinds that are not contacts: their `outcome` (the result of a contact) is
# "none", whatever the source holds (often NULL). Collection contacts and outreach keep
# the not-null rule: their outcome is a fact the models use.
NO_CONTACT_KINDS = ("service_request", "complaint")


def _default_outcome(out: dict) -> None:
    """Fill a missing ``outcome`` with ``none`` on service requests and complaints."""
    outcome = pd.Series(out["outcome"])
    fill = (outcome.isna() & pd.Series(out["kind"]).isin(NO_CONTACT_KINDS)).to_numpy()
    if fill.any():
        outcome = outcome.where(~fill, "none")
        out["outcome"] = outcome.array if _arrow_text(outcome) is not None else \
            outcome.to_numpy(dtype=object)
