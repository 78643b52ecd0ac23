"""The real `postloan` command: generate and snapshot end to end, errors as exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BIN = Path(sys.executable).parent / "postloan"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "POSTLOAN_ROOT": str(cwd), "COLUMNS": "120"}
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
