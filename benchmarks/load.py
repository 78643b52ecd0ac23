"""Bounded load test of ``POST /score`` with locust (issue 8).

Starts the service (``bentoml serve serving.service:PostloanService``) on a free
127.0.0.1 port with the champions of a bundle folder and a throw-away token, then runs
locust headless (20 users, spawn rate 5, 60 s at most) posting the single customer of
``serving/example_request.json``. Records requests, RPS, p50/p95/p99 and failures to
``benchmarks/results/load.json`` (atomic write) and prints a markdown table.

    python benchmarks/load.py [--model-dir models] [--users 20] [--spawn-rate 5]
        [--seconds 60] [--workers 1]

Goal: zero failures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_json  # noqa: E402

# The repository root before this folder, whose `serving.py` would shadow the package.
sys.path.insert(0, str(ROOT))
from serving.process import ServiceProcess, ServiceProcessError  # noqa: E402

MAX_SECONDS = 60
LOCUSTFILE = textwrap.dedent('''
    import json, os
    from locust import HttpUser, constant, task

    BODY = json.loads(open(os.environ["LOAD_BODY"], encoding="utf-8").read())
    HEADERS = {"Authorization": "Bearer " + os.environ["LOAD_TOKEN"]}

    class Scorer(HttpUser):
        wait_time = constant(0)

        @task
        def score(self):
            with self.client.post("/score", json=BODY, headers=HEADERS,
                                  catch_response=True) as r:
                if r.status_code != 200 or len(r.json().get("results", [])) != 1:
                    r.failure(f"status {r.status_code}")
''')


def read_stats(prefix: Path) -> dict:
    """The ``Aggregated`` row of locust's ``<prefix>_stats.csv``."""
    with open(f"{prefix}_stats.csv", newline="", encoding="utf-8") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    agg = rows["Aggregated"]
    n = int(agg["Request Count"])
    return {"requests": n, "failures": int(agg["Failure Count"]),
            "rps": round(float(agg["Requests/s"]), 1),
            "p50_ms": float(agg["50%"]), "p95_ms": float(agg["95%"]),
            "p99_ms": float(agg["99%"]), "max_ms": round(float(agg["Max Response Time"]), 1),
            "mean_ms": round(float(agg["Average Response Time"]), 1)}


def markdown(r: dict) -> str:
    s = r["score"]
    return "\n".join([
        f"Load on `POST /score` (one customer; locust {r['users']} users, spawn rate "
        f"{r['spawn_rate']}/s, {r['seconds']} s, {r['workers']} worker(s)):",
        "",
        "| requests | failures | RPS | p50 ms | p95 ms | p99 ms | max ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s['requests']} | {s['failures']} | {s['rps']} | {s['p50_ms']:g} | "
        f"{s['p95_ms']:g} | {s['p99_ms']:g} | {s['max_ms']:g} |",
    ])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--spawn-rate", type=float, default=5)
    ap.add_argument("--seconds", type=int, default=MAX_SECONDS,
                    help=f"run time, at most {MAX_SECONDS}")
    ap.add_argument("--workers", type=int, default=1, help="POSTLOAN_WORKERS of the service")
    args = ap.parse_args()
    seconds = max(1, min(args.seconds, MAX_SECONDS))
    if not args.model_dir.is_dir():
        sys.exit(f"{args.model_dir}: not a folder (train first: `postloan train`)")
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="postloan-load-") as tmp_s:
        tmp = Path(tmp_s)
        locustfile = tmp / "locustfile.py"
        locustfile.write_text(LOCUSTFILE, encoding="utf-8")
        body = json.loads((ROOT / "serving" / "example_request.json").read_text("utf-8"))
        body = {"customers": body["customers"][:1]}
        (tmp / "body.json").write_text(json.dumps(body), encoding="utf-8")
        log = tmp / "serve.log"
        server = ServiceProcess(
            {"POSTLOAN_MODEL_DIR": str(args.model_dir.resolve()), "POSTLOAN_API_TOKENS": token,
             "POSTLOAN_AUDIT_LOG": str(tmp / "audit.jsonl"), "BENTOML_DO_NOT_TRACK": "true"},
            workers=args.workers, log=log)
        url = server.url
        server.start()
        try:
            try:
                server.wait_ready(timeout=120)
            except ServiceProcessError as e:
                sys.exit(str(e))
            env = {**os.environ, "LOAD_TOKEN": token, "LOAD_BODY": str(tmp / "body.json")}
            locust = Path(sys.executable).with_name("locust")
            run = subprocess.run(
                [str(locust), "-f", str(locustfile), "--headless", "-u", str(args.users),
                 "-r", str(args.spawn_rate), "-t", f"{seconds}s", "--host", url,
                 "--csv", str(tmp / "load"), "--only-summary", "--stop-timeout", "5",
                 "--loglevel", "WARNING"],
                cwd=tmp, env=env, capture_output=True, text=True, timeout=seconds + 60)
            stats = read_stats(tmp / "load")
        finally:
            server.stop()
        server_log = log.read_text(encoding="utf-8", errors="replace")
    result = {"users": args.users, "spawn_rate": args.spawn_rate, "seconds": seconds,
              "workers": args.workers, "locust_exit_code": run.returncode, "score": stats,
              "token_in_server_log": token in server_log,
              "server_tracebacks": server_log.count("Traceback"), "machine": machine()}
    path = write_json(result, "load")
    print(markdown(result))
    print(f"\nwritten: {path.relative_to(ROOT)}")
    return 0 if stats["failures"] == 0 and stats["requests"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
