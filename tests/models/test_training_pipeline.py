"""End to end on a real MLflow SQLite store: train, register, gate, reload by alias."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipelines.train import run_train
from postloan.data import io
from postloan.data.snapshot import SNAPSHOT_FIELDS, build_snapshot, to_json_record
from postloan.decisions.batch import score_snapshot
from postloan.decisions.strategy import load_strategy_config
from postloan.errors import DataValidationError
from postloan.models import registry
from postloan.models.bundle import ModelBundle
from postloan.models.training import Lgbm, ModelConfig, Splits, TrainConfig

pytestmark = pytest.mark.integration

def test_every_model_is_registered_and_champion(trained):
    client = registry.configure(trained["uri"])
    for model, r in trained["results"].items():
        name = registry.registered_name(model)
        mv = client.get_model_version_by_alias(name, "champion")
        assert str(mv.version) == r["version"]
        assert mv.tags["gate_promoted"] == "True"
        run = client.get_run(mv.run_id)
        for metric in ("oot_auc", "oot_ks", "oot_ece", "oot_brier", "baseline_oot_auc",
                       "oracle_auc", "oracle_ratio", "oot_top_decile_capture"):
            assert metric in run.data.metrics
        assert run.data.metrics["oot_auc"] > 0.6
        assert run.data.tags["data_content_hash"]
        arts = {a.path for a in client.list_artifacts(mv.run_id, "plots")}
        assert {"plots/roc.png", "plots/ks.png", "plots/calibration.png", "plots/lift.png",
                "plots/shap_summary.png", "plots/shap_bar.png"} <= arts
        history = json.loads(client.get_registered_model(name).tags["champion_history"])
        assert history[-1]["version"] == r["version"]


def test_scores_identical_after_reload_in_a_fresh_process(trained, small_tables, tmp_path):
    snap = build_snapshot(small_tables, "2024-06-30", with_labels=False)
    snap_path = tmp_path / "snap.parquet"
    io.write_frame_atomic(snap, snap_path)
    out = tmp_path / "scores.json"
    code = textwrap.dedent(f"""
        import json, mlflow, pandas as pd
        mlflow.set_tracking_uri({trained['uri']!r})
        snap = pd.read_parquet({str(snap_path)!r})
        res = {{}}
        for name in ["postloan-default-risk", "postloan-churn", "postloan-satisfaction"]:
            m = mlflow.pyfunc.load_model(f"models:/{{name}}@champion")
            res[name] = m.predict(snap)["probability"].tolist()
        json.dump(res, open({str(out)!r}, "w"))
    """)
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300,
                   capture_output=True)
    fresh = json.loads(out.read_text())
    for model, r in trained["results"].items():
        local = ModelBundle.load(r["bundle"]).predict(snap)
        assert np.array_equal(np.asarray(fresh[registry.registered_name(model)]), local)


def test_bundle_round_trip_is_bit_identical(trained, small_tables, tmp_path):
    snap = build_snapshot(small_tables, "2024-05-31", with_labels=False)
    registry.configure(trained["uri"])
    b1 = registry.load_bundle("default_risk")
    b2 = ModelBundle.load(b1.save(tmp_path / "copy"))
    assert np.array_equal(b1.predict(snap), b2.predict(snap))
    one = b1.predict(snap.iloc[[3]])  # single-record scoring equals batch scoring
    assert one[0] == b1.predict(snap)[3]


def test_gate_keeps_a_worse_challenger_out(trained, small_book):
    weak = TrainConfig(shap_sample=200, splits=Splits(n_train=6), models={
        "default_risk": ModelConfig(lgbm=Lgbm(max_rounds=1, num_leaves=2,
                                              early_stopping_rounds=1), family="lightgbm")})
    root = trained["root"]
    res = run_train(small_book, ["default_risk"], weak, trained["uri"], root / "mlartifacts",
                    None, root)[0]
    assert res["promoted"] is False
    client = MlflowClient(trained["uri"])
    name = registry.registered_name("default_risk")
    assert str(client.get_model_version_by_alias(name, "champion").version) == \
        trained["results"]["default_risk"]["version"]
    assert str(client.get_model_version_by_alias(name, "challenger").version) == res["version"]
    tags = client.get_model_version(name, res["version"]).tags
    assert tags["gate_promoted"] == "False" and "worse than champion" in tags["gate_reason"]


def test_training_refuses_dates_without_data(small_book, tmp_path):
    cfg = TrainConfig(splits=Splits(train=["2019-01-31"], valid=["2019-04-30"],
                                    oot=["2019-07-31"]))
    with pytest.raises(DataValidationError, match="no snapshot rows|outside the data"):
        run_train(small_book, ["churn"], cfg, f"sqlite:///{tmp_path / 'm.db'}", tmp_path, None,
                  tmp_path)


def test_missing_model_is_a_clear_error(tmp_path):
    from postloan.errors import ModelNotFoundError

    registry.configure(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ModelNotFoundError):
        registry.load_bundle("churn")
    with pytest.raises(ModelNotFoundError, match="missing"):
        ModelBundle.load(tmp_path)


def test_batch_score_writes_every_output(trained, small_book, tmp_path):
    from pipelines.score import run_score
    from postloan.models.store import load_bundles_from_dir

    bundles = load_bundles_from_dir(trained["root"] / "models")
    out = tmp_path / "scores"
    outputs = run_score(small_book, "2024-06-30", out, bundles, capacity=25)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["data_quality.json", "decisions.csv", "decisions.parquet", "queue.csv",
                     "queue.parquet", "scores.csv", "scores.parquet"]  # gate record included
    d, q = outputs["decisions"], outputs["queue"]
    due = int(((d["net_benefit"] > 0) & (d["recommended_action"] != "none")).sum())
    assert len(q) == min(25, due) > 0
    assert q["queue_rank"].tolist() == list(range(1, len(q) + 1))
    assert q["net_benefit"].is_monotonic_decreasing
    assert set(d["warning_level"].astype(str)) <= {"green", "yellow", "orange", "red"}
    back = pd.read_parquet(out / "decisions.parquet")
    assert len(back) == len(d) and back["customer_id"].is_unique
    # The registry champions and the bundle folders give the same decisions.
    reg = registry.load_champions(tracking_uri=trained["uri"])
    assert {m: b.metadata["registered_version"] for m, b in reg.items()} == \
        {m: r["version"] for m, r in trained["results"].items()}
    again = run_score(small_book, "2024-06-30", tmp_path / "again", reg, capacity=25)
    assert np.array_equal(again["decisions"]["pd_12m"].to_numpy(), d["pd_12m"].to_numpy())
    pd.testing.assert_frame_equal(again["queue"], q)


def test_batch_score_bad_date_leaves_no_output(trained, small_book, tmp_path):
    from pipelines.score import run_score
    from postloan.models.store import load_bundles_from_dir

    bundles = load_bundles_from_dir(trained["root"] / "models")
    with pytest.raises(DataValidationError, match="outside the data"):
        run_score(small_book, "2031-01-31", tmp_path / "x", bundles)
    assert not (tmp_path / "x").exists()


def test_logged_models_carry_a_signature_and_an_input_example(trained, small_tables):
    import mlflow

    registry.configure(trained["uri"])
    snap = build_snapshot(small_tables, "2024-06-30")  # labels included: not model inputs
    for model, r in trained["results"].items():
        uri = f"models:/{registry.registered_name(model)}/{r['version']}"
        info = mlflow.models.get_model_info(uri)
        assert info.signature is not None
        assert info.signature.inputs.input_names() == list(SNAPSHOT_FIELDS)
        assert info.signature.outputs.input_names() == ["probability"]
        assert not set(info.signature.inputs.input_names()) & {"default_12m", "churn_6m",
                                                              "dissatisfied_3m"}
        example = mlflow.models.Model.load(uri).load_input_example(
            mlflow.artifacts.download_artifacts(uri))
        assert list(example.columns) == list(SNAPSHOT_FIELDS) and 1 <= len(example) <= 5
        # The signature is enforced: a snapshot without a required field is refused.
        pyfunc = mlflow.pyfunc.load_model(uri)
        with pytest.raises(Exception, match="bureau_score"):
            pyfunc.predict(snap.drop(columns=["bureau_score"]).head(3))
        assert np.array_equal(pyfunc.predict(snap.head(50))["probability"].to_numpy(),
                              ModelBundle.load(r["bundle"]).predict(snap.head(50)))


def test_the_logistic_family_is_registered_scored_and_explained(small_book, small_tables,
                                                               tmp_path, monkeypatch):
    import mlflow

    fast = {"max_rounds": 60, "early_stopping_rounds": 20, "learning_rate": 0.1}
    cfg = TrainConfig(shap_sample=200, splits=Splits(n_train=4), models={
        "churn": {"family": "logistic", "lgbm": fast},
        "satisfaction": {"family": "auto", "lgbm": fast}})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = {r["model"]: r for r in run_train(small_book, ["churn", "satisfaction"], cfg, uri,
                                            tmp_path / "art", tmp_path / "models", tmp_path)}
    churn = res["churn"]
    assert churn["family"] == "logistic"
    m = churn["metrics"]
    assert m["oot_auc"] == m["baseline_oot_auc"] and m["family_logistic"] == 1.0
    # `auto` keeps whichever family was better on validation (never OOT), and the OOT
    # metrics of both families are reported.
    s = res["satisfaction"]["metrics"]
    better = "logistic" if s["baseline_valid_auc"] > s["lightgbm_valid_auc"] else "lightgbm"
    assert res["satisfaction"]["family"] == better
    side = "baseline" if better == "logistic" else "lightgbm"
    assert s["oot_auc"] == s[f"{side}_oot_auc"] and s["valid_auc"] == s[f"{side}_valid_auc"]
    assert {"lightgbm_oot_auc", "baseline_oot_auc"} <= s.keys()

    folder = tmp_path / "models" / "churn" / f"v{churn['version']}"
    assert (folder / "linear_model.json").is_file() and not (folder / "model.txt").exists()
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))
    client = registry.configure(uri)
    run = client.get_run(churn["run_id"])
    assert run.data.params["family"] == "logistic" and run.data.tags["model_family"] == \
        "logistic"
    assert run.data.tags["family_reason"].startswith("configured (family: logistic)")
    sat = client.get_run(res["satisfaction"]["run_id"]).data.tags["family_reason"]
    assert sat.startswith("auto: ") and "validation AUC" in sat

    snap = build_snapshot(small_tables, "2024-06-30", with_labels=False)
    local = ModelBundle.load(folder)
    again = ModelBundle.load(local.save(tmp_path / "copy"))
    assert local.family == again.family == "logistic"
    p = local.predict(snap)
    assert np.array_equal(p, again.predict(snap))
    assert ((p > 0) & (p < 1)).all()
    reg = registry.load_bundle("churn")
    assert reg.family == "logistic" and np.array_equal(reg.predict(snap), p)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{registry.registered_name('churn')}@champion")
    assert np.array_equal(pyfunc.predict(snap)["probability"].to_numpy(), p)

    # The service warms and explains a bundle without a booster (no trees, no TreeSHAP).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what the service sets; undone after
    from postloan.decisions.scoring import Scorer

    scorer = Scorer({"churn": local}, load_strategy_config())
    rec = to_json_record(snap.iloc[0])
    assert scorer.predict([rec], ["churn"])["p_churn_6m"] == pytest.approx([p[0]], abs=1e-12)
    e = scorer.explain(rec, ["churn"])["churn"]
    assert e["probability"] == pytest.approx(p[0], abs=1e-12)
    total = e["bias"] + sum(c["contribution"] for c in e["contributions"])
    assert total == pytest.approx(e["raw_margin"], abs=1e-9)
    assert any(c["contribution"] != 0 for c in e["contributions"])
    # The scoring step explains it like a tree model: reasons from its contributions.
    scored = score_snapshot({"churn": local}, snap.head(200))
    np.testing.assert_array_equal(scored["p_churn_6m"].to_numpy(), p[:200])
    reasons = scored["reasons_churn"]
    assert all(len(r["up"]) + len(r["down"]) > 0 for r in reasons)
    X = local.features(snap.head(200))
    contrib, _ = local.explain(snap.head(200))
    np.testing.assert_allclose(contrib.sum(axis=1), local.margin(X), rtol=0, atol=1e-9)


def test_row_order_does_not_change_the_model(small_tables):
    """Bagging samples rows by position: training puts rows in one order first, so a
    partitioned book (stacked partition by partition) trains the same booster."""
    from postloan.data.snapshot import build_snapshots, data_range
    from postloan.models.training import resolve_splits, train_one

    start, end = data_range(small_tables)
    cfg = TrainConfig(shap_sample=100, splits=Splits(n_train=3),
                      models={"churn": {"family": "lightgbm"}})
    plan = resolve_splits(cfg.splits, "churn_6m", start, end)
    snap = build_snapshots(small_tables, sorted({d for v in plan.values() for d in v}))
    shuffled = snap.sample(frac=1.0, random_state=7).reset_index(drop=True)
    a = train_one("churn", snap, plan, cfg)
    b = train_one("churn", shuffled, plan, cfg)
    assert a.bundle.booster.model_to_string() == b.bundle.booster.model_to_string()
    assert a.metrics["oot_auc"] == b.metrics["oot_auc"]
