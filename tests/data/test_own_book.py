"""A lender's own book: optional tables absent, its own vocabularies.

A simulated book is written without any optional table (and without PII), then read,
snapshotted, trained (real LightGBM, a real SQLite MLflow store), scored, served
in-process and stressed; a second book declares Chinese region names in its manifest.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from postloan.data import io
from postloan.data import schema as S
from postloan.data.features import build_features, code_maps, features_from_records
from postloan.data.snapshot import (
    FEATURE_FAMILIES,
    build_snapshot,
    data_range,
    to_json_record,
)
from postloan.decisions.batch import score_snapshot
from postloan.errors import DataValidationError
from postloan.models.bundle import MODELS, ModelBundle
from postloan.models.store import load_bundles_from_dir
from postloan.models.training import Splits, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `serving` is a folder of the repo, not an installed package
    sys.path.insert(0, str(ROOT))

FAST = TrainConfig(shap_sample=300, splits=Splits(n_train=6))
# Every test here trains models on the foreign book (its fixtures): not a unit test.
pytestmark = pytest.mark.integration
REGIONS_ZH = ("华北", "华南", "华东", "华西", "华中", "东北", "西南", "沿海")
ZH = dict(zip(S.REGIONS, REGIONS_ZH, strict=True))


def _as_of(book: Path) -> str:
    """An as-of date 13 months before the end: every label observed."""
    _, end = data_range(io.read_tables(book, names=["repayments"]))
    return str((end - pd.DateOffset(months=13) + pd.offsets.MonthEnd(0)).date())


@pytest.fixture(scope="module")
def core_book(small_tables, tmp_path_factory) -> Path:
    """The small book with only the core tables: every optional table and PII absent."""
    out = tmp_path_factory.mktemp("own") / "core"
    io.write_tables({k: small_tables[k] for k in S.CORE_TABLES}, out)
    return out


@pytest.fixture(scope="module")
def core_trained(core_book, tmp_path_factory) -> dict:
    """`train --target all` on the core-only book (real LightGBM and MLflow)."""
    from pipelines.train import run_train

    root = tmp_path_factory.mktemp("own-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    results = run_train(core_book, list(MODELS), FAST, uri, root / "mlartifacts",
                        root / "models", root)
    return {"uri": uri, "root": root, "models": root / "models",
            "results": {r["model"]: r for r in results}}


# ---------------------------------------------------------------------------- the book
def test_absent_tables_are_recorded_and_skipped_on_read(core_book):
    manifest = io.read_manifest(core_book)
    assert manifest["absent_tables"] == sorted([*S.OPTIONAL_TABLES, "customers_pii"])
    assert manifest["feature_families_present"] == dict.fromkeys(FEATURE_FAMILIES, False)
    assert manifest["vocabularies"]["region"] == list(S.REGIONS)
    tables = io.read_tables(core_book)  # validates the core tables
    assert sorted(tables) == sorted(S.CORE_TABLES)
    assert not any((core_book / f"{t}.parquet").exists() for t in S.OPTIONAL_TABLES)


def test_missing_files_are_errors_unless_declared_absent(core_book, small_book, tmp_path):
    import shutil

    # A file deleted from a book that declared it present is an error.
    full = tmp_path / "full"
    shutil.copytree(small_book, full)
    (full / "surveys.parquet").unlink()
    with pytest.raises(DataValidationError, match="file not found") as ei:
        io.read_tables(full)
    assert ei.value.table == "surveys"
    # A file present though the manifest declares the table absent is an error too.
    odd = tmp_path / "odd"
    shutil.copytree(core_book, odd)
    shutil.copy(small_book / "surveys.parquet", odd / "surveys.parquet")
    with pytest.raises(DataValidationError, match="declares the table absent"):
        io.read_tables(odd)


def test_a_core_table_cannot_be_absent(small_tables, tmp_path):
    with pytest.raises(DataValidationError, match="core table") as ei:
        io.write_tables({k: small_tables[k] for k in ("customers", "loans")}, tmp_path / "b")
    assert ei.value.table == "repayments"
    assert not (tmp_path / "b").exists()


def test_a_present_optional_table_may_be_empty(small_tables, tmp_path):
    tables = {k: small_tables[k] for k in S.REQUIRED_TABLES}
    tables["interactions"] = tables["interactions"].head(0)
    io.write_tables(tables, tmp_path / "b")
    back = io.read_tables(tmp_path / "b")
    assert len(back["interactions"]) == 0
    snap = build_snapshot(back, "2024-06-30")
    # An empty table is a fact (no complaint), not a missing feed: counts are 0.
    assert (snap["complaints_3m"] == 0).all()
    assert snap["dissatisfied_3m"].notna().all()  # surveys still observe the label


def test_snapshot_families_of_absent_tables_are_missing(core_book, small_book):
    as_of = "2024-06-30"
    snap = build_snapshot(io.read_tables(core_book), as_of)
    full = build_snapshot(io.read_tables(small_book), as_of)
    for family, fields in FEATURE_FAMILIES.items():
        for f in fields:
            assert snap[f].isna().all(), (family, f)
            assert full[f].notna().any(), (family, f)
    # Core fields and the core labels do not depend on the optional tables.
    for f in ("dpd_current", "total_balance", "n_missed_6m", "region", "main_product"):
        pd.testing.assert_series_equal(snap[f], full[f])
    pd.testing.assert_series_equal(snap["default_12m"], full["default_12m"])
    pd.testing.assert_series_equal(snap["churn_6m"], full["churn_6m"])
    assert snap["dissatisfied_3m"].isna().all()  # no surveys, no complaints: unobserved


# ---------------------------------------------------------------------------- models
def test_train_all_skips_satisfaction_with_a_reason(core_trained):
    res = core_trained["results"]
    assert set(res) == set(MODELS)
    reason = res["satisfaction"]["skipped"]
    assert "satisfaction skipped" in reason and "surveys" in reason and "interactions" in reason
    assert "\n" not in reason
    for model in ("default_risk", "churn"):
        assert res[model]["metrics"]["oot_auc"] > 0.6
        spec = json.loads((Path(res[model]["bundle"]) / "feature_spec.json").read_text())
        assert spec["feature_families_present"] == dict.fromkeys(FEATURE_FAMILIES, False)
        run = mlflow.tracking.MlflowClient(core_trained["uri"]).get_run(res[model]["run_id"])
        assert run.data.params["feature_families_absent"] == ",".join(sorted(FEATURE_FAMILIES))
        assert run.data.tags["feature_family.surveys"] == "absent (NaN)"
    assert not (core_trained["models"] / "satisfaction").exists()


def test_train_satisfaction_by_name_is_refused(core_book, tmp_path):
    from pipelines.train import run_train

    with pytest.raises(DataValidationError, match="lacks interactions, surveys"):
        run_train(core_book, ["satisfaction"], FAST, f"sqlite:///{tmp_path / 'm.db'}",
                  tmp_path, None, tmp_path, explicit=True)


def test_score_monitor_without_the_satisfaction_model(core_book, core_trained, tmp_path):
    from pipelines.monitor import run_monitor
    from pipelines.score import run_score
    from postloan.operations.monitoring import load_monitoring_config

    bundles = load_bundles_from_dir(core_trained["models"])
    assert sorted(bundles) == ["churn", "default_risk"]
    as_of = _as_of(core_book)
    out = run_score(core_book, as_of, tmp_path / "scores", bundles)
    dec = out["decisions"]
    assert len(dec) > 100
    assert dec["pd_12m"].between(0, 1).all() and dec["p_churn_6m"].between(0, 1).all()
    assert dec["p_dissatisfied_3m"].isna().all()  # no model: missing, never 0
    assert "service_recovery_call" not in set(dec["recommended_action"])
    assert (tmp_path / "scores" / "queue.csv").is_file()
    results = run_monitor(core_book, "2024-03-31", as_of, bundles,
                          load_monitoring_config(None), tmp_path / "drift.html")
    assert {r["model"] for r in results} == {"default_risk", "churn"}
    assert (tmp_path / "drift.html").is_file()


def test_the_service_scores_with_two_models(core_book, core_trained, monkeypatch):
    from serving.schemas import PredictRequest, ScoreRequest

    before = os.environ.get("OMP_NUM_THREADS")
    import serving.service as service

    if before is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    monkeypatch.setenv("POSTLOAN_MODEL_DIR", str(core_trained["models"]))
    monkeypatch.setenv("POSTLOAN_INSECURE_LOCAL", "1")
    monkeypatch.delenv("POSTLOAN_API_TOKENS", raising=False)
    svc = service.PostloanService()
    assert sorted(svc.metadata()["models"]) == ["churn", "default_risk"]
    assert svc.metadata()["feature_spec"]["feature_families_present"]["surveys"] is False
    snap = build_snapshot(io.read_tables(core_book), _as_of(core_book), with_labels=False)
    records = [to_json_record(r) for r in snap.head(3).to_dict("records")]
    out = svc.score(ScoreRequest.model_validate_json(json.dumps({"customers": records})))
    bundles = load_bundles_from_dir(core_trained["models"])
    batch = score_snapshot(bundles, snap.head(3), with_reasons=False)
    np.testing.assert_allclose([r.pd_12m for r in out.results], batch["pd_12m"])
    assert all(r.p_dissatisfied_3m is None for r in out.results)
    assert set(out.results[0].reasons) == {"default_risk", "churn"}
    refused = svc.predict(PredictRequest.model_validate_json(
        json.dumps({"customers": records[:1], "models": ["satisfaction"]})))
    assert refused.status_code == 422
    assert b"not served" in refused.body


def test_stress_without_macro_exits_2_with_the_reason(core_book, core_trained, tmp_path):
    from pipelines.cli import app

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    res = CliRunner().invoke(app, ["stress", "--scenario", "mild", "--as-of",
                                   _as_of(core_book), "--data", str(core_book),
                                   "--model-dir", str(core_trained["models"]),
                                   "--out", str(tmp_path / "stress")],
                             env={**env, "POSTLOAN_ROOT": str(tmp_path), "COLUMNS": "200"})
    assert res.exit_code == 2, res.output
    assert "macro" in res.output and "cannot be computed" in res.output
    assert not (tmp_path / "stress").exists()


# ---------------------------------------------------------------------------- vocabularies
@pytest.fixture(scope="module")
def zh_book(small_tables, tmp_path_factory) -> Path:
    """The small book with its regions in Chinese, declared in the manifest."""
    tables = {k: v.copy() for k, v in small_tables.items() if k in S.REQUIRED_TABLES}
    for t in ("customers", "macro"):
        tables[t]["region"] = tables[t]["region"].map(ZH)
    out = tmp_path_factory.mktemp("zh") / "book"
    io.write_tables(tables, out, vocabularies={"region": list(REGIONS_ZH)})
    return out


def test_declared_vocabularies_validate_the_book(zh_book, small_tables, tmp_path):
    manifest = io.read_manifest(zh_book)
    assert manifest["vocabularies"]["region"] == list(REGIONS_ZH)
    assert "华东" in (zh_book / "manifest.json").read_text(encoding="utf-8")
    tables = io.read_tables(zh_book)
    assert set(tables["customers"]["region"]) <= set(REGIONS_ZH)
    # The default names are now outside the book's contract.
    with pytest.raises(DataValidationError, match="allowed categories") as ei:
        io.write_tables({k: small_tables[k] for k in S.CORE_TABLES}, tmp_path / "b",
                        vocabularies={"region": list(REGIONS_ZH)})
    assert ei.value.table == "customers" and ei.value.column == "region"
    # Products carry domain rules: a lender maps its codes onto them, it cannot add any.
    with pytest.raises(DataValidationError, match="fixed") as ei:
        S.resolve_vocabularies({"product": ["consumer", "home_loan"]})
    assert ei.value.column == "product"
    with pytest.raises(DataValidationError, match="unknown category column"):
        S.resolve_vocabularies({"province": ["x"]})


def test_book_vocabulary_trains_and_scores_unknown_is_missing(zh_book, tmp_path, caplog):
    from pipelines.train import run_train

    root = tmp_path
    res = run_train(zh_book, ["default_risk"], FAST, f"sqlite:///{root / 'm.db'}",
                    root / "art", root / "models", root, explicit=True)[0]
    bundle = ModelBundle.load(Path(res["bundle"]))
    assert bundle.categories["region"] == list(REGIONS_ZH)
    assert res["metrics"]["oot_auc"] > 0.6
    snap = build_snapshot(io.read_tables(zh_book), _as_of(zh_book), with_labels=False)
    X = bundle.features(snap)
    np.testing.assert_array_equal(
        X["region"].to_numpy(), snap["region"].map({r: i for i, r in enumerate(REGIONS_ZH)}))
    p = bundle.predict(snap)
    assert np.isfinite(p).all()

    # An unknown region at scoring time: missing, with a warning, never a crash.
    odd = snap.head(4).copy()
    odd.loc[odd.index[0], "region"] = "火星"
    with caplog.at_level(logging.WARNING, logger="postloan.data.features"):
        X_odd = bundle.features(odd)
    assert np.isnan(X_odd["region"].iloc[0]) and not X_odd["region"].iloc[1:].isna().any()
    assert "火星" in caplog.text
    scored = score_snapshot({"default_risk": bundle}, odd)
    assert scored["pd_12m"].between(0, 1).all()
    # The service's array path gives the same features and flags the value.
    from postloan.data.features import unknown_categories

    records = [to_json_record(r) for r in odd.to_dict("records")]
    maps = code_maps(bundle.categories)
    np.testing.assert_array_equal(features_from_records(records, maps), X_odd.to_numpy())
    assert unknown_categories(records, maps) == [["region=火星"], [], [], []]
    # A default-contract model sees the Chinese names as unknown (missing), not as codes.
    assert build_features(odd)["region"].isna().all()


def test_stress_scenarios_use_the_books_regions(zh_book, tmp_path):
    """A built-in scenario naming the simulator's regions is refused on a book with its
    own (nothing written); one naming the book's regions shocks exactly them."""
    from pipelines.stress import run_stress
    from postloan.errors import ConfigError
    from postloan.operations.stress import Scenario, apply_scenario, load_scenario

    with pytest.raises(ConfigError, match="north"):
        run_stress(zh_book, _as_of(zh_book), load_scenario("severe"), {}, tmp_path / "s")
    assert not (tmp_path / "s").exists()
    snap = build_snapshot(io.read_tables(zh_book), _as_of(zh_book), with_labels=False)
    east = (snap["region"] == REGIONS_ZH[0]).to_numpy()
    assert 0 < east.sum() < len(snap)
    out = apply_scenario(snap, Scenario(name="z", unemployment_points={REGIONS_ZH[0]: 3.0}))
    du = (out["unemployment_rate"] - snap["unemployment_rate"]).to_numpy()
    np.testing.assert_allclose(du[east], 3.0)
    np.testing.assert_allclose(du[~east], 0.0)


def test_partition_engine_accepts_the_book(core_book, core_trained, tmp_path):
    from postloan import scale as engine

    book = tmp_path / "parts"
    m = engine.partition_book(core_book, book, 3)
    assert m["absent_tables"] == list(S.OPTIONAL_TABLES)
    as_of = _as_of(core_book)
    engine.snapshot_book(book, [as_of], tmp_path / "snap", engine.LocalRunner())
    parts = engine.read_output(tmp_path / "snap").sort_values("customer_id")
    whole = build_snapshot(io.read_tables(core_book), as_of)
    pd.testing.assert_frame_equal(parts.reset_index(drop=True)[whole.columns], whole,
                                  check_dtype=False)
    res = engine.score_book(book, as_of, tmp_path / "scores", core_trained["models"],
                            engine.LocalRunner(), with_reasons=False)
    assert res["manifest"]["rows"] == len(whole)
    assert set(res["manifest"]["model_versions"]) == {"default_risk", "churn"}


def test_postgresql_tracking_uri_uses_the_installed_driver_and_masks_passwords():
    import importlib.util

    from postloan.data.database import mask_url
    from postloan.models import registry

    uri = "postgresql://bank@127.0.0.1:5432/mlflow"
    want = uri if importlib.util.find_spec("psycopg2") or not importlib.util.find_spec(
        "psycopg") else "postgresql+psycopg://bank@127.0.0.1:5432/mlflow"
    assert registry.store_uri(uri) == want
    assert registry.store_uri("sqlite:///m.db") == "sqlite:///m.db"
    assert mask_url("postgresql://bank:s3cr%t@db:5432/mlflow") == \
        "postgresql://bank:***@db:5432/mlflow"
