"""Confidence-based performance estimation (postloan.estimation)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from postloan import estimation as E
from postloan.errors import DataValidationError
from postloan.snapshot import build_snapshots, oracle_scores


def _brute_expected_auc(p: np.ndarray, s: np.ndarray) -> float:
    w = p[:, None] * (1 - p[None, :])
    order = (s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :])
    np.fill_diagonal(w, 0.0)
    return float((w * order).sum() / w.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expected_auc_matches_the_pairwise_definition(seed):
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 4.0, size=300)
    p[:40] = p[40:80]  # ties
    assert E.expected_auc(p) == pytest.approx(_brute_expected_auc(p, p), abs=1e-12)
    s = np.round(p * 20)  # a coarser ranking score with many ties
    assert E.expected_auc(p, s) == pytest.approx(_brute_expected_auc(p, s), abs=1e-12)


def test_expected_auc_edge_cases():
    assert E.expected_auc(np.full(50, 0.2)) == pytest.approx(0.5)
    assert E.expected_auc(np.r_[np.zeros(10), np.ones(10)]) == pytest.approx(1.0)
    with pytest.raises(DataValidationError, match="probabilities"):
        E.expected_auc([0.1, 1.2])
    with pytest.raises(DataValidationError, match="at least two"):
        E.expected_auc([0.1])
    with pytest.raises(DataValidationError, match="scores for"):
        E.expected_auc([0.1, 0.2, 0.3], [1.0, 2.0])


@pytest.mark.parametrize("seed", [3, 4])
def test_estimate_covers_realised_figures_when_labels_follow_the_probabilities(seed):
    rng = np.random.default_rng(seed)
    p = rng.beta(0.8, 6.0, size=4_000)
    est = E.estimate_performance(p, n_samples=300, seed=seed)
    assert est.auc_low < est.auc < est.auc_high
    assert est.event_rate_low < est.event_rate < est.event_rate_high
    hits = 0
    for _ in range(40):
        y = rng.random(len(p)) < p
        hits += est.auc_low <= roc_auc_score(y, p) <= est.auc_high
    assert hits >= 34  # a 95% interval covers ~38 of 40 draws
    assert E.estimate_performance(p, n_samples=300, seed=seed) == est  # seeded


def test_estimate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_samples"):
        E.estimate_performance([0.1, 0.2], n_samples=5)
    with pytest.raises(ValueError, match="level"):
        E.estimate_performance([0.1, 0.2], level=1.5)
    with pytest.raises(DataValidationError, match="NaN"):
        E.estimate_performance([0.1, np.nan])


def test_by_period_shows_realised_only_once_labels_matured():
    rng = np.random.default_rng(5)
    p = rng.beta(0.8, 6.0, size=3_000)
    periods = np.repeat(["2024-01", "2024-02", "2024-03"], 1_000)
    y = (rng.random(len(p)) < p).astype(float)
    y[2_000:] = np.nan  # the latest period has not matured
    y[1_000:1_200] = np.nan  # the middle one only 80% labelled
    out = E.estimate_by_period(periods, p, y, n_samples=200)
    assert list(out["period"]) == ["2024-01", "2024-02", "2024-03"]
    assert np.isfinite(out.loc[0, "realised_auc"])
    assert np.isnan(out.loc[1, "realised_auc"]) and np.isnan(out.loc[2, "realised_auc"])
    assert out.loc[0, "auc_error"] == pytest.approx(out.loc[0, "auc"] - out.loc[0, "realised_auc"])
    assert out["auc"].notna().all()


def test_reference_calibrator_restores_calibration():
    rng = np.random.default_rng(6)
    p_true = rng.beta(0.8, 6.0, size=20_000)
    y = (rng.random(len(p_true)) < p_true).astype(float)
    p_model = p_true ** 1.6  # an over-confident model: too low for most customers
    for method in ("platt", "isotonic"):
        fixed = E.reference_calibrator(p_model, y, method).transform(p_model)
        assert abs(fixed.mean() - y.mean()) < abs(p_model.mean() - y.mean()) / 3
        # recalibration is monotone: the ranking (and the realised AUC) is kept
        assert roc_auc_score(y, fixed) == pytest.approx(roc_auc_score(y, p_model), abs=0.01)
    # On fresh labels from the same truth, the recalibrated estimate lands near the
    # realised AUC, where the over-confident raw probabilities miss it.
    y_new = rng.random(len(p_true)) < p_true
    realised = roc_auc_score(y_new, p_model)
    fixed = E.reference_calibrator(p_model, y).transform(p_model)
    assert abs(E.expected_auc(fixed) - realised) < 0.015
    assert abs(E.expected_auc(p_model) - realised) > 0.02


def test_oracle_probabilities_estimate_the_realised_auc_on_a_simulated_book(small_tables):
    # The simulator's true 12-month PDs are calibrated by construction, so CBPE on them
    # must land within its own interval of the AUC the matured labels give.
    snaps = build_snapshots(small_tables, ["2023-12-31", "2024-03-31"])
    p = oracle_scores(small_tables["truth"], snaps)["default_12m"].to_numpy()
    y = snaps["default_12m"].to_numpy()
    ok = ~np.isnan(p) & ~np.isnan(y)
    out = E.estimate_by_period(snaps["as_of"].to_numpy()[ok], p[ok], y[ok], n_samples=300)
    for _, r in out.iterrows():
        assert r["auc_low"] - 0.02 <= r["realised_auc"] <= r["auc_high"] + 0.02, r.to_dict()
        assert abs(r["event_rate"] - r["realised_event_rate"]) < 0.03
