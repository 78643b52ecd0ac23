"""Calibrators: they calibrate, stay monotone, and survive JSON bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from postloan.errors import ConfigError, DataValidationError
from postloan.models.calibration import EPS, Calibrator, fit_calibrator
from postloan.models.evaluation import expected_calibration_error

SEEDS = [0, 1, 2, 3, 4]
METHODS = ["isotonic", "platt"]


def _distorted(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities p, labels y ~ Bernoulli(p), raw scores p**3 (miscalibrated)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    y = (rng.uniform(size=n) < p).astype(int)
    return p**3, y


def _roundtrip(cal: Calibrator) -> Calibrator:
    return Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", METHODS)
def test_calibrator_reduces_ece_on_held_out_data(seed, method):
    raw, y = _distorted(seed)
    half = len(y) // 2
    cal = fit_calibrator(raw[:half], y[:half], method=method)
    before = expected_calibration_error(y[half:], raw[half:])
    after = expected_calibration_error(y[half:], cal.transform(raw[half:]))
    assert before > 0.15
    assert after < 0.04
    assert after < before / 5


@pytest.mark.parametrize("seed", SEEDS)
def test_isotonic_is_monotone_and_bounded(seed):
    raw, y = _distorted(seed, n=5_000)
    cal = fit_calibrator(raw, y, "isotonic")
    assert np.all(np.diff(cal.x_) > 0)
    assert np.all(np.diff(cal.y_) >= 0)
    grid = np.linspace(0, 1, 10_001)
    out = cal.transform(grid)
    assert np.all(np.diff(out) >= 0)
    assert out.min() >= EPS and out.max() <= 1 - EPS


def test_isotonic_steps_match_sklearn_predict():
    raw, y = _distorted(7, n=3_000)
    cal = fit_calibrator(raw, y, "isotonic", smooth=False)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=EPS, y_max=1 - EPS).fit(raw, y)
    grid = np.r_[0.0, np.linspace(raw.min(), raw.max(), 1_000), 1.0]
    np.testing.assert_allclose(cal.transform(grid), iso.predict(grid), rtol=0, atol=1e-12)


def test_isotonic_steps_with_ties_are_a_step_function():
    rng = np.random.default_rng(0)
    raw = np.round(rng.uniform(size=5_000), 1)  # 11 distinct values
    y = (rng.uniform(size=raw.size) < raw).astype(int)
    cal = fit_calibrator(raw, y, "isotonic", smooth=False)
    assert len(cal.x_) <= 11
    assert 2 <= len(np.unique(cal.transform(raw))) <= 11  # steps, not a constant


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", METHODS)
def test_json_roundtrip_is_bit_identical(seed, method):
    raw, y = _distorted(seed, n=4_000)
    cal = fit_calibrator(raw, y, method)
    back = _roundtrip(cal)
    assert back == cal
    probe = np.r_[0.0, 1e-9, raw, np.random.default_rng(seed).uniform(size=1_000), 1.0]
    assert np.array_equal(cal.transform(probe), back.transform(probe))


def test_platt_recovers_a_known_sigmoid():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, 100_000)
    raw = 1 / (1 + np.exp(-z))
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))).astype(int)
    cal = fit_calibrator(raw, y, "platt")
    assert cal.coef_ == pytest.approx(0.5, abs=0.03)
    assert cal.intercept_ == pytest.approx(-1.0, abs=0.05)


def test_platt_stays_finite_on_separable_scores():
    raw = np.r_[np.full(50, 0.1), np.full(50, 0.9)]
    y = np.r_[np.zeros(50), np.ones(50)]
    cal = fit_calibrator(raw, y, "platt")
    out = cal.transform(raw)
    assert np.isfinite([cal.coef_, cal.intercept_]).all()
    assert 0 < out.min() < 0.05 and 0.95 < out.max() < 1


def test_old_files_with_every_field_still_load():
    d = {"method": "isotonic", "x": [0.1, 0.5], "y": [0.2, 0.4], "coef": 1.0, "intercept": 0.0}
    cal = Calibrator.from_dict(d)
    np.testing.assert_allclose(cal.transform(np.array([0.0, 0.3, 1.0])), [0.2, 0.3, 0.4])


@pytest.mark.parametrize(
    ("raw", "y", "column", "words"),
    [
        ([0.1, np.nan, 0.3], [0, 1, 0], "raw_score", "NaN"),
        ([0.1, 0.2], [0, 1, 0], "raw_score", "length mismatch"),
        ([0.1, 0.2, 0.3], [1, 1, 1], "y", "one class"),
        ([0.1, 0.2, 0.3], [0, 1, np.nan], "y", "NaN"),
        ([0.1, 0.2, 0.3], [0, 1, 3], "y", "0 or 1"),
        ([0.1, 2.0, 0.3], [0, 1, 0], "raw_score", "[0, 1]"),
    ],
)
@pytest.mark.parametrize("method", METHODS)
def test_fit_errors_name_the_column(raw, y, column, words, method):
    with pytest.raises(DataValidationError) as info:
        fit_calibrator(np.array(raw), np.array(y), method)
    assert info.value.column == column
    assert f"column '{column}'" in str(info.value) and words in str(info.value)


def test_isotonic_refuses_a_constant_score():
    with pytest.raises(DataValidationError, match="distinct") as info:
        fit_calibrator(np.full(10, 0.3), np.r_[np.zeros(5), np.ones(5)], "isotonic")
    assert info.value.column == "raw_score"
    with pytest.raises(ConfigError, match="two breakpoints"):
        Calibrator("isotonic", x_=[0.3], y_=[0.5])


@pytest.mark.parametrize("method", METHODS)
def test_transform_rejects_nan(method):
    cal = fit_calibrator(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 1, 0, 1]), method)
    with pytest.raises(DataValidationError, match="raw_score"):
        cal.transform(np.array([0.5, np.nan]))


def test_unknown_method():
    with pytest.raises(ConfigError, match="method"):
        fit_calibrator(np.array([0.1, 0.9]), np.array([0, 1]), "beta")
    with pytest.raises(ConfigError, match="method"):
        Calibrator("beta")


@pytest.mark.parametrize(
    ("d", "field"),
    [
        ({"method": "spline", "x": [0.1], "y": [0.2]}, "'method'"),
        ({"x": [0.1], "y": [0.2]}, "'method'"),
        ({"method": "isotonic", "y": [0.2]}, "'x'"),
        ({"method": "isotonic", "x": [0.1, 0.2], "y": [0.2]}, "'x' and 'y'"),
        ({"method": "isotonic", "x": [0.1], "y": [0.2]}, "'x' and 'y'"),
        ({"method": "isotonic", "x": [0.1, "a"], "y": [0.2, 0.3]}, "'x'"),
        ({"method": "isotonic", "x": [0.3, 0.1], "y": [0.2, 0.3]}, "'x'"),
        ({"method": "isotonic", "x": [0.1, 0.3], "y": [0.5, 0.3]}, "'y'"),
        ({"method": "isotonic", "x": [0.1, 0.3], "y": [0.2, 1.5]}, "'y'"),
        ({"method": "platt", "coef": 1.0}, "'intercept'"),
        ({"method": "platt", "coef": "1", "intercept": 0.0}, "'coef'"),
        ({"method": "platt", "coef": float("nan"), "intercept": 0.0}, "'coef'"),
    ],
)
def test_from_dict_names_the_bad_field(d, field):
    with pytest.raises(ConfigError) as info:
        Calibrator.from_dict(d)
    assert field in str(info.value)


def test_from_dict_rejects_non_dict():
    with pytest.raises(ConfigError, match="JSON object"):
        Calibrator.from_dict([1, 2])  # type: ignore[arg-type]


# ----------------------------------------------------------------- bounds and smoothing
FLOOR, CEILING = 0.0003, 0.9997


def _separable_tails(seed: int, n: int = 6_000) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose top block is all positives and bottom block all negatives: the raw
    isotonic map gives exactly 1 and 0 there."""
    rng = np.random.default_rng(seed)
    raw = rng.beta(0.6, 2.5, n)
    p = np.clip(raw * 1.3, 0, 1)
    y = (rng.uniform(size=n) < p).astype(int)
    top = raw > np.quantile(raw, 0.99)
    y[top] = 1
    y[raw < np.quantile(raw, 0.02)] = 0
    return raw, y


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", METHODS)
def test_no_calibrated_probability_is_0_or_1(seed, method):
    raw, y = _separable_tails(seed)
    steps = IsotonicRegression(out_of_bounds="clip").fit(raw, y).predict(raw)
    assert steps.max() == 1.0 and steps.min() == 0.0  # what the bounds are there for
    cal = fit_calibrator(raw, y, method, floor=FLOOR, ceiling=CEILING)
    out = cal.transform(np.r_[0.0, 1e-12, raw, np.linspace(0, 1, 1_001), 1 - 1e-12, 1.0])
    assert out.min() >= FLOOR and out.max() <= CEILING
    assert ((out > 0) & (out < 1)).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_smoothed_isotonic_is_monotone_without_plateaus(seed):
    raw, y = _distorted(seed, n=5_000)
    cal = fit_calibrator(raw, y, "isotonic", floor=FLOOR, ceiling=CEILING)
    steps = fit_calibrator(raw, y, "isotonic", floor=FLOOR, ceiling=CEILING, smooth=False)
    grid = np.linspace(0, 1, 20_001)
    out = cal.transform(grid)
    assert np.all(np.diff(out) >= 0)
    assert cal.tail_low > 0 and cal.tail_high > 0
    # Customers share a probability only where the bounds clip, not on isotonic blocks:
    # the smoothed map takes far more distinct values on the customers' own scores.
    inside = (out > FLOOR) & (out < CEILING)
    assert np.all(np.diff(out[inside]) > 0)
    assert len(np.unique(cal.transform(raw))) > 20 * len(np.unique(steps.transform(raw)))


@pytest.mark.parametrize("seed", SEEDS)
def test_smoothing_costs_no_calibration_on_held_out_data(seed):
    raw, y = _distorted(seed)
    half = len(y) // 2
    kw = {"floor": FLOOR, "ceiling": CEILING}
    smooth = fit_calibrator(raw[:half], y[:half], "isotonic", **kw)
    steps = fit_calibrator(raw[:half], y[:half], "isotonic", smooth=False, **kw)
    e_smooth = expected_calibration_error(y[half:], smooth.transform(raw[half:]))
    e_steps = expected_calibration_error(y[half:], steps.transform(raw[half:]))
    assert e_smooth <= e_steps + 0.005


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_bounded_calibrators_survive_json_bit_for_bit(seed):
    raw, y = _separable_tails(seed)
    for method in METHODS:
        cal = fit_calibrator(raw, y, method, floor=FLOOR, ceiling=CEILING)
        back = _roundtrip(cal)
        assert back == cal and back.floor == FLOOR and back.ceiling == CEILING
        probe = np.r_[0.0, raw, np.linspace(0, 1, 1_001), 1.0]
        assert np.array_equal(cal.transform(probe), back.transform(probe))


@pytest.mark.parametrize(("floor", "ceiling"), [(0.6, 0.4), (-0.1, 0.9), (0.1, 1.5)])
def test_bad_bounds_are_refused(floor, ceiling):
    raw, y = _distorted(0, n=500)
    with pytest.raises(ConfigError, match="floor"):
        fit_calibrator(raw, y, "isotonic", floor=floor, ceiling=ceiling)
    with pytest.raises(ConfigError, match="floor"):
        Calibrator.from_dict({"method": "platt", "coef": 1.0, "intercept": 0.0,
                              "floor": floor, "ceiling": ceiling})
