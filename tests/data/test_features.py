"""The one feature function: fixed codes, explicit missing/special values, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from postloan.data import schema as S
from postloan.data.features import (
    CATEGORICAL_FEATURES,
    FEATURE_NAMES,
    build_features,
    feature_spec,
    features_from_records,
)
from postloan.data.snapshot import build_snapshot
from postloan.errors import DataValidationError


@pytest.fixture(scope="module")
def snap(small_tables):
    return build_snapshot(small_tables, "2024-03-31", with_labels=False)


def test_category_codes_are_fixed_by_the_schema(snap):
    f = build_features(snap)
    for col in CATEGORICAL_FEATURES:
        vocab = S.CATEGORY_VOCABULARIES[col]
        expect = snap[col].map({v: i for i, v in enumerate(vocab)}).astype(float)
        assert np.array_equal(f[col].to_numpy(), expect.to_numpy(), equal_nan=True)
    # Scoring one row gives the same features as scoring it inside the batch.
    one = build_features(snap.iloc[[5]])
    assert np.array_equal(one.to_numpy(), f.iloc[[5]].to_numpy(), equal_nan=True)


def test_special_values(snap):
    rows = snap.head(4).copy()
    rows["verified_monthly_income"] = [np.nan, 0.0, 2000.0, 2000.0]
    rows["declared_monthly_income"] = [3000.0, 3000.0, 0.0, 2000.0]
    rows["total_instalment"] = 600.0
    rows["total_principal"] = [0.0, 1000.0, 1000.0, 1000.0]
    f = build_features(rows)
    assert f["income"].tolist()[0] == 3000.0  # falls back to declared income
    assert f["debt_to_income"].iloc[0] == pytest.approx(0.2)
    assert np.isnan(f["debt_to_income"].iloc[1])  # zero income: ratio undefined, not inf
    assert f["debt_to_income"].iloc[2] == pytest.approx(0.3)
    assert np.isnan(f["balance_to_principal"].iloc[0])
    assert not np.isinf(f.to_numpy()).any()


def test_errors_name_the_field(snap):
    with pytest.raises(DataValidationError, match="missing field.*age"):
        build_features(snap.drop(columns=["age"]))
    bad = snap.head(3).copy()
    bad["bureau_score"] = [700.0, np.inf, 650.0]
    with pytest.raises(DataValidationError, match="bureau_score.*infinite|infinite"):
        build_features(bad)
    bad = snap.head(3).copy().astype({"age": object})
    bad["age"] = [30, "thirty", 40]
    with pytest.raises(DataValidationError, match="age"):
        build_features(bad)


def test_spec_lists_every_feature():
    spec = feature_spec()
    assert [f["name"] for f in spec["features"]] == list(FEATURE_NAMES)
    assert set(spec["categories"]) == set(CATEGORICAL_FEATURES)
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


def test_extra_columns_are_ignored(snap):
    a = build_features(snap.head(20))
    b = build_features(snap.head(20).assign(default_12m=1.0, something_else="x"))
    pd.testing.assert_frame_equal(a, b)


def test_record_fast_path_equals_frame_path(snap):
    rows = snap.head(25)
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v)
                for k, v in r.items()} for r in rows.to_dict("records")]
    fast = features_from_records(records)
    assert np.array_equal(fast, build_features(rows).to_numpy(), equal_nan=True)
    with pytest.raises(DataValidationError, match="missing field"):
        features_from_records([{k: v for k, v in records[0].items() if k != "age"}])


def test_unknown_category_is_missing_with_a_warning(snap, caplog):
    rows = snap.head(3).copy()
    rows["region"] = ["north", "mars", "east"]
    with caplog.at_level("WARNING", logger="postloan.data.features"):
        X = build_features(rows)
    assert np.isnan(X["region"].iloc[1])
    assert X["region"].iloc[0] == S.REGIONS.index("north")
    assert "mars" in caplog.text
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v)
                for k, v in r.items()} for r in rows.to_dict("records")]
    assert np.array_equal(features_from_records(records), X.to_numpy(), equal_nan=True)
    with pytest.raises(DataValidationError, match="unknown category"):
        S.category_code("region", rows["region"])  # the strict form still refuses it
