"""Checks of a book, its snapshot and single customer records against expectations.

Three kinds of checks, all returning :class:`~postloan.data.quality.findings.Finding`:

* feed checks (:func:`check_feeds`): freshness, completeness and scale of each feed
  against what it delivered at the training reference's dates; aggregates over a
  table and an as-of window, written by hand (no column-validation library expresses
  "share of active customers with a record in the last quarter");
* record checks (:func:`check_snapshot`, :func:`record_flags`): impossible combinations
  of snapshot fields (``dpd_current`` above ``max_dpd_3m``, ...), always hard, and the
  per-customer soft flags the service returns;
* macro checks (:func:`check_macro`): gaps in the regional series and implausible
  values or month-on-month moves (a unit change, zeros), all hard. Macro series are
  meant to move, so they are never held to the training reference's range;
* feature checks (:func:`check_features`): per model feature, the share of missing
  values and of values outside the reference's range (macro features excepted;
  recency features' upper end moves with the book's age). The range checks and the
  row-wise impossible combinations run as a pandera ``DataFrameSchema`` validated
  lazily, whose failure cases give the offending rows (share and examples) at once.

:func:`check_book` runs them all and returns a :class:`QualityReport`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from postloan.data.quality.config import DataQualityConfig
from postloan.data.quality.expectations import DataExpectations
from postloan.data.quality.feeds import FEEDS, customer_ages, feed_stats, feed_window
from postloan.data.quality.findings import HARD, SOFT, Finding, QualityReport, examples
from postloan.data.snapshot import FEATURE_FAMILIES, _months_before
from postloan.errors import DataValidationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Combination:
    """An impossible combination of snapshot fields (a hard rule).

    Attributes:
        name: rule name (the finding's rule is ``snapshot.<name>``).
        text: the combination in words.
        columns: the fields it reads (shown in examples).
        violated: vectorised test on a mapping of field arrays; True where impossible.
            NaN compares False, so a missing field never breaks a combination.
    """

    name: str
    text: str
    columns: tuple[str, ...]
    violated: Callable[[Mapping[str, np.ndarray]], np.ndarray]


def _gt(a: str, b: str) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    return lambda d: np.asarray(d[a], dtype="float64") > np.asarray(d[b], dtype="float64")


# Each holds by construction of a snapshot (postloan.data.snapshot): a longer window's
# maximum or count includes the shorter one's, so the opposite can only come from a
# broken feed or a hand-made record.
COMBINATIONS: tuple[Combination, ...] = (
    Combination("dpd_current_above_max_dpd_3m", "dpd_current above max_dpd_3m",
                ("dpd_current", "max_dpd_3m"), _gt("dpd_current", "max_dpd_3m")),
    Combination("max_dpd_3m_above_max_dpd_6m", "max_dpd_3m above max_dpd_6m",
                ("max_dpd_3m", "max_dpd_6m"), _gt("max_dpd_3m", "max_dpd_6m")),
    Combination("max_dpd_6m_above_max_dpd_12m", "max_dpd_6m above max_dpd_12m",
                ("max_dpd_6m", "max_dpd_12m"), _gt("max_dpd_6m", "max_dpd_12m")),
    Combination("n_missed_3m_above_n_missed_6m", "n_missed_3m above n_missed_6m",
                ("n_missed_3m", "n_missed_6m"), _gt("n_missed_3m", "n_missed_6m")),
    Combination("n_missed_6m_above_n_missed_12m", "n_missed_6m above n_missed_12m",
                ("n_missed_6m", "n_missed_12m"), _gt("n_missed_6m", "n_missed_12m")),
    Combination("n_missed_3m_above_3", "more than 3 missed instalment months in 3 months",
                ("n_missed_3m",), lambda d: np.asarray(d["n_missed_3m"], dtype="float64") > 3),
    Combination("app_logins_1m_above_app_logins_3m", "app_logins_1m above app_logins_3m",
                ("app_logins_1m", "app_logins_3m"), _gt("app_logins_1m", "app_logins_3m")),
    Combination("complaints_3m_above_complaints_12m", "complaints_3m above complaints_12m",
                ("complaints_3m", "complaints_12m"), _gt("complaints_3m", "complaints_12m")),
    Combination("collection_refused_above_contacts",
                "collection_refused_3m above collection_contacts_3m",
                ("collection_refused_3m", "collection_contacts_3m"),
                _gt("collection_refused_3m", "collection_contacts_3m")),
    Combination("max_dpd_12m_90_without_ever_90dpd", "max_dpd_12m of 90+ but ever_90dpd is 0",
                ("max_dpd_12m", "ever_90dpd"),
                lambda d: (np.asarray(d["max_dpd_12m"], dtype="float64") >= 90)
                & (np.asarray(d["ever_90dpd"], dtype="float64") == 0)),
)
COMBINATION_NAMES = tuple(c.name for c in COMBINATIONS)

# Soft per-customer flags of a record (the service's `data_flags`).
FLAG_AS_OF_OLD = "as_of_old"
FLAG_STALE_BUREAU = "stale_bureau"
FLAG_MISSING_BUREAU = "missing_bureau"
FLAG_MISSING_MACRO = "missing_macro"
RULE_AS_OF_FUTURE = "as_of_future"
# Macro features (one value per region and month) are meant to move: a month outside
# the ten months of the training reference is the economy, not a broken feed. They
# are left out of the range check; check_macro checks their feed instead. rate_gap
# (a loan's rate minus the market rate) moves point for point with the policy rate.
MACRO_DRIVEN_FEATURES = frozenset({*FEATURE_FAMILIES["macro"], "rate_gap"})

# Features that grow with the calendar. Recency features (months since an event the
# book can only see from its first month on): at the reference dates their largest
# value is bounded by the history the book had then (a customer delinquent in the
# book's first month), and that customer is one month further away at every later
# date. Tenure, months on book and age grow with every customer who stays. Their upper
# end moves by the months elapsed since the reference's last date (value: growth per
# month elapsed, in the feature's unit).
AGEING_FEATURES: dict[str, float] = {"months_since_delinquent": 1.0,
                                     "months_since_survey": 1.0, "tenure_months": 1.0,
                                     "months_on_book": 1.0, "age": 1.0 / 12.0}
_DAYS_PER_MONTH = 30.4375

_BUREAU_FIELDS = ("bureau_score", "verified_monthly_income", "external_debt")
_MACRO_FIELDS = ("unemployment_rate", "policy_rate")


def _feed_findings(name: str, window, stats: dict, exp, cfg: DataQualityConfig
                   ) -> list[Finding]:
    feed, limits, out = FEEDS[name], cfg.feed(name), []
    n_active = max(stats["n_active"], 1)
    ages = customer_ages(window)
    ids = pd.Index(window.visible["customer_id"].unique())

    def latest_rows(mask_ids: pd.Index) -> list[dict]:
        rows = (window.visible[window.visible["customer_id"].isin(mask_ids)]
                .sort_values(feed.date_column).groupby("customer_id").tail(1))
        return examples(rows, ["customer_id", feed.date_column])

    # Customers' latest-record ages, censored where the reference's were: at its first
    # date the book had only so much history, so no age could exceed it there, while a
    # sparse feed's ages (a survey a year or two ago) keep growing as the book ages.
    cap = exp.customer_age_cap_days
    age_p50 = (float(np.median(np.minimum(ages.to_numpy(), cap))) if cap is not None
               and len(ages) else stats["customer_age_p50"])

    # -- freshness: a late (or empty) feed
    latest = stats["latest_age_days"]
    if np.isnan(latest):
        out.append(Finding(f"{name}.freshness", name, None, "freshness", HARD, 1.0,
                           stats["n_active"], exp.latest_age_days, None,
                           f"the {name} feed holds no record on or before the as-of date"))
    elif exp.latest_age_days is not None and latest > exp.latest_age_days + limits.max_delay_days:
        late = ages[ages > exp.latest_age_days + limits.max_delay_days]
        out.append(Finding(
            f"{name}.freshness", name, feed.date_column, "freshness", HARD,
            (len(late) + stats["n_active"] - len(ages)) / n_active,
            int(len(late) + stats["n_active"] - len(ages)), exp.latest_age_days, latest,
            f"newest {name} record is {latest:.0f} days old at the as-of date; the "
            f"reference's was at most {exp.latest_age_days:.0f} (+{limits.max_delay_days:.0f} "
            "allowed): the feed is late", latest_rows(late.index)))
    elif (exp.customer_age_p50 is not None and not np.isnan(age_p50)
          and age_p50 > exp.customer_age_p50 + limits.stale_customer_days):
        stale = ages[ages > (exp.customer_age_p90 or exp.customer_age_p50)]
        out.append(Finding(
            f"{name}.staleness", name, feed.date_column, "freshness", SOFT,
            len(stale) / n_active, int(len(stale)), exp.customer_age_p50, age_p50,
            f"the median customer's latest {name} record is {age_p50:.0f} "
            f"days old; at the reference at most {exp.customer_age_p50:.0f}",
            latest_rows(stale.index)))

    # -- completeness: share of active customers with a record in the period
    # Against the reference's lowest date: a feed with a long period (a year of surveys)
    # covers fewer customers at a date with less history before it, and a share the
    # reference itself had is no fault.
    base = min(exp.completeness or 0.0, exp.completeness_min or exp.completeness or 0.0)
    if base and not np.isnan(latest):
        ratio = stats["completeness"] / base
        sev = (HARD if ratio < limits.completeness_hard else
               SOFT if ratio < limits.completeness_soft else None)
        if sev:
            missing = stats["n_active"] - stats["n_period_customers"]
            period_ids = pd.Index(window.period["customer_id"].unique())
            out.append(Finding(
                f"{name}.completeness", name, None, "completeness", sev, missing / n_active,
                int(missing), base, stats["completeness"],
                f"{stats['completeness']:.1%} of active customers have a {name} record in the "
                f"last {feed.period_months} month(s); the reference had at least {base:.1%} "
                f"(ratio {ratio:.2f}, {sev} limit "
                f"{limits.completeness_hard if sev == HARD else limits.completeness_soft})",
                latest_rows(ids.difference(period_ids))))

    # -- scale: the period's median money value / mean count against the reference
    share_in_period = stats["n_period_customers"] / n_active
    for col in feed.scale_columns:
        ref, now = exp.scale.get(col), stats["scale"].get(col, float("nan"))
        if not ref or np.isnan(now):
            continue  # nothing to compare: no reference level, or nothing delivered
        ratio = now / ref
        lo_h, hi_h = limits.scale_hard
        lo_s, hi_s = limits.scale_soft
        sev = (HARD if not lo_h <= ratio <= hi_h else
               SOFT if not lo_s <= ratio <= hi_s else None)
        if sev:
            stat = exp.scale_stat.get(col, feed.scale_stat(col))
            out.append(Finding(
                f"{name}.{col}.scale", name, col, "scale", sev, share_in_period,
                int(stats["n_period_customers"]), ref, now,
                f"{stat} {col} in the last {feed.period_months} month(s) is {now:.4g}, "
                f"{ratio:.3g} times the reference's {ref:.4g} (a unit change or a feed "
                f"sending zeros?); {sev} band {list(limits.scale_hard if sev == HARD else limits.scale_soft)}",
                examples(window.period.sort_values([feed.date_column, "customer_id"],
                                                   ascending=[False, True]),
                         ["customer_id", feed.date_column, col])))
    return out


def check_feeds(tables: dict[str, pd.DataFrame], snapshot: pd.DataFrame,
                expectations: DataExpectations, cfg: DataQualityConfig) -> list[Finding]:
    """Freshness, completeness and scale of every feed against the reference.

    Args:
        tables: the book's tables.
        snapshot: the snapshot of one as-of date (its rows are the active customers).
        expectations: the training reference's expectations.
        cfg: the limits.

    Returns:
        Findings, hard and soft.
    """
    out = []
    for name, feed in FEEDS.items():
        exp = expectations.feeds.get(name)
        if exp is None:
            continue
        window = feed_window(tables, feed, snapshot)
        out.extend(_feed_findings(name, window, feed_stats(window), exp, cfg))
    return out


def check_macro(tables: dict[str, pd.DataFrame], snapshot: pd.DataFrame,
                cfg: DataQualityConfig) -> list[Finding]:
    """Gaps and implausible values of the macro feed in the months before the as-of date.

    Freshness and completeness of the feed are :func:`check_feeds`' job; this adds what
    breaks in a regional monthly series: a month missing for a region while the feed
    has it for others (``macro.gaps``), and values outside their plausible bounds,
    moves larger than a plausible monthly change, or a jump by a factor of
    ``unit_change_ratio`` (``macro.<column>.plausibility``). All hard.

    Args:
        tables: the book's tables.
        snapshot: the snapshot of one as-of date (``as_of``, ``region``).
        cfg: the limits (``macro``).

    Returns:
        Hard findings; none when the book has no macro feed.
    """
    mac = tables.get("macro")
    if mac is None or mac.empty or "region" not in snapshot.columns:
        return []
    lim = cfg.macro
    as_of = pd.Timestamp(snapshot["as_of"].iloc[0])
    start = _months_before(as_of, lim.lookback_months)
    customers = snapshot["region"].value_counts()
    n = max(len(snapshot), 1)
    # One month before the window too: the first month's change needs its predecessor.
    seen = mac[(mac["month_end"] > _months_before(start, 1)) & (mac["month_end"] <= as_of)
               & mac["region"].isin(customers.index)]
    window = seen[seen["month_end"] > start]
    if window.empty:
        return []
    out = []
    # -- gaps: a month end up to the feed's newest missing for a region (or for all: a
    # hole in the whole series); months after the newest are the freshness check's
    months = pd.date_range(start + pd.offsets.MonthEnd(1), window["month_end"].max(),
                           freq="ME")
    have = set(zip(window["region"], window["month_end"], strict=True))
    missing = [(r, m) for r in sorted(customers.index) for m in months if (r, m) not in have]
    if missing:
        regions = sorted({r for r, _ in missing})
        affected = int(customers.reindex(regions).sum())
        out.append(Finding(
            "macro.gaps", "macro", "month_end", "gaps", HARD, affected / n, affected, None,
            float(len(missing)),
            f"{len(missing)} region-month(s) missing from the macro series in the last "
            f"{lim.lookback_months} months (regions {regions}): the snapshot would carry an "
            "older month's value forward",
            [{"region": r, "missing_month_end": f"{m:%Y-%m-%d}"} for r, m in missing[:3]]))
    # -- plausibility: bounds, monthly change, unit change (a factor of ~100)
    seen = seen.sort_values(["region", "month_end"])
    for col, b in lim.columns.items():
        if col not in seen.columns:
            continue
        v = seen[col].astype("float64")
        prev = v.groupby(seen["region"]).shift(1)
        ratio = (v / prev).where(prev.abs() >= lim.unit_change_floor)
        reasons = {
            f"outside [{b.min:g}, {b.max:g}]": v.notna() & ~v.between(b.min, b.max),
            "missing": v.isna(),
            f"moved more than {b.max_monthly_change:g} points in a month":
                (v - prev).abs() > b.max_monthly_change,
            f"multiplied or divided by more than {lim.unit_change_ratio:g} in a month":
                (ratio.abs() > lim.unit_change_ratio)
                | (ratio.abs() < 1.0 / lim.unit_change_ratio),
        }
        in_window = (seen["month_end"] > start).to_numpy()
        bad = np.zeros(len(seen), dtype=bool)
        for mask in reasons.values():
            bad |= mask.to_numpy() & in_window
        if not bad.any():
            continue
        rows = seen[bad].sort_values(["month_end", "region"], ascending=[False, True])
        regions = sorted(rows["region"].unique())
        affected = int(customers.reindex(regions).sum())
        what = "; ".join(f"{int((m.to_numpy() & in_window).sum())} {why}"
                         for why, m in reasons.items() if (m.to_numpy() & in_window).any())
        out.append(Finding(
            f"macro.{col}.plausibility", "macro", col, "plausibility", HARD, affected / n,
            affected, None, float(rows[col].iloc[0]),
            f"implausible {col} in the last {lim.lookback_months} months: {what} (a unit "
            "change, zeros or a broken series?)",
            examples(rows, ["region", "month_end", col])))
    return out


def _combination_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        checks=[pa.Check(lambda df, c=c: ~pd.Series(c.violated(df), index=df.index),
                         name=c.name) for c in COMBINATIONS])


def _failed_rows(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """Pandera's failure cases of a lazy validation (``column``, ``check``, ``index``)."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as e:
        fc = e.failure_cases
        return fc[fc["index"].notna()][["column", "check", "index"]]
    return pd.DataFrame(columns=["column", "check", "index"])


def check_snapshot(snapshot: pd.DataFrame) -> list[Finding]:
    """Impossible combinations of snapshot fields (hard).

    Args:
        snapshot: snapshot rows holding the fields of :data:`COMBINATIONS`.

    Returns:
        One hard finding per broken combination, with the share of rows and examples.
    """
    needed = sorted({c for comb in COMBINATIONS for c in comb.columns})
    missing = [c for c in needed if c not in snapshot.columns]
    if missing:
        raise DataValidationError("snapshot", f"missing field(s) {missing}", missing[0])
    frame = snapshot.reset_index(drop=True)
    failed = _failed_rows(_combination_schema(), frame)
    out, n = [], max(len(frame), 1)
    for comb in COMBINATIONS:
        idx = failed.loc[failed["check"] == comb.name, "index"].astype(int).unique()
        if len(idx):
            rows = frame.loc[np.sort(idx)]
            out.append(Finding(f"snapshot.{comb.name}", "snapshot", ",".join(comb.columns),
                               "impossible", HARD, len(idx) / n, int(len(idx)), None, None,
                               f"impossible combination: {comb.text}",
                               examples(rows, ["customer_id", "as_of", *comb.columns])))
    return out


def _months_elapsed(expectations: DataExpectations, as_of: pd.Timestamp | None) -> float:
    """Months from the reference's last date to `as_of` (0 before it or when unknown)."""
    if as_of is None or not expectations.reference_dates:
        return 0.0
    last = pd.Timestamp(max(expectations.reference_dates))
    return max(0.0, (pd.Timestamp(as_of) - last).days / _DAYS_PER_MONTH)


def feature_range(name: str, expectations: DataExpectations, cfg: DataQualityConfig,
                  as_of: pd.Timestamp | None = None) -> tuple[float, float] | None:
    """The range a feature's values are checked against, or None when it is not checked.

    The reference's ``[min - margin, max + margin]``; a recency feature's upper end
    (:data:`AGEING_FEATURES`) moves on by the months elapsed since the reference's last
    date; macro features (:data:`MACRO_DRIVEN_FEATURES`) have none.

    Args:
        name: the feature.
        expectations: the training reference's expectations.
        cfg: the limits (``features.range_margin``).
        as_of: the date checked (None: no ageing).
    """
    e = expectations.features.get(name)
    if e is None or e.min is None or e.max is None or name in MACRO_DRIVEN_FEATURES:
        return None
    margin = cfg.features.range_margin * (e.max - e.min)
    grow = AGEING_FEATURES.get(name, 0.0) * _months_elapsed(expectations, as_of)
    return e.min - margin, e.max + margin + grow


def check_features(X: pd.DataFrame, expectations: DataExpectations, cfg: DataQualityConfig,
                   ids: pd.Series | None = None, as_of: pd.Timestamp | None = None
                   ) -> list[Finding]:
    """Soft findings per model feature: more missing values, values out of range.

    Args:
        X: the model features of the checked snapshot.
        expectations: the training reference's expectations.
        cfg: the limits (``features``).
        ids: customer ids of the rows, for examples.
        as_of: the date checked: recency features' upper end moves with the months
            elapsed since the reference (:func:`feature_range`); None keeps it fixed.

    Returns:
        Soft findings.
    """
    lim = cfg.features
    frame = X.reset_index(drop=True)
    n = max(len(frame), 1)
    ex_frame = frame.assign(customer_id=ids.to_numpy()) if ids is not None else frame
    columns, ranges = {}, {}
    for name in expectations.features:
        rng = feature_range(name, expectations, cfg, as_of) if name in frame.columns else None
        if rng is None:
            continue
        ranges[name] = rng
        columns[name] = pa.Column(float, pa.Check.in_range(*rng), nullable=True, coerce=True)
    failed = _failed_rows(pa.DataFrameSchema(columns), frame)
    out = []
    for name, e in expectations.features.items():
        if name not in frame.columns:
            continue
        null_now = float(frame[name].isna().mean())
        # Against the reference's worst date: a share of missing values the model was
        # trained on at one of its dates (little history before it) is no fault.
        null_ref = max(e.null_share, e.null_share_max or 0.0)
        if null_now - null_ref > lim.null_share_increase:
            rows = ex_frame[frame[name].isna().to_numpy()]
            out.append(Finding(f"features.{name}.null_share", "features", name, "null_share",
                               SOFT, null_now, int(frame[name].isna().sum()), null_ref,
                               null_now, f"{null_now:.1%} of {name} is missing; at most "
                               f"{null_ref:.1%} at a reference date",
                               examples(rows, ["customer_id", name])))
        idx = failed.loc[failed["column"] == name, "index"].astype(int).unique()
        if len(idx) / n > lim.out_of_range_share:
            out.append(Finding(f"features.{name}.range", "features", name, "range", SOFT,
                               len(idx) / n, int(len(idx)), None, None,
                               f"{len(idx) / n:.1%} of {name} lies outside "
                               f"[{ranges[name][0]:.4g}, {ranges[name][1]:.4g}] (the "
                               f"reference's [{e.min:.4g}, {e.max:.4g}] "
                               f"+{lim.range_margin:.0%}"
                               + (", aged to the checked date)" if name in AGEING_FEATURES
                                  else ")"),
                               examples(ex_frame.loc[np.sort(idx)], ["customer_id", name])))
    return out


def check_book(tables: dict[str, pd.DataFrame], snapshot: pd.DataFrame,
               expectations: DataExpectations, cfg: DataQualityConfig,
               features: pd.DataFrame | None = None, accepted: Iterable[str] = ()
               ) -> QualityReport:
    """Every check of a book as of one date: feeds, impossible combinations, features.

    Args:
        tables: the book's tables.
        snapshot: the snapshot of the checked as-of date (one date).
        expectations: the champion's data expectations.
        cfg: the limits.
        features: the snapshot's model features (feature checks are skipped if None).
        accepted: rule ids or glob patterns the operator accepted deliberately.

    Returns:
        The report; :meth:`QualityReport.raise_if_blocking` stops a run on a hard finding.

    Raises:
        DataValidationError: the snapshot is empty or spans more than one as-of date.
    """
    if len(snapshot) == 0:
        raise DataValidationError("snapshot", "no active customer to check")
    dates = pd.to_datetime(snapshot["as_of"]).unique()
    if len(dates) != 1:
        raise DataValidationError("snapshot", f"the gate checks one as-of date; got {len(dates)}",
                                  "as_of")
    as_of = pd.Timestamp(dates[0])
    findings = check_feeds(tables, snapshot, expectations, cfg) + check_snapshot(snapshot)
    if "macro" in expectations.feeds:  # a book trained without macro has nothing to check
        findings += check_macro(tables, snapshot, cfg)
    if features is not None:
        findings += check_features(features, expectations, cfg, snapshot["customer_id"], as_of)
    report = QualityReport(f"{as_of:%Y-%m-%d}", findings, list(accepted))
    for f in report.findings:
        log.log(logging.WARNING if f.severity == HARD else logging.INFO, f.describe())
    return report


def record_flags(records: pd.DataFrame | Mapping[str, Sequence], now: pd.Timestamp,
                 cfg: DataQualityConfig) -> tuple[list[list[str]], list[list[str]]]:
    """Hard rules broken and soft flags raised by each customer record.

    Hard: ``as_of_future`` (an as-of date after the clock `now`) and every impossible
    combination. Soft flags: ``as_of_old`` (older than ``records.max_as_of_age_days``:
    historical snapshots stay scorable for back-testing), ``stale_bureau`` (a bureau
    score but no pull within 12 months: ``bureau_score_avg_12m`` is missing),
    ``missing_bureau`` and ``missing_macro`` (the whole feed family is missing).

    Args:
        records: snapshot rows: a frame, or columns as lists (the service's request
            records, without pandas; None is missing).
        now: the clock to judge ``as_of`` against.
        cfg: the limits (``records``).

    Returns:
        Per row, the list of hard rules broken and the list of soft flags.
    """
    def column(name: str) -> np.ndarray:
        v = records[name]
        return (v.to_numpy(dtype="float64", na_value=np.nan) if isinstance(v, pd.Series)
                else np.array([np.nan if x is None else x for x in v], dtype="float64"))

    as_of = pd.to_datetime(pd.Series(list(records["as_of"]))).to_numpy()
    n = len(as_of)
    hard: list[list[str]] = [[] for _ in range(n)]
    soft: list[list[str]] = [[] for _ in range(n)]
    now = pd.Timestamp(now).normalize().to_datetime64()
    age_days = (now - as_of) / np.timedelta64(1, "D")

    def mark(target: list[list[str]], mask: np.ndarray, label: str) -> None:
        for i in np.flatnonzero(mask):
            target[i].append(label)

    mark(hard, age_days < 0, RULE_AS_OF_FUTURE)
    cols = {c: column(c) for c in {c for comb in COMBINATIONS for c in comb.columns}}
    for comb in COMBINATIONS:
        mark(hard, comb.violated(cols), comb.name)
    mark(soft, age_days > cfg.records.max_as_of_age_days, FLAG_AS_OF_OLD)
    isna = {c: np.isnan(column(c)) for c in (*_BUREAU_FIELDS, *_MACRO_FIELDS,
                                              "bureau_score_avg_12m")}
    mark(soft, ~isna["bureau_score"] & isna["bureau_score_avg_12m"], FLAG_STALE_BUREAU)
    mark(soft, np.logical_and.reduce([isna[c] for c in _BUREAU_FIELDS]), FLAG_MISSING_BUREAU)
    mark(soft, np.logical_and.reduce([isna[c] for c in _MACRO_FIELDS]), FLAG_MISSING_MACRO)
    return hard, soft
