"""The source mapping and its pure conversions (no database: see test_ingest_postgres)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from postloan.data import schema as S
from postloan.data.contract import load_mapping, mask_url, parse_mapping
from postloan.data.contract.convert import (
    Where,
    cast_date,
    cast_decimal,
    cast_integer,
    convert_chunk,
    convert_units,
    map_codes,
)
from postloan.data.contract.mapping import ColumnRule, TableMapping
from postloan.errors import ConfigError, DataValidationError

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "core_banking_mapping.yaml"


def base() -> dict:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def test_example_mapping_is_valid_and_fingerprint_ignores_formatting(tmp_path):
    m = load_mapping(EXAMPLE)
    assert set(m.tables) >= {"customers", "loans", "repayments"}
    assert m.currency == "CNY" and m.money_unit == "fen"  # money held in fen
    assert m.table("loans").columns["principal"].money_unit == "fen"
    assert m.vocabulary("region")[0] == "华北"  # the lender's own region names
    assert m.vocabulary("product") == S.PRODUCTS  # not declared: the default contract
    # Same content, other formatting and key order: same fingerprint; one change: another.
    other = tmp_path / "m.yaml"
    other.write_text(yaml.safe_dump(base(), allow_unicode=True, sort_keys=True), "utf-8")
    assert load_mapping(other).fingerprint() == m.fingerprint()
    d = base()
    d["money_unit"] = "wan"
    assert parse_mapping(d).fingerprint() != m.fingerprint()


@pytest.mark.parametrize("edit,needle", [
    (lambda d: d["tables"].update(loanz=d["tables"]["loans"]), "tables.loanz"),
    (lambda d: d["tables"]["loans"]["columns"].update(princpal="x"),
     "tables.loans.columns.princpal: unknown canonical column"),
    (lambda d: d["tables"]["loans"]["columns"].update(principal={"from": "p",
                                                                  "unit": "furlongs"}),
     "tables.loans.columns.principal.unit"),
    (lambda d: d["tables"]["loans"].update(source="dwh"), "tables.loans.source: unknown source"),
    (lambda d: d["tables"].pop("repayments"), "core table(s) ['repayments']"),
    (lambda d: d["tables"]["loans"].update(query="select 1"), "exactly one of `table` or"),
    (lambda d: d["sources"].update(core={"url": "postgresql://u:hunter2@db/x"}),
     "carries a password"),
    (lambda d: d["tables"]["loans"]["columns"].update(loan_id={"constant": 1}),
     "key or date column cannot be a constant"),
    (lambda d: d.update(vocabularies={"colour": ["red"]}), "vocabularies.colour"),
    (lambda d: d.update(vocabularies={"product": ["consumer", "home_loan"]}),
     "vocabularies.product: 'product' values carry domain rules and are fixed"),
    (lambda d: d["tables"]["loans"]["columns"].update(term_months={"from": "t", "format": "%Y%m%d"}),
     "tables.loans.columns.term_months.format"),
    (lambda d: d["tables"]["loans"]["columns"].update(term_months={"from": "t", "align":
                                                                   "month_end"}),
     "tables.loans.columns.term_months.align: term_months is not a date"),
    (lambda d: d["tables"]["loans"]["columns"].update(origination_date={
        "from": "o", "format": "%Y%q"}), "directive %q is not supported"),
    (lambda d: d.update(money_unit="dollars"), "money_unit"),
])
def test_invalid_mappings_name_the_key(edit, needle):
    d = base()
    edit(d)
    with pytest.raises(ConfigError) as e:
        parse_mapping(d)
    assert needle in str(e.value)
    assert "hunter2" not in str(e.value)


def test_mask_url_hides_the_password():
    assert mask_url("postgresql+psycopg://loader:s3cret@db:5432/core") == \
        "postgresql+psycopg://loader:***@db:5432/core"


def test_casts():
    v, bad = cast_integer(pd.Series(["0000123", " 7", "12a", None, "-3"], dtype=object))
    assert v.iloc[:2].tolist() == [123.0, 7.0] and bad.tolist() == [False, False, True, False,
                                                                      False]
    v, bad = cast_integer(pd.Series([1.0, 2.5, np.nan]))
    assert bad.tolist() == [False, True, False]
    from decimal import Decimal

    v, bad = cast_decimal(pd.Series([Decimal("12.50"), "3.25", "x", None], dtype=object))
    assert v.iloc[:2].tolist() == [12.5, 3.25] and bad.tolist() == [False, False, True, False]
    d, bad = cast_date(pd.Series(["20240131", "20240230", None, 20240229], dtype=object),
                       "%Y%m%d")
    assert d.iloc[0] == pd.Timestamp("2024-01-31") and d.iloc[3] == pd.Timestamp("2024-02-29")
    assert bad.tolist() == [False, True, False, False]
    import datetime as dt

    d, bad = cast_date(pd.Series([dt.date(2024, 1, 31), None], dtype=object))
    assert d.iloc[0] == pd.Timestamp("2024-01-31") and not bad.any()
    # Year 0 matches %Y but is no datetime64[ns] date: refused, not a traceback.
    d, bad = cast_date(pd.Series(["00000101", "20240131"], dtype=object), "%Y%m%d")
    assert bad.tolist() == [True, False] and d.iloc[1] == pd.Timestamp("2024-01-31")


def test_map_codes_compares_as_text():
    out, bad = map_codes(pd.Series([1.0, 2, "01", None], dtype=object), {"1": "a", "2": "b"})
    assert out.tolist()[:2] == ["a", "b"] and out.iloc[3] is None
    assert bad.tolist() == [False, False, True, False]


def test_units_are_exact_to_the_cent():
    cents = pd.Series([1234567.0, 1.0, 10.0])
    assert convert_units(cents, ("cents",)).tolist() == [12345.67, 0.01, 0.1]
    annual = pd.Series([12 * 1234567.0])
    assert convert_units(annual, ("cents", "annual_to_monthly")).tolist() == [12345.67]
    assert convert_units(pd.Series([735.0]), (), 0.01).tolist() == [7.35]
    assert convert_units(pd.Series([0.05]), ("fraction_to_percent",)).tolist() == [5.0]


def _loans_mapping(**cols) -> TableMapping:
    columns = {"loan_id": {"from": "acct"}, "customer_id": {"from": "cust", "cast": "integer"},
               "product": {"from": "prod", "map": {"01": "consumer", "02": "card"}},
               "principal": {"from": "amt", "unit": "cents"},
               "origination_date": {"from": "odt", "format": "%Y%m%d"},
               "close_date": {"from": "cdt", "format": "%Y%m%d"},
               "collateral_type": {"constant": "none"}, "collateral_value": {"constant": 0},
               **cols}
    return TableMapping(source="s", table="loan", columns=columns)


def _raw(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "acct": np.arange(n) + 10, "cust": [f"{i:06d}" for i in range(n)],
        "prod": ["01", "02", "01"][:n], "amt": [100000, 250050, 99][:n],
        "annual_rate": [5.0] * n, "term_months": [12] * n,
        "odt": ["20230131"] * n, "cdt": [None] * n, "close_reason": [None] * n})


WHERE = Where("loans", "'core': loan_acct at postgresql://u@db/x", ("acct",), 1000)


def test_convert_chunk_builds_canonical_columns():
    vocab = {"product": ("consumer", "mortgage", "card", "sme"),
             "collateral_type": ("none", "property"), "close_reason": ("matured",)}
    out = convert_chunk(_raw(), "loans", _loans_mapping(), WHERE, vocab)
    assert out["principal"].tolist() == [1000.0, 2500.5, 0.99]
    assert out["customer_id"].tolist() == [0, 1, 2]
    assert out["product"].tolist() == ["consumer", "card", "consumer"]
    assert (out["origination_date"] == pd.Timestamp("2023-01-31")).all()
    assert out["close_date"].isna().all() and (out["collateral_type"] == "none").all()


@pytest.mark.parametrize("raw_edit,cols,needle", [
    (lambda r: r.assign(prod=["01", "07", "01"]), {}, "code not in the mapping's map"),
    (lambda r: r.assign(odt=["20230131", "2023-02-01", "20231301"]), {},
     "a date in the format %Y%m%d"),
    (lambda r: r.assign(cust=["000001", "00x002", "000003"]), {}, "not a whole number"),
    (lambda r: r, {"product": {"from": "prod", "map": {"01": "consumer", "02": "gold"}}},
     "outside the vocabulary"),
    (lambda r: r.drop(columns=["amt"]), {}, "source column(s) ['amt'] not found"),
])
def test_conversion_errors_name_source_column_rule_and_rows(raw_edit, cols, needle):
    vocab = {"product": ("consumer", "mortgage", "card", "sme"),
             "collateral_type": ("none",), "close_reason": ("matured",)}
    with pytest.raises(DataValidationError) as e:
        convert_chunk(raw_edit(_raw()), "loans", _loans_mapping(**cols), WHERE, vocab)
    msg = str(e.value)
    assert needle in msg
    assert "loan_acct" in msg  # the source table
    if "not found" not in needle:
        assert "source column" in msg and "source row" in msg
        assert "1001" in msg or "1002" in msg  # row numbers count from the chunk's offset


def test_pii_values_never_shown_in_errors():
    tm = TableMapping(source="s", table="pii", columns={
        "customer_id": {"from": "id"}, "full_name": {"from": "nm", "cast": "integer"}})
    raw = pd.DataFrame({"id": [1, 2], "nm": ["Wang Fang", "Li Lei"], "phone": ["1", "2"],
                        "national_id": ["x", "y"], "address": ["a", "b"]})
    with pytest.raises(DataValidationError) as e:
        convert_chunk(raw, "customers_pii", tm, Where("customers_pii", "pii", ("id",)), {})
    assert "Wang Fang" not in str(e.value) and "<PII hidden>" in str(e.value)


def test_column_rule_rejects_from_and_constant():
    with pytest.raises(ValueError):
        ColumnRule.model_validate({"from": "a", "constant": 1})


def test_profile_collects_every_violation_and_hides_pii(small_tables):
    from postloan.data.contract.profile import profile_table, render_html

    loans = small_tables["loans"].copy()
    loans.loc[[1, 2], "principal"] = -5.0
    loans.loc[4, "product"] = "gold"
    loans.loc[6, "loan_id"] = loans.loc[7, "loan_id"]
    p = profile_table("loans", loans)
    rules = {v.rule.split(" [")[0].split(" ")[0]: v for v in p.violations}
    assert p.status == "violations" and len(p.violations) == 3
    assert {v.n_rows for v in p.violations} == {2, 1}
    assert p.n_keys == len(loans) - 1 and p.date_range[0] <= p.date_range[1]
    assert "values" in rules and "gold" in rules["values"].rows
    clean = profile_table("loans", small_tables["loans"])
    assert clean.status == "ok" and not clean.violations
    pii = pd.DataFrame({"customer_id": [1, 1], "full_name": ["Wang Fang", None],
                        "phone": ["1", "2"], "national_id": ["a", "b"], "address": ["x", "y"]})
    p = profile_table("customers_pii", pii)
    text = render_html([p], "t") + "".join(v.rows for v in p.violations)
    assert "duplicate" in text and "missing values" in text and "<PII hidden>" in text
    assert "Wang Fang" not in text


# Issue 20, item 10: text the PostgreSQL readers hand over in Arrow (pandas' ``str``
# dtype) takes vectorised paths; they must give what the Python-object paths give.
TRICKY_INTS = ["0000123", "7", " 7", "+5", "-3", "", "12a", None, "\u0663", "00", "1.0",
               "9007199254740993"]
TRICKY_DATES = ["20240131", "20240230", "20241301", "20240229", "20230229", None,
                "20240100", "20240431", "2024013 ", " 20240131", "19991231", "2024-01-31",
                "20241232", "22620411", "19000229", "20000229", "00000101", "99991231",
                "16780101", "22611231", "2024013１"]


def _same(a: pd.Series, b: pd.Series) -> None:
    norm = [None if pd.isna(v) else v for v in a.to_numpy(dtype=object)]
    assert norm == [None if pd.isna(v) else v for v in b.to_numpy(dtype=object)]


@pytest.mark.parametrize("cast", ["integer", "date", "date_slash", "date_zh", "map", "text"])
def test_arrow_held_text_converts_as_python_strings(cast):
    from postloan.data.contract.convert import cast_text

    def run(values: list, dtype: str):
        s = pd.Series(values, dtype=dtype)
        if cast == "integer":
            return cast_integer(s)
        if cast == "date":
            return cast_date(s, "%Y%m%d")
        if cast == "date_slash":  # the same dates written dd/mm/YYYY
            return cast_date(s.str.slice(6, 8) + "/" + s.str.slice(4, 6) + "/"
                             + s.str.slice(0, 4), "%d/%m/%Y")
        if cast == "date_zh":
            return cast_date(s.str.slice(0, 4) + "年" + s.str.slice(4, 6) + "月"
                             + s.str.slice(6, 8) + "日", "%Y年%m月%d日")
        if cast == "map":
            return map_codes(s, {"01": "consumer", "02": "card", "7": None})
        return cast_text(s)

    values = (["01", "02", "1", None, "", "X", "7", "01 ", "02", "01"] if cast == "map" else
              TRICKY_INTS if cast in ("integer", "text") else TRICKY_DATES)
    # All good values (the fast paths' usual case), then the tricky ones.
    good = [v for v, b in zip(values, run(values, object)[1], strict=True) if not b]
    for vals in (good, values, [None, None]):
        (fa, ba), (fo, bo) = run(vals, "str"), run(vals, object)
        assert ba.tolist() == bo.tolist(), vals
        _same(fa, fo)
        assert fa.dtype == fo.dtype or cast in ("map", "text")  # str vs object text
    assert run(good, "str")[0].notna().sum() >= 3


def test_arrow_held_chunk_converts_as_python_strings():
    vocab = {"product": ("consumer", "mortgage", "card", "sme"),
             "collateral_type": ("none", "property"), "close_reason": ("matured",)}
    raw = _raw().assign(acct=["0010", "11", "012"], cdt=["20240131", None, None])
    as_str = convert_chunk(raw.astype({c: "str" for c in ["acct", "cust", "prod", "odt",
                                                          "cdt"]}), "loans",
                           _loans_mapping(), WHERE, vocab)
    as_obj = convert_chunk(raw.astype(object), "loans", _loans_mapping(), WHERE, vocab)
    pd.testing.assert_frame_equal(as_str, as_obj)
    with pytest.raises(DataValidationError, match="outside the vocabulary"):
        convert_chunk(raw.astype({"prod": "str"}), "loans", _loans_mapping(
            product={"from": "prod", "map": {"01": "consumer", "02": "gold"}}), WHERE, vocab)


def test_duplicate_keys_folded_into_one_int_find_what_pandas_finds():
    """validate_table folds integer and date keys into one int64 before hashing them:
    the same rows as DataFrame.duplicated, whatever the ranges (NaT, huge ids)."""
    from postloan.data.schema import _duplicated

    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 200))
        ids = rng.integers(-5, 5, n) * rng.choice([1, 10**9, 2**60])
        d = np.datetime64("2020-01-31", "ns") + rng.integers(0, 4, n).astype("timedelta64[D]")
        if trial % 3 == 0:
            d[rng.integers(0, n)] = np.datetime64("NaT")
        if trial % 5 == 0:  # not whole days: counted in nanoseconds
            d = d + rng.integers(0, 2, n) * np.timedelta64(1, "h")
        df = pd.DataFrame({"a": ids, "d": d, "b": rng.integers(0, 3, n)})
        for keys in (["a", "d"], ["a", "b", "d"], ["d", "b"], ["b"]):
            assert (_duplicated(df, keys) == df.duplicated(keys, keep=False).to_numpy()).all()
