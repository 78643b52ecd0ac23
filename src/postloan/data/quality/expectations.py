"""Data expectations learned from a model's training reference.

:func:`learn_expectations` measures, on the snapshots a model was trained on:

* per feature: quantiles, share of missing values (overall and at the worst reference
  date), minimum and maximum;
* per feed (:data:`postloan.data.quality.feeds.FEEDS`): freshness, completeness and scale
  at every reference as-of date, kept as the median (completeness, scale) or the
  worst value (freshness) over those dates.

The result, :class:`DataExpectations`, is plain JSON (``to_dict`` / ``from_dict``),
so it travels in a model bundle and its MLflow run beside the feature spec.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from postloan.data.quality.feeds import FEEDS, feed_stats, feed_window
from postloan.errors import DataValidationError

log = logging.getLogger(__name__)

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
FORMAT_VERSION = 1


def _f(x: float) -> float | None:
    """A JSON-safe number: NaN and infinities become None."""
    x = float(x)
    return None if not np.isfinite(x) else x


@dataclass
class FeatureExpectation:
    """What one feature looked like in the training reference.

    Attributes:
        quantiles: value at each level of :data:`QUANTILES` (keys ``"0.01"``, ...), over
            the non-missing values; None when the feature was always missing.
        null_share: share of missing values.
        min: smallest value seen (None if always missing).
        max: largest value seen.
        null_share_max: the highest share of missing values at any one reference date
            (a 6-month change is missing for most customers at a date with little
            history before it); None in expectations learned before it was recorded.
    """

    quantiles: dict[str, float | None]
    null_share: float
    min: float | None
    max: float | None
    null_share_max: float | None = None


@dataclass
class FeedExpectation:
    """What one feed delivered at the reference dates.

    Attributes:
        latest_age_days: the oldest "newest record" age seen at any reference date
            (a quarterly feed's newest pull may be ~90 days old at some month ends).
        customer_age_p50: the worst median age of customers' latest records.
        customer_age_p90: the worst 90th percentile of that age.
        completeness: median share of active customers with a record in the period.
        completeness_min: the lowest such share at any reference date.
        scale: per scale column, the median over the dates of its period median (money)
            or mean (counts).
        scale_stat: per scale column, ``median`` or ``mean``.
        customer_age_cap_days: the shortest history (days from the feed's first record
            to the date) at any reference date: no customer age there could exceed it,
            so the gate censors today's ages at it before comparing (None in
            expectations learned before it was recorded: no censoring).
    """

    latest_age_days: float | None
    customer_age_p50: float | None
    customer_age_p90: float | None
    completeness: float | None
    completeness_min: float | None
    scale: dict[str, float | None] = field(default_factory=dict)
    scale_stat: dict[str, str] = field(default_factory=dict)
    customer_age_cap_days: float | None = None


@dataclass
class DataExpectations:
    """The data expectations of one training reference (JSON-serialisable).

    Attributes:
        reference_dates: the as-of dates measured (``YYYY-MM-DD``).
        n_rows: snapshot rows in the reference.
        features: per model feature, its :class:`FeatureExpectation`.
        feeds: per feed, its :class:`FeedExpectation`.
        version: format version of this object.
    """

    reference_dates: list[str]
    n_rows: int
    features: dict[str, FeatureExpectation]
    feeds: dict[str, FeedExpectation]
    version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        """Plain JSON data (no NaN: missing numbers are None)."""
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> DataExpectations:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            DataValidationError: the data is not a data-expectations object of a known
                version.
        """
        try:
            if int(d.get("version", -1)) != FORMAT_VERSION:
                raise DataValidationError(
                    "data_expectations", f"unknown format version {d.get('version')!r}; "
                    f"this postloan reads version {FORMAT_VERSION}", "version")
            return cls(
                reference_dates=list(d["reference_dates"]), n_rows=int(d["n_rows"]),
                features={k: FeatureExpectation(**v) for k, v in d["features"].items()},
                feeds={k: FeedExpectation(**v) for k, v in d["feeds"].items()},
                version=FORMAT_VERSION)
        except (KeyError, TypeError, AttributeError) as e:
            raise DataValidationError("data_expectations", f"malformed expectations: {e!r}"
                                      ) from e

    @classmethod
    def from_json(cls, text: str) -> DataExpectations:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise DataValidationError("data_expectations", f"not JSON: {e}") from e


def feature_expectations(X: pd.DataFrame, as_of: pd.Series | None = None
                         ) -> dict[str, FeatureExpectation]:
    """Quantiles, missing share and range of every column of a feature frame.

    Args:
        X: the features of the reference rows.
        as_of: each row's as-of date: the highest missing share at one date is kept too
            (None: the whole frame counts as one date).
    """
    out = {}
    dates = (np.zeros(len(X)) if as_of is None else pd.to_datetime(as_of).to_numpy())
    for c in X.columns:
        v = X[c].to_numpy(dtype="float64", na_value=np.nan)
        seen = v[~np.isnan(v)]
        null_share = float(1.0 - len(seen) / len(v)) if len(v) else 1.0
        null_max = (float(pd.Series(np.isnan(v)).groupby(dates).mean().max()) if len(v)
                    else 1.0)
        if len(seen):
            qs = np.quantile(seen, QUANTILES)
            out[c] = FeatureExpectation({str(q): _f(x) for q, x in zip(QUANTILES, qs, strict=True)},
                                        null_share, _f(seen.min()), _f(seen.max()), null_max)
        else:
            out[c] = FeatureExpectation({str(q): None for q in QUANTILES}, null_share,
                                        None, None, null_max)
    return out


def _median(values: list[float]) -> float | None:
    v = np.asarray(values, dtype="float64")
    v = v[~np.isnan(v)]
    return _f(np.median(v)) if len(v) else None


def _worst(values: list[float]) -> float | None:
    v = np.asarray(values, dtype="float64")
    v = v[~np.isnan(v)]
    return _f(v.max()) if len(v) else None


def _least(values: list[float]) -> float | None:
    v = np.asarray(values, dtype="float64")
    v = v[~np.isnan(v)]
    return _f(v.min()) if len(v) else None


def learn_expectations(tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame,
                       features: pd.DataFrame, max_dates: int = 12) -> DataExpectations:
    """Learn the data expectations of a training reference.

    Args:
        tables: the book the reference snapshots were built from.
        snapshots: the training snapshots (stacked, with ``customer_id``, ``as_of`` and
            ``region``); each as-of date's rows are its active customers.
        features: the model features of those rows (:func:`postloan.data.features.build_features`).
        max_dates: feed statistics are measured on at most this many reference dates,
            evenly spaced (the latest always included), to bound the cost.

    Returns:
        The expectations.

    Raises:
        DataValidationError: the reference is empty or its frames do not line up.
    """
    if len(snapshots) == 0:
        raise DataValidationError("data_expectations", "the training reference is empty")
    if len(features) != len(snapshots):
        raise DataValidationError("data_expectations",
                                  f"{len(features)} feature rows for {len(snapshots)} snapshot "
                                  "rows: they must be the same rows")
    dates = sorted(pd.to_datetime(snapshots["as_of"]).unique())
    pick = np.unique(np.round(np.linspace(0, len(dates) - 1, min(max_dates, len(dates))))
                     .astype(int))
    measured = [pd.Timestamp(dates[i]) for i in pick]
    # A feed the training book did not have (an optional table declared absent) has no
    # expectations: the model learned its features as missing, so its absence later is
    # not a fault; a feed present at training and missing later is (check_feeds).
    per_feed: dict[str, list[dict]] = {name: [] for name in FEEDS if name in tables}
    as_of_col = pd.to_datetime(snapshots["as_of"])
    for d in measured:
        snap = snapshots[(as_of_col == d).to_numpy()]
        for name in per_feed:
            per_feed[name].append(feed_stats(feed_window(tables, FEEDS[name], snap)))
    feeds = {}
    for name, stats in per_feed.items():
        feed = FEEDS[name]
        comp = [s["completeness"] for s in stats]
        feeds[name] = FeedExpectation(
            latest_age_days=_worst([s["latest_age_days"] for s in stats]),
            customer_age_p50=_worst([s["customer_age_p50"] for s in stats]),
            customer_age_p90=_worst([s["customer_age_p90"] for s in stats]),
            completeness=_median(comp),
            completeness_min=_f(np.nanmin(comp)) if not np.all(np.isnan(comp)) else None,
            scale={c: _median([s["scale"][c] for s in stats]) for c in feed.scale_columns},
            scale_stat={c: feed.scale_stat(c) for c in feed.scale_columns},
            customer_age_cap_days=_least([s["history_days"] for s in stats]),
        )
    log.info("learned data expectations on %d reference dates, %d rows", len(measured),
             len(snapshots))
    return DataExpectations(reference_dates=[f"{d:%Y-%m-%d}" for d in measured],
                            n_rows=int(len(snapshots)),
                            features=feature_expectations(features, snapshots["as_of"]),
                            feeds=feeds)
