"""The online snapshot store and the decision tables, on a real SQLite file.

(The same code on a real PostgreSQL server: tests/data/test_online_postgres.py.)
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from postloan.data.database import DatabaseError, connect, mask_url
from postloan.data.decision_tables import write_decisions
from postloan.data.online import SnapshotStore
from postloan.data.snapshot import SNAPSHOT_FIELDS, build_snapshot, to_json_record
from postloan.errors import ConfigError, DataValidationError

AS_OF = "2024-06-30"
LATER = "2024-09-30"


@pytest.fixture(scope="module")
def snaps(small_tables):
    return {d: build_snapshot(small_tables, d, with_labels=False) for d in (AS_OF, LATER)}


def _store(tmp_path, **kw) -> SnapshotStore:
    return SnapshotStore(f"sqlite:///{tmp_path / 'online.db'}", **kw)


def test_lookup_returns_the_json_record_of_the_feature_path(tmp_path, snaps):
    store = _store(tmp_path)
    info = store.materialize(snaps[AS_OF], "hash-a")
    assert info["n_customers"] == len(snaps[AS_OF]) and info["as_of"] == AS_OF
    snap = snaps[AS_OF]
    ids = snap["customer_id"].iloc[[0, 7, 42]].tolist()
    got = store.lookup(ids)
    assert got.as_of == AS_OF and got.manifest_hash == "hash-a" and got.missing == []
    for i in ids:
        row = snap[snap["customer_id"] == i].iloc[0].to_dict()
        assert got.records[i] == json.loads(json.dumps(to_json_record(row)))
        assert list(got.records[i]) == list(SNAPSHOT_FIELDS)


def test_missing_values_stay_missing_through_the_store(tmp_path, snaps):
    store = _store(tmp_path)
    store.materialize(snaps[AS_OF], "h")
    snap = snaps[AS_OF]
    col = next(c for c in SNAPSHOT_FIELDS if c not in ("customer_id", "as_of")
               and snap[c].isna().any())
    cid = int(snap.loc[snap[col].isna(), "customer_id"].iloc[0])
    assert store.lookup([cid]).records[cid][col] is None


def test_unknown_ids_are_reported_per_id(tmp_path, snaps):
    store = _store(tmp_path)
    store.materialize(snaps[AS_OF], "h")
    known = int(snaps[AS_OF]["customer_id"].iloc[0])
    got = store.lookup([known, 999_999_999, known])
    assert list(got.records) == [known] and got.missing == [999_999_999]


def test_empty_store_reports_every_id_missing(tmp_path):
    got = _store(tmp_path).lookup([1, 2])
    assert got.as_of is None and got.missing == [1, 2]


def test_newest_date_is_served_and_rematerialising_is_idempotent(tmp_path, snaps):
    store = _store(tmp_path)
    store.materialize(snaps[LATER], "h2")
    store.materialize(snaps[AS_OF], "h1")  # a back-fill of an older date
    cid = int(snaps[LATER]["customer_id"].iloc[0])
    assert store.lookup([cid]).as_of == LATER
    before = store.dates()
    store.materialize(snaps[LATER], "h2")
    after = store.dates()
    assert after["as_of"].tolist() == [LATER, AS_OF] == before["as_of"].tolist()
    assert after["n_customers"].tolist() == before["n_customers"].tolist()
    with store.engine.connect() as c:
        n = c.execute(sa.text("SELECT count(*) FROM postloan_snapshots")).scalar()
    assert n == len(snaps[AS_OF]) + len(snaps[LATER])


def test_keep_prunes_older_dates(tmp_path, snaps):
    store = _store(tmp_path, keep=1)
    store.materialize(snaps[AS_OF], "h1")
    info = store.materialize(snaps[LATER], "h2")
    assert info["pruned"] == [AS_OF] and store.dates()["as_of"].tolist() == [LATER]


def test_a_failed_materialisation_changes_nothing(tmp_path, snaps):
    store = _store(tmp_path)
    store.materialize(snaps[AS_OF], "h1")
    bad = snaps[LATER].copy()
    bad.loc[bad.index[-1], "customer_id"] = bad["customer_id"].iloc[0]
    with pytest.raises(DataValidationError, match="duplicate customer ids"):
        store.materialize(bad, "h2")
    assert store.dates()["as_of"].tolist() == [AS_OF]


def test_database_refusal_mid_write_rolls_back(tmp_path, snaps):
    """A constraint the database itself enforces fails on the last chunk: no mix."""
    store = _store(tmp_path)
    store.materialize(snaps[AS_OF], "h1")
    with store.engine.begin() as c:  # a trigger refusing one id: a fault caused for real
        bad_id = int(snaps[LATER]["customer_id"].iloc[-1])
        c.execute(sa.text(
            "CREATE TRIGGER refuse BEFORE INSERT ON postloan_snapshots "
            f"WHEN NEW.customer_id = {bad_id} AND NEW.as_of = '{LATER}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"))
    with pytest.raises(DatabaseError, match="nothing changed.*refused by trigger"):
        store.materialize(snaps[LATER], "h2")
    assert store.dates()["as_of"].tolist() == [AS_OF]
    with store.engine.connect() as c:
        assert c.execute(sa.text("SELECT count(DISTINCT as_of) FROM postloan_snapshots")
                         ).scalar() == 1


def test_readers_see_old_or_new_date_never_a_mix(tmp_path, snaps):
    store = _store(tmp_path)
    store.materialize(snaps[AS_OF], "h1")
    ids = sorted(set(snaps[AS_OF]["customer_id"]) & set(snaps[LATER]["customer_id"]))[:200]
    seen, stop = [], threading.Event()

    def read():
        reader = _store(tmp_path)
        while not stop.is_set():
            got = reader.lookup(ids)
            seen.append({r["as_of"] for r in got.records.values()} | {got.as_of})
        reader.close()

    t = threading.Thread(target=read)
    t.start()
    for _ in range(3):
        store.materialize(snaps[LATER], "h2")
        store.materialize(snaps[AS_OF].assign(), "h1")
    stop.set()
    t.join()
    assert seen and all(len(s) == 1 for s in seen)


def test_bad_inputs_are_clear_errors(tmp_path, snaps):
    with pytest.raises(ConfigError, match="prefix"):
        _store(tmp_path, table_prefix="drop table;")
    with pytest.raises(DataValidationError, match="one as-of date"):
        _store(tmp_path).materialize(pd.concat([snaps[AS_OF], snaps[LATER]]), "h")
    with pytest.raises(DataValidationError, match="missing fields"):
        _store(tmp_path).materialize(snaps[AS_OF].drop(columns=["region"]), "h")
    with pytest.raises(ConfigError, match="does not parse"):
        connect("not a url")
    with pytest.raises(DatabaseError, match="cannot connect"):
        connect(f"sqlite:///{tmp_path}/no/such/folder/x.db")


def test_mask_url_hides_the_password():
    shown = mask_url("postgresql://loan:s3cret@db.example:5432/book")
    assert "s3cret" not in shown and "***" in shown and "db.example" in shown


# ------------------------------------------------------------------ decision tables
def _frames(n: int = 5, as_of: str = AS_OF) -> dict[str, pd.DataFrame]:
    ids = np.arange(100, 100 + n)
    decisions = pd.DataFrame({
        "customer_id": ids, "pd_12m": np.linspace(0.01, 0.5, n),
        "warning_level": ["red", "orange", "yellow", "green", "green"][:n],
        "warning_reasons": [f"reason {i}" for i in ids],
        "warning_reasons_zh": [f"原因 {i}" for i in ids],
        "expected_loss": np.where(ids % 2 == 0, np.nan, 10.0), "version_churn": "3"})
    queue = pd.DataFrame({
        "queue_rank": np.arange(1, n + 1), "customer_id": ids[::-1],
        "recommended_action": "payment_reminder", "net_benefit": np.arange(n, 0, -1.0),
        "decision_basis": "constants",
        "warning_level": "red", "segment": "watch", "action_reasons": "call them",
        "action_reasons_zh": "打电话"})
    scores = decisions[["customer_id", "pd_12m"]].assign(as_of=pd.Timestamp(as_of))
    return {"scores": scores, "decisions": decisions, "queue": queue}


def test_decisions_land_in_tables_with_run_meta_and_the_view(tmp_path):
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    res = write_decisions(url, _frames(), AS_OF, "run-1", {"churn": "3"})
    assert res["rows"] == {"postloan_scores": 5, "postloan_decisions": 5, "postloan_queue": 5}
    eng = connect(url)
    d = pd.read_sql("SELECT * FROM postloan_decisions ORDER BY customer_id", eng)
    assert d["run_id"].unique().tolist() == ["run-1"] and d["as_of"].unique().tolist() == [AS_OF]
    assert d["expected_loss"].isna().sum() == 3  # NaN stays NULL, never 0
    assert d["warning_reasons_zh"].iloc[0] == "原因 100"
    v = pd.read_sql("SELECT * FROM postloan_todays_queue", eng)
    assert v["queue_rank"].tolist() == [1, 2, 3, 4, 5]
    assert v["customer_id"].tolist() == [104, 103, 102, 101, 100]
    assert set(v.columns) >= {"reasons_en", "reasons_zh", "warning_reasons_en",
                              "warning_reasons_zh"}
    runs = pd.read_sql("SELECT * FROM postloan_decision_runs", eng)
    assert json.loads(runs["model_versions"].iloc[0]) == {"churn": "3"}


def test_rerunning_a_date_replaces_its_rows_and_keeps_other_dates(tmp_path):
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    write_decisions(url, _frames(5, AS_OF), AS_OF, "run-1", {})
    write_decisions(url, _frames(3, LATER), LATER, "run-2", {})
    write_decisions(url, _frames(4, LATER), LATER, "run-3", {})
    eng = connect(url)
    n = pd.read_sql("SELECT as_of, run_id, count(*) AS n FROM postloan_queue "
                    "GROUP BY as_of, run_id ORDER BY as_of", eng)
    assert n.values.tolist() == [[AS_OF, "run-1", 5], [LATER, "run-3", 4]]
    assert pd.read_sql("SELECT * FROM postloan_todays_queue", eng)["as_of"].unique().tolist() \
        == [LATER]


def test_a_failed_write_leaves_the_previous_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    write_decisions(url, _frames(5), AS_OF, "run-1", {})
    eng = connect(url)
    with eng.begin() as c:
        c.execute(sa.text("CREATE TRIGGER refuse BEFORE INSERT ON postloan_queue "
                          "WHEN NEW.customer_id = 101 BEGIN SELECT RAISE(ABORT, 'no'); END"))
    with pytest.raises(DatabaseError, match="nothing changed"):
        write_decisions(url, _frames(5), AS_OF, "run-2", {})
    assert pd.read_sql("SELECT DISTINCT run_id FROM postloan_decisions", eng
                       )["run_id"].tolist() == ["run-1"]


def test_table_prefix_and_schema_mismatch_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    with pytest.raises(ConfigError, match="table-prefix"):
        write_decisions(url, _frames(), AS_OF, "r", {}, table_prefix="x; drop")
    write_decisions(url, _frames(), AS_OF, "r", {}, table_prefix="a_")
    wider = _frames()
    wider["queue"] = wider["queue"].assign(new_column=1.0)
    with pytest.raises(DataValidationError, match="lacks columns.*new_column"):
        write_decisions(url, wider, AS_OF, "r", {}, table_prefix="a_")
    with pytest.raises(DataValidationError, match="missing frames"):
        write_decisions(url, {"queue": wider["queue"]}, AS_OF, "r", {})


# ------------------------------------------------------------------ the commands
def _cli(*args: str, cwd):
    import subprocess
    import sys
    from pathlib import Path

    from conftest import cli_env

    return subprocess.run([str(Path(sys.executable).parent / "postloan"), *args], cwd=cwd,
                          env=cli_env(cwd), capture_output=True, text=True, timeout=600)


@pytest.mark.integration
def test_materialize_and_score_to_a_database_by_command(small_book, trained, tmp_path, snaps):
    store_url = f"sqlite:///{tmp_path / 'online.db'}"
    r = _cli("materialize", "--data", str(small_book), "--as-of", AS_OF, "--store", store_url,
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"{len(snaps[AS_OF]):,} customers" in r.stdout
    cid = int(snaps[AS_OF]["customer_id"].iloc[3])
    assert SnapshotStore(store_url).lookup([cid]).records[cid]["customer_id"] == cid

    # partitioned through the partition engine: the same records
    part_url = f"sqlite:///{tmp_path / 'online-parts.db'}"
    r = _cli("materialize", "--data", str(small_book), "--as-of", AS_OF, "--store", part_url,
             "--partitions", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ids = snaps[AS_OF]["customer_id"].tolist()
    assert SnapshotStore(part_url).lookup(ids).records == SnapshotStore(store_url
                                                                        ).lookup(ids).records

    db = f"sqlite:///{tmp_path / 'decisions.db'}"
    out = tmp_path / "scores"
    r = _cli("score", "--data", str(small_book), "--as-of", AS_OF, "--model-dir",
             str(trained["root"] / "models"), "--out", str(out), "--to", db, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    eng = connect(db)
    q = pd.read_sql("SELECT * FROM postloan_todays_queue", eng)
    files = pd.read_parquet(out / "queue.parquet")
    assert q["customer_id"].tolist() == files["customer_id"].tolist() and len(q) > 0
    d = pd.read_sql("SELECT * FROM postloan_decisions", eng)
    assert len(d) == len(snaps[AS_OF])

    r = _cli("score", "--data", str(small_book), "--as-of", AS_OF, "--model-dir",
             str(trained["root"] / "models"), "--out", str(tmp_path / "never"), "--to",
             "sqlite:////no/x.db", cwd=tmp_path)
    assert r.returncode == 2 and "cannot connect" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "never").exists()  # refused before any file is written
