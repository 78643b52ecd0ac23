"""Scoring by customer id against the same request as a full record (issue 16).

Materialises the book's snapshot at one as-of date into the online store, twice: an
embedded SQLite file and a throwaway PostgreSQL server (tests/postgres.py: initdb +
pg_ctl in a temp folder). Then, for each store, starts the service on a free loopback
port (`python -m serving`) and sends one customer to ``/score`` (three models, reasons,
strategy) alternately as a full record and as ``{"customer_ids": [id]}``, over the same
customers, so both are measured side by side in one run under the same load.

    python benchmarks/by_id.py [--model-dir models] [--data data/raw] [--n 1000] [--docs]

Goal: by id, p50 at most 1.5 ms above the same request sent as a full record, with the
SQLite store and with PostgreSQL.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import secrets  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from _common import ROOT, machine, update_section, write_json  # noqa: E402
from postloan.data import io  # noqa: E402
from postloan.data.online import SnapshotStore  # noqa: E402
from postloan.data.snapshot import build_snapshot, data_range, to_json_record  # noqa: E402
from postloan.settings import get_settings  # noqa: E402

if sys.path[0] != str(ROOT):  # `serving` the package, not benchmarks/serving.py
    sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))  # the throwaway PostgreSQL server of the tests

from serving.process import ServiceProcess  # noqa: E402

from postgres import PostgresServer  # noqa: E402


def _p(a: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(a), q))


def measure(url: str, headers: dict, records: list[dict], n: int) -> dict:
    """Alternate full-record and by-id requests for the same customers; ms per request."""
    full, by_id = [], []
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        for i in range(n + 50):
            rec = records[i % len(records)]
            times = []
            for body in ({"customers": [rec]}, {"customer_ids": [rec["customer_id"]]}):
                t0 = time.perf_counter()
                r = c.post("/score", json=body)
                times.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise SystemExit(f"/score: {r.status_code} {r.text[:300]}")
            if i >= 50:  # the first 50 pairs warm up
                full.append(times[0])
                by_id.append(times[1])
    out = {"n": n}
    for name, a in (("full_record", full), ("by_id", by_id)):
        out[name] = {"p50_ms": _p(a, 50), "p90_ms": _p(a, 90), "p99_ms": _p(a, 99)}
    out["p50_overhead_ms"] = out["by_id"]["p50_ms"] - out["full_record"]["p50_ms"]
    return out


def run_store(label: str, store_url: str, env_extra: dict, model_dir: Path,
              records: list[dict], n: int, tmp: Path) -> dict:
    token = secrets.token_urlsafe(32)
    env = {"POSTLOAN_MODEL_DIR": str(model_dir), "POSTLOAN_API_TOKENS": token,
           "POSTLOAN_ONLINE_STORE": store_url, "POSTLOAN_AUDIT_LOG": str(tmp / f"{label}.jsonl"),
           "BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "true", **env_extra}
    with ServiceProcess(env, log=tmp / f"{label}.log") as server:
        server.wait_ready(timeout=180)
        print(f"{label}: measuring ...", flush=True)
        return measure(server.url, {"Authorization": f"Bearer {token}"}, records, n)


def markdown(r: dict) -> str:
    lines = [
        "## Scoring by customer id (online snapshot store)", "",
        f"`python benchmarks/by_id.py --docs`: one customer on `/score` (three models, "
        f"reasons, strategy), sent alternately as a full record and by id, "
        f"{r['sqlite']['n']} pairs per store, {r['customers']:,} customers materialised "
        f"as of {r['as_of']}; load average {r['load_average_before'][0]:.1f} before, "
        f"{r['load_average_after'][0]:.1f} after. Goal: by id p50 at most 1.5 ms above "
        "the full record.", "",
        "| store | full record p50 / p99 (ms) | by id p50 / p99 (ms) | p50 overhead (ms) | "
        "goal |", "|---|---|---|---|---|"]
    for key, name in (("sqlite", "SQLite (embedded)"), ("postgresql", "PostgreSQL 15")):
        x = r[key]
        lines.append(
            f"| {name} | {x['full_record']['p50_ms']:.2f} / {x['full_record']['p99_ms']:.2f} "
            f"| {x['by_id']['p50_ms']:.2f} / {x['by_id']['p99_ms']:.2f} "
            f"| {x['p50_overhead_ms']:+.2f} | {'met' if x['p50_overhead_ms'] <= 1.5 else 'NOT met'} |")
    lines += ["", f"Materialising: SQLite {r['materialize_s']['sqlite']:.1f} s, PostgreSQL "
              f"{r['materialize_s']['postgresql']:.1f} s for {r['customers']:,} customers."]
    return "\n".join(lines)


def main() -> None:
    s = get_settings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=s.models_dir)
    ap.add_argument("--data", type=Path, default=s.raw_dir)
    ap.add_argument("--n", type=int, default=1000, help="request pairs per store")
    ap.add_argument("--docs", action="store_true", help="also write docs/benchmarks.md")
    args = ap.parse_args()

    tables = io.read_tables(args.data)
    _, end = data_range(tables)
    as_of = end - pd.DateOffset(months=6) + pd.offsets.MonthEnd(0)
    snap = build_snapshot(tables, as_of, with_labels=False)
    sample = snap.sample(n=min(1000, len(snap)), random_state=0)
    records = [to_json_record(r) for r in sample.to_dict("records")]
    tmp = Path(tempfile.mkdtemp(prefix="postloan-bench-byid-"))
    res: dict = {"machine": machine(), "load_average_before": os.getloadavg(),
                 "customers": len(snap), "as_of": str(as_of.date()), "materialize_s": {}}

    sqlite_url = f"sqlite:///{tmp / 'online.db'}"
    t0 = time.perf_counter()
    SnapshotStore(sqlite_url).materialize(snap, "bench")
    res["materialize_s"]["sqlite"] = time.perf_counter() - t0
    res["sqlite"] = run_store("sqlite", sqlite_url, {}, args.model_dir, records, args.n, tmp)

    with PostgresServer() as pg:
        pg_url = pg.create_database("online")
        with pg.password_env():
            t0 = time.perf_counter()
            SnapshotStore(pg_url).materialize(snap, "bench")
            res["materialize_s"]["postgresql"] = time.perf_counter() - t0
        res["postgresql"] = run_store("postgresql", pg_url, {"PGPASSWORD": pg.password},
                                      args.model_dir, records, args.n, tmp)
    res["load_average_after"] = os.getloadavg()
    write_json(res, "by_id")
    md = markdown(res)
    print(md)
    if args.docs:
        update_section("by_id", md)


if __name__ == "__main__":
    main()
