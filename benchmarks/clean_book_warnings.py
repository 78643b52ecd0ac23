"""False alarms of the data-quality gate on clean simulated books (issue 20, item 8).

A clean book (the simulator, nothing broken) must pass the gate without a single
warning at any as-of date, or users learn to ignore it. For each seed, a book of the
demo's size is simulated; the data expectations are learned exactly as `postloan train`
learns the default-risk champion's (its training split's snapshots); then the gate
(:func:`postloan.data.quality.check_book`, what `score` and `monitor` run) checks the book
at as-of dates across the window, from the first training date to the last month.
Every finding is counted by rule.

    python benchmarks/clean_book_warnings.py [--customers 20000] [--months 36]
        [--seeds 1 2 3 4 5] [--every 1]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import pandas as pd

from _common import RESULTS, machine, update_section, write_json
from postloan.data.features import build_features
from postloan.data.quality import check_book, learn_expectations, load_data_quality_config
from postloan.data.snapshot import build_snapshot, data_range
from postloan.models.bundle import MODELS
from postloan.models.training import load_train_config
from postloan.models.training.config import resolve_splits
from postloan.simulation import SimulationConfig, simulate


def run_seed(customers: int, months: int, seed: int, every: int) -> dict:
    """One clean book: the gate's findings at every checked as-of date."""
    tables = simulate(SimulationConfig(n_customers=customers, n_months=months, seed=seed))
    start, end = data_range(tables)
    splits = resolve_splits(load_train_config().splits, MODELS["default_risk"], start, end)
    snaps = {d: build_snapshot(tables, d, with_labels=False) for d in splits["train"]}
    ref = pd.concat(snaps.values(), ignore_index=True)
    exp = learn_expectations(tables, ref, build_features(ref))
    cfg = load_data_quality_config()
    checked = pd.date_range(splits["train"][0], end, freq="ME")[::every]
    per_date = []
    for d in checked:
        snap = snaps.get(d)
        if snap is None:
            snap = build_snapshot(tables, d, with_labels=False)
        report = check_book(tables, snap, exp, cfg, build_features(snap))
        per_date.append({"as_of": f"{d:%Y-%m-%d}",
                         "blocking": [f.rule for f in report.blocking],
                         "warnings": [f.rule for f in report.warnings],
                         "messages": [f.describe() for f in report.findings]})
    return {"seed": seed, "train_dates": [f"{d:%Y-%m-%d}" for d in splits["train"]],
            "dates": per_date}


def summarise(runs: list[dict]) -> dict:
    """Findings by rule over every seed and date."""
    hard, soft = Counter(), Counter()
    for r in runs:
        for d in r["dates"]:
            hard.update(d["blocking"])
            soft.update(d["warnings"])
    n_checks = sum(len(r["dates"]) for r in runs)
    flagged = sum(1 for r in runs for d in r["dates"] if d["blocking"] or d["warnings"])
    return {"checks": n_checks, "checks_with_findings": flagged,
            "hard": dict(hard.most_common()), "soft": dict(soft.most_common())}


def write_docs(result: dict) -> str:
    a, s = result["args"], result["summary"]
    lines = [
        "## Data-quality gate on clean books (false alarms)",
        "",
        f"`python benchmarks/clean_book_warnings.py` ({a['customers']:,} customers x "
        f"{a['months']} months, seeds {', '.join(map(str, a['seeds']))}; every "
        f"{a['every']} month(s) from the default-risk model's first training date to the "
        "book's last month; load average "
        f"{result['machine']['load_avg']}). Expectations learned as `postloan train` learns "
        "them; the gate run as `score` and `monitor` run it. Goal: no finding at all.",
        "",
        f"Checks: {s['checks']}; with any finding: {s['checks_with_findings']}.",
        "",
        "| rule | severity | checks it fired on |",
        "|---|---|---|",
    ]
    for sev in ("hard", "soft"):
        for rule, n in s[sev].items():
            lines.append(f"| `{rule}` | {sev} | {n} |")
    if not s["hard"] and not s["soft"]:
        lines.append("| (none) | - | 0 |")
    before = RESULTS / "clean_book_warnings_before.json"
    if before.exists():  # the gate before issue 20, same books and dates
        b = json.loads(before.read_text())["summary"]
        lines += ["", f"Before issue 20 (the same run on the earlier gate, "
                  "`results/clean_book_warnings_before.json`): "
                  f"{b['checks_with_findings']} of {b['checks']} checks had a finding: "
                  + ", ".join(f"`{r}` {n}" for r, n in {**b['hard'], **b['soft']}.items())
                  + "."]
    lines += ["", f"Run time {result['seconds']:.0f} s."]
    text = "\n".join(lines)
    update_section("clean-book-warnings", text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--every", type=int, default=1, help="check every n-th month end")
    ap.add_argument("--name", default="clean_book_warnings", help="results JSON name")
    ap.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    ap.add_argument("--docs-only", action="store_true",
                    help="rewrite the docs section from the saved JSON without re-running")
    args = ap.parse_args()
    if args.docs_only:
        print(write_docs(json.loads((RESULTS / f"{args.name}.json").read_text())))
        return
    t0 = time.perf_counter()
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(args.customers, args.months, seed, args.every))
        s = summarise(runs[-1:])
        print(f"seed {seed}: {s['checks_with_findings']}/{s['checks']} checks with findings; "
              f"hard {s['hard']}; soft {s['soft']} ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    args_d = {k: v for k, v in vars(args).items() if k not in ("name", "no_docs", "docs_only")}
    result = {"machine": machine(), "args": args_d, "summary": summarise(runs), "runs": runs,
              "seconds": time.perf_counter() - t0}
    write_json(result, args.name)
    if not args.no_docs:
        print(write_docs(result))
    else:
        print(result["summary"])


if __name__ == "__main__":
    main()
