"""TreeSHAP equality with shap, additivity, reason texts, calibration and metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_curve

from postloan.data.features import CATEGORICAL_FEATURES, FEATURE_NAMES, build_features
from postloan.data.snapshot import build_snapshot
from postloan.errors import ConfigError, DataValidationError
from postloan.models import evaluation as ev
from postloan.models.bundle import MODELS
from postloan.models.calibration import Calibrator, fit_calibrator
from postloan.models.explain import BIAS, LANGS, contributions, reason_codes, reason_text
from postloan.models.training import LgbmParams, fit_lightgbm


@pytest.fixture(scope="module")
def trained(small_tables):
    tr = pd.concat([build_snapshot(small_tables, d) for d in ("2023-09-30", "2023-12-31")])
    va = build_snapshot(small_tables, "2024-03-31")
    tr, va = tr[tr["default_12m"].notna()], va[va["default_12m"].notna()]
    params = LgbmParams(max_rounds=60, num_leaves=15, min_child_samples=20)
    booster = fit_lightgbm(build_features(tr), tr["default_12m"], build_features(va),
                           va["default_12m"], params, CATEGORICAL_FEATURES,
                           {"dpd_current": 1})
    return booster, build_features(va)


def test_contributions_sum_to_margin(trained):
    booster, X = trained
    c = contributions(booster, X)
    margin = booster.predict(X, raw_score=True)
    assert np.allclose(c.sum(axis=1).to_numpy(), margin, rtol=0, atol=1e-9)
    assert list(c.columns) == [*FEATURE_NAMES, BIAS]


def test_treeshap_equals_shap_package(trained):
    shap = pytest.importorskip("shap")
    booster, X = trained
    X = X.head(300)
    ours = contributions(booster, X).drop(columns=[BIAS]).to_numpy()
    theirs = shap.TreeExplainer(booster).shap_values(X)
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    assert np.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("model", list(MODELS))
def test_reason_text_renders_for_every_feature(model):
    for f in FEATURE_NAMES:
        for v in (0.0, 1.0, 37.5, float("nan")):
            for lang in LANGS:
                t = reason_text(model, f, v, lang)
                assert isinstance(t, str) and t and "{" not in t
    assert "21 days" in reason_text("satisfaction", "max_open_complaint_days", 21.0)
    assert "3 missed" in reason_text("default_risk", "n_missed_6m", 3.0)
    assert "never surveyed" == reason_text("churn", "last_survey_score", float("nan"))
    assert "north" in reason_text("churn", "region", 0.0)
    with pytest.raises(ConfigError, match="no reason text"):
        reason_text("churn", "not_a_feature", 1.0)


def test_reason_codes_follow_contributions(trained):
    booster, X = trained
    c = contributions(booster, X.head(50))
    codes = reason_codes("default_risk", c, X.head(50), k=3)
    for i, row in enumerate(codes):
        ups = [r["contribution"] for r in row["up"]]
        assert ups == sorted(ups, reverse=True) and all(u > 0 for u in ups)
        assert all(r["contribution"] < 0 for r in row["down"])
        if ups:
            assert ups[0] == pytest.approx(c.drop(columns=[BIAS]).iloc[i].max())
        assert all(r["text_zh"] and r["text_en"] for r in row["up"] + row["down"])
    assert codes == reason_codes("default_risk", c, X.head(50), k=3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.normal(0.4, 0.2, 500), 0, 1)
    brute = max(abs((p[y == 1] <= t).mean() - (p[y == 0] <= t).mean()) for t in np.unique(p))
    assert ev.ks_statistic(y, p) == pytest.approx(brute, abs=1e-12)
    fpr, tpr, _ = roc_curve(y, p)
    assert ev.binary_metrics(y, p)["gini"] == pytest.approx(2 * ev.binary_metrics(y, p)["auc"] - 1)


def test_ece_and_calibrator():
    rng = np.random.default_rng(5)
    p = rng.uniform(0.01, 0.6, 40_000)
    y = (rng.random(40_000) < p).astype(float)
    assert ev.expected_calibration_error(y, p) < 0.01
    distorted = p ** 2
    assert ev.expected_calibration_error(y, distorted) > 0.05
    half = 20_000
    for method in ("isotonic", "platt"):
        cal = fit_calibrator(distorted[:half], y[:half], method)
        fixed = cal.transform(distorted[half:])
        assert ev.expected_calibration_error(y[half:], fixed) < 0.015
        back = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
        assert np.array_equal(back.transform(distorted), cal.transform(distorted))
    iso = fit_calibrator(distorted[:half], y[:half], "isotonic")
    assert np.all(np.diff(iso.y_) >= 0)


def test_metric_and_calibration_errors():
    with pytest.raises(DataValidationError, match="one class"):
        ev.binary_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(DataValidationError, match="length mismatch|3 scores but 2 labels"):
        ev.binary_metrics([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(DataValidationError, match="NaN"):
        ev.binary_metrics([0, 1], [0.1, np.nan])
    with pytest.raises(ConfigError, match="method"):
        Calibrator.from_dict({"method": "magic"})
    with pytest.raises(ConfigError, match="'x' and 'y'"):
        Calibrator.from_dict({"method": "isotonic", "x": [0.1], "y": [0.2]})


def test_training_refuses_bad_splits(trained):
    _, X = trained
    y0 = np.zeros(len(X))
    with pytest.raises(DataValidationError, match="no positive labels") as ei:
        fit_lightgbm(X, y0, X, np.r_[1.0, y0[1:]])
    assert ei.value.table == "train"
    with pytest.raises(DataValidationError, match="no rows") as ei:
        fit_lightgbm(X, np.r_[1.0, y0[1:]], X.head(0), [])
    assert ei.value.table == "valid"
