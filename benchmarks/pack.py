"""Validation pack build time per model on the demo book (goal: <= 60 s per model).

Needs `make demo` first (the book in data/raw, the champions in the MLflow store). For
each champion, with a cold book (the snapshots read afresh, the worst case of
`postloan report`): the time to gather the pack's inputs (MLflow, snapshots at the
training, validation and out-of-time dates, month-by-month bootstrap, PSI/CSI by month,
stress scenarios) and to render it in English and in Chinese (figures included). The
peer, measured in the same run on the same book: the English model report it replaces
(`pipelines.report.run_report`, dependence plots and SHAP sample included).

    python benchmarks/pack.py [--models default_risk churn satisfaction]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import machine, update_section, write_json
from pipelines.report import Book, gather_pack, run_report
from postloan import reporting as reports
from postloan.models.bundle import MODELS
from postloan.settings import get_settings

GOAL_S = 60.0


def measure(model: str, uri: str, data: Path, models_dir: Path, out: Path) -> dict:
    t0 = time.perf_counter()
    p = gather_pack(model, tracking_uri=uri, book=Book(data), models_dir=models_dir)
    t1 = time.perf_counter()
    sizes = {}
    for lang in ("en", "zh"):
        html = reports.render_pack(p, lang)
        (out / f"{model}_{lang}.html").write_text(html, encoding="utf-8")
        sizes[lang] = len(html.encode())
    t2 = time.perf_counter()
    run_report(model, alias="champion", out=out / f"{model}_report.html", tracking_uri=uri,
               book=Book(data), log_to_run=False)
    t3 = time.perf_counter()
    oot = p.report.metadata.get("splits", {}).get("oot", [])
    return {"model": model, "version": p.report.version, "gather_s": round(t1 - t0, 1),
            "render_en_zh_s": round(t2 - t1, 1), "pack_s": round(t2 - t0, 1),
            "peer_report_s": round(t3 - t2, 1), "ratio": round((t2 - t0) / (t3 - t2), 2),
            "oot_months": len(oot), "oot_rows": int(p.monthly["n"].sum()),
            "html_kb": {k: v // 1024 for k, v in sizes.items()},
            "load_after": round(os.getloadavg()[0], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    args = ap.parse_args()
    s = get_settings()
    rows = []
    with tempfile.TemporaryDirectory(prefix="postloan-bench-pack-") as tmp:
        for m in args.models:
            rows.append(measure(m, s.tracking_uri, s.raw_dir, s.models_dir, Path(tmp)))
            print(rows[-1])
    res = {"machine": machine(), "goal_s": GOAL_S, "models": rows,
           "manifest_hash": Book(s.raw_dir).manifest.get("content_hash")}
    write_json(res, "pack")
    lines = ["## Validation pack (issue 21)", "",
             "`python benchmarks/pack.py` on the demo book (`make demo`: 20,000 customers x "
             "36 months). Per champion, with a cold book (snapshots rebuilt): gather the "
             "inputs (MLflow, snapshots at the training/validation/OOT dates, month-by-month "
             "bootstrap with 200 resamples, PSI/CSI by month, two stress scenarios), then "
             "render English and Chinese (all figures). Peer in the same run: the English "
             "model report the pack replaces (`run_report`). Goal: <= 60 s per model.", "",
             "| model | OOT months / rows | gather s | render en+zh s | pack s | peer report s "
             "| pack / peer | load after |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} v{r['version']} | {r['oot_months']} / {r['oot_rows']:,} "
                     f"| {r['gather_s']} | {r['render_en_zh_s']} | **{r['pack_s']}** "
                     f"| {r['peer_report_s']} | {r['ratio']} | {r['load_after']} |")
    worst = max(r["pack_s"] for r in rows)
    lines += ["", f"Slowest model {worst} s against the goal of {GOAL_S:.0f} s "
              f"({'met' if worst <= GOAL_S else 'NOT met'}); load average at the start "
              f"{res['machine']['load_avg']} on {res['machine']['cpus']} cores. `make demo` "
              "builds the three models' packs from one shared book (snapshots built once)."]
    update_section("pack", "\n".join(lines))


if __name__ == "__main__":
    main()
