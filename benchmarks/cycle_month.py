"""One month of `postloan cycle` on the demo book, without retraining (issue 22).

Runs the cycle on the last two month ends of the book (the second one monitors against
the first) with the registry's champions, and, as the peer in the same run, plain
`postloan score` (gate, score and decide, files) on the second month. The registry is a
copy of the project's MLflow store in a temp folder (the cycle writes its ledger beside
it), the outputs go to the temp folder too.

    python benchmarks/cycle_month.py [--data data/raw] [--docs]

Goal: one cycle <= 2 min without retraining.
"""

from __future__ import annotations

import argparse
import shutil
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
    args = ap.parse_args()
    s = get_settings()
    data = args.data or s.raw_dir
    if not s.tracking_uri.startswith("sqlite:///"):
        raise SystemExit("needs the project's SQLite MLflow store (make demo)")
    end = pd.Timestamp(io.read_manifest(data)["end"])
    months = [(end - pd.offsets.MonthEnd(1)).date().isoformat(), end.date().isoformat()]
    with tempfile.TemporaryDirectory(prefix="cycle-bench-") as d:
        tmp = Path(d)
        shutil.copy(s.tracking_uri[len("sqlite:///"):], tmp / "mlflow.db")
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        paths = Paths(cycles=tmp / "cycles", books=tmp / "books", tracking_uri=uri,
                      artifact_root=None, models_dir=None, root=tmp)
        cfg = CycleConfig(steps={"retrain": False})
        ledger = Ledger(f"sqlite:///{tmp / 'runs.db'}")
        seconds = {}
        for m in months:
            t0 = time.perf_counter()
            res = run_cycle(m, paths, cfg, ledger, data=data)
            seconds[m] = time.perf_counter() - t0
            assert res.steps["write"] == "ok", res.steps
        steps = ledger.rows(months[1])
        ledger.close()
        t0 = time.perf_counter()
        run_score(data, months[1], tmp / "score", load_champions(tracking_uri=uri),
                  uplift=load_uplift(uri))
        score_s = time.perf_counter() - t0
    n = int(steps.loc[steps["step"] == "score", "n_customers"].iloc[0])
    step_s = {r["step"]: round((pd.Timestamp(r["ended"]) - pd.Timestamp(r["started"]))
                               .total_seconds()) for _, r in steps.iterrows()}
    out = {"months": months, "customers": n, "cycle_seconds": seconds,
           "score_seconds": score_s, "ratio_to_score": seconds[months[1]] / score_s,
           "step_seconds": step_s, "goal_seconds": 120, "machine": machine()}
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
            "",
            "Steps of the second month (s): " + ", ".join(f"{k} {v}" for k, v in
                                                          step_s.items()) + ".",
            f"Goal: <= 120 s without retraining: "
            f"{'met' if seconds[months[1]] <= 120 else 'not met'}.",
        ]))


if __name__ == "__main__":
    main()
