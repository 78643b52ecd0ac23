"""The data-quality gate in the runs (issue 14, done-when): the real `postloan score`
stops with exit code 4 on a book with the three feed faults and writes nothing, runs as
before on the untouched book, and goes ahead when the operator accepts the rules."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env
from postloan.data import io
from postloan.data.quality import DataExpectations
from postloan.data.quality.faults import three_feed_faults
from postloan.models.bundle import ModelBundle

BIN = Path(sys.executable).parent / "postloan"
AS_OF = "2025-06-30"  # the small book's last month end
RULES = ("bureau.completeness", "bureau.verified_monthly_income.scale",
         "activity.app_logins.scale")

pytestmark = pytest.mark.integration


def _score(root: Path, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN), "score", "--as-of", AS_OF, "--data", str(data), "--out", str(out),
         "--model-dir", str(root / "models"), *extra],
        cwd=root, env=cli_env(root), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def broken_book(small_tables, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("broken") / "raw"
    io.write_tables(three_feed_faults(small_tables, AS_OF), out, meta={"faults": "issue 14"})
    return out


def test_bundles_carry_their_training_expectations(trained):
    folder = Path(trained["results"]["default_risk"]["bundle"])
    assert (folder / "data_expectations.json").is_file()
    bundle = ModelBundle.load(folder)
    assert isinstance(bundle.expectations, DataExpectations)
    assert bundle.expectations.feeds["bureau"].completeness > 0.9
    assert set(bundle.expectations.reference_dates) <= set(
        bundle.metadata["splits"]["train"])


def test_score_stops_on_the_three_feed_faults(trained, broken_book, tmp_path):
    out = tmp_path / "scores"
    r = _score(trained["root"], broken_book, out)
    assert r.returncode == 4, r.stderr
    assert not out.exists() and not list(tmp_path.glob(".scores*"))
    for rule in RULES:
        assert rule in r.stderr
    assert "Traceback" not in r.stderr
    assert "e.g. customer_id=" in r.stderr  # example rows, never PII
    assert "national_id" not in r.stderr and "phone" not in r.stderr


def test_score_on_the_untouched_book_runs_as_before(trained, small_book, tmp_path):
    out = tmp_path / "scores"
    r = _score(trained["root"], small_book, out)
    assert r.returncode == 0, r.stderr
    dq = json.loads((out / "data_quality.json").read_text())
    assert dq["checked"] and dq["ok"] and dq["blocking"] == []
    assert (out / "decisions.parquet").is_file()


def test_accepted_faults_go_ahead_and_are_recorded(trained, broken_book, tmp_path):
    out = tmp_path / "scores"
    r = _score(trained["root"], broken_book, out, "--accept-data-issues", ",".join(RULES))
    assert r.returncode == 0, r.stderr
    dq = json.loads((out / "data_quality.json").read_text())
    assert dq["accepted"] == list(RULES)
    assert set(RULES) <= set(dq["accepted_findings"])
    assert dq["ok"]


def test_partition_engine_stops_too(trained, broken_book, tmp_path):
    out = tmp_path / "scores"
    r = _score(trained["root"], broken_book, out, "--engine", "local", "--partitions", "2")
    assert r.returncode == 4, r.stderr
    assert not out.exists()
    assert "bureau.verified_monthly_income.scale" in r.stderr


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], cwd=root, env=cli_env(root), capture_output=True,
                          text=True, timeout=600)


def test_stress_and_train_stop_too(trained, broken_book, tmp_path):
    root = trained["root"]
    out = tmp_path / "stress"
    r = _cli(root, "stress", "--scenario", "mild", "--as-of", AS_OF, "--data", str(broken_book),
             "--model-dir", str(root / "models"), "--out", str(out))
    assert r.returncode == 4, r.stderr
    assert not out.exists() and "activity.app_logins.scale" in r.stderr
    # Training checks the book against the registry's champion before any MLflow run.
    versions = sorted(p.name for p in (root / "models" / "churn").iterdir())
    r = _cli(root, "train", "--target", "churn", "--data", str(broken_book))
    assert r.returncode == 4, r.stderr
    assert "bureau.completeness" in r.stderr
    assert sorted(p.name for p in (root / "models" / "churn").iterdir()) == versions


def _monitor(trained, data: Path, out: Path) -> list[dict]:
    from pipelines.monitor import run_monitor
    from postloan.models.store import load_bundles_from_dir
    from postloan.operations.monitoring import load_monitoring_config

    bundles = load_bundles_from_dir(trained["root"] / "models")
    return run_monitor(data, "2024-12-31", AS_OF, bundles, load_monitoring_config(), out)


def test_monitor_calls_the_feed_faults_a_data_fault(trained, broken_book, tmp_path):
    out = tmp_path / "drift.html"
    results = _monitor(trained, broken_book, out)
    assert {r["diagnosis"] for r in results} == {"data fault"}
    assert all("do not retrain" in r["action"] for r in results)
    assert any("bureau.completeness" in x for x in results[0]["diagnosis_reasons"])
    page = out.read_text()
    # Feed checks come first in the report, naming the rules.
    assert page.index("Feed checks") < page.index("Verdict per model")
    assert "activity.app_logins.scale" in page
    for r in results:  # CBPE beside the (not yet matured) realised figures
        assert 0.5 < r["estimate"]["auc"] < 1 and r["realised_auc"] is None


def test_monitor_calls_a_macro_shock_a_population_shift(trained, tmp_path):
    from conftest import SMALL
    from postloan.simulation import Shock, simulate

    shocked = dataclasses.replace(SMALL, shock=Shock(month_index=24))  # from 2025-01
    book = tmp_path / "shocked"
    io.write_tables(simulate(shocked), book)
    results = {r["model"]: r for r in _monitor(trained, book, tmp_path / "drift.html")}
    assert results["default_risk"]["diagnosis"] == "population shift", results["default_risk"]
    assert all(r["diagnosis"] != "data fault" for r in results.values())
    assert any("unemployment" in x for x in results["default_risk"]["diagnosis_reasons"])
