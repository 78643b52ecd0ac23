"""Scale-out benchmarks: snapshots, training per target, scoring throughput, local vs Dask.

Every step runs in a fresh subprocess that samples the RSS of its whole process tree
(itself plus any Dask worker processes) so its peak memory is its own. Steps:

* a book of ``--customers`` (default 200k) x 36 months, plain and partitioned;
* snapshots for one as-of date: local in memory, local streaming over the partitions,
  Dask with 2 workers x 1 thread;
* training per target (local engine: shared training snapshots, then LightGBM with early
  stopping, calibration, baseline, OOT evaluation and SHAP per target);
* three-model scoring without reasons on the local engine (goal >= 100,000 customers/s)
  with its profile (features, predict per model, calibration);
* batch score (snapshot, three models, reasons, strategy, queue, parquet output) on a
  ``--score-customers`` book: local engine held to 1 thread vs Dask 2 workers x 1 thread
  (goal: speed-up >= 1.6), and the same without reasons on the big book.

    python benchmarks/scale.py [--customers 200000] [--score-customers 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import RESULTS, describe_models, machine, tree_count, update_section, write_json

MONTHS = 36
AS_OF = "2025-12-31"  # last month end of a 36-month book starting 2023-01
N_PARTS = 8


# ----------------------------------------------------------------------------- child side
class PeakRss:
    """Peak RSS (GB) of this process and all its descendants, sampled every 50 ms."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _sample(self) -> int:
        import psutil

        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._sample())
        return self.peak / 1024**3


def _warm() -> None:
    """Import the scoring stack and JIT-compile TreeSHAP, as a long-running worker has."""
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    import postloan.decisions.batch  # noqa: F401
    import postloan.decisions.strategy  # noqa: F401
    import postloan.scale  # noqa: F401
    from postloan.models import explain

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4},
                        lgb.Dataset(X, (X["a"] > 0).astype(int)), num_boost_round=2)
    explain.contributions(booster, X)


class _cluster:
    """A warmed-up LocalCluster of 2 single-threaded workers (start-up is not timed)."""

    def __enter__(self):
        from postloan import scale

        self._cm = scale.dask_client(n_workers=2, threads_per_worker=1)
        client = self._cm.__enter__()
        client.run(_warm)
        return client

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def child(step: str, work: Path, args: dict) -> dict:
    import numpy as np

    from postloan import scale
    from postloan.data import io

    _warm()
    rss = PeakRss()
    r: dict = {"step": step, "load_avg_1m_before": os.getloadavg()[0]}
    if step == "prepare":
        from postloan.simulation import SimulationConfig, simulate

        t0 = time.perf_counter()
        tables = simulate(SimulationConfig(n_customers=args["n"], n_months=MONTHS, seed=42))
        io.write_tables(tables, work / "raw", meta={"seed": 42}, consume=True)
        del tables
        t1 = time.perf_counter()
        scale.partition_book(work / "raw", work / "part", N_PARTS)
        r.update(generate_s=t1 - t0, partition_s=time.perf_counter() - t1)
    elif step == "snapshot-local":
        from postloan.data.snapshot import build_snapshot

        t0 = time.perf_counter()
        snap = build_snapshot(io.read_tables(work / "raw"), AS_OF)
        io.write_frame_atomic(snap, work / "out" / "snap-local.parquet")
        r.update(seconds=time.perf_counter() - t0, rows=len(snap))
    elif step in ("snapshot-stream", "snapshot-dask"):
        t0 = time.perf_counter()
        if step == "snapshot-stream":
            res = scale.snapshot_book(work / "part", [AS_OF], work / "out" / step,
                                       scale.LocalRunner())
        else:
            with _cluster() as client:
                t0 = time.perf_counter()  # cluster start-up not counted
                res = scale.snapshot_book(work / "part", [AS_OF], work / "out" / step,
                                           scale.DaskRunner(client))
        r.update(seconds=time.perf_counter() - t0, rows=res["rows"])
    elif step == "train":
        import pandas as pd

        from postloan.data.snapshot import build_snapshot, data_range
        from postloan.models.bundle import MODELS
        from postloan.models.training import TrainConfig, resolve_splits, train_one

        cfg = TrainConfig()
        t0 = time.perf_counter()
        tables = io.read_tables(work / "raw")
        start, end = data_range(tables)
        plan = {m: resolve_splits(cfg.splits, MODELS[m], start, end) for m in MODELS}
        dates = sorted({d for s in plan.values() for v in s.values() for d in v})
        snaps = {d: build_snapshot(tables, d) for d in dates}
        del tables
        r["snapshots_s"] = time.perf_counter() - t0
        r["n_dates"] = len(dates)
        r["models"] = {}
        for m in MODELS:
            t1 = time.perf_counter()
            snap = pd.concat([snaps[d] for v in plan[m].values() for d in v], ignore_index=True)
            out = train_one(m, snap, plan[m], cfg)
            out.bundle.save(work / "models" / m)
            r["models"][m] = {"seconds": time.perf_counter() - t1, "rows": len(snap),
                              "oot_auc": out.metrics["oot_auc"],
                              "trees": tree_count(out.bundle), "family": out.bundle.family}
    elif step == "score-profile":
        from postloan.data.features import build_features
        from postloan.data.snapshot import build_snapshot
        from postloan.decisions.batch import score_snapshot
        from postloan.models.store import load_bundles_from_dir

        snap = build_snapshot(io.read_tables(work / "raw"), AS_OF, with_labels=False)
        bundles = load_bundles_from_dir(Path(args["models"]))
        r["trees"] = {m: tree_count(b) for m, b in bundles.items()}
        r["families"] = {m: b.family for m, b in bundles.items()}
        score_snapshot(bundles, snap.iloc[:1000], with_reasons=False)  # warm-up
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            score_snapshot(bundles, snap, with_reasons=False)
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        X = build_features(snap)
        prof = {"features_s": time.perf_counter() - t0}
        for m, b in bundles.items():
            t0 = time.perf_counter()
            raw = b.margin(X)
            prof[f"predict_{m}_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            b.calibrator.transform(1.0 / (1.0 + np.exp(-raw)))
            prof[f"calibrate_{m}_s"] = time.perf_counter() - t0
        r.update(seconds=best, rows=len(snap), per_s=len(snap) / best, profile=prof,
                 threads=os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())))
    elif step in ("score-local1", "score-dask2"):
        book = work / "part"
        out = work / "out" / f"{step}-{args['reasons']}"
        t0 = time.perf_counter()
        if step == "score-local1":
            res = scale.score_book(book, AS_OF, out, args["models"], scale.LocalRunner(),
                                    with_reasons=args["reasons"])
        else:
            with _cluster() as client:
                t0 = time.perf_counter()
                res = scale.score_book(book, AS_OF, out, args["models"],
                                        scale.DaskRunner(client), with_reasons=args["reasons"])
        sec = time.perf_counter() - t0
        n = res["manifest"]["rows"]
        r.update(seconds=sec, rows=n, per_s=n / sec, reasons=args["reasons"])
    r["peak_rss_gb"] = rss.stop()
    return r


# ----------------------------------------------------------------------------- parent side
def run_step(step: str, work: Path, threads: int | None = None, **args) -> dict:
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    args = {k: str(v) if isinstance(v, Path) else v for k, v in args.items()}
    p = subprocess.run([sys.executable, __file__, "--child", step, "--work", str(work),
                        "--args", json.dumps(args)], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{p.stderr[-4000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    print(f"  {step}: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in r.items() if not isinstance(v, dict)),
          flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--score-customers", type=int, default=50_000)
    ap.add_argument("--steps", nargs="+", default=["snapshot", "train", "score"],
                    choices=["snapshot", "train", "score"],
                    help="steps to run; the others keep their figures from results/scale.json")
    ap.add_argument("--models", type=Path,
                    help="bundle folder: trained models are kept there; without the train "
                    "step, scoring uses it")
    ap.add_argument("--child")
    ap.add_argument("--work")
    ap.add_argument("--args", default="{}")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, Path(a.work), json.loads(a.args))))
        return

    old_path = RESULTS / "scale.json"
    result = json.loads(old_path.read_text()) if old_path.exists() else {}
    if set(a.steps) != {"snapshot", "train", "score"} and not result:
        raise SystemExit("partial runs need an earlier results/scale.json")
    if "train" not in a.steps and "score" in a.steps and not a.models:
        raise SystemExit("scoring without the train step needs --models DIR")
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="postloan-scale-"))
    big, small = tmp / "big", tmp / "small"
    try:
        print(f"book of {a.customers:,} customers x {MONTHS} months", flush=True)
        result["prepare"] = run_step("prepare", big, n=a.customers)
        if "snapshot" in a.steps:
            result["snapshot"] = {s: run_step(f"snapshot-{s}", big)
                                  for s in ("local", "stream", "dask")}
        models = a.models or big / "models"
        if "train" in a.steps:
            result["train"] = run_step("train", big)
            if a.models:
                shutil.copytree(big / "models", a.models, dirs_exist_ok=True)
        if "score" in a.steps:
            result["score_profile"] = run_step("score-profile", big, models=models)
            fast = {e: run_step(f"score-{e}", big, threads=1, models=models, reasons=False)
                    for e in ("local1", "dask2")}
            print(f"book of {a.score_customers:,} customers for score + reasons", flush=True)
            prep_small = run_step("prepare", small, n=a.score_customers)
            full = {e: run_step(f"score-{e}", small, threads=1, models=models, reasons=True)
                    for e in ("local1", "dask2")}
            result["score_no_reasons"] = fast
            result["score_reasons"] = {"customers": a.score_customers, "prepare": prep_small,
                                       **full}
            result["speedup_dask2_vs_local1"] = {
                "with_reasons": full["dask2"]["per_s"] / full["local1"]["per_s"],
                "without_reasons": fast["dask2"]["per_s"] / fast["local1"]["per_s"]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.update(machine=machine(), customers=a.customers, months=MONTHS, as_of=AS_OF,
                  partitions=N_PARTS,
                  goals={"three_model_scoring_per_s": 100_000, "dask2_speedup": 1.6})
    result.setdefault("runs_s", {})[",".join(a.steps)] = time.perf_counter() - t_start
    write_json(result, "scale")
    update_section("scale", render(result))
    print(render(result))


def render(r: dict) -> str:
    s, t, p = r["snapshot"], r["train"], r["score_profile"]
    prof = p["profile"]
    predict = sum(v for k, v in prof.items() if k.startswith("predict_"))
    calib = sum(v for k, v in prof.items() if k.startswith("calibrate_"))
    fr, fa = r["score_reasons"], r["score_no_reasons"]
    sp = r["speedup_dask2_vs_local1"]
    lines = [
        "## Scale out (local and Dask engines)", "",
        f"`benchmarks/scale.py`: a book of {r['customers']:,} customers x {r['months']} months "
        f"(generated in {r['prepare']['generate_s']:.1f} s; split into {r['partitions']} "
        f"customer partitions in {r['prepare']['partition_s']:.1f} s), as-of {r['as_of']}. "
        "Each step in its own process; peak memory is the RSS of the whole process tree "
        "(Dask workers included). Dask: a LocalCluster of 2 worker processes x 1 thread "
        "(start-up, imports and numba's TreeSHAP compilation not counted, in either engine). Generator timings at 200k and 1M customers: see the "
        "generator section. *load avg*: the machine's 1-minute load average when the step "
        "started (2 cores; above 2, other processes were competing for the CPU and the "
        "figures, the Dask speed-up above all, are pessimistic).", "",
        "| step | engine | seconds | customers | per second | peak RSS GB | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label in (("local", "local, whole book in memory"),
                        ("stream", "local, streaming 1 partition at a time"),
                        ("dask", "Dask 2 x 1 thread")):
        x = s[name]
        lines.append(f"| snapshot, one as-of date | {label} | {x['seconds']:.1f} | "
                     f"{x['rows']:,} | {x['rows'] / x['seconds']:,.0f} | "
                     f"{x['peak_rss_gb']:.2f} | {x['load_avg_1m_before']:.1f} |")
    lines.append(f"| three-model scores, no reasons (features + 3 predicts + calibration) | "
                 f"local, {p['threads']} threads | {p['seconds']:.2f} | {p['rows']:,} | "
                 f"**{p['per_s']:,.0f}** | {p['peak_rss_gb']:.2f} | {p['load_avg_1m_before']:.1f} |")
    for e, label in (("local1", "local, 1 thread"), ("dask2", "Dask 2 x 1 thread")):
        x = fa[e]
        lines.append(f"| batch score, no reasons (read, snapshot, score, strategy, write) | "
                     f"{label} | {x['seconds']:.1f} | {x['rows']:,} | {x['per_s']:,.0f} | "
                     f"{x['peak_rss_gb']:.2f} | {x['load_avg_1m_before']:.1f} |")
    for e, label in (("local1", "local, 1 thread"), ("dask2", "Dask 2 x 1 thread")):
        x = fr[e]
        lines.append(f"| batch score + reasons ({fr['customers']:,}-customer book) | {label} | "
                     f"{x['seconds']:.1f} | {x['rows']:,} | {x['per_s']:,.0f} | "
                     f"{x['peak_rss_gb']:.2f} | {x['load_avg_1m_before']:.1f} |")
    lines += [
        "", f"Speed-up of Dask 2 x 1 thread over the local engine held to 1 thread: "
        f"**{sp['with_reasons']:.2f}x** with reasons, {sp['without_reasons']:.2f}x without "
        "(goal >= 1.6x). Three-model scoring without reasons: "
        f"**{p['per_s']:,.0f} customers/s** (goal >= 100,000): features "
        f"{prof['features_s']:.2f} s, tree predictions {predict:.2f} s, calibration "
        f"{calib:.3f} s for {p['rows']:,} customers; models: "
        + describe_models(p.get("trees", {}), p.get("families", {}))
        + f" (load average {p['load_avg_1m_before']:.1f} on 2 cores when measured). "
        "Tree predictions (`ModelBundle.margin`: postloan's predictor, bit-identical to "
        f"LightGBM's raw scores) are {predict / p['seconds']:.0%} of the time, so the "
        "throughput falls in proportion to the champions' total number of trees "
        f"({sum(p.get('trees', {}).values())} here, trained on this book).", "",
        f"Training per target on {r['customers']:,} customers (local engine; the "
        f"{t['n_dates']} training/validation/OOT snapshots are built once in "
        f"{t['snapshots_s']:.1f} s and shared; peak RSS {t['peak_rss_gb']:.2f} GB; load "
        f"average {t['load_avg_1m_before']:.1f} when it started):", "",
        "| model | seconds | snapshot rows | trees | OOT AUC |", "|---|---|---|---|---|",
    ]
    for m, x in t["models"].items():
        lines.append(f"| {m} | {x['seconds']:.1f} | {x['rows']:,} | "
                     f"{x['trees'] if x.get('family', 'lightgbm') == 'lightgbm' else 'logistic'} | "
                     f"{x['oot_auc']:.4f} |")
    runs = "; ".join(f"{k.replace(',', ' + ')}: {v / 60:.1f} min"
                     for k, v in r.get("runs_s", {}).items())
    lines += ["", "How the figures grow with workers, and the memory limits: "
              f"[scale.md](scale.md). Run times of the script (steps run): {runs}."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
