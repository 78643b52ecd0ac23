"""The online snapshot store and the decision tables on a real PostgreSQL server.

The server is the session's throwaway one (tests/postgres.py: initdb + pg_ctl in a temp
folder); the password reaches libpq through PGPASSWORD, never through the URL.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_online import _frames

from postloan.data.database import DatabaseError, connect
from postloan.data.decision_tables import write_decisions
from postloan.data.online import SnapshotStore
from postloan.data.snapshot import build_snapshot, to_json_record

AS_OF, LATER = "2024-06-30", "2024-09-30"


@pytest.fixture()
def pg(pg_server, request):
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40]
    url = pg_server.create_database(name)
    with pg_server.password_env():
        yield url


def test_store_on_postgresql_round_trips_and_serves_the_newest_date(pg, small_tables):
    snaps = {d: build_snapshot(small_tables, d, with_labels=False) for d in (AS_OF, LATER)}
    store = SnapshotStore(pg)
    store.materialize(snaps[LATER], "h2")
    store.materialize(snaps[AS_OF], "h1")
    store.materialize(snaps[LATER], "h2")  # idempotent
    row = snaps[LATER].iloc[5]
    got = store.lookup([int(row["customer_id"]), 1])
    assert got.as_of == LATER and got.manifest_hash == "h2" and got.missing == [1]
    assert got.records[int(row["customer_id"])] == to_json_record(row.to_dict())
    assert store.dates()["n_customers"].tolist() == [len(snaps[LATER]), len(snaps[AS_OF])]


def test_decisions_on_postgresql_in_one_transaction(pg):
    write_decisions(pg, _frames(5, AS_OF), AS_OF, "run-1", {"churn": "1"})
    write_decisions(pg, _frames(4, AS_OF), AS_OF, "run-2", {"churn": "2"})
    eng = connect(pg)
    q = pd.read_sql("SELECT * FROM postloan_todays_queue", eng)
    assert q["run_id"].unique().tolist() == ["run-2"] and q["queue_rank"].tolist() == [1, 2, 3, 4]
    assert q["reasons_zh"].iloc[0] == "打电话"


def test_wrong_password_and_refused_connection_are_clear_and_masked(pg_server, pg):
    url = pg.replace("@", ":wrong-password@", 1)
    with pytest.raises(DatabaseError) as e:
        connect(url)
    assert "wrong-password" not in str(e.value) and "***" in str(e.value)
    dead = pg.replace(f":{pg_server.port}/", ":1/")
    with pytest.raises(DatabaseError, match="cannot connect"):
        SnapshotStore(dead)
