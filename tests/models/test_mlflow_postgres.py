"""MLflow on a real PostgreSQL server (the production set-up): train, registry, promote,
score and serve with ``MLFLOW_TRACKING_URI=postgresql://...``.

The server is the session's throwaway one (``pg_server``, tests/postgres.py); the
password comes from ``PGPASSWORD`` (never from the URI), artifacts go to the project's
local artifact root. The book holds only the core tables, so the satisfaction model is
skipped and the registry serves default risk and churn. Kept small: 1,500 customers,
LightGBM capped at a few dozen rounds.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from postloan.data import io
from postloan.data import schema as S
from postloan.data.snapshot import build_snapshot, data_range, to_json_record
from postloan.models import registry
from postloan.simulation import SimulationConfig, simulate

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `serving` is a folder of the repo, not an installed package
    sys.path.insert(0, str(ROOT))

pytestmark = pytest.mark.integration

FAST = {"shap_sample": 200, "splits": {"n_train": 6},
        "models": {m: {"family": "lightgbm", "lgbm": {"max_rounds": 40}}
                   for m in ("default_risk", "churn")}}


def test_mlflow_tracking_and_registry_on_postgresql(pg_server, tmp_path, monkeypatch, caplog):
    from pipelines.cli import app

    book = tmp_path / "book"
    tables = simulate(SimulationConfig(n_customers=1500, n_months=30, seed=11))
    io.write_tables({k: tables[k] for k in S.CORE_TABLES}, book)
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(FAST))
    pg_server.create_database("mlflow")
    uri = pg_server.libpq_url("mlflow")  # plain postgresql://, no password in it
    assert pg_server.password not in uri
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(MLFLOW_TRACKING_URI=uri, PGPASSWORD=pg_server.password,
               POSTLOAN_ROOT=str(tmp_path), COLUMNS="200")
    outputs = []

    def cli(*args: str) -> str:
        res = CliRunner().invoke(app, list(args), env=env)
        outputs.append(res.output)
        assert res.exit_code == 0, res.output
        return res.output

    caplog.set_level(logging.INFO)
    out = cli("train", "--target", "all", "--data", str(book), "--config", str(cfg))
    assert "satisfaction skipped" in out
    models = cli("models")
    assert "postloan-churn" in models and "postloan-default-risk" in models.replace("_", "-")
    cli("promote", "--model", "churn", "--version", "1", "--force")
    cli("promote", "--model", "default_risk", "--version", "1", "--force")
    _, end = data_range(io.read_tables(book, names=["repayments"]))
    as_of = str(end.date())
    cli("score", "--as-of", as_of, "--data", str(book), "--out", str(tmp_path / "scores"))
    assert (tmp_path / "scores" / "queue.csv").is_file()
    # The rows live in PostgreSQL, the artifacts under the local artifact root.
    assert list((tmp_path / "mlartifacts").rglob("model.txt"))
    assert not (tmp_path / "mlflow.db").exists()

    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    client = registry.configure(uri)
    assert str(client.get_model_version_by_alias("postloan-churn", "champion").version) == "1"
    assert registry.models_to_load(client) == ["default_risk", "churn"]
    # No password in MLflow's params or tags.
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id]):
            blob = json.dumps({**run.data.params, **run.data.tags})
            assert pg_server.password not in blob

    # The service loads its champions from the PostgreSQL registry.
    before = os.environ.get("OMP_NUM_THREADS")
    import serving.service as service

    if before is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    from serving.schemas import ScoreRequest

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("POSTLOAN_ROOT", str(tmp_path))
    monkeypatch.setenv("POSTLOAN_INSECURE_LOCAL", "1")
    for var in ("POSTLOAN_MODEL_DIR", "POSTLOAN_API_TOKENS", "POSTLOAN_MODEL_ALIAS"):
        monkeypatch.delenv(var, raising=False)
    svc = service.PostloanService()
    meta = svc.metadata()["models"]
    assert sorted(meta) == ["churn", "default_risk"]
    assert all("postgresql" in m["source"] for m in meta.values())
    snap = build_snapshot(io.read_tables(book), as_of, with_labels=False)
    record = to_json_record(snap.iloc[0].to_dict())
    res = svc.score(ScoreRequest.model_validate_json(json.dumps({"customers": [record]})))
    assert 0.0 <= res.results[0].pd_12m <= 1.0
    assert res.results[0].p_dissatisfied_3m is None

    # A wrong password (a fresh process: this one's MLflow store pools its connections):
    # a clear error, exit 2, the password shown nowhere.
    res = subprocess.run([str(Path(sys.executable).parent / "postloan"), "models"],
                         env={**env, "PGPASSWORD": "not-the-password"}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    outputs.append(res.stdout + res.stderr)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "password authentication failed" in " ".join((res.stdout + res.stderr).split())
    for text in [*outputs, caplog.text]:
        for secret in (pg_server.password, "not-the-password"):
            assert secret not in text
