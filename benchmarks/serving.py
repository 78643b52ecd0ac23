"""Serving latency and throughput on loopback (issue 5), against `mlflow models serve`.

Starts the service (`bentoml serve serving.service:PostloanService`) on a free
127.0.0.1 port with the champions of a bundle folder, and measures with keep-alive
httpx clients: one customer on ``/score`` (three models, reasons, strategy) over
``--n-single`` sequential requests; ``/predict`` with the default-risk model only (one
model, no reasons: the same work as the MLflow server); a batch of 100 on ``/score``;
throughput of ``--clients`` concurrent clients. The peer is the default-risk champion
served by ``mlflow models serve`` from the registry (``--tracking-uri``), fed the same
customers. An in-process breakdown shows where a single request's time goes.

    python benchmarks/serving.py [--model-dir models] [--data data/raw]
        [--tracking-uri sqlite:///mlflow.db] [--n-single 1000] [--clients 8] [--docs]

Goals: single customer, three models with reasons, p50 <= 8 ms and p99 <= 25 ms;
same-work p50 at least 3x lower than the MLflow server's.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as in the service (before LightGBM loads)

import argparse  # noqa: E402
import json  # noqa: E402
import secrets  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from _common import (  # noqa: E402
    ROOT,
    describe_models,
    machine,
    tree_count,
    update_section,
    write_json,
)
from postloan.data import io  # noqa: E402
from postloan.data.snapshot import (  # noqa: E402
    build_snapshot,
    data_range,
    to_json_record,
)
from postloan.settings import get_settings  # noqa: E402

# Before importing `serving`: this script's own folder (first on sys.path) holds a
# `serving.py` that would shadow the package.
if sys.path[0] != str(ROOT):
    sys.path.insert(0, str(ROOT))

from serving.process import (  # noqa: E402
    ServiceProcess,
    ServiceProcessError,
    child_env,
    free_port,
    stop_tree,
    wait_until_ready,
)


# ---------------------------------------------------------------------------- helpers
def stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"n": len(a), "p50_ms": float(np.percentile(a, 50)),
            "p90_ms": float(np.percentile(a, 90)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean()), "max_ms": float(a.max())}


def sequential(client: httpx.Client, path: str, bodies: list[dict], n: int,
               check: int = 200) -> list[float]:
    out = []
    for i in range(n):
        body = bodies[i % len(bodies)]
        t0 = time.perf_counter()
        r = client.post(path, json=body)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != check:
            raise SystemExit(f"{path}: {r.status_code} {r.text[:300]}")
    return out


def concurrent(url: str, headers: dict, path: str, bodies: list[dict], clients: int,
               n_total: int) -> dict:
    lat: list[float] = []
    lock = threading.Lock()
    counter = iter(range(n_total))

    def worker() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                r = c.post(path, json=bodies[i % len(bodies)])
                ms = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code} {r.text[:200]}")
                with lock:
                    lat.append(ms)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {**stats(lat), "clients": clients, "requests_per_s": len(lat) / wall}


def breakdown(model_dir: Path, records: list[dict], tmp: Path, n: int = 300) -> dict:
    """Milliseconds per step of one single-customer /score, in this process.

    The steps are the service's own (``postloan.decisions.scoring.Scorer``: arrays, no frames);
    ``whole_request`` is ``PostloanService._score`` plus the JSON of its answer, i.e.
    everything but BentoML's HTTP handling, and ``other`` what the steps leave out of it
    (strategy rules, audit line, response model).
    """
    saved = dict(os.environ)
    os.environ.update(POSTLOAN_MODEL_DIR=str(model_dir), POSTLOAN_INSECURE_LOCAL="1",
                      POSTLOAN_AUDIT_LOG=str(tmp / "breakdown-audit.jsonl"))
    try:
        from serving.schemas import ScoreRequest
        from serving.service import PostloanService

        from postloan.data.features import FEATURE_NAMES, features_from_records
        from postloan.models import explain

        svc = PostloanService()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    bundles = svc.scorer.bundles
    raw = [json.dumps({"customers": [r]}) for r in records[:n]]
    parsed = [ScoreRequest.model_validate_json(b) for b in raw]
    recs = [[c.model_dump() for c in p.customers] for p in parsed]

    def timed(fn) -> float:
        fn(0)
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        return (time.perf_counter() - t0) / n * 1000

    X = [features_from_records(r) for r in recs]
    out = {"validate_request": timed(lambda i: ScoreRequest.model_validate_json(raw[i])),
           "features": timed(lambda i: features_from_records(recs[i]))}
    for m, b in bundles.items():
        out[f"predict_{m}"] = timed(lambda i, b=b: b.predict_features(X[i]))
        out[f"treeshap_{m}"] = timed(
            lambda i, b=b: explain.contributions_array(b.booster, X[i]))
        contrib = [explain.contributions_array(b.booster, x)[:, :-1] for x in X]
        out[f"reason_texts_{m}"] = timed(
            lambda i, m=m, c=contrib: explain.reason_codes_array(m, c[i], X[i], FEATURE_NAMES))
    steps = sum(out.values())
    out["whole_request"] = timed(
        lambda i: svc._score(ScoreRequest.model_validate_json(raw[i])).model_dump_json())
    out["other"] = out["whole_request"] - steps
    out["trees"] = {m: tree_count(b) for m, b in bundles.items()}
    out["families"] = {m: b.family for m, b in bundles.items()}
    return out


# ---------------------------------------------------------------------------- main
def main() -> None:
    s = get_settings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=s.models_dir)
    ap.add_argument("--data", type=Path, default=s.raw_dir)
    ap.add_argument("--as-of", default=None, help="snapshot date (default: 6 months "
                    "before the end of the data)")
    ap.add_argument("--tracking-uri", default=s.tracking_uri,
                    help="registry holding postloan-default-risk@champion for the MLflow peer")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow peer")
    ap.add_argument("--n-single", type=int, default=1000)
    ap.add_argument("--n-batch", type=int, default=30)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--n-concurrent", type=int, default=1600)
    ap.add_argument("--workers", type=int, default=1, help="POSTLOAN_WORKERS of the service")
    ap.add_argument("--docs", action="store_true", help="also write docs/benchmarks.md")
    args = ap.parse_args()

    tables = io.read_tables(args.data)
    _, end = data_range(tables)
    as_of = args.as_of or (end - pd.DateOffset(months=6) + pd.offsets.MonthEnd(0))
    snap = build_snapshot(tables, as_of, with_labels=False)
    snap = snap.sample(n=min(1000, len(snap)), random_state=0).reset_index(drop=True)
    records = [to_json_record(r) for r in snap.to_dict("records")]
    print(f"{len(records)} customers as of {pd.Timestamp(as_of).date()}", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="postloan-bench-serving-"))
    token = secrets.token_urlsafe(32)
    server = ServiceProcess(
        {"POSTLOAN_MODEL_DIR": str(args.model_dir), "POSTLOAN_API_TOKENS": token,
         "POSTLOAN_AUDIT_LOG": str(tmp / "audit.jsonl"), "BENTOML_DO_NOT_TRACK": "true",
         "BENTOML_HOME": str(tmp / "bentoml"), "MLFLOW_DISABLE_TELEMETRY": "true"},
        workers=args.workers, log=tmp / "bentoml.log")
    url = server.url
    server.start()
    headers = {"Authorization": f"Bearer {token}"}
    results: dict = {"machine": machine(), "workers": args.workers,
                     "load_average_before": os.getloadavg(), "customers": len(records),
                     "as_of": str(pd.Timestamp(as_of).date()), "model_dir": str(args.model_dir)}
    try:
        try:
            results["startup_s"] = server.wait_ready(timeout=180)
        except ServiceProcessError as e:
            raise SystemExit(str(e)) from None
        singles = [{"customers": [r]} for r in records]
        batches = [{"customers": records[i:i + 100]} for i in range(0, len(records) - 99, 100)]
        pd_only = [{"customers": [r], "models": ["default_risk"]} for r in records]
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            sequential(c, "/score", singles, 50)  # warm-up
            print("single /score ...", flush=True)
            results["single_score"] = stats(sequential(c, "/score", singles, args.n_single))
            print("single /predict default_risk ...", flush=True)
            sequential(c, "/predict", pd_only, 50)
            results["single_predict_pd"] = stats(
                sequential(c, "/predict", pd_only, args.n_single))
            print("batch of 100 /score ...", flush=True)
            b = stats(sequential(c, "/score", batches, args.n_batch))
            results["batch100_score"] = {**b, "customers_per_s": 100 / (b["p50_ms"] / 1000)}
        print(f"{args.clients} concurrent clients /score ...", flush=True)
        results["concurrent_score"] = concurrent(url, headers, "/score", singles, args.clients,
                                                 args.n_concurrent)
    finally:
        server.stop()
    results["audit_lines"] = sum(1 for _ in (tmp / "audit.jsonl").open())
    print("/score with and without the uplift models, alternating ...", flush=True)
    results["uplift_overhead"] = uplift_overhead(args.model_dir, records, tmp,
                                                 args.n_single)

    if not args.no_mlflow:
        try:
            results["mlflow"] = mlflow_peer(args.tracking_uri, records, args.n_single, tmp)
        except (SystemExit, ServiceProcessError) as e:  # a comparison, not the subject
            print(f"MLflow peer skipped: {str(e)[:500]}", flush=True)
    print("in-process breakdown ...", flush=True)
    results["breakdown_ms"] = breakdown(args.model_dir, records, tmp)
    results["load_average_after"] = os.getloadavg()
    write_json(results, "serving")
    md = markdown(results)
    print(md)
    if args.docs:
        update_section("serving", md)


def uplift_overhead(model_dir: Path, records: list[dict], tmp: Path, n: int) -> dict:
    """Single-customer ``/score`` p50 of two services started side by side, one with the
    uplift champions (the one decision on learned effects) and one with the three models
    only (the constants), requests alternating between them so both see the same load."""
    bare = tmp / "models-no-uplift"
    bare.mkdir()
    for p in Path(model_dir).iterdir():
        if p.is_dir() and not p.name.startswith("uplift_"):
            (bare / p.name).symlink_to(p.resolve())
    token = secrets.token_urlsafe(32)
    servers = {name: ServiceProcess(
        {"POSTLOAN_MODEL_DIR": str(folder), "POSTLOAN_API_TOKENS": token,
         "BENTOML_DO_NOT_TRACK": "true", "BENTOML_HOME": str(tmp / f"bentoml-{name}"),
         "MLFLOW_DISABLE_TELEMETRY": "true"}, workers=1, log=tmp / f"bentoml-{name}.log")
        for name, folder in (("with_uplift", Path(model_dir)), ("constants_only", bare))}
    times: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for srv in servers.values():
            srv.start()
        for srv in servers.values():
            srv.wait_ready(timeout=180)
        headers = {"Authorization": f"Bearer {token}"}
        clients = {name: httpx.Client(base_url=srv.url, headers=headers, timeout=60)
                   for name, srv in servers.items()}
        try:
            for i in range(n + 50):
                body = {"customers": [records[i % len(records)]]}
                for name, c in clients.items():
                    t0 = time.perf_counter()
                    r = c.post("/score", json=body)
                    dt = (time.perf_counter() - t0) * 1000
                    r.raise_for_status()
                    if i >= 50:  # warm-up
                        times[name].append(dt)
        finally:
            for c in clients.values():
                c.close()
    finally:
        for srv in servers.values():
            srv.stop()
    out = {name: stats(v) for name, v in times.items()}
    out["p50_overhead_ms"] = out["with_uplift"]["p50_ms"] - out["constants_only"]["p50_ms"]
    out["load_average"] = os.getloadavg()
    return out


def mlflow_peer(uri: str, records: list[dict], n: int, tmp: Path) -> dict:
    """p50/p99 of the default-risk champion under `mlflow models serve`, same payload."""
    port = free_port()
    # `mlflow models serve` runs `uvicorn` from PATH: the one beside this Python.
    env = child_env({"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true",
                     "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                             f"{os.environ.get('PATH', '')}"})
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    log = tmp / "mlflow.log"
    ref = "models:/postloan-default-risk@champion"
    with log.open("w") as out:
        proc = subprocess.Popen([mlflow, "models", "serve", "-m", ref, "--env-manager",
                                 "local", "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        startup = wait_until_ready(proc, f"http://127.0.0.1:{port}/ping", log, timeout=180)
        bodies = [{"dataframe_records": [r]} for r in records]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            print("mlflow models serve ...", flush=True)
            sequential(c, "/invocations", bodies, 50)
            return {"model": ref, "startup_s": startup,
                    **stats(sequential(c, "/invocations", bodies, n))}
    finally:
        stop_tree(proc)


def markdown(r: dict) -> str:
    def row(name: str, x: dict, extra: str = "") -> str:
        return (f"| {name} | {x['n']} | {x['p50_ms']:.2f} | {x['p90_ms']:.2f} | "
                f"{x['p99_ms']:.2f} | {extra} |")

    c = r["concurrent_score"]
    lines = ["## Serving (loopback)", "",
             f"`bentoml serve serving.service:PostloanService` ({r['workers']} worker(s), "
             "OMP_NUM_THREADS=1) "
             f"with the champions of `{r['model_dir']}` "
             f"({describe_models(r['breakdown_ms']['trees'], r['breakdown_ms'].get('families', {}))}"
             f"); {r['customers']} distinct customers "
             f"as of {r['as_of']}, keep-alive httpx clients on the same machine; start-up "
             f"{r['startup_s']:.1f} s; 1-minute load average "
             f"{r['load_average_before'][0]:.1f} before, {r['load_average_after'][0]:.1f} "
             f"after (2 cores). Goals: one customer, three models with reasons, p50 "
             "<= 8 ms and p99 <= 25 ms; same work p50 >= 3x lower than `mlflow models serve`.",
             "", "| request | n | p50 ms | p90 ms | p99 ms | notes |", "|---|---|---|---|---|---|",
             row("`/score`, 1 customer (3 models + reasons + strategy)", r["single_score"]),
             row("`/predict`, 1 customer, default-risk only (no reasons)",
                 r["single_predict_pd"]),
             row("`/score`, batch of 100", r["batch100_score"],
                 f"{r['batch100_score']['customers_per_s']:.0f} customers/s"),
             row(f"`/score`, 1 customer, {c['clients']} concurrent clients", c,
                 f"{c['requests_per_s']:.0f} requests/s")]
    if "mlflow" in r:
        m = r["mlflow"]
        ratio = m["p50_ms"] / r["single_predict_pd"]["p50_ms"]
        lines.append(row("`mlflow models serve`, 1 customer, default-risk (same work)", m,
                         f"{ratio:.1f}x the postloan `/predict` p50"))
    if "uplift_overhead" in r:
        u = r["uplift_overhead"]
        lines.append(row("`/score`, 1 customer, with the uplift models (side by side)",
                         u["with_uplift"], f"+{u['p50_overhead_ms']:.2f} ms p50 over the "
                         "constants-only service (goal <= +1.0 ms)"))
        lines.append(row("`/score`, 1 customer, three models only (side by side)",
                         u["constants_only"], "requests alternate between the two services; "
                         f"load average {u['load_average'][0]:.1f}"))
    b = r["breakdown_ms"]
    steps = [k for k in b if k not in ("trees", "families")]
    lines += ["", "Where one `/score` customer's time goes (in process, ms):", "",
              "| " + " | ".join(steps) + " |", "|" + "---|" * len(steps),
              "| " + " | ".join(f"{b[k]:.2f}" for k in steps) + " |", "",
              f"The rest of the `/score` p50, {r['single_score']['p50_ms'] - b['whole_request']:.1f}"
              " ms, is the HTTP round trip through BentoML (parsing, middleware, access log, "
              "thread hand-off) and the client."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
