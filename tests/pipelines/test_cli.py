"""The real `postloan` command: generate and snapshot end to end, errors as exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import cli_env
from postloan.models.bundle import is_bundle_folder

BIN = Path(sys.executable).parent / "postloan"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = cli_env(cwd)
    return subprocess.run([str(BIN), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("proj")
    r = run("generate", "--customers", "800", "--months", "18", "--seed", "5", cwd=root)
    assert r.returncode == 0, r.stderr
    return root


def test_generate_then_snapshot(project):
    raw = project / "data" / "raw"
    assert (raw / "manifest.json").exists()
    r = run("snapshot", "--as-of", "2023-06-30", "--as-of", "2023-09-30", cwd=project)
    assert r.returncode == 0, r.stderr
    snap = pd.read_parquet(project / "data" / "processed" / "snapshots.parquet")
    assert set(snap["as_of"].dt.strftime("%Y-%m-%d")) == {"2023-06-30", "2023-09-30"}
    assert "2023-06-30" in r.stdout


def test_refuses_to_overwrite_without_flag(project):
    r = run("generate", "--customers", "800", "--months", "18", cwd=project)
    assert r.returncode == 2
    assert "--overwrite" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args,needle", [
    (("snapshot", "--as-of", "2031-01-31", "--out", "x.parquet"), "outside the data"),
    (("snapshot", "--as-of", "yesterday-ish", "--out", "x.parquet"), "not a date"),
    (("snapshot", "--as-of", "2023-06-30", "--data", "nowhere", "--out", "x.parquet"),
     "data folder not found"),
    (("generate", "--customers", "5", "--out", "y"), "--customers"),
    (("generate", "--shock-month", "1999-01", "--out", "y"), "outside the simulated window"),
])
def test_bad_input_exits_2_with_a_message_and_no_output(project, args, needle):
    r = run(*args, cwd=project)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert not (project / "x.parquet").exists() and not (project / "y").exists()


def test_corrupt_table_exits_2(project, tmp_path):
    import shutil

    book = tmp_path / "book"
    shutil.copytree(project / "data" / "raw", book)
    (book / "surveys.parquet").write_bytes(b"not parquet at all")
    out = tmp_path / "s.parquet"
    r = run("snapshot", "--as-of", "2023-06-30", "--data", str(book), "--out", str(out),
            cwd=project)
    assert r.returncode == 2
    assert "surveys" in r.stderr and "unreadable" in r.stderr
    assert not out.exists()


@pytest.fixture(scope="module")
def trained_project(project):
    cfg = project / "fast.yaml"
    # Two OOT months of a small book: ECE is noisy (0.079 for churn on the current
    # simulator), so the gate's calibration bound is relaxed; this tests the CLI wiring.
    cfg.write_text("shap_sample: 200\nsplits:\n  n_train: 3\n  n_valid: 2\n  n_oot: 2\n"
                   "  min_history_months: 3\ngate:\n  max_ece: 0.2\n")
    r = run("train", "--target", "churn", "--config", str(cfg), cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    return project, r


def test_train_prints_metrics_and_registers(trained_project):
    project, r = trained_project
    assert "out-of-time metrics" in r.stdout and "churn" in r.stdout
    assert (project / "mlflow.db").exists()
    # Either family may win on validation; the folder holds that family's model file.
    assert is_bundle_folder(project / "models" / "churn" / "v1")
    m = run("models", cwd=project)
    assert m.returncode == 0 and "postloan-churn" in m.stdout and "champion" in m.stdout


def test_explain_prints_reasons_in_both_languages(trained_project):
    project, _ = trained_project
    snap = pd.read_parquet(project / "data" / "processed" / "snapshots.parquet")
    cid = int(snap.loc[snap["as_of"] == pd.Timestamp("2023-09-30"), "customer_id"].iloc[0])
    r = run("explain", "--target", "churn", "--customer-id", str(cid), "--as-of", "2023-09-30",
            cwd=project)
    assert r.returncode == 0, r.stderr
    assert "probability" in r.stdout and "raising the score" in r.stdout
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.stdout)  # Chinese text present
    bad = run("explain", "--target", "churn", "--customer-id", "1", "--as-of", "2023-09-30",
              cwd=project)
    assert bad.returncode == 2 and "not active" in bad.stderr
    missing = run("explain", "--target", "default_risk", "--customer-id", str(cid),
                  "--as-of", "2023-09-30", cwd=project)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_bad_training_config_is_named(project):
    cfg = project / "bad.yaml"
    cfg.write_text("splits:\n  n_train: many\n")
    r = run("train", "--target", "churn", "--config", str(cfg), cwd=project)
    assert r.returncode == 2
    assert "splits.n_train" in r.stderr and "Traceback" not in r.stderr
    r = run("train", "--target", "fraud", cwd=project)
    assert r.returncode == 2 and "fraud" in r.stderr


def test_score_writes_decisions_and_queue(trained_project, tmp_path):
    project, _ = trained_project
    # Only churn is trained in this project: scoring needs all three champions.
    r = run("score", "--as-of", "2023-12-31", "--out", str(tmp_path / "s"), cwd=project)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert not (tmp_path / "s").exists()
