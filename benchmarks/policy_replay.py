"""Which outreach queue does the most good, judged on the simulator's own outcomes?

On the demo book, fork the simulation at an as-of date 12 months before the end and
replay it forward under each policy with common random numbers (`postloan
evaluate-policy`): the constants queue (strategy.yaml's fixed effects), PD only,
random (the strategy's candidates in random order) and no contact, at a few
capacities. Realised credit losses, churned value, complaints and contact costs come
from the simulated months; net benefit is against no contact, with 90% intervals over
replay seeds. The queues' scores are the simulator's true probabilities (`--scores
truth`), so the comparison is of the ranking rules, not of model error.

    python benchmarks/policy_replay.py [--customers 20000] [--months 36] [--seeds 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from _common import machine, update_section, write_json
from pipelines.generate import run_generate
from pipelines.policy import run_evaluate_policy
from postloan.synthetic import SimulationConfig

CAPACITIES = (100, 300, 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="postloan-bench-policy-"))
    sim = SimulationConfig(args.customers, args.months, seed=42)
    run_generate(sim, tmp / "raw")
    as_of = f"{sim.month_ends()[-13]:%Y-%m-%d}"
    t = time.perf_counter()
    out = run_evaluate_policy(tmp / "raw", as_of, CAPACITIES, args.seeds, scores="truth")
    seconds = time.perf_counter() - t
    s = out["summary"]
    write_json({"machine": machine(), "as_of": as_of, "customers": args.customers,
                "seeds": args.seeds, "seconds": round(seconds, 1),
                "summary": s.to_dict("records")}, "policy_replay")

    def iv(r: pd.Series, m: str) -> str:
        if pd.isna(r[f"{m}_lo"]):
            return f"{r[m]:,.0f}"
        return f"{r[m]:,.0f} [{r[f'{m}_lo']:,.0f}, {r[f'{m}_hi']:,.0f}]"

    lines = ["## Outreach policies replayed on the simulator", "",
             f"Demo book ({args.customers:,} customers), forked at {as_of} and replayed 12 "
             f"months under each policy with common random numbers, {args.seeds} replay "
             "seeds (90% intervals). Each queue is contacted in the month after the as-of; "
             "outcomes are the simulated ones (no strategy constant): credit loss of new "
             "defaults net of collateral, margin lost with prepaid loans, complaints "
             "(100 each), contact costs of the book's contact policy. Net benefit is "
             "against no contact. Queue scores: the simulator's true probabilities. "
             f"{seconds:,.0f} s for {len(out['runs'])} replays "
             "(`python benchmarks/policy_replay.py`).", "",
             "| K | policy | net benefit | credit loss | churned value | complaints | "
             "contact cost |", "|---|---|---|---|---|---|---|"]
    for _, r in s.sort_values(["capacity", "policy"]).iterrows():
        lines.append(f"| {r['capacity']} | {r['policy']} | {iv(r, 'net_benefit')} | "
                     f"{iv(r, 'credit_loss')} | {iv(r, 'churned_value')} | "
                     f"{iv(r, 'complaints')} | {r['contact_cost']:,.0f} |")
    update_section("policy-replay", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
