"""Data quality: expectations learned at training time and the gate before decisions.

* :mod:`~postloan.data.quality.expectations`: what a training reference looked like (per
  feature and per feed), as JSON that travels in a model bundle;
* :mod:`~postloan.data.quality.checks`: a book, its snapshot and single records checked
  against them (and the macro feed for gaps and plausibility), as hard and soft
  :class:`~postloan.data.quality.findings.Finding`;
* :mod:`~postloan.data.quality.config`: the limits, from ``config/data_quality.yaml``;
* :mod:`~postloan.data.quality.faults`: feed faults injected on purpose (tests, drills);
* :mod:`~postloan.data.quality.gate`: the gate itself, the one place a run is stopped.
"""

from postloan.data.quality.checks import (
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
from postloan.data.quality.config import (
    FEED_NAMES,
    DataQualityConfig,
    FeedLimits,
    MacroLimits,
    load_data_quality_config,
)
from postloan.data.quality.expectations import (
    DataExpectations,
    FeatureExpectation,
    FeedExpectation,
    feature_expectations,
    learn_expectations,
)
from postloan.data.quality.feeds import FEEDS, Feed, feed_stats, feed_window
from postloan.data.quality.findings import HARD, SOFT, Finding, QualityReport
from postloan.data.quality.gate import champion_expectations, gate, gate_record

__all__ = [
    "AGEING_FEATURES", "COMBINATIONS", "COMBINATION_NAMES", "FEEDS", "FEED_NAMES", "HARD",
    "MACRO_DRIVEN_FEATURES", "SOFT", "DataExpectations", "DataQualityConfig",
    "FeatureExpectation", "Feed", "FeedExpectation", "FeedLimits", "Finding", "MacroLimits",
    "QualityReport", "champion_expectations", "check_book", "check_features", "check_feeds", "check_macro",
    "check_snapshot", "feature_expectations", "feature_range", "feed_stats", "feed_window", "gate", "gate_record",
    "learn_expectations", "load_data_quality_config", "record_flags",
]
