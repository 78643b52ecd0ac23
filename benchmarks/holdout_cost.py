"""What the monthly cycle's holdout forgoes on the demo book: uniform against
value-weighted (issue 22, docs/operations.md).

Reads the newest decisions `make demo` scored (``data/processed/scores/<as-of>``). For
each capacity K: the candidates ``holdout_reach(K, holdout_share)`` deep, the outreach
rows of :func:`postloan.operations.cycle.assign_outreach` with each weighting, and the
expected net benefit forgone by the strategy's own valuation: the top K candidates' net
benefit less the candidates' net benefit weighted by their logged propensity of being
contacted (the expectation over the holdout draw, exactly). The largest
inverse-propensity weight a held-out row can carry is beside it.

    python benchmarks/holdout_cost.py [--capacities 100 200]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from _common import machine, update_section, write_json
from postloan.decisions.strategy import outreach_queue
from postloan.operations import cycle
from postloan.settings import get_settings


def expected_cost(decisions: pd.DataFrame, as_of: str, capacity: int, share: float,
                  weighting: str) -> dict:
    cand = outreach_queue(decisions, cycle.holdout_reach(capacity, share))
    rows = cycle.assign_outreach(decisions, cand, as_of, share, capacity, weighting)
    contact = rows.set_index("customer_id")["propensity"].reindex(cand["customer_id"])
    nb = cand["net_benefit"].to_numpy(float)
    top = cand["net_benefit"].nlargest(capacity).sum()
    return {"candidates": len(cand), "forgone": float(top - (contact.to_numpy() * nb).sum()),
            "top_value": float(top), "max_weight": float(1.0 / (1.0 - contact.max()))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--capacities", type=int, nargs="+", default=[100, 200])
    args = ap.parse_args()
    folder = max((get_settings().processed_dir / "scores").iterdir())
    if not (folder / "decisions.parquet").is_file():
        raise SystemExit(f"no decisions in {folder}: run `make demo` first")
    decisions = pd.read_parquet(Path(folder) / "decisions.parquet")
    share = cycle.load_cycle_config().holdout_share
    res = {str(k): {w: expected_cost(decisions, folder.name, k, share, w)
                    for w in cycle.HOLDOUT_WEIGHTINGS} for k in args.capacities}
    write_json({"machine": machine(), "as_of": folder.name, "holdout_share": share,
                "customers": len(decisions), "results": res}, "holdout_cost")
    lines = ["## What the cycle's holdout forgoes (issue 22)", "",
             f"`python benchmarks/holdout_cost.py` on the demo book's decisions of "
             f"{folder.name} ({len(decisions):,} customers), holdout share {share:.0%}: "
             "net benefit the strategy itself expects to forgo in a month by holding out "
             "instead of contacting its top K (the expectation over the draw, from the "
             "logged propensities).", "",
             "| capacity K | candidates | top K's net benefit | forgone: uniform | "
             "forgone: value-weighted | ratio | largest weight of a held-out row: uniform "
             "| value |", "|---|---|---|---|---|---|---|---|"]
    for k, r in res.items():
        u, v = r["uniform"], r["value"]
        lines.append(f"| {k} | {u['candidates']} | {u['top_value']:,.0f} | "
                     f"{u['forgone']:,.0f} | {v['forgone']:,.0f} | "
                     f"{v['forgone'] / u['forgone']:.2f} | {u['max_weight']:.0f} | "
                     f"{v['max_weight']:.0f} |")
    update_section("holdout-cost", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
