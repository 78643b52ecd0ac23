"""PII never leaves its table: not in MLflow runs, artifacts, bundles or batch outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from postloan import schema as S

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
    from postloan.features import FEATURE_NAMES
    from postloan.snapshot import SNAPSHOT_FIELDS

    assert not S.PII_COLUMNS & set(FEATURE_NAMES)
    assert not S.PII_COLUMNS & set(SNAPSHOT_FIELDS)
    assert "customers_pii" not in S.REQUIRED_TABLES
