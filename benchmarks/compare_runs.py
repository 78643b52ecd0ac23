"""Are two `make demo` runs the same? Tables, scores, decisions, queue, models and metrics.

A refactoring must not change behaviour: run `make demo` (or `postloan demo`) in two
checkouts, before and after, then

    python benchmarks/compare_runs.py BEFORE_ROOT AFTER_ROOT [--name wings]

compares, file by file, the generated book (`data/raw/*.parquet`), the snapshots
(`data/processed/snapshots.parquet`), every scoring output under
`data/processed/scores/` (scores, decisions, queue: parquet content and the CSV bytes),
the model files of every bundle under `models/` (LightGBM text or the logistic model,
calibrator, feature spec, uplift tables: the files that decide; JSON compared without
the keys that name a run, `run_id` and `git_commit`; `metadata.json`, which holds paths
and times, is left out), and every MLflow metric of every run in `mlflow.db` (runs matched by
experiment and run name, in start order). Frames are compared bit for bit (NaN equal
to NaN, same dtypes and column order).

Writes `benchmarks/results/compare_runs_<name>.json`; exits 1 when anything differs,
naming it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, update_section, write_json  # noqa: E402

MODEL_FILES = ("*.txt", "linear_model.json", "calibrator.json", "feature_spec.json",
               "data_expectations.json", "scorecard.json", "uplift.json")


def _frames_equal(a: Path, b: Path) -> str | None:
    """None when the two parquet files hold identical frames, else what differs."""
    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if list(x.columns) != list(y.columns):
        return f"columns differ: {sorted(set(x.columns) ^ set(y.columns))[:5]}"
    if x.shape != y.shape:
        return f"shape {x.shape} vs {y.shape}"
    if not x.dtypes.equals(y.dtypes):
        return "dtypes differ"
    try:
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    except AssertionError as e:
        return str(e).splitlines()[0][:200]
    return None


VOLATILE = frozenset({"run_id", "git_commit"})  # name the run, not what it computed


def _without_volatile(obj):
    if isinstance(obj, dict):
        return {k: _without_volatile(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_without_volatile(v) for v in obj]
    return obj


def _digest(path: Path) -> str:
    if path.suffix == ".json":
        canon = json.dumps(_without_volatile(json.loads(path.read_text("utf-8"))),
                           sort_keys=True)
        return hashlib.sha256(canon.encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compare_files(before: Path, after: Path) -> list[dict]:
    """One row per generated file: which, how compared, and what differs (None: same)."""
    rows = []
    patterns = [("data/raw", "*.parquet"), ("data/processed", "snapshots.parquet"),
                ("data/processed/scores", "**/*.parquet"), ("data/processed/scores", "**/*.csv")]
    patterns += [("models", f"*/v*/{p}") for p in MODEL_FILES]
    for folder, pattern in patterns:
        found_b = {p.relative_to(before) for p in (before / folder).glob(pattern)}
        found_a = {p.relative_to(after) for p in (after / folder).glob(pattern)}
        for rel in sorted(found_b | found_a):
            if rel not in found_a or rel not in found_b:
                rows.append({"file": str(rel), "how": "exists",
                             "diff": "only in " + ("before" if rel in found_b else "after")})
                continue
            if rel.suffix == ".parquet":
                rows.append({"file": str(rel), "how": "frame",
                             "diff": _frames_equal(before / rel, after / rel)})
            else:
                same = _digest(before / rel) == _digest(after / rel)
                rows.append({"file": str(rel), "how": "json" if rel.suffix == ".json" else "bytes",
                             "diff": None if same else "bytes differ"})
    return rows


def _metrics(db: Path) -> dict[tuple[str, str, int], dict[str, float]]:
    """(experiment, run name, n-th run of that name) -> {metric key@step: value}."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        runs = con.execute(
            "select r.run_uuid, e.name, r.name from runs r join experiments e "
            "on r.experiment_id = e.experiment_id order by r.start_time, r.run_uuid").fetchall()
        metrics = con.execute("select run_uuid, key, step, value from metrics").fetchall()
    by_run: dict[str, dict[str, float]] = {}
    for run, key, step, value in metrics:
        by_run.setdefault(run, {})[f"{key}@{step}"] = value
    out, seen = {}, {}
    for run, exp, name in runs:
        n = seen[(exp, name)] = seen.get((exp, name), -1) + 1
        out[(exp, name, n)] = by_run.get(run, {})
    return out


def compare_metrics(before: Path, after: Path) -> list[dict]:
    """One row per MLflow run: metrics that differ or are missing on one side."""
    b, a = _metrics(before / "mlflow.db"), _metrics(after / "mlflow.db")
    rows = []
    for key in sorted(set(b) | set(a)):
        mb, ma = b.get(key), a.get(key)
        run = f"{key[0]} / {key[1]} #{key[2]}"
        if mb is None or ma is None:
            rows.append({"run": run, "n_metrics": len(mb or ma), "diff": "only in "
                         + ("before" if ma is None else "after")})
            continue
        bad = sorted(k for k in set(mb) | set(ma)
                     if not (mb.get(k) == ma.get(k)
                             or (pd.isna(mb.get(k)) and pd.isna(ma.get(k)))))
        rows.append({"run": run, "n_metrics": len(mb),
                     "diff": None if not bad else f"{len(bad)} differ: {bad[:4]}"})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path, help="project root of the first run")
    ap.add_argument("after", type=Path, help="project root of the second run")
    ap.add_argument("--name", default="runs", help="results file suffix")
    ap.add_argument("--docs", metavar="WHAT", help="also write a docs/benchmarks.md section "
                    "saying what the two runs are (e.g. 'before and after the wings move')")
    args = ap.parse_args()
    for root in (args.before, args.after):
        if not (root / "mlflow.db").is_file() or not (root / "data" / "raw").is_dir():
            print(f"error: {root} holds no demo run (mlflow.db, data/raw): run `make demo` "
                  "there first", file=sys.stderr)
            return 2
    files = compare_files(args.before, args.after)
    runs = compare_metrics(args.before, args.after)
    bad = [r for r in files + runs if r["diff"]]
    result = {"before": str(args.before), "after": str(args.after),
              "files_compared": len(files), "runs_compared": len(runs),
              "metrics_compared": sum(r["n_metrics"] for r in runs),
              "identical": not bad, "differences": bad, "machine": machine()}
    path = write_json(result, f"compare_runs_{args.name}")
    print(f"{len(files)} files, {len(runs)} MLflow runs ({result['metrics_compared']} "
          f"metric values) compared: " + ("identical" if not bad else f"{len(bad)} differ"))
    for r in bad[:20]:
        print(f"  {r.get('file') or r.get('run')}: {r['diff']}")
    print(f"results: {path}")
    if args.docs:
        verdict = "identical" if not bad else f"**{len(bad)} differ** (see the JSON)"
        update_section(f"compare-runs-{args.name}", (
            f"## Two `make demo` runs compared: {args.docs}\n\n"
            f"`python benchmarks/compare_runs.py BEFORE AFTER --name {args.name}`: "
            f"{len(files)} generated files (book, snapshots, scores, decisions, queue, model "
            f"files) and {len(runs)} MLflow runs ({result['metrics_compared']} metric values) "
            f"compared: {verdict}. Results: `benchmarks/results/compare_runs_{args.name}.json`."))
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
