"""One month of `postloan cycle` on the demo book, without and with retraining (issue 22).

Runs the cycle on the last two month ends of the book (the second one monitors against
the first) with the registry's champions, then the second month again with retraining
due (the schedule at one month: the three models and the uplift models retrained with
the shipped training config, gated, promoted or not), and, as the peer in the same run,
plain `postloan score` (gate, score and decide, files) on the second month. The registry
is a copy of the project's MLflow store in a temp folder whose experiments write their
artifacts there too (the project's store is never touched); the cycle writes its ledger
beside it, the outputs go to the temp folder too.

    python benchmarks/cycle_month.py [--data data/raw] [--docs] [--no-retrain]

Goals: one cycle <= 2 min without retraining, <= 5 min with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import pandas as pd

from _common import machine, update_section, write_json
from pipelines.cycle import Paths, run_cycle
from pipelines.score import load_uplift, run_score
from postloan.data import io
from postloan.models.registry import load_champions
from postloan.operations.cycle import CycleConfig, Ledger
from postloan.settings import get_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--docs", action="store_true")
    ap.add_argument("--no-retrain", action="store_true",
                    help="measure the month without retraining only")
    args = ap.parse_args()
    load_start = round(os.getloadavg()[0], 1)
    s = get_settings()
    data = args.data or s.raw_dir
    if not s.tracking_uri.startswith("sqlite:///"):
        raise SystemExit("needs the project's SQLite MLflow store (make demo)")
    end = pd.Timestamp(io.read_manifest(data)["end"])
    months = [(end - pd.offsets.MonthEnd(1)).date().isoformat(), end.date().isoformat()]
    with tempfile.TemporaryDirectory(prefix="cycle-bench-") as d:
        tmp = Path(d)
        shutil.copy(s.tracking_uri[len("sqlite:///"):], tmp / "mlflow.db")
        own_artifacts(tmp / "mlflow.db", tmp / "mlartifacts")
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        paths = Paths(cycles=tmp / "cycles", books=tmp / "books", tracking_uri=uri,
                      artifact_root=tmp / "mlartifacts", models_dir=None, root=tmp)
        cfg = CycleConfig(steps={"retrain": False})
        ledger = Ledger(f"sqlite:///{tmp / 'runs.db'}")
        seconds = {}
        for m in months:
            t0 = time.perf_counter()
            res = run_cycle(m, paths, cfg, ledger, data=data)
            seconds[m] = time.perf_counter() - t0
            assert res.steps["write"] == "ok", res.steps
        steps = ledger.rows(months[1])
        t0 = time.perf_counter()
        run_score(data, months[1], tmp / "score", load_champions(tracking_uri=uri),
                  uplift=load_uplift(uri))
        score_s = time.perf_counter() - t0
        retrain = None
        if not args.no_retrain:
            # The same month again, now due on the schedule (one month since the first).
            due = CycleConfig(retrain_every_months=1)
            t0 = time.perf_counter()
            res = run_cycle(months[1], paths, due, ledger, data=data)
            retrain_s = time.perf_counter() - t0
            load_retrain = round(os.getloadavg()[0], 1)
            assert res.steps["retrain"] == "ok", res.steps
            # The peer again, right after: the load of a shared machine moves in minutes.
            t0 = time.perf_counter()
            run_score(data, months[1], tmp / "score2", load_champions(tracking_uri=uri),
                      uplift=load_uplift(uri))
            score_after = time.perf_counter() - t0
            rows = ledger.rows(months[1])
            rows = rows[rows["cycle_id"] == res.cycle_id]
            row = rows[rows["step"] == "retrain"].iloc[-1]
            peer = (score_s + score_after) / 2
            retrain = {"seconds": retrain_s, "ratio_to_score": retrain_s / peer,
                       "score_seconds_after": score_after, "load_avg_after": load_retrain,
                       "step_seconds": step_seconds(rows), "reason": res.retrain,
                       "gates": row["details"]["gates"],
                       "basis_switched": row["details"]["basis_switched"],
                       "goal_seconds": 300}
        ledger.close()
    n = int(steps.loc[steps["step"] == "score", "n_customers"].iloc[0])
    step_s = step_seconds(steps)
    out = {"months": months, "customers": n, "cycle_seconds": seconds,
           "score_seconds": score_s, "ratio_to_score": seconds[months[1]] / score_s,
           "step_seconds": step_s, "goal_seconds": 120, "with_retraining": retrain,
           "load_avg_start": load_start, "machine": machine()}
    write_json(out, "cycle_month")
    print(out)
    if args.docs:
        update_section("cycle_month", "\n".join([
            "## One month of `postloan cycle` (issue 22)",
            "",
            f"Demo book, {n:,} active customers, no retraining (`benchmarks/cycle_month.py`), "
            f"load average {out['machine']['load_avg']} on {out['machine']['cpus']} cores.",
            "",
            "| month | cycle | plain `postloan score` (peer) | ratio |",
            "|---|---|---|---|",
            f"| {months[0]} (no earlier month: no monitor) | {seconds[months[0]]:.0f} s | | |",
            f"| {months[1]} (monitor against {months[0]}) | {seconds[months[1]]:.0f} s | "
            f"{score_s:.0f} s | {out['ratio_to_score']:.2f} |",
            *([f"| {months[1]} again, retraining due (schedule) | "
               f"{retrain['seconds']:.0f} s | {score_s:.0f} s before, "
               f"{retrain['score_seconds_after']:.0f} s after (mean as the peer) | "
               f"{retrain['ratio_to_score']:.2f} |"] if retrain else []),
            "",
            "Steps of the second month (s): " + ", ".join(f"{k} {v}" for k, v in
                                                          step_s.items()) + ".",
            *(["Steps with retraining (s): " + ", ".join(
                f"{k} {v}" for k, v in retrain["step_seconds"].items()) + ". Retrained "
               "with the shipped training config (three models, uplift models on the "
               "logged outreach); gates: " + "; ".join(
                   f"{m} v{g.get('version', '-')} "
                   f"{'promoted' if g.get('promoted') else 'not promoted'}"
                   for m, g in retrain["gates"].items()) + ". Decision basis switched: "
               + (", ".join(f"{a} {b[0]} -> {b[1]}"
                            for a, b in retrain["basis_switched"].items()) or "none")
               + "."] if retrain else []),
            f"Goals: <= 120 s without retraining: "
            f"{'met' if seconds[months[1]] <= 120 else 'not met'}"
            + (f"; <= 300 s with retraining: "
               f"{'met' if retrain['seconds'] <= 300 else 'not met'}" if retrain else "")
            + f". Load average {load_start} when it started"
            + (f", {retrain['load_avg_after']} after the retraining cycle" if retrain else "")
            + f", {out['machine']['load_avg']} when it ended.",
        ]))


def step_seconds(rows: pd.DataFrame) -> dict[str, int]:
    """Seconds of each step of a month's ledger rows (the latest row of each step)."""
    rows = rows.drop_duplicates("step", keep="last")
    return {r["step"]: round((pd.Timestamp(r["ended"]) - pd.Timestamp(r["started"]))
                             .total_seconds()) for _, r in rows.iterrows()}


def own_artifacts(db: Path, root: Path) -> None:
    """Point the copied store's experiments at `root`: the retrained runs' artifacts go
    to the temp folder, never into the project's mlartifacts (old runs keep theirs)."""
    con = sqlite3.connect(db)
    with con:
        for exp_id, name in con.execute("SELECT experiment_id, name FROM experiments")\
                .fetchall():
            con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                        ((root / name).resolve().as_uri(), exp_id))
    con.close()


if __name__ == "__main__":
    main()
