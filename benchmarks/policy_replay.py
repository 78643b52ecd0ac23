"""Which outreach queue does the most good, judged on the simulator's own outcomes?

On the demo book, fork the simulation at an as-of date 12 months before the end and
replay it forward under each policy with common random numbers (`postloan
evaluate-policy`): the learned queue (net benefit from uplift models trained on the
randomised contacts logged before the as-of, outcomes known by it), the constants
queue (strategy.yaml's fixed effects), PD only,
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
from pipelines.policy import learned_queue_builder, run_evaluate_policy
from pipelines.train import run_train_uplift
from postloan.registry import download_bundle
from postloan.synthetic import SimulationConfig
from postloan.uplift import UpliftBundle

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
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    up = run_train_uplift(tmp / "raw", uri, tmp / "mlartifacts", None, tmp, until=as_of)
    bundles = {r["action"]: UpliftBundle.load(download_bundle(r["model"], version=r["version"]))
               for r in up}
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    out = run_evaluate_policy(tmp / "raw", as_of, CAPACITIES, args.seeds, scores="truth",
                              extra_queues={"learned": learned_queue_builder(bundles)})
    seconds = time.perf_counter() - t
    s = out["summary"]
    qini = {r["action"]: {k: v for k, v in r["metrics"].items()
                          if "qini" in k or "corr" in k or k.startswith("n_")} for r in up}
    goal = {}
    for k in CAPACITIES:
        row = s[s["capacity"] == k].set_index("policy")["net_benefit"]
        goal[str(k)] = bool(row["learned"] > row["constants"] and row["learned"] > row["pd_only"])
    write_json({"machine": machine(), "as_of": as_of, "customers": args.customers,
                "seeds": args.seeds, "seconds": round(seconds, 1),
                "uplift_train_seconds": round(train_s, 1), "uplift": qini,
                "learned_beats_constants_and_pd_only": goal,
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
             "against no contact. Queue scores: the simulator's true probabilities; "
             "`learned` ranks by the net benefit of the uplift models (DR-learner, "
             f"trained in {train_s:,.0f} s on the contacts logged before the as-of). "
             f"{seconds:,.0f} s for {len(out['runs'])} replays "
             "(`python benchmarks/policy_replay.py`).", "",
             "| K | policy | net benefit | credit loss | churned value | complaints | "
             "contact cost |", "|---|---|---|---|---|---|---|"]
    for _, r in s.sort_values(["capacity", "policy"]).iterrows():
        lines.append(f"| {r['capacity']} | {r['policy']} | {iv(r, 'net_benefit')} | "
                     f"{iv(r, 'credit_loss')} | {iv(r, 'churned_value')} | "
                     f"{iv(r, 'complaints')} | {r['contact_cost']:,.0f} |")
    verdict = ", ".join(f"K={k}: {'yes' if v else 'no'}" for k, v in goal.items())
    lines += ["", f"Learned queue above both the constants queue and PD only on net benefit: "
              f"{verdict}.", "",
              "Uplift models on held-out contacts: Qini of the learned ranking / the "
              "oracle's (ranked by the true effects of `contact_truth`), on the true "
              "effects, and the correlation of estimated with true effects:", "",
              "| action | outcome | held-out rows | Qini / oracle | corr(est, true) |",
              "|---|---|---|---|---|"]
    for a, m in qini.items():
        for lab in ("default_12m", "churn_6m", "dissatisfied_3m"):
            ratio, corr = m.get(f"{lab}_qini_true_ratio"), m.get(f"{lab}_effect_corr")
            lines.append(f"| {a} | {lab} | {m.get('n_heldout', 0):,.0f} | "
                         + ("-" if ratio is None or pd.isna(ratio) else f"{ratio:.2f}")
                         + " | " + ("-" if corr is None or pd.isna(corr) else f"{corr:.2f}")
                         + " |")
    update_section("policy-replay", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
