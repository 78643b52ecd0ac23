"""The monthly cycle (issue 22): pure steps, the run ledger, and whole months on the small
book with the session's champions in a real MLflow store."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from postloan.data import io
from postloan.errors import ConfigError, DataQualityError, PostloanError
from postloan.models.uplift import outreach_log
from postloan.operations import cycle
from postloan.operations.cycle import CycleConfig, Ledger, assign_outreach, load_cycle_config

APR, MAY, JUN = "2025-04-30", "2025-05-31", "2025-06-30"


# ------------------------------------------------------------------ pure steps
def _decisions(n=2_000, seed=0):
    rng = np.random.default_rng(seed)
    actions = rng.choice(["none", "payment_reminder", "retention_offer",
                          "restructuring_offer", "service_recovery_call"], n,
                         p=[0.6, 0.1, 0.1, 0.1, 0.1])
    d = pd.DataFrame({"customer_id": rng.permutation(n) + 100,
                      "recommended_action": actions,
                      "warning_level": rng.choice(["green", "yellow", "red"], n),
                      "net_benefit": rng.lognormal(5.0, 1.5, n)})
    queue = (d[d["recommended_action"] != "none"]
             .sort_values("net_benefit", ascending=False).head(500))
    return d, queue


def test_outreach_rows_follow_the_contract_and_hold_out_a_seeded_share():
    d, q = _decisions()
    rows = assign_outreach(d, q, APR, 0.2)
    eligible = (d["recommended_action"] != "none").sum()
    assert len(rows) == eligible                              # every eligible customer-month
    inq = rows["customer_id"].isin(q["customer_id"])
    assert set(rows.loc[~inq, "assignment"]) == {"over_capacity"}
    assert (rows.loc[~inq, "propensity"] == 0).all()
    assert np.allclose(rows.loc[inq, "propensity"], 0.8)
    share = (rows.loc[inq, "assignment"] == "holdout").mean()
    assert 0.14 < share < 0.26
    # the contract validates them, and outreach_log aligns them back to this as-of
    inter = io.S.validate_table("interactions", rows)
    log = outreach_log(inter)
    assert (log["as_of"] == pd.Timestamp(APR)).all()
    assert log["treated"].sum() == (rows["assignment"] == "contacted").sum()
    # seeded by the as-of, whatever the row order; another month draws differently
    again = assign_outreach(d.sample(frac=1, random_state=3), q, APR, 0.2)
    pd.testing.assert_frame_equal(rows, again)
    other = assign_outreach(d, q, MAY, 0.2)
    assert not other["assignment"].equals(rows["assignment"])
    with pytest.raises(ValueError, match="holdout_share"):
        assign_outreach(d, q, APR, 1.0)


def test_the_holdout_costs_no_call_slots():
    """The candidates go holdout_reach deep: exactly `capacity` are contacted, the rest
    held out at random, and the team's queue lists the contacted only."""
    assert cycle.holdout_reach(100, 0.10) == 112          # 100 / 0.9 = 111.1
    assert cycle.holdout_reach(90, 0.10) == 100           # no float round-up to 101
    assert cycle.holdout_reach(100, 0.0) == 100 and cycle.holdout_reach(0, 0.1) == 0
    d, q = _decisions()
    cand = q.head(cycle.holdout_reach(100, 0.10)).copy()
    cand["queue_rank"] = np.arange(1, len(cand) + 1)
    rows = assign_outreach(d, cand, APR, 0.10, capacity=100, weighting="uniform")
    a = rows["assignment"].value_counts()
    assert a["contacted"] == 100 and a["holdout"] == 12
    inq = rows["customer_id"].isin(cand["customer_id"])
    assert np.allclose(rows.loc[inq, "propensity"], 100 / 112)
    team = cycle.contacted_queue(cand, rows)
    held = set(rows.loc[rows["assignment"] == "holdout", "customer_id"])
    assert len(team) == 100 and not held & set(team["customer_id"])
    assert team["queue_rank"].tolist() == list(range(1, 101))
    # the held-out are spread over the ranks, not the bottom of the queue
    ranks = cand.loc[cand["customer_id"].isin(held), "queue_rank"]
    assert ranks.min() <= 60
    # fewer candidates than the reach: the share is still held out, fewer calls made
    few = assign_outreach(d, q.head(50), APR, 0.10, capacity=100)["assignment"]
    assert (few == "contacted").sum() == 45 and (few == "holdout").sum() == 5


def test_a_value_weighted_holdout_costs_less_and_logs_each_chance():
    """The value weighting holds out the contacts worth less more often (each within the
    bounds, the chances summing to the holdout size); the draws hit each candidate with
    its logged chance, and the expected value held out is below a uniform holdout's."""
    lo, hi = cycle.HOLDOUT_CHANCE_BOUNDS
    nb = np.geomspace(20_000, 50, 112)
    p = cycle.holdout_chances(nb, 12, "value")
    assert p.sum() == pytest.approx(12) and p.min() >= lo - 1e-12 and p.max() <= hi + 1e-12
    assert (np.diff(p) >= -1e-12).all()                      # worth less: likelier held out
    assert (p * nb).sum() < (12 / 112 * nb).sum() / 2        # costs under half a uniform's
    assert np.allclose(cycle.holdout_chances(nb, 12, "uniform"), 12 / 112)
    with pytest.raises(ValueError, match="weighting"):
        cycle.holdout_chances(nb, 12, "by_hand")
    d, q = _decisions()
    cand = q.head(112)
    rows = assign_outreach(d, cand, APR, 0.10, capacity=100, weighting="value")
    assert (rows["assignment"] == "contacted").sum() == 100
    inq = rows.set_index("customer_id").loc[cand["customer_id"]]
    chance = cycle.holdout_chances(cand["net_benefit"].to_numpy(), 12, "value")
    assert np.allclose(1 - inq["propensity"].to_numpy(), chance)
    # over many months each candidate is held out about as often as its logged chance
    held = np.zeros(len(cand))
    for k in range(400):
        month = pd.Timestamp(APR) + pd.offsets.MonthEnd(k)
        r = assign_outreach(d, cand, month, 0.10, capacity=100, weighting="value")
        held += r.set_index("customer_id").loc[cand["customer_id"], "assignment"].eq(
            "holdout").to_numpy()
    top, bottom = held[:20].sum() / 400, held[-20:].sum() / 400
    assert top == pytest.approx(chance[:20].sum(), abs=0.6)
    assert bottom == pytest.approx(chance[-20:].sum(), abs=1.2)
    with pytest.raises(ValueError, match="net_benefit"):
        assign_outreach(d, cand.drop(columns="net_benefit"), APR, 0.1, 100, "value")


def test_cycle_config_overrides_and_names_bad_fields(tmp_path):
    assert load_cycle_config().holdout_share == 0.10
    f = tmp_path / "c.yaml"
    f.write_text("holdout_share: 0.25\nsteps: {monitor: false}\n")
    c = load_cycle_config(f)
    assert c.holdout_share == 0.25 and not c.steps.monitor and c.steps.report
    f.write_text("holdout_share: 1.5\nsteps: {montor: true}\n")
    with pytest.raises(ConfigError, match=r"holdout_share.*steps\.montor|steps\.montor.*"):
        load_cycle_config(f)


def test_retrain_on_decay_or_schedule_never_on_a_data_fault():
    cfg = CycleConfig(retrain_every_months=3)
    decay = {"by_model": {"churn": "performance decay"}, "retrain": True, "data_fault": False}
    assert "churn" in cycle.retrain_reason(cfg, MAY, decay, MAY)
    assert cycle.retrain_reason(cfg, "2025-06-30", None, "2025-04-30") is None
    assert "schedule" in cycle.retrain_reason(cfg, "2025-07-31", None, "2025-04-30")
    fault = {**decay, "data_fault": True}
    assert cycle.retrain_reason(cfg, "2025-07-31", fault, "2025-01-31") is None
    off = CycleConfig(retrain_every_months=3, steps={"retrain": False})
    assert cycle.retrain_reason(off, "2025-07-31", decay, "2025-01-31") is None


def test_ledger_resumes_a_failed_cycle_and_restarts_a_finished_one(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'runs.db'}")
    cid = Ledger.new_cycle_id(APR)
    for s in ("ingest", "gate"):
        led.finish(led.start(cid, APR, s), cycle.OK, model_versions={"churn": "3"})
    led.finish(led.start(cid, APR, "score"), cycle.FAILED, error="boom")
    assert led.resume_point(APR) == (cid, {"ingest", "gate"})
    led.finish(led.start(cid, APR, "score"), cycle.OK)
    assert led.resume_point(APR) == (None, set())     # finished: a re-run starts afresh
    rows = led.rows(APR)
    assert rows["model_versions"].iloc[0] == {"churn": "3"}
    assert list(rows["status"]) == ["ok", "ok", "failed", "ok"]
    led.close()


def test_ledger_refuses_an_old_decision_runs_table(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.execute(sa.text("CREATE TABLE postloan_runs (as_of TEXT, run_id TEXT)"))
    eng.dispose()
    with pytest.raises(PostloanError, match="postloan_decision_runs"):
        Ledger(url)


def test_ledger_on_postgresql(pg_server):
    url = pg_server.create_database("ledger_cycle")
    with pg_server.password_env():
        led = Ledger(url)
        cid = Ledger.new_cycle_id(APR)
        row = led.start(cid, APR, "gate")
        led.finish(row, cycle.FAILED, gate_verdict="blocked", error="bureau.completeness")
        rows = led.rows()
        assert rows.loc[0, "gate_verdict"] == "blocked" and rows.loc[0, "status"] == "failed"
        assert led.resume_point(APR) == (cid, set())
        led.close()


# ------------------------------------------------------------------ whole months
def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture()
def month_env(trained, tmp_path):
    from pipelines.cycle import Paths

    paths = Paths(cycles=tmp_path / "cycles", books=tmp_path / "books",
                  tracking_uri=trained["uri"], artifact_root=trained["root"] / "mlartifacts",
                  models_dir=tmp_path / "models", root=tmp_path)
    cfg = CycleConfig(steps={"retrain": False})
    led = Ledger(f"sqlite:///{tmp_path / 'runs.db'}")
    yield paths, cfg, led
    led.close()


def test_months_gate_fault_rerun_and_the_reviewers_question(month_env, trained, small_book,
                                                            small_tables, tmp_path):
    from pipelines.cycle import run_cycle
    from postloan.data.quality.faults import three_feed_faults

    paths, cfg, led = month_env
    db = f"sqlite:///{tmp_path / 'decisions.db'}"
    apr = run_cycle(APR, paths, cfg, led, data=small_book, to=db)
    assert apr.exit_code == 0 and apr.steps["monitor"] == "skipped"   # no earlier month
    out = paths.cycles / APR
    assert {"decisions.parquet", "queue.parquet", "outreach.parquet",
            "manifest.json"} <= {p.name for p in out.iterdir()}
    outreach = pd.read_parquet(out / "outreach.parquet")
    assert set(outreach["assignment"]) <= {"contacted", "holdout", "over_capacity"}
    assert (outreach["assignment"] == "holdout").sum() > 0
    # the team's queue is the contacted: no holdout customer is in it
    queue = pd.read_parquet(out / "queue.parquet")
    assert set(queue["customer_id"]) == set(
        outreach.loc[outreach["assignment"] == "contacted", "customer_id"])
    before = _tree_hash(out)

    # May's feed breaks: exit 4 (DataQualityError), April untouched, the ledger says why
    broken = tmp_path / "broken"
    io.write_tables(three_feed_faults(small_tables, MAY), broken)
    with pytest.raises(DataQualityError):
        run_cycle(MAY, paths, cfg, led, data=broken, to=db)
    assert _tree_hash(out) == before and not (paths.cycles / MAY).exists()
    may = led.rows(MAY)
    gate = may[may["step"] == "gate"].iloc[-1]
    assert gate["status"] == "failed" and gate["gate_verdict"] == "blocked"
    assert "bureau" in gate["error"]
    # the fixed feed: the month resumes after its finished steps and runs through
    fixed = run_cycle(MAY, paths, cfg, led, data=small_book, to=db)
    assert fixed.resumed and fixed.cycle_id == may["cycle_id"].iloc[0]
    assert fixed.steps["gate"] == "ok" and fixed.steps["monitor"] == "ok"
    assert fixed.monitor["reference"] == APR

    # the reviewer: which versions decided customer X's action in April, on what data
    import sqlalchemy as sa

    eng = sa.create_engine(db)
    x = int(outreach["customer_id"].iloc[0])
    dec = pd.read_sql(sa.text("SELECT * FROM postloan_decisions WHERE as_of = :d AND "
                              "customer_id = :x"), eng, params={"d": APR, "x": x})
    eng.dispose()
    assert len(dec) == 1
    led_row = led.rows(APR).query("step == 'write' and status == 'ok'").iloc[-1]
    assert led_row["cycle_id"] == dec["run_id"].iloc[0]
    for m in ("default_risk", "churn", "satisfaction"):
        assert str(dec[f"version_{m}"].iloc[0]) == led_row["model_versions"][m]
        assert led_row["model_versions"][m] == str(trained["results"][m]["version"])
    assert led_row["data_hash"] == io.read_manifest(small_book)["content_hash"]
    basis = led.rows(APR).query("step == 'score'").iloc[-1]["decision_basis"]
    assert set(basis.values()) == {"constants"}     # no uplift model: the constants
    assert dec["decision_basis"].iloc[0] == "constants"

    # a re-run of April replaces the month whole, as a new cycle
    again = run_cycle(APR, paths, cfg, led, data=small_book, to=db)
    assert not again.resumed and again.cycle_id != apr.cycle_id
    pd.testing.assert_frame_equal(pd.read_parquet(out / "outreach.parquet"), outreach)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cycle_id"] == again.cycle_id
    assert not list(paths.cycles.glob(".*"))       # no staging folder left behind


def test_a_month_that_failed_after_writing_resumes_from_that_step(month_env, small_book):
    from pipelines.cycle import run_cycle

    paths, cfg, led = month_env
    bad = cfg.model_copy(update={"steps": cfg.steps.model_copy(update={"materialize": True}),
                                 "online_store": "sqlite:////no/such/dir/online.db"})
    with pytest.raises(Exception):  # noqa: B017 - the store's own error, recorded below
        run_cycle(JUN, paths, bad, led, data=small_book)
    rows = led.rows(JUN)
    assert rows.set_index("step")["status"].to_dict() == {
        "ingest": "skipped", "gate": "ok", "score": "ok", "write": "ok",
        "materialize": "failed"}
    written = (paths.cycles / JUN / "decisions.parquet").stat().st_mtime_ns
    good = cfg.model_copy(update={"steps": bad.steps,
                                  "online_store": f"sqlite:///{paths.root / 'online.db'}"})
    res = run_cycle(JUN, paths, good, led, data=small_book)
    assert res.resumed
    assert res.steps["score"] == "done before" and res.steps["materialize"] == "ok"
    assert (paths.cycles / JUN / "decisions.parquet").stat().st_mtime_ns == written
    assert (paths.cycles / JUN / "reports" / "cycle.json").exists()


def test_cli_cycle_exit_codes_and_runs(project_like):
    """`postloan cycle` exits 0, 2 on bad input, 4 on the gate, 3 when the monitor asks
    for re-validation (thresholds set so that any drift does); `postloan runs` lists."""
    run, book, broken, db = project_like
    r = run("cycle", "--as-of", APR)                      # neither --data nor --source
    assert r.returncode == 2 and "--data" in r.stderr
    r = run("cycle", "--as-of", APR, "--data", str(book))  # first month: nothing to monitor
    assert r.returncode == 0, r.stderr
    r = run("cycle", "--as-of", MAY, "--data", str(broken))
    assert r.returncode == 4, r.stderr
    r = run("cycle", "--as-of", MAY, "--data", str(book))
    assert r.returncode == 3, r.stderr
    assert "re-validate" in r.stderr
    r = run("runs", "--as-of", MAY)
    assert r.returncode == 0 and "blocked" in r.stdout and "failed" in r.stdout
    led = Ledger(db)
    rows = led.rows(MAY)
    led.close()
    assert rows.query("step == 'monitor'")["monitor_verdict"].tolist() == ["re-validate"]
    assert rows.query("step == 'gate'")["gate_verdict"].tolist()[0] == "blocked"


@pytest.fixture()
def project_like(trained, small_book, small_tables, tmp_path):
    import subprocess

    from conftest import cli_env
    from postloan.data.quality.faults import three_feed_faults

    broken = tmp_path / "broken"
    io.write_tables(three_feed_faults(small_tables, MAY), broken)
    (tmp_path / "pyproject.toml").write_text("")
    cfg = tmp_path / "cycle.yaml"
    tight = tmp_path / "monitoring.yaml"  # any shift re-validates
    tight.write_text("psi_watch: 1.0e-9\npsi_shifted: 2.0e-9\nmacro_watch_points: 1.0e-9\n"
                     "macro_shifted_points: 2.0e-9\n")
    cfg.write_text(f"steps: {{retrain: false}}\nmonitoring: {tight}\n")
    env = cli_env(tmp_path, MLFLOW_TRACKING_URI=trained["uri"])

    db = f"sqlite:///{tmp_path / 'decisions.db'}"  # decision tables and the ledger

    def run(*args):
        extra = ["--to", db] + (["--config", str(cfg)] if args[0] == "cycle" else [])
        return subprocess.run([str(Path(sys.executable).parent / "postloan"), *args, *extra],
                              capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=600)
    return run, small_book, broken, db


def test_uplift_versions_and_bases_are_in_the_ledger(uplift_trained, small_book, tmp_path):
    """With uplift champions the ledger names their versions, and each action's basis is
    the one its decision gate gives (learned effects only once the gate admits them)."""
    from pipelines.cycle import Paths, run_cycle
    from pipelines.score import load_uplift
    from postloan.decisions.strategy import decision_bases

    uri = uplift_trained["uri"]
    paths = Paths(cycles=tmp_path / "cycles", books=tmp_path / "books", tracking_uri=uri,
                  artifact_root=None, models_dir=None, root=tmp_path)
    led = Ledger(f"sqlite:///{tmp_path / 'runs.db'}")
    run_cycle(APR, paths, CycleConfig(steps={"retrain": False}), led, data=small_book)
    row = led.rows(APR).query("step == 'score'").iloc[-1]
    led.close()
    uplift = load_uplift(uri)
    assert uplift
    registered = {r["action"]: str(r["version"]) for r in uplift_trained["results"]}
    for action in uplift:  # each action's only registered version is its champion
        assert row["model_versions"][f"uplift_{action}"] == registered[action]
    assert row["decision_basis"] == decision_bases(uplift)
    decisions = pd.read_parquet(paths.cycles / APR / "decisions.parquet")
    acted = decisions[decisions["recommended_action"] != "none"]
    for action, basis in row["decision_basis"].items():
        assert set(acted.loc[acted["recommended_action"] == action, "decision_basis"]) <= {basis}


# ------------------------------------------------------------------ retraining for real
FAST_TRAINING = """\
shap_sample: 200
splits: {n_train: 6}
models:
  default_risk: {lgbm: {max_rounds: 40, early_stopping_rounds: 10}}
  churn: {lgbm: {max_rounds: 40, early_stopping_rounds: 10}}
  satisfaction: {lgbm: {max_rounds: 40, early_stopping_rounds: 10}}
uplift: {n_dates: 6, n_test_dates: 2}
"""


@pytest.fixture()
def own_store(trained, tmp_path):
    """A copy of the session's store (its champions stay put) the test may retrain in."""
    import shutil

    from pipelines.cycle import Paths

    shutil.copy(trained["root"] / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    paths = Paths(cycles=tmp_path / "cycles", books=tmp_path / "books", tracking_uri=uri,
                  artifact_root=tmp_path / "art", models_dir=None, root=tmp_path)
    return uri, paths


def test_a_month_due_for_retraining_retrains_gates_promotes_and_records_it(
        own_store, trained, small_book, tmp_path):
    """The schedule's month retrains the three models and the uplift models (few trees
    through the cycle config's `training`), their gates decide, and the ledger names the
    versions that decide from then on and when each action's basis switched."""
    from mlflow import MlflowClient

    from pipelines.cycle import run_cycle
    from pipelines.score import load_uplift
    from postloan.decisions.strategy import decision_bases
    from postloan.models import registry
    from postloan.models.bundle import MODELS

    uri, paths = own_store
    (tmp_path / "training.yaml").write_text(FAST_TRAINING)
    cfg = CycleConfig(retrain_every_months=1, training=str(tmp_path / "training.yaml"),
                      steps={"monitor": False})
    led = Ledger(f"sqlite:///{tmp_path / 'runs.db'}")
    apr = run_cycle(APR, paths, cfg, led, data=small_book)
    assert apr.steps["retrain"] == "skipped" and apr.retrain is None   # the clock starts
    may = run_cycle(MAY, paths, cfg, led, data=small_book)
    assert may.steps["retrain"] == "ok" and may.retrain.startswith("schedule: 1 months")
    row = led.rows(MAY).query("step == 'retrain'").iloc[-1]
    gates = row["details"]["gates"]
    client = MlflowClient(registry.store_uri(uri))
    for m in MODELS:
        old = str(trained["results"][m]["version"])
        new = gates[m]["version"]
        assert int(new) > int(old)                        # a challenger was registered
        champ = str(client.get_model_version_by_alias(registry.registered_name(m),
                                                      registry.CHAMPION).version)
        assert champ == (new if gates[m]["promoted"] else old)
        assert row["model_versions"][m] == champ          # the ledger names who decides now
    uplift = load_uplift(uri)
    assert uplift, "the book's logged outreach trains uplift models"
    for a, b in uplift.items():
        assert row["model_versions"][f"uplift_{a}"] == str(b.metadata["registered_version"])
        assert gates[f"uplift_{a}"]["decides"] == bool(b.decision_gate.get("decides"))
    # the basis switch: before (no uplift model in the store: constants) and after
    assert set(row["details"]["decision_basis_before"].values()) == {"constants"}
    assert row["decision_basis"] == decision_bases(uplift)
    assert row["details"]["basis_switched"] == {
        a: ["constants", b] for a, b in decision_bases(uplift).items() if b != "constants"}
    # the next month decides with the promoted versions, and is not due again
    jun = run_cycle(JUN, paths, cfg.model_copy(update={"retrain_every_months": 3}), led,
                    data=small_book)
    assert jun.steps["retrain"] == "skipped"
    score = led.rows(JUN).query("step == 'score'").iloc[-1]
    assert score["model_versions"] == row["model_versions"]
    assert score["decision_basis"] == row["decision_basis"]
    led.close()


def test_outreach_rows_go_to_postgresql_with_the_decisions(pg_server, trained, small_book,
                                                           tmp_path):
    """With --to the month's outreach rows are written in the decisions' transaction: a
    write that fails on the outreach rows leaves the month's decisions and outreach as
    they were, and the resumed month replaces both (no duplicates)."""
    import sqlalchemy as sa

    from pipelines.cycle import Paths, run_cycle
    from postloan.data.database import DatabaseError

    url = pg_server.create_database("cycle_outreach")
    paths = Paths(cycles=tmp_path / "cycles", books=tmp_path / "books",
                  tracking_uri=trained["uri"], artifact_root=None, models_dir=None,
                  root=tmp_path)
    cfg = CycleConfig(steps={"retrain": False, "monitor": False, "report": False})
    led = Ledger(f"sqlite:///{tmp_path / 'runs.db'}")

    def month_rows(eng, table):
        return pd.read_sql(sa.text(f"SELECT * FROM postloan_{table} WHERE as_of = :d"),
                           eng, params={"d": APR})

    with pg_server.password_env():
        first = run_cycle(APR, paths, cfg, led, data=small_book, to=url)
        eng = sa.create_engine(url)
        files = pd.read_parquet(paths.cycles / APR / "outreach.parquet")
        db = month_rows(eng, "outreach").sort_values("customer_id", ignore_index=True)
        assert len(db) == len(files) > 0 and set(db["run_id"]) == {first.cycle_id}
        assert db["customer_id"].tolist() == files["customer_id"].tolist()
        assert db["assignment"].tolist() == files["assignment"].tolist()
        assert np.allclose(db["propensity"], files["propensity"])
        assert set(db["kind"]) == {"outreach"}
        assert (db["event_date"] == (pd.Timestamp(APR) + pd.Timedelta(days=1))
                .date().isoformat()).all()
        n_dec = len(month_rows(eng, "decisions"))
        # A fault inside the transaction, on the outreach rows only (a constraint every
        # new holdout row breaks): nothing of the re-run is visible
        with eng.begin() as c:
            c.execute(sa.text("ALTER TABLE postloan_outreach ADD CONSTRAINT no_holdout "
                              "CHECK (assignment <> 'holdout') NOT VALID"))
        with pytest.raises(DatabaseError, match="nothing changed"):
            run_cycle(APR, paths, cfg, led, data=small_book, to=url)
        assert set(month_rows(eng, "decisions")["run_id"]) == {first.cycle_id}
        assert set(month_rows(eng, "outreach")["run_id"]) == {first.cycle_id}
        assert len(month_rows(eng, "outreach")) == len(files)
        with eng.begin() as c:
            c.execute(sa.text("ALTER TABLE postloan_outreach DROP CONSTRAINT no_holdout"))
        again = run_cycle(APR, paths, cfg, led, data=small_book, to=url)  # resumes at write
        assert again.resumed and again.steps["score"] == "done before"
        assert set(month_rows(eng, "outreach")["run_id"]) == {again.cycle_id}
        assert len(month_rows(eng, "outreach")) == len(files)
        assert len(month_rows(eng, "decisions")) == n_dec
        eng.dispose()
    led.close()


def test_a_bad_training_config_stops_the_month_before_anything_is_written(tmp_path,
                                                                         small_book):
    from pipelines.cycle import Paths, run_cycle

    bad = tmp_path / "training.yaml"
    bad.write_text("models: {churn: {lgbm: {num_leevs: 7}}}\n")
    paths = Paths(cycles=tmp_path / "cycles", books=tmp_path / "books",
                  tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=None,
                  models_dir=None, root=tmp_path)
    led = Ledger(f"sqlite:///{tmp_path / 'runs.db'}")
    with pytest.raises(ConfigError, match="num_leevs"):
        run_cycle(APR, paths, CycleConfig(training=str(bad)), led, data=small_book)
    assert led.rows().empty and not (tmp_path / "cycles").exists()
    led.close()
