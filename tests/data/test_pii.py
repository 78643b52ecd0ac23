"""PII never leaves its table: not in MLflow runs, artifacts, bundles or batch outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli_env
from postloan.data import schema as S

pytestmark = pytest.mark.integration


def _pii_values(tables: dict) -> list[bytes]:
    pii = tables["customers_pii"]
    values = []
    for col in ("phone", "national_id", "full_name", "address"):
        values += [str(v).encode() for v in pii[col].head(300)]
    return values


def test_no_pii_in_tracking_store_artifacts_or_bundles(trained, small_tables):
    root = Path(trained["root"])
    needles = _pii_values(small_tables)
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "mlflow.db" for p in files) and any(p.suffix == ".png" for p in files)
    for p in files:
        blob = p.read_bytes()
        hits = [n for n in needles if n in blob]
        assert not hits, f"PII value {hits[0]!r} found in {p}"


def test_pii_columns_are_never_features_or_snapshot_fields():
    from postloan.data.features import FEATURE_NAMES
    from postloan.data.snapshot import SNAPSHOT_FIELDS

    assert not S.PII_COLUMNS & set(FEATURE_NAMES)
    assert not S.PII_COLUMNS & set(SNAPSHOT_FIELDS)
    assert "customers_pii" not in S.REQUIRED_TABLES


def test_demo_monitor_and_stress_leave_no_pii_in_logs_reports_or_outputs(tmp_path):
    """After the whole job (`postloan demo`, then monitor and stress), only the PII table
    holds PII: not the console output, the reports, MLflow, the bundles or the scores."""
    import subprocess
    import sys

    import pandas as pd

    from postloan.data import io
    from postloan.data.snapshot import data_range

    exe = Path(sys.executable).parent / "postloan"
    env = cli_env(tmp_path, COLUMNS="160")
    logs = []

    def run(*args: str) -> None:
        r = subprocess.run([str(exe), *args], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        logs.append(r.stdout + r.stderr)

    run("demo", "--customers", "2500", "--months", "36", "--seed", "3")
    raw = tmp_path / "data" / "raw"
    tables = io.read_tables(raw, names=["customers_pii", "repayments"])
    _, end = data_range(tables)
    ref = (end - pd.DateOffset(months=6) + pd.offsets.MonthEnd(0)).strftime("%Y-%m-%d")
    run("monitor", "--reference", ref, "--current", end.strftime("%Y-%m-%d"))
    run("stress", "--scenario", "severe", "--as-of", end.strftime("%Y-%m-%d"))

    pii = tables["customers_pii"]
    needles = [str(v).encode() for col in ("phone", "national_id", "full_name", "address")
               for v in pii[col]]
    files = [p for p in tmp_path.rglob("*") if p.is_file()
             and p != raw / "customers_pii.parquet"]
    kinds = {p.suffix for p in files}
    assert {".html", ".png", ".parquet", ".csv", ".json", ".db"} <= kinds, kinds
    assert len(needles) == 4 * len(pii) > 0
    for blob, where in [*((p.read_bytes(), p) for p in files),
                        ("\n".join(logs).encode(), "console output")]:
        hits = [n for n in needles if n in blob]
        assert not hits, f"PII value {hits[0]!r} found in {where}"
