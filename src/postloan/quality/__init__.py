"""Data quality: expectations learned at training time and the gate before decisions.

* :mod:`~postloan.quality.expectations`: what a training reference looked like (per
  feature and per feed), as JSON that travels in a model bundle;
* :mod:`~postloan.quality.checks`: a book, its snapshot and single records checked
  against them, as hard and soft :class:`~postloan.quality.findings.Finding`;
* :mod:`~postloan.quality.config`: the limits, from ``config/data_quality.yaml``;
* :mod:`~postloan.quality.faults`: feed faults injected on purpose (tests, drills).
"""

from postloan.quality.checks import (
    COMBINATION_NAMES,
    COMBINATIONS,
    check_book,
    check_features,
    check_feeds,
    check_snapshot,
    record_flags,
)
from postloan.quality.config import (
    FEED_NAMES,
    DataQualityConfig,
    FeedLimits,
    load_data_quality_config,
)
from postloan.quality.expectations import (
    DataExpectations,
    FeatureExpectation,
    FeedExpectation,
    feature_expectations,
    learn_expectations,
)
from postloan.quality.feeds import FEEDS, Feed, feed_stats, feed_window
from postloan.quality.findings import HARD, SOFT, Finding, QualityReport

__all__ = [
    "COMBINATIONS", "COMBINATION_NAMES", "FEEDS", "FEED_NAMES", "HARD", "SOFT",
    "DataExpectations", "DataQualityConfig", "FeatureExpectation", "Feed", "FeedExpectation",
    "FeedLimits", "Finding", "QualityReport", "check_book", "check_features", "check_feeds",
    "check_snapshot", "feature_expectations", "feed_stats", "feed_window",
    "learn_expectations", "load_data_quality_config", "record_flags",
]
