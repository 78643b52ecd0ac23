"""The feeds of a book and what each delivered as of a date.

A *feed* is one table a lender receives from a source system (the bureau, the app's
channel log, the servicing core's statements, ...). For each feed and as-of date
:func:`feed_stats` measures what the gate compares with the training reference:

* freshness: the age in days of the feed's newest record, and of each active
  customer's latest record (its median and 90th percentile);
* completeness: the share of active customers with a record in the feed's period
  (the quarter of a quarterly bureau pull, the month of a monthly statement);
* scale: the median of each money column (the mean of each count column, whose
  median is often 0) over the period's records of active customers.

Active customers are the rows of the snapshot at that date (at least one open loan).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from postloan.data.snapshot import _months_before


@dataclass(frozen=True)
class Feed:
    """One feed of the canonical book.

    Attributes:
        name: feed name (also the table's name).
        date_column: the column dating each record.
        period_months: the feed's delivery period: every active customer is expected
            to have a record in any window of this many months ending at the as-of date.
        money_columns: money columns whose median is the feed's scale.
        count_columns: count columns whose mean is the feed's scale.
        by_region: records are per region (macro), not per customer.
    """

    name: str
    date_column: str
    period_months: int
    money_columns: tuple[str, ...] = ()
    count_columns: tuple[str, ...] = ()
    by_region: bool = False

    @property
    def scale_columns(self) -> tuple[str, ...]:
        return (*self.money_columns, *self.count_columns)

    def scale_stat(self, column: str) -> str:
        """``median`` for a money column, ``mean`` for a count column."""
        return "median" if column in self.money_columns else "mean"


FEEDS: dict[str, Feed] = {f.name: f for f in (
    Feed("bureau", "pull_date", 3, money_columns=("verified_monthly_income", "external_debt")),
    Feed("activity", "month_end", 1,
         count_columns=("app_logins", "inbound_calls", "branch_visits")),
    Feed("interactions", "event_date", 3),
    Feed("surveys", "survey_date", 12, count_columns=("overall",)),
    # No scale: macro series are meant to move (a recession may double unemployment);
    # the gate checks their gaps and plausibility instead (checks.check_macro).
    Feed("macro", "month_end", 1, by_region=True),
    Feed("repayments", "statement_date", 1,
         money_columns=("scheduled_amount", "balance")),
)}


@dataclass
class FeedWindow:
    """What one feed holds for the active customers as of a date.

    Attributes:
        feed: the feed.
        as_of: the as-of date.
        visible: records dated on or before the as-of date, one row per record, with
            ``customer_id`` (macro: joined to the active customers by region).
        period: the visible records dated within the feed's period.
        n_active: active customers.
    """

    feed: Feed
    as_of: pd.Timestamp
    visible: pd.DataFrame
    period: pd.DataFrame
    n_active: int


def feed_window(tables: dict[str, pd.DataFrame], feed: Feed, snapshot: pd.DataFrame
                ) -> FeedWindow:
    """The records of one feed visible to the active customers of a one-date snapshot.

    Args:
        tables: the book's tables.
        feed: the feed to look at.
        snapshot: the snapshot at one as-of date (``customer_id``, ``as_of``, ``region``).

    Returns:
        The feed's visible and in-period records of the snapshot's customers.
    """
    as_of = pd.Timestamp(snapshot["as_of"].iloc[0])
    table = tables.get(feed.name)
    cols = ["customer_id", feed.date_column, *feed.scale_columns]
    if table is None or table.empty:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
        empty[feed.date_column] = pd.Series(dtype="datetime64[ns]")
        return FeedWindow(feed, as_of, empty, empty, len(snapshot))
    dates = table[feed.date_column]
    vis = table[(dates <= as_of).to_numpy()]
    if feed.by_region:
        # A regional series reaches a customer through the customer's region.
        vis = snapshot[["customer_id", "region"]].merge(vis, on="region", how="inner")
    else:
        vis = vis[vis["customer_id"].isin(snapshot["customer_id"]).to_numpy()]
    vis = vis[cols].reset_index(drop=True)
    start = _months_before(as_of, feed.period_months)
    period = vis[(vis[feed.date_column] > start).to_numpy()]
    return FeedWindow(feed, as_of, vis, period, len(snapshot))


def customer_ages(window: FeedWindow) -> pd.Series:
    """Age in days of each active customer's latest visible record (customers with one)."""
    latest = window.visible.groupby("customer_id")[window.feed.date_column].max()
    return (window.as_of - latest).dt.days.astype("float64")


def feed_stats(window: FeedWindow) -> dict:
    """Freshness, completeness and scale of one feed at one date.

    Args:
        window: the feed's records as of the date (:func:`feed_window`).

    Returns:
        ``latest_age_days`` (NaN when the feed holds nothing), ``customer_age_p50``,
        ``customer_age_p90`` (days), ``history_days`` (age of the feed's oldest visible
        record), ``completeness`` (share of active customers with a record in the
        period), ``scale`` ({column: median or mean over the period}),
        ``n_active``, ``n_period_customers``.
    """
    feed = window.feed
    ages = customer_ages(window)
    newest = window.visible[feed.date_column].max()
    oldest = window.visible[feed.date_column].min()
    covered = window.period["customer_id"].nunique()
    scale = {}
    for c in feed.scale_columns:
        v = window.period[c].to_numpy(dtype="float64", na_value=np.nan)
        v = v[~np.isnan(v)]
        scale[c] = (float("nan") if len(v) == 0 else
                    float(np.median(v) if feed.scale_stat(c) == "median" else v.mean()))
    return {
        "latest_age_days": float((window.as_of - newest).days) if pd.notna(newest)
        else float("nan"),
        "customer_age_p50": float(ages.median()) if len(ages) else float("nan"),
        "customer_age_p90": float(ages.quantile(0.9)) if len(ages) else float("nan"),
        "history_days": float((window.as_of - oldest).days) if pd.notna(oldest)
        else float("nan"),
        "completeness": covered / window.n_active if window.n_active else float("nan"),
        "scale": scale,
        "n_active": int(window.n_active),
        "n_period_customers": int(covered),
    }
