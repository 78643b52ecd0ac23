"""Point-in-time correctness of snapshots, labels and the feature function."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from postloan.data.features import FEATURE_NAMES, build_features
from postloan.data.snapshot import LABELS, SNAPSHOT_FIELDS, build_labels, build_snapshot
from postloan.errors import DataValidationError

DATE_COLS = {"customers": "customer_since", "loans": "origination_date",
             "repayments": "statement_date", "activity": "month_end",
             "interactions": "event_date", "surveys": "survey_date", "bureau": "pull_date",
             "macro": "month_end", "truth": "month_end"}


def _future_removed(tables: dict, as_of: pd.Timestamp) -> dict:
    """Delete every record dated after as_of and rewrite every later-dated fact."""
    out = {}
    for name, df in tables.items():
        col = DATE_COLS.get(name)
        out[name] = df[df[col] <= as_of].copy() if col else df.copy()
    loans = out["loans"]
    later = loans["close_date"] > as_of
    # Closures after the as-of date: move them, drop some, change their reason.
    loans.loc[later, "close_date"] = loans.loc[later, "close_date"] + pd.Timedelta(days=400)
    drop_close = later & (loans["loan_id"] % 2 == 0)
    loans.loc[drop_close, "close_date"] = pd.NaT
    loans.loc[drop_close, "close_reason"] = None
    loans.loc[later & ~drop_close, "close_reason"] = "charged_off"
    it = out["interactions"]
    res_after = (it["event_date"] + pd.to_timedelta(it["resolution_days"], unit="D")) > as_of
    it.loc[res_after, "resolution_days"] = it.loc[res_after, "resolution_days"] * 3 + 17
    return out


def _future_scrambled(tables: dict, as_of: pd.Timestamp, seed: int) -> dict:
    """Keep the rows dated after as_of but scramble their values."""
    rng = np.random.default_rng(seed)
    out = {k: v.copy() for k, v in tables.items()}
    rep = out["repayments"]
    m = rep["statement_date"] > as_of
    rep.loc[m, "dpd"] = rng.integers(0, 400, m.sum())
    rep.loc[m, "paid_amount"] = 0.0
    rep.loc[m, "balance"] = rep.loc[m, "balance"] * 2
    act = out["activity"]
    m = act["month_end"] > as_of
    act.loc[m, "app_logins"] = rng.integers(0, 100, m.sum())
    it = out["interactions"]
    m = it["event_date"] > as_of
    it.loc[m, "kind"] = "complaint"
    sv = out["surveys"]
    m = sv["survey_date"] > as_of
    sv.loc[m, "overall"] = 1
    bur = out["bureau"]
    m = bur["pull_date"] > as_of
    bur.loc[m, "bureau_score"] = 300
    mac = out["macro"]
    m = mac["month_end"] > as_of
    mac.loc[m, "unemployment_rate"] = 39.0
    return out


@pytest.mark.parametrize("as_of", ["2023-09-30", "2024-02-15", "2024-06-30"])
def test_future_records_never_change_features(small_tables, as_of):
    as_of = pd.Timestamp(as_of)
    base = build_snapshot(small_tables, as_of)
    for variant in (_future_removed(small_tables, as_of),
                    _future_scrambled(small_tables, as_of, seed=as_of.month)):
        snap = build_snapshot(variant, as_of)
        pd.testing.assert_frame_equal(snap[list(SNAPSHOT_FIELDS)], base[list(SNAPSHOT_FIELDS)],
                                      check_exact=True)
        f0, f1 = build_features(base), build_features(snap)
        assert np.array_equal(f0.to_numpy(), f1.to_numpy(), equal_nan=True)
        # Labels are the only thing that changes.
        changed = [lab for lab in LABELS
                   if not base[lab].equals(snap[lab])]
        assert changed, "labels should depend on the future records"


def test_labels_missing_when_horizon_not_observed(small_tables):
    last = small_tables["repayments"]["statement_date"].max()
    as_of = last - pd.DateOffset(months=4)
    snap = build_snapshot(small_tables, as_of)
    assert snap["default_12m"].isna().all()
    assert snap["churn_6m"].isna().all()
    assert snap["dissatisfied_3m"].notna().all()


def test_labels_use_only_records_after_as_of(small_tables):
    as_of = pd.Timestamp("2023-12-31")
    snap = build_snapshot(small_tables, as_of)
    # Customers already in default are not labelled for default.
    assert snap.loc[snap["dpd_current"] >= 90, "default_12m"].isna().all()
    # A complaint dated on the as-of date itself is history, not the label.
    it = small_tables["interactions"]
    comp_after = it[(it["kind"] == "complaint") & (it["event_date"] > as_of)
                    & (it["event_date"] <= as_of + pd.DateOffset(months=3))]["customer_id"]
    got = snap.set_index("customer_id")["dissatisfied_3m"]
    assert (got.reindex(comp_after.unique()).dropna() == 1.0).all()


def test_one_row_per_active_customer(small_tables):
    as_of = pd.Timestamp("2024-03-31")
    snap = build_snapshot(small_tables, as_of)
    assert snap["customer_id"].is_unique
    loans = small_tables["loans"]
    active = loans[(loans["origination_date"] <= as_of)
                   & (loans["close_date"].isna() | (loans["close_date"] > as_of))]
    assert set(snap["customer_id"]) == set(active["customer_id"])
    assert (snap["n_open_loans"] >= 1).all()


def test_as_of_outside_the_data_is_refused(small_tables):
    with pytest.raises(DataValidationError, match="outside the data"):
        build_snapshot(small_tables, "2031-01-31")
    with pytest.raises(DataValidationError, match="not a date"):
        build_snapshot(small_tables, "last tuesday")


def test_unresolved_complaint_counts_as_open_until_resolved(small_tables):
    it = small_tables["interactions"]
    cands = it[(it["kind"] == "complaint") & (it["resolution_days"] > 20)
               & (it["event_date"] > pd.Timestamp("2023-06-01"))
               & (it["event_date"] < pd.Timestamp("2024-12-01"))]
    checked = 0
    for _, comp in cands.head(20).iterrows():
        cid = comp["customer_id"]
        during = comp["event_date"] + pd.Timedelta(days=10)
        after = comp["event_date"] + pd.Timedelta(days=float(comp["resolution_days"]) + 1)
        s1 = build_snapshot(small_tables, during, with_labels=False).set_index("customer_id")
        s2 = build_snapshot(small_tables, after, with_labels=False).set_index("customer_id")
        if cid not in s1.index or cid not in s2.index:
            continue
        assert s1.loc[cid, "open_complaints"] >= 1
        assert s1.loc[cid, "max_open_complaint_days"] >= 10
        # Once resolved, this complaint no longer counts as open.
        still_open = it[(it["customer_id"] == cid) & (it["kind"] == "complaint")
                        & (it["event_date"] <= after)
                        & ((it["event_date"] + pd.to_timedelta(it["resolution_days"], unit="D")
                            > after) | it["resolution_days"].isna())]
        assert s2.loc[cid, "open_complaints"] == len(still_open)
        checked += 1
        if checked >= 3:
            break
    assert checked >= 1


def test_build_labels_alone_matches_snapshot(small_tables):
    snap = build_snapshot(small_tables, "2024-01-31")
    lab = build_labels(small_tables, "2024-01-31", snap["customer_id"])
    for c in LABELS:
        assert np.array_equal(lab[c].to_numpy(), snap[c].to_numpy(), equal_nan=True)


def test_features_shape_and_missing_values(small_tables):
    snap = build_snapshot(small_tables, "2024-01-31")
    f = build_features(snap)
    assert list(f.columns) == list(FEATURE_NAMES)
    assert (f.dtypes == "float64").all()
    assert not np.isinf(f.to_numpy()).any()
    # "Never surveyed" and "never delinquent" stay missing, not silently 0.
    assert f["last_survey_score"].isna().any()
    assert f["months_since_delinquent"].isna().any()


@pytest.mark.parametrize("as_of", ["2024-02-29", "2024-03-31", "2024-04-30", "2024-05-15"])
def test_monthly_windows_hold_exactly_their_months(small_tables, as_of):
    """A 1-month window holds one statement month, a 3-month window three, at any date."""
    as_of = pd.Timestamp(as_of)
    snap = build_snapshot(small_tables, as_of, with_labels=False).set_index("customer_id")
    act = small_tables["activity"]
    act = act[act["month_end"] <= as_of]
    months = sorted(act["month_end"].unique())
    for k, col in ((1, "app_logins_1m"), (3, "app_logins_3m")):
        last = act[act["month_end"].isin(months[-k:])]
        expect = last.groupby("customer_id")["app_logins"].sum().reindex(snap.index).fillna(0)
        assert np.array_equal(snap[col].to_numpy(), expect.to_numpy())


def test_to_json_record_is_the_service_body(small_tables):
    import json

    from postloan.data.snapshot import to_json_record

    dates = np.sort(small_tables["repayments"]["statement_date"].unique())
    snap = build_snapshot(small_tables, pd.Timestamp(dates[18]))
    rows = snap.to_dict("records")
    records = [to_json_record(r) for r in rows]
    assert all(tuple(r) == SNAPSHOT_FIELDS for r in records)  # labels left out, in order
    json.dumps(records, allow_nan=False)  # plain JSON: no NaN, no numpy or pandas types
    assert records[0]["as_of"] == pd.Timestamp(dates[18]).date().isoformat()
    nan = [(i, k) for i, r in enumerate(rows) for k in SNAPSHOT_FIELDS
           if isinstance(r[k], float) and np.isnan(r[k])]
    assert nan and all(records[i][k] is None for i, k in nan)
    # numpy scalars (e.g. from DataFrame.iloc) become Python numbers
    one = to_json_record({**rows[0], "customer_id": np.int64(7), "age": np.float64("nan"),
                          "tenure_months": np.float32(3.5)})
    assert one["customer_id"] == 7 and type(one["customer_id"]) is int
    assert one["age"] is None and one["tenure_months"] == 3.5
