"""Scale-out engines on a real Dask LocalCluster (2 worker processes x 1 thread).

The Dask engine must give the local engine's results on the same book (snapshots
exactly, scores to float tolerance, the same warning levels, ranks and queue), and a
worker killed mid-run must either be retried to a complete, correct output or fail the
job with a clear message and no output.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import cli_env
from postloan import scale
from postloan.data.snapshot import build_snapshot
from postloan.errors import DataValidationError, EngineError
from postloan.models.store import load_bundles_from_dir

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

AS_OF = "2024-06-30"
N_PARTS = 4


@contextlib.contextmanager
def local_cluster():
    """A LocalCluster of two worker processes; a task may fail once (a killed worker)
    and retry."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
        c = distributed.Client(cluster)
        try:
            yield c
        finally:
            c.close()
            cluster.close()


@pytest.fixture(scope="module")
def client():
    """One LocalCluster for the module."""
    with local_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def part_book(small_book, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("parts") / "book"
    scale.partition_book(small_book, out, N_PARTS)
    return out


@pytest.fixture(scope="module")
def local_score(small_book, trained, tmp_path_factory):
    from pipelines.score import run_score

    model_dir = trained["root"] / "models"
    out = tmp_path_factory.mktemp("local-score") / "out"
    run_score(small_book, AS_OF, out, load_bundles_from_dir(model_dir))
    return {n: pd.read_parquet(out / f"{n}.parquet") for n in ("scores", "decisions", "queue")}


def _by_customer(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["as_of", "customer_id"] if "as_of" in df else "customer_id"
                          ).reset_index(drop=True)


def assert_same_scores(local: dict, got: dict) -> None:
    for name in ("scores", "decisions"):
        a, b = _by_customer(local[name]), _by_customer(got[name])
        assert list(a.columns) == list(b.columns)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=0)
    a, b = _by_customer(local["decisions"]), _by_customer(got["decisions"])
    assert (a["warning_level"].astype(str) == b["warning_level"].astype(str)).all()
    assert (a["warning_rank"] == b["warning_rank"]).all()
    pd.testing.assert_frame_equal(local["queue"], got["queue"], check_exact=False, rtol=1e-12)


# ---------------------------------------------------------------- partitioning
def test_partition_is_deterministic_and_exclusive(small_tables, part_book):
    ids = small_tables["customers"]["customer_id"].to_numpy()
    p1, p2 = scale.partition_of(ids, 7), scale.partition_of(ids.copy(), 7)
    assert (p1 == p2).all() and p1.min() >= 0 and p1.max() < 7
    assert np.bincount(p1, minlength=7).min() > 0.5 * len(ids) / 7  # roughly balanced
    # In the written book every customer lives in exactly one partition, in every table.
    seen = {}
    for k in range(N_PARTS):
        part = scale.read_partition(part_book, k, ["customers", "loans", "repayments"])
        cust = set(part["customers"]["customer_id"])
        assert set(part["loans"]["customer_id"]) <= cust
        assert set(part["repayments"]["customer_id"]) <= cust
        assert (scale.partition_of(part["customers"]["customer_id"], N_PARTS) == k).all()
        for c in cust:
            assert c not in seen
            seen[c] = k
    assert set(seen) == set(ids)
    manifest = scale.book_manifest(part_book)
    assert manifest["tables"]["repayments"]["rows"] == len(small_tables["repayments"])
    assert "customers_pii" not in manifest["tables"]  # PII stays in the source book


def test_plain_book_and_missing_partition_are_clear_errors(small_book, part_book, client,
                                                           tmp_path):
    with pytest.raises(EngineError, match="not a partitioned book"):
        scale.book_manifest(small_book)
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(part_book, broken)
    (broken / "loans" / scale.part_name(2)).unlink()
    for runner in (scale.LocalRunner(), scale.DaskRunner(client)):
        # The worker's error arrives as itself (the CLI's exit 2), not as a traceback.
        with pytest.raises(DataValidationError, match="partition 2 is missing"):
            scale.snapshot_book(broken, [AS_OF], tmp_path / "snap", runner)
        assert not (tmp_path / "snap").exists()


# ---------------------------------------------------------------- snapshot
def test_dask_snapshot_equals_local(small_tables, part_book, client, tmp_path):
    dates = ["2023-12-31", AS_OF]
    local = pd.concat([build_snapshot(small_tables, d) for d in dates], ignore_index=True)
    res = scale.snapshot_book(part_book, dates, tmp_path / "snap", scale.DaskRunner(client))
    got = pd.read_parquet(tmp_path / "snap")  # the folder reads as one parquet data set
    pd.testing.assert_frame_equal(_by_customer(local), _by_customer(got), check_exact=True)
    assert res["complete"] and res["rows"] == len(local) and res["engine"] == "dask"
    stats = scale.summarise_snapshot_stats(res["stats"])
    assert stats["customers"].sum() == len(local)


# ---------------------------------------------------------------- score
def test_dask_and_streaming_scores_equal_local(part_book, trained, local_score, client,
                                               tmp_path):
    model_dir = trained["root"] / "models"
    for name, runner in (("dask", scale.DaskRunner(client)), ("local", scale.LocalRunner())):
        out = tmp_path / name
        res = scale.score_book(part_book, AS_OF, out, model_dir, runner)
        assert res["manifest"]["complete"] and res["manifest"]["engine"] == name
        assert_same_scores(local_score, scale.read_score_output(out))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_partitioned_decisions_with_uplift_equal_local(small_book, part_book, trained,
                                                      uplift_trained, tmp_path):
    """With uplift models (deciding where their gate admits them) the partition engine's
    decisions and queue are the local engine's: each partition's top K, merged and
    ranked again."""
    from pipelines.score import run_score, run_score_engine
    from postloan.models.uplift import UpliftBundle

    uplift = {r["action"]: UpliftBundle.load(Path(r["bundle"]))
              for r in uplift_trained["results"]}
    for b in uplift.values():  # every action decided on learned effects
        b.metadata["decision_gate"] = {**b.decision_gate, "decides": True}
    bundles = load_bundles_from_dir(trained["root"] / "models")
    local = run_score(small_book, AS_OF, tmp_path / "local", bundles, capacity=25,
                      uplift=uplift)
    got = run_score_engine(part_book, AS_OF, tmp_path / "part", bundles, capacity=25,
                           uplift=uplift)
    lq, gq = local["queue"], got["queue"]
    assert len(lq) == 25 and (lq["decision_basis"] == "learned_uplift").all()
    cols = ["queue_rank", "customer_id", "recommended_action", "net_benefit", "decision_basis"]
    pd.testing.assert_frame_equal(lq[cols], gq[cols], check_exact=False, rtol=1e-12)
    # Every customer's decision, not only the queue's, is the same on both engines.
    a = local["decisions"].set_index("customer_id").sort_index()
    b = got["decisions"].set_index("customer_id").sort_index()
    assert (a["recommended_action"].astype(str) == b["recommended_action"].astype(str)).all()
    np.testing.assert_allclose(a["net_benefit"], b["net_benefit"], rtol=1e-12)
    manifest = json.loads((tmp_path / "part" / "manifest.json").read_text())
    assert set(manifest["decision_basis"].values()) == {"learned_uplift"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


class KillWorker(distributed.WorkerPlugin):
    """Kill the worker process (os._exit) when a matching task starts executing.

    With a marker path, only the first time (the retry then succeeds); without, always,
    until the `disarm` file exists (workers restarted meanwhile keep the plugin).
    """

    def __init__(self, match: str, marker: str | None = None, disarm: str | None = None
                 ) -> None:
        self.match, self.marker, self.disarm = match, marker, disarm

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or self.match not in str(key):
            return
        if self.disarm is not None and os.path.exists(self.disarm):
            return
        if self.marker is not None:
            if os.path.exists(self.marker):
                return
            Path(self.marker).touch()
        os._exit(1)


def test_killed_worker_is_retried_to_a_complete_output(part_book, trained, local_score,
                                                       client, tmp_path):
    marker = tmp_path / "killed-once"
    client.register_plugin(KillWorker("_score_task", str(marker)), name="kill-once")
    try:
        out = tmp_path / "out"
        scale.score_book(part_book, AS_OF, out, trained["root"] / "models",
                          scale.DaskRunner(client))
    finally:
        client.wait_for_workers(2, timeout=240)  # a restart is slow on a loaded machine
        try:  # the marker disarms it anyway; the broadcast may race a restarting worker
            client.unregister_worker_plugin("kill-once")
        except Exception:
            pass
    assert marker.exists()  # a worker really died mid-run
    assert_same_scores(local_score, scale.read_score_output(out))


@pytest.mark.integration  # trains, runs the CLI in a process or a cluster
def test_worker_dying_every_time_fails_clearly_without_output(part_book, tmp_path,
                                                              tmp_path_factory):
    # A cluster of its own: workers killed over and over may not all come back in time
    # on a loaded machine, and the module's cluster must stay whole for the other tests.
    disarm = tmp_path_factory.mktemp("disarm") / "disarmed"
    with local_cluster() as client:
        client.register_plugin(KillWorker("_snapshot_task-", disarm=str(disarm)),
                               name="kill-always")
        try:
            with pytest.raises(EngineError, match=r"partition \d+ failed: its worker died"):
                scale.snapshot_book(part_book, [AS_OF], tmp_path / "snap",
                                     scale.DaskRunner(client))
        finally:
            disarm.touch()
    assert not (tmp_path / "snap").exists()
    assert list(tmp_path.iterdir()) == []  # no half-written temp folder either


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(EngineError, match="cannot reach the Dask scheduler"):
        with scale.dask_client("tcp://127.0.0.1:9", connect_timeout="1s"):
            pass


# ---------------------------------------------------------------- train
def test_dask_training_gives_a_valid_bundle_close_to_local(part_book, trained, client,
                                                           tmp_path):
    from pipelines.train import run_train_dask
    from postloan.models.bundle import ModelBundle
    from postloan.models.training import Splits, TrainConfig

    # The same configuration as the local `trained` fixture (LightGBM, not `auto`).
    cfg = TrainConfig(shap_sample=500, splits=Splits(n_train=6),
                      models={"default_risk": {"family": "lightgbm"}})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    [r] = run_train_dask(part_book, ["default_risk"], cfg, uri, tmp_path / "art",
                         tmp_path / "models", tmp_path, scheduler=client.scheduler.address,
                         work_dir=tmp_path / "work")
    local = trained["results"]["default_risk"]["metrics"]
    bundle = ModelBundle.load(Path(r["bundle"]))
    assert bundle.metadata["engine"]["name"] == "dask"
    # The customer sample is the whole small book, stacked partition by partition: the
    # round count from early stopping on it is the local engine's own (rows are put in
    # one order before fitting, so partitioning does not change the model).
    assert bundle.metadata["engine"]["sample_share"] == 1.0
    assert bundle.metadata["engine"]["rounds"] == local["best_iteration"]
    assert bundle.metadata["engine"]["rounds"] == bundle.booster.num_trees()
    # Only the distributed fit (histogram bins per worker) differs from the local one.
    assert abs(r["metrics"]["oot_auc"] - local["oot_auc"]) < 0.02
    assert not (tmp_path / "work").exists()  # the training parts are cleaned up
    # The data-quality gate has expectations to check a book against, like a local
    # champion's (learned on the first partition, what the engine's gate reads).
    exp = bundle.expectations
    assert exp is not None
    local_exp = ModelBundle.load(Path(trained["results"]["default_risk"]["bundle"])).expectations
    assert set(exp.to_dict()["features"]) == set(local_exp.to_dict()["features"])


# ---------------------------------------------------------------- CLI
def test_cli_snapshot_on_the_cluster(small_book, client, tmp_path):
    bin_ = Path(sys.executable).parent / "postloan"
    env = cli_env(tmp_path)
    r = subprocess.run([str(bin_), "snapshot", "--as-of", AS_OF, "--data", str(small_book),
                        "--partitions", "3", "--engine", "dask", "--scheduler",
                        client.scheduler.address, "--out", str(tmp_path / "snap")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert AS_OF in r.stdout
    assert len(list((tmp_path / "snap").glob("part-*.parquet"))) == 3
    assert not [p for p in small_book.parent.iterdir() if p.name.startswith(".")]
    r = subprocess.run([str(bin_), "snapshot", "--as-of", AS_OF, "--data", str(small_book),
                        "--engine", "dask", "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "not a partitioned book" in r.stderr
