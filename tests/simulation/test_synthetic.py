"""The simulator: reproducible, realistic, with signal and noise, and sensitive to shocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from postloan.data import io
from postloan.data import schema as S
from postloan.data.features import FEATURE_NAMES, build_features
from postloan.data.snapshot import LABELS, build_snapshot, oracle_scores
from postloan.simulation import Shock, SimulationConfig, simulate

DEMO = SimulationConfig(n_customers=20_000, n_months=36, seed=42)


@pytest.fixture(scope="module")
def demo_tables():
    return {k: S.validate_table(k, v) for k, v in simulate(DEMO).items()}


@pytest.fixture(scope="module")
def demo_snapshots(demo_tables):
    dates = ["2023-12-31", "2024-06-30", "2024-12-31"]
    return pd.concat([build_snapshot(demo_tables, d) for d in dates], ignore_index=True)


def test_same_seed_gives_identical_files(tmp_path):
    cfg = SimulationConfig(n_customers=500, n_months=12, seed=3)
    m1 = io.write_tables(simulate(cfg), tmp_path / "a")
    m2 = io.write_tables(simulate(cfg), tmp_path / "b")
    assert m1["content_hash"] == m2["content_hash"]
    for name in m1["tables"]:
        assert (tmp_path / "a" / f"{name}.parquet").read_bytes() == \
            (tmp_path / "b" / f"{name}.parquet").read_bytes()
    m3 = io.write_tables(simulate(SimulationConfig(500, 12, seed=4)), tmp_path / "c")
    assert m3["content_hash"] != m1["content_hash"]


def test_every_table_matches_its_schema(demo_tables):
    assert set(demo_tables) == set(S.TABLES)


@pytest.mark.parametrize("label,low,high", [("default_12m", 0.02, 0.10),
                                             ("churn_6m", 0.05, 0.25),
                                             ("dissatisfied_3m", 0.05, 0.30)])
def test_label_rates_in_plausible_bands(demo_snapshots, label, low, high):
    rate = demo_snapshots[label].mean()
    assert low <= rate <= high, f"{label} rate {rate:.3f} outside [{low}, {high}]"


def test_dpd_moves_like_a_real_book(demo_tables):
    rep = demo_tables["repayments"].sort_values(["loan_id", "statement_date"])
    bucket = np.searchsorted(np.array(S.DPD_BUCKET_EDGES), rep["dpd"].to_numpy(), side="right") - 1
    rep = rep.assign(b=bucket)
    nxt = rep.groupby("loan_id")["b"].shift(-1)
    ok = nxt.notna()
    b, n = rep["b"][ok].to_numpy(), nxt[ok].to_numpy().astype(int)
    # From each delinquent bucket 1-3, transitions go to the next bucket, stay, or cure.
    for k in (1, 2, 3):
        frm = b == k
        to = n[frm]
        share_regular = np.isin(to, [0, k, k + 1]).mean()
        assert share_regular > 0.97
        assert (to == k + 1).mean() > 0.1 and (to == 0).mean() > 0.05
    # Current accounts mostly stay current; roll to 1-29 is a few percent at most.
    cur = n[b == 0]
    assert 0.003 < (cur == 1).mean() < 0.05
    # No jump from current straight to 60+.
    assert not np.isin(cur, [3, 4]).any()


def test_oracle_auc_shows_signal_and_noise(demo_tables, demo_snapshots):
    oracle = oracle_scores(demo_tables["truth"], demo_snapshots)
    for lab in LABELS:
        m = demo_snapshots[lab].notna() & oracle[lab].notna()
        auc = roc_auc_score(demo_snapshots.loc[m, lab], oracle.loc[m, lab])
        assert 0.7 < auc < 0.97, f"{lab} oracle AUC {auc:.3f}"


def test_shock_raises_delinquency():
    base = SimulationConfig(n_customers=6_000, n_months=30, seed=11)
    shocked = SimulationConfig(6_000, 30, 11, shock=Shock(month_index=18))
    t0, t1 = simulate(base), simulate(shocked)
    after = pd.Timestamp(base.month_ends()[24])

    def bad_share(t):
        r = t["repayments"]
        r = r[r["statement_date"] >= after]
        return (r["dpd"] >= 30).mean()

    assert bad_share(t1) > 1.3 * bad_share(t0)
    # Before the shock both books are the same.
    before = pd.Timestamp(base.month_ends()[17])
    r0 = t0["repayments"][t0["repayments"]["statement_date"] <= before]
    r1 = t1["repayments"][t1["repayments"]["statement_date"] <= before]
    assert r0["dpd"].equals(r1["dpd"])


def test_pii_never_reaches_snapshots_or_features(demo_snapshots):
    assert not set(demo_snapshots.columns) & S.PII_COLUMNS
    assert not set(FEATURE_NAMES) & S.PII_COLUMNS
    assert not set(build_features(demo_snapshots.head(10)).columns) & S.PII_COLUMNS
