"""Time and peak memory of the portfolio generator (simulate + validate + write parquet).

Each size runs in a fresh subprocess so its peak RSS is its own. Goal (issue 2):
1M customers x 24 months in at most 2 minutes and 8 GB on the 2-core machine.

    python benchmarks/generator.py [--sizes 200000 1000000] [--months 24]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from tqdm import tqdm

from _common import machine, update_section, write_json

CHILD = r"""
import json, resource, sys, time, tempfile, shutil
from pathlib import Path
from postloan.simulation import SimulationConfig, simulate
from postloan.data import io
n, m = int(sys.argv[1]), int(sys.argv[2])
out = Path(tempfile.mkdtemp()) / "book"
t0 = time.perf_counter()
tables = simulate(SimulationConfig(n_customers=n, n_months=m, seed=42))
t1 = time.perf_counter()
manifest = io.write_tables(tables, out, consume=True)
t2 = time.perf_counter()
size = sum(p.stat().st_size for p in out.iterdir())
shutil.rmtree(out.parent)
print(json.dumps({"simulate_s": t1 - t0, "write_s": t2 - t1, "total_s": t2 - t0,
                  "rows": {k: v["rows"] for k, v in manifest["tables"].items()},
                  "bytes_on_disk": size,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--months", type=int, default=24)
    args = ap.parse_args()
    runs = []
    for n in tqdm(args.sizes, desc="generator sizes"):
        p = subprocess.run([sys.executable, "-c", CHILD, str(n), str(args.months)],
                           capture_output=True, text=True, check=True)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        r.update(customers=n, months=args.months)
        runs.append(r)
    write_json({"machine": machine(), "runs": runs}, "generator")
    lines = ["## Portfolio generator", "",
             "Simulate, validate and write all tables (zstd parquet). Goal: 1M customers x 24 "
             "months in at most 120 s and 8 GB.", "",
             "| customers | months | simulate s | write s | total s | peak RSS GB | "
             "repayment rows | on disk MB |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['customers']:,} | {r['months']} | {r['simulate_s']:.1f} | "
                     f"{r['write_s']:.1f} | {r['total_s']:.1f} | {r['peak_rss_gb']:.2f} | "
                     f"{r['rows']['repayments']:,} | {r['bytes_on_disk'] / 1e6:.0f} |")
    update_section("generator", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
