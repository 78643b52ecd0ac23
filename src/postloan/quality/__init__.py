"""Data quality: expectations learned at training time and the gate before decisions.

* :mod:`~postloan.quality.expectations`: what a training reference looked like (per
  feature and per feed), as JSON that travels in a model bundle;
* :mod:`~postloan.quality.checks`: a book, its snapshot and single records checked
  against them (and the macro feed for gaps and plausibility), as hard and soft
  :class:`~postloan.quality.findings.Finding`;
* :mod:`~postloan.quality.config`: the limits, from ``config/data_quality.yaml``;
* :mod:`~postloan.quality.faults`: feed faults injected on purpose (tests, drills).
"""

from postloan.quality.checks import (
    AGEING_FEATURES,
    COMBINATION_NAMES,
    COMBINATIONS,
    MACRO_DRIVEN_FEATURES,
    check_book,
    check_features,
    check_feeds,
    check_macro,
    check_snapshot,
    feature_range,
    record_flags,
)
from postloan.quality.config import (
    FEED_NAMES,
    DataQualityConfig,
    FeedLimits,
    MacroLimits,
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
    "AGEING_FEATURES", "COMBINATIONS", "COMBINATION_NAMES", "FEEDS", "FEED_NAMES", "HARD",
    "MACRO_DRIVEN_FEATURES", "SOFT", "DataExpectations", "DataQualityConfig",
    "FeatureExpectation", "Feed", "FeedExpectation", "FeedLimits", "Finding", "MacroLimits",
    "QualityReport", "check_book", "check_features", "check_feeds", "check_macro",
    "check_snapshot", "feature_expectations", "feature_range", "feed_stats", "feed_window",
    "learn_expectations", "load_data_quality_config", "record_flags",
]
