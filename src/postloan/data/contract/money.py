"""Money in the right unit: each money column's median, and warnings on implausible scale.

Money left in the source's minor unit (fen, cents: 100x) passes every range rule of the
contract, trains and scores: only a comparison with earlier models would notice. Two
checks catch it while the book is read (``postloan ingest`` and ``check-data``):

- **scale for the currency**: the median declared monthly income must be plausible for
  the book's currency (:data:`INCOME_RANGE`; e.g. above 200,000 CNY a month is not a
  retail book's median borrower);
- **columns against each other**, unit-free: the first instalment against the annuity
  of the loan's principal, term and rate; the first balance against the principal;
  paid against scheduled amounts; the instalment against the income; verified (bureau)
  against declared income; collateral against principal. Columns in different units
  disagree by a factor of 100 or more; these ratios are near 1 (or within a known
  band) on a consistent book.

Warnings name the table, column and the numbers; they never stop an ingest (a lender
may be right), the CLI prints them and the manifest records them (``money``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# The money columns of the canonical book (amounts in the currency's unit).
MONEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("declared_monthly_income",),
    "loans": ("principal", "collateral_value"),
    "repayments": ("scheduled_amount", "paid_amount", "balance"),
    "bureau": ("verified_monthly_income", "external_debt"),
}
# A source's money unit -> the factor that turns it into the currency's unit.
MONEY_UNITS: dict[str, float] = {
    "units": 1.0, "yuan": 1.0,       # the currency's unit (yuan, dollar, euro, ...)
    "jiao": 0.1,                     # 角, a tenth of a yuan
    "fen": 0.01, "cents": 0.01,      # 分 / cents: minor units
    "thousands": 1000.0,
    "wan": 10_000.0,                 # 万元, common for loan amounts in Chinese reports
}
# Plausible median declared monthly income of a retail lending book, in the currency's
# unit (ISO 4217). Wide on purpose: a factor of 100 (fen, cents) or 1/1000 (thousands)
# lands outside; a rich or poor portfolio does not.
INCOME_RANGE: dict[str, tuple[float, float]] = {
    "CNY": (300.0, 200_000.0),
    "HKD": (2_000.0, 400_000.0),
    "USD": (300.0, 60_000.0),
    "EUR": (300.0, 50_000.0),
    "GBP": (250.0, 40_000.0),
    "JPY": (30_000.0, 6_000_000.0),
    "INR": (3_000.0, 3_000_000.0),
}
# Products whose instalment is an annuity of principal, rate and term (a card's is not).
AMORTISING = ("consumer", "mortgage", "sme")
# How far a median ratio of two money columns may stray before the columns are said to
# disagree: a factor of 5 either way (a unit mistake is a factor of 10, 100 or 1000).
FACTOR = 5.0
SAMPLE_LOANS = 200_000


@dataclass
class MoneyCheck:
    """Collects, table by table, what the money checks need; :attr:`report` is kept up
    to date after every table (a manifest may hold it by reference before the last
    table is read).

    Attributes:
        currency: ISO 4217 code the mapping or manifest declares (None: unknown).
        money_unit: the source unit the mapping declares (for the report only).
        report: ``{"currency", "money_unit", "medians": {"table.column": median},
            "warnings": [...]}``.
    """

    currency: str | None = None
    money_unit: str | None = None
    report: dict = field(default_factory=dict)
    _medians: dict[str, float] = field(default_factory=dict)
    _income: pd.Series | None = None
    _loans: pd.DataFrame | None = None
    _first: pd.DataFrame | None = None
    _paid_ratio: float | None = None
    _bureau_income: pd.Series | None = None

    def __post_init__(self) -> None:
        self._update()

    def add(self, name: str, df: pd.DataFrame) -> None:
        """Take what the checks need from one canonical table (called once per table)."""
        cols = [c for c in MONEY_COLUMNS.get(name, ()) if c in df.columns]
        for c in cols:
            v = _numbers(df[c])
            if v is not None and np.isfinite(v).any():
                self._medians[f"{name}.{c}"] = float(np.nanmedian(v))
        try:
            if name == "customers":
                self._income = _series(df, "customer_id", "declared_monthly_income")
            elif name == "loans":
                keep = ["loan_id", "customer_id", "product", "principal", "annual_rate",
                        "term_months", "collateral_type", "collateral_value"]
                loans = df[[c for c in keep if c in df.columns]]
                if len(loans) > SAMPLE_LOANS:  # a fixed sample bounds memory on big books
                    loans = loans.sample(SAMPLE_LOANS, random_state=0)
                self._loans = loans.reset_index(drop=True)
            elif name == "repayments":
                self._repayments(df)
            elif name == "bureau" and {"pull_date", "verified_monthly_income"} <= set(df):
                last = df.sort_values("pull_date").drop_duplicates("customer_id", keep="last")
                self._bureau_income = _series(last, "customer_id", "verified_monthly_income")
        except (KeyError, TypeError, ValueError):
            pass  # a table too broken to compare; the profile reports why
        self._update()

    def _repayments(self, df: pd.DataFrame) -> None:
        sched = _numbers(df["scheduled_amount"])
        paid = _numbers(df["paid_amount"])
        if sched is not None and paid is not None:
            ok = sched > 0
            if ok.any():
                self._paid_ratio = float(np.nanmedian(paid[ok] / sched[ok]))
        if self._loans is None or "statement_date" not in df:
            return
        sub = df.loc[df["loan_id"].isin(self._loans["loan_id"]).to_numpy(),
                     ["loan_id", "statement_date", "scheduled_amount", "balance"]]
        # Each loan's first statement (statements are unique per loan and date): found
        # by grouping, not by sorting millions of rows; only medians are taken of it.
        first = sub.loc[sub.groupby("loan_id", sort=False)["statement_date"].idxmin()]
        self._first = first[["loan_id", "scheduled_amount", "balance"]].reset_index(drop=True)

    def _update(self) -> None:
        self.report.clear()
        self.report.update(currency=self.currency, money_unit=self.money_unit,
                           medians=dict(self._medians), warnings=self._warnings())

    def _warnings(self) -> list[str]:
        out = []
        income = self._medians.get("customers.declared_monthly_income")
        rng = INCOME_RANGE.get(self.currency or "")
        if income is not None and rng is not None and not rng[0] <= income <= rng[1]:
            out.append(
                f"customers.declared_monthly_income: median {income:,.2f} {self.currency} "
                f"a month is implausible for {self.currency} (expected {rng[0]:,.0f} to "
                f"{rng[1]:,.0f}); is the money unit right (money_unit: fen or cents "
                "divides by 100)?")
        loans, first = self._loans, self._first
        if loans is not None and first is not None and len(first):
            x = loans.merge(first, on="loan_id", how="inner")
            am = x[x["product"].astype(object).isin(AMORTISING)] if "product" in x else x
            ann = _annuity(am)
            if ann is not None:
                ratio = _median_ratio(am["scheduled_amount"], ann)
                out += _disagree(ratio, "repayments.scheduled_amount",
                                 "the annuity of loans.principal, annual_rate and term_months "
                                 "(first instalment of each amortising loan)")
            out += _disagree(_median_ratio(x["balance"], x["principal"]),
                             "repayments.balance", "loans.principal (first statement of each "
                             "loan)", low=0.05, high=2.0)
            if "collateral_value" in x:
                sec = x[x["collateral_value"].astype(float) > 0]
                out += _disagree(_median_ratio(sec["collateral_value"], sec["principal"]),
                                 "loans.collateral_value", "loans.principal (secured loans)",
                                 low=1 / 20, high=20.0)
            if self._income is not None and "customer_id" in x:
                inc = x["customer_id"].map(self._income)
                out += _disagree(_median_ratio(x["scheduled_amount"], inc),
                                 "repayments.scheduled_amount",
                                 "customers.declared_monthly_income (instalment to income)",
                                 low=0.002, high=3.0)
        if self._paid_ratio is not None:
            out += _disagree(self._paid_ratio, "repayments.paid_amount",
                             "repayments.scheduled_amount")
        if self._income is not None and self._bureau_income is not None:
            both = pd.concat({"b": self._bureau_income, "d": self._income}, axis=1,
                             join="inner")
            out += _disagree(_median_ratio(both["b"], both["d"]),
                             "bureau.verified_monthly_income",
                             "customers.declared_monthly_income")
        return out


def _numbers(s: pd.Series) -> np.ndarray | None:
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return None
    return s.to_numpy(dtype="float64", na_value=np.nan)


def _series(df: pd.DataFrame, key: str, col: str) -> pd.Series:
    s = df[[key, col]].drop_duplicates(key)
    return pd.Series(s[col].to_numpy(dtype="float64", na_value=np.nan),
                     index=s[key].to_numpy())


def _annuity(loans: pd.DataFrame) -> pd.Series | None:
    """The level monthly instalment of each loan (principal, annual rate %, term)."""
    if not {"principal", "annual_rate", "term_months"} <= set(loans) or loans.empty:
        return None
    p = loans["principal"].astype(float)
    r = loans["annual_rate"].astype(float) / 1200.0
    n = loans["term_months"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ann = np.where(r > 0, p * r / (1 - (1 + r) ** -n), p / n)
    return pd.Series(ann, index=loans.index)


def _median_ratio(a: pd.Series, b: pd.Series) -> float | None:
    a = pd.to_numeric(a, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    b = pd.to_numeric(b, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    ok = np.isfinite(a) & np.isfinite(b) & (b > 0) & (a > 0)
    return float(np.median(a[ok] / b[ok])) if ok.sum() >= 20 else None


def _disagree(ratio: float | None, what: str, against: str, low: float = 1 / FACTOR,
              high: float = FACTOR) -> list[str]:
    if ratio is None or low <= ratio <= high:
        return []
    return [f"{what} disagrees with {against}: median ratio {ratio:,.4g} (expected "
            f"{low:.3g} to {high:.3g}); are they in the same money unit?"]


def money_check(mapping_or_manifest: Mapping | object) -> MoneyCheck:
    """A :class:`MoneyCheck` for a source mapping or a book's manifest (its currency)."""
    if isinstance(mapping_or_manifest, Mapping):
        money = mapping_or_manifest.get("money") or {}
        return MoneyCheck(money.get("currency"), money.get("money_unit"))
    return MoneyCheck(getattr(mapping_or_manifest, "currency", None),
                      getattr(mapping_or_manifest, "money_unit", None))
