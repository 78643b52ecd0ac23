"""Metric functions: exact against brute force, behaviour on synthetic samples, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from postloan.errors import DataValidationError
from postloan.models import evaluation as ev

SEEDS = [0, 1, 2, 3, 4]


def _sample(seed: int, n: int = 2_000, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels y ~ Bernoulli(p) with p ~ Beta(1, 4); optionally rounded to force ties."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 4, n)
    y = (rng.uniform(size=n) < p).astype(int)
    if ties:
        p = np.round(p, 2)
    return y, p


def _ks_brute(y: np.ndarray, s: np.ndarray) -> float:
    """max over thresholds t of P(good <= t) - P(bad <= t), straight from the definition."""
    bad, good = s[y == 1], s[y == 0]
    gaps = [0.0] + [np.mean(good <= t) - np.mean(bad <= t) for t in np.unique(s)]
    return float(max(gaps))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_ks_equals_brute_force(seed, ties):
    y, p = _sample(seed, n=800, ties=ties)
    assert ev.ks_statistic(y, p) == pytest.approx(_ks_brute(y, p), abs=1e-12)
    assert ev.binary_metrics(y, p)["ks"] == pytest.approx(_ks_brute(y, p), abs=1e-12)


def test_perfect_and_reversed_scores():
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0, 1, 1] * 10)
    perfect = y * 0.5 + 0.25
    m = ev.binary_metrics(y, perfect)
    assert m["auc"] == 1.0 and m["gini"] == 1.0 and m["ks"] == 1.0
    # KS is one-sided (bads must score higher): a model ranked backwards gets 0.
    r = ev.binary_metrics(y, 1 - perfect)
    assert r["auc"] == 0.0 and r["gini"] == -1.0 and r["ks"] == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_metrics_match_definitions(seed):
    y, p = _sample(seed)
    m = ev.binary_metrics(y, p)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["gini"] == pytest.approx(2 * m["auc"] - 1)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    ll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert m["log_loss"] == pytest.approx(ll)
    assert m["base_rate"] == pytest.approx(y.mean())
    assert (m["n"], m["n_pos"]) == (len(y), y.sum())
    # No ties and n a multiple of 10: top decile = lift table's decile 1.
    top = np.argsort(-p)[: len(p) // 10]
    assert m["top_decile_capture"] == pytest.approx(y[top].sum() / y.sum())
    assert m["top_decile_lift"] == pytest.approx(y[top].mean() / y.mean())
    lt = ev.lift_table(y, p)
    assert m["top_decile_lift"] == pytest.approx(lt["lift"].iloc[0])


def test_log_loss_is_finite_for_confident_misses():
    y = np.array([0, 1, 0, 1])
    p = np.array([1.0, 0.0, 0.2, 0.9])
    assert np.isfinite(ev.binary_metrics(y, p)["log_loss"])


def test_top_decile_with_ties_is_pro_rata():
    # Every score tied: the "top 10%" holds 10% of each label, whatever the row order.
    y = np.array([1] * 30 + [0] * 70)
    m = ev.binary_metrics(y, np.full(100, 0.3))
    assert m["top_decile_capture"] == pytest.approx(0.1)
    assert m["top_decile_lift"] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_ece_small_when_calibrated_large_when_distorted(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, 100_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    assert ev.expected_calibration_error(y, p) < 0.01
    assert ev.expected_calibration_error(y, p**3) > 0.15
    assert ev.binary_metrics(y, p)["ece"] == pytest.approx(ev.expected_calibration_error(y, p))


@pytest.mark.parametrize("seed", SEEDS)
def test_ece_equals_explicit_deciles(seed):
    y, p = _sample(seed, n=1_000)
    order = np.argsort(p)
    ece = 0.0
    for chunk in np.array_split(order, 10):
        ece += len(chunk) / len(p) * abs(p[chunk].mean() - y[chunk].mean())
    assert ev.expected_calibration_error(y, p) == pytest.approx(ece)


def test_calibration_table_shape_and_order():
    y, p = _sample(0, n=1_000)
    t = ev.calibration_table(y, p)
    assert list(t.columns) == ["bin", "n", "score_min", "score_max", "mean_pred",
                               "observed_rate", "n_pos"]
    assert t["bin"].tolist() == list(range(1, 11))
    assert (t["n"] == 100).all()
    assert t["n_pos"].sum() == y.sum()
    # Bins ascend by score and do not overlap.
    assert (t["score_max"].to_numpy()[:-1] < t["score_min"].to_numpy()[1:]).all()
    assert t["observed_rate"].to_numpy() == pytest.approx(t["n_pos"] / t["n"])


@pytest.mark.parametrize("seed", SEEDS)
def test_tables_keep_ties_together_and_ignore_row_order(seed):
    y, p = _sample(seed, n=1_000, ties=True)
    bins = ev.score_bins(p)
    for value in np.unique(p):
        assert len(np.unique(bins[p == value])) == 1  # a tie group is never split
    perm = np.random.default_rng(seed + 100).permutation(len(p))
    pd.testing.assert_frame_equal(ev.calibration_table(y, p), ev.calibration_table(y[perm],
                                                                                   p[perm]))
    pd.testing.assert_frame_equal(ev.lift_table(y, p), ev.lift_table(y[perm], p[perm]))
    assert ev.binary_metrics(y, p) == pytest.approx(ev.binary_metrics(y[perm], p[perm]))


def test_calibration_and_lift_use_the_same_bins():
    y, p = _sample(3, n=997, ties=True)
    c = ev.calibration_table(y, p)
    ll = ev.lift_table(y, p)
    assert c["n"].tolist()[::-1] == ll["n"].tolist()
    assert c["n_pos"].tolist()[::-1] == ll["n_pos"].tolist()


@pytest.mark.parametrize("seed", SEEDS)
def test_lift_table_properties(seed):
    y, p = _sample(seed)
    t = ev.lift_table(y, p)
    assert list(t.columns) == ["decile", "n", "n_pos", "bad_rate", "lift", "cum_capture"]
    assert t["decile"].tolist() == list(range(1, 11))
    assert t["cum_capture"].iloc[-1] == pytest.approx(1.0)
    assert (np.diff(t["cum_capture"]) >= 0).all()
    assert (t["n"] * t["lift"]).sum() / t["n"].sum() == pytest.approx(1.0)
    assert t["lift"].iloc[0] > 1.5 > t["lift"].iloc[-1]  # informative score


def test_metrics_by_segment():
    y, p = _sample(1, n=3_000)
    seg = np.where(np.arange(3_000) < 2_000, "big", "other").astype(object)
    seg[-30:] = "tiny"  # fewer rows than min_count
    seg[2_000:2_100] = "goods_only"
    y[2_000:2_100] = 0
    seg[2_100:2_110] = None  # missing segment: left out
    s = pd.Series(seg, index=np.arange(3_000)[::-1])  # index ignored, rows by position
    t = ev.metrics_by_segment(y, p, s, min_count=50).set_index("segment")
    assert list(t.index) == ["big", "goods_only", "other", "tiny"]
    assert t.loc["big", "auc"] == pytest.approx(roc_auc_score(y[:2_000], p[:2_000]))
    assert t.loc["big", "n"] == 2_000
    assert t.loc["big", "base_rate"] == pytest.approx(y[:2_000].mean())
    assert t.loc["big", "mean_pred"] == pytest.approx(p[:2_000].mean())
    assert np.isnan(t.loc["tiny", "auc"]) and np.isnan(t.loc["goods_only", "auc"])
    assert t["n"].sum() == 3_000 - 10

    d = ev.disparity_summary(t.reset_index())
    aucs = t["auc"].dropna()
    gap = t["mean_pred"] - t["base_rate"]
    assert d["auc_spread"] == pytest.approx(aucs.max() - aucs.min())
    assert d["calibration_gap_spread"] == pytest.approx(gap.max() - gap.min())


def test_disparity_summary_without_aucs_is_nan():
    t = pd.DataFrame({"segment": ["a"], "n": [3], "base_rate": [0.3], "mean_pred": [0.2],
                      "auc": [np.nan]})
    d = ev.disparity_summary(t)
    assert np.isnan(d["auc_spread"]) and d["calibration_gap_spread"] == 0.0


@pytest.mark.parametrize(
    ("y", "p", "column", "words"),
    [
        ([0, 1, 0], [0.1, 0.2], "y_score", "length mismatch"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "y_true", "0 or 1"),
        ([0, 1, np.nan], [0.1, 0.2, 0.3], "y_true", "NaN"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "y_score", "NaN"),
        ([0, 1, 1], [0.1, np.inf, 0.3], "y_score", "infinite"),
        ([0, 1, 1], [0.1, 1.2, 0.3], "y_score", "[0, 1]"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "y_true", "one class"),
        ([], [], "y_true", "no rows"),
        ([[0, 1]], [[0.1, 0.2]], "y_true", "one-dimensional"),
    ],
)
def test_errors_name_the_column(y, p, column, words):
    with pytest.raises(DataValidationError) as info:
        ev.binary_metrics(y, p)
    assert info.value.table == "predictions"
    assert info.value.column == column
    assert f"column '{column}'" in str(info.value)
    assert words in str(info.value)


def test_error_lists_offending_rows():
    with pytest.raises(DataValidationError, match="first offending rows") as info:
        ev.calibration_table([0, 1, 1, 0], [0.1, np.nan, 0.3, 0.2])
    assert info.value.rows["position"].tolist() == [1]


def test_segment_errors():
    with pytest.raises(DataValidationError, match="segments") as info:
        ev.metrics_by_segment([0, 1, 0], [0.1, 0.2, 0.3], pd.Series(["a", "b"]))
    assert info.value.column == "segments"
    with pytest.raises(DataValidationError, match="auc"):
        ev.disparity_summary(pd.DataFrame({"mean_pred": [0.1], "base_rate": [0.1]}))


def test_bad_n_bins():
    with pytest.raises(ValueError, match="n_bins"):
        ev.calibration_table([0, 1], [0.1, 0.9], n_bins=0)
