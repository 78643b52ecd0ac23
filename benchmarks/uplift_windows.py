"""How much does the learned queue's value depend on the uplift models' training window?

One demo book (20,000 customers, 36 months, seed 42), one replay (forked at the as-of
12 months before the end, `postloan evaluate-policy` with the simulator's true
probabilities as scores, common random numbers), and one learned queue per training
window of the uplift models (the shipped risk-based learner, each window trained into
its own MLflow store, so each is its store's first version and champion):

- **honest** windows end at the replay's as-of (`until = as_of`: only contacts whose
  12-month outcome is known by then), which is what a lender could have had on that
  day;
- **later** windows end 3, 6 or 12 months after it. The one ending 12 months later
  with training.yaml's `n_dates` is what `make demo` registers (it trains on the whole
  book), and what `postloan evaluate-policy --as-of <end - 12 months>` then replays:
  its training contacts' outcomes run past the as-of, so the replay is not an honest
  evaluation of it; it is measured because it is what the demo ships.

Each window's held-out Qini (the gate's number) and its bootstrap standard error are
reported beside the replayed net benefit, which shows whether the gate's comparison
can tell the windows apart.

    python benchmarks/uplift_windows.py [--seeds 3] [--data BOOK] [--windows a,b,...] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from _common import machine, update_section, write_json
from pipelines.generate import run_generate
from pipelines.replay import learned_queue_builder, run_evaluate_policy
from pipelines.train import run_train_uplift
from postloan.data import io
from postloan.models.registry import download_bundle
from postloan.models.training import load_train_config
from postloan.models.uplift import UPLIFT_LABELS, UpliftBundle
from postloan.simulation import SimulationConfig
from postloan.simulation import replay as policy

CAPACITIES = (100, 300, 1000)
ALL = 10_000  # n_dates meaning "every date with observed labels"
# name -> (months after the replay's as-of the window ends, n_dates; None = training.yaml's),
# most informative first: the demo's window and the honest one.
WINDOWS = {
    "demo": (12, None),
    "asof": (0, None),
    "asof_n6": (0, 6),
    "end_n12": (12, 12),
    "plus6": (6, ALL),
    "plus3": (3, ALL),
    "end_n6": (12, 6),
}


def train_window(raw: Path, tmp: Path, name: str, until: str, n_dates: int,
                 n_test: int, cache: Path | None = None) -> tuple[dict, dict]:
    """Train one window's uplift models into a store of its own; its bundles and record.

    With `cache`, a window trained before on the same book (its bundles and record under
    ``cache/<name>``) is read back instead: training is the slow part, and the replay of
    every window together is what pairs them by seed.
    """
    done = None if cache is None else Path(cache) / name
    if done is not None and (done / "window.json").exists():
        rec = json.loads((done / "window.json").read_text())
        return {a: UpliftBundle.load(done / a) for a in rec["actions"]}, rec
    t = time.perf_counter()
    uri = f"sqlite:///{tmp / f'mlflow-{name}.db'}"
    up = run_train_uplift(raw, uri, tmp / f"mlartifacts-{name}", None, tmp, until=until,
                          n_dates=n_dates, n_test_dates=n_test)
    bundles = {r["action"]: UpliftBundle.load(download_bundle(r["model"], version=r["version"]))
               for r in up}
    rec = {"until": until, "n_dates_asked": n_dates, "seconds": round(time.perf_counter() - t, 1),
           "load_avg": machine()["load_avg"], "actions": {}}
    for r in up:
        m, splits = r["metrics"], bundles[r["action"]].metadata.get("splits", {})
        rec["actions"][r["action"]] = {
            "promoted": r["promoted"], "gate": r["gate"],
            "train_dates": [splits.get("train", [""])[0], splits.get("train", [""])[-1]],
            "n_train_dates": len(splits.get("train", [])),
            "heldout_dates": splits.get("heldout", []),
            **{k: m.get(k) for k in ("gate_qini", "gate_qini_se", "gate_auuc", "gate_auuc_se",
                                     "n_train", "n_heldout")},
            **{f"{lab}_{k}": m.get(f"{lab}_{k}") for lab in UPLIFT_LABELS
               for k in ("odds_ratio", "odds_ratio_lo", "odds_ratio_hi", "qini_true_ratio")},
        }
    if done is not None:
        done.mkdir(parents=True, exist_ok=True)
        for a, b in bundles.items():
            b.save(done / a)
        io.write_json_atomic(rec, done / "window.json")
    return bundles, rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--data", type=Path, default=None,
                    help="an existing book generated with the same settings (skips generate)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder of windows trained before on the same book (read back; "
                         "new ones are added)")
    ap.add_argument("--train-only", action="store_true",
                    help="train the windows into --cache and stop (no replay)")
    ap.add_argument("--windows", default=",".join(WINDOWS),
                    help=f"comma-separated subset of {list(WINDOWS)}")
    args = ap.parse_args()
    names = [w.strip() for w in args.windows.split(",") if w.strip()]
    unknown = sorted(set(names) - set(WINDOWS))
    if unknown:
        ap.error(f"unknown windows {unknown}; choose from {list(WINDOWS)}")
    tmp = Path(tempfile.mkdtemp(prefix="postloan-bench-windows-"))
    sim = SimulationConfig(args.customers, args.months, seed=42)
    raw = args.data or tmp / "raw"
    if args.data is None:
        run_generate(sim, raw)
    months = sim.month_ends()
    as_of = f"{months[-13]:%Y-%m-%d}"
    ucfg = load_train_config().uplift
    load_before = machine()["load_avg"]
    queues, windows = {}, {}
    for name in names:
        offset, n_dates = WINDOWS[name]
        until = f"{months[-13 + offset] if offset < 12 else months[-1]:%Y-%m-%d}"
        bundles, rec = train_window(raw, tmp, name, until, n_dates or ucfg.n_dates,
                                    ucfg.n_test_dates, args.cache)
        rec["honest"] = offset == 0
        windows[name] = rec
        queues[f"learned_{name}"] = learned_queue_builder(bundles)
    if args.train_only:
        return
    t = time.perf_counter()
    out = run_evaluate_policy(raw, as_of, CAPACITIES, args.seeds, scores="truth",
                              extra_queues=queues)
    seconds = round(time.perf_counter() - t, 1)
    s = out["summary"]
    paired = {name: policy.paired_difference(out["runs"], f"learned_{name}", "constants")
              for name in names}
    qs = out["queues"]
    restructurings = {name: {str(k): int(((qs["policy"] == f"learned_{name}")
                                          & (qs["capacity"] == k)
                                          & (qs["action"] == "restructuring_offer")).sum())
                             for k in CAPACITIES} for name in names}
    result = {"machine": machine(), "restructurings_in_queue": restructurings, "load_avg_before": load_before, "as_of": as_of,
              "customers": args.customers, "months": args.months, "seeds": args.seeds,
              "replay_seconds": seconds, "windows": windows,
              "paired_minus_constants": {k: v.to_dict("records") for k, v in paired.items()},
              "summary": s.to_dict("records")}
    write_json(result, "uplift_windows")
    lines = render(result, s, paired, names)
    update_section("uplift-windows", "\n".join(lines))
    print("\n".join(lines))


def render(result: dict, s: pd.DataFrame, paired: dict, names: list[str]) -> list[str]:
    """The docs/benchmarks.md section: one row per window."""
    nb = s.set_index(["policy", "capacity"])["net_benefit"]
    lines = ["## Uplift training windows: one replay, several windows", "",
             f"Demo book ({result['customers']:,} customers, {result['months']} months), "
             f"replayed from {result['as_of']} for 12 months with {result['seeds']} seeds "
             "(common random numbers; queue scores = the simulator's true probabilities). "
             "Every learned queue uses the shipped risk-based uplift learner; only the "
             "contacts it learned from change. *until* = the last date whose 12-month "
             "outcomes the models may see; an honest window ends at the as-of, a later one "
             "has seen outcomes from after it (`demo` is what `make demo` registers). "
             "Gate Qini = mean held-out Qini over outcomes (its bootstrap se), averaged "
             "over actions with the se combined. Net benefit in the replay's money "
             "(mean over seeds); Δ = learned minus constants, paired by seed, 90% interval. "
             f"Load average {result['load_avg_before']} before, "
             f"{result['machine']['load_avg']} after the replay ({result['replay_seconds']:,.0f} "
             "s); each window's training time is in the JSON (`--cache` reuses windows "
             "trained before, possibly under another load; "
             "`python benchmarks/uplift_windows.py`).", "",
             "Restructuring: the restructuring offer's odds ratio on default (95% interval) "
             "and how many of the queue's first 100 / 1000 contacts are restructurings.", "",
             "| window | honest | until | training dates | gate Qini (se) | "
             "restructuring OR on default | restructurings | "
             + " | ".join(f"K={k}" for k in CAPACITIES) + " | "
             + " | ".join(f"Δ K={k}" for k in CAPACITIES) + " |",
             "|---" * (7 + 2 * len(CAPACITIES)) + "|"]
    for name in names:
        w = result["windows"][name]
        acts = w["actions"].values()
        n_tr = max((a["n_train_dates"] for a in acts), default=0)
        first = min((a["train_dates"][0] for a in acts), default="")
        last = max((a["train_dates"][-1] for a in acts), default="")
        q = pd.Series([a["gate_qini"] for a in acts], dtype=float)
        se = pd.Series([a["gate_qini_se"] for a in acts], dtype=float)
        qs = f"{q.mean():.4f} ({(se ** 2).sum() ** 0.5 / max(len(se), 1):.4f})"
        d = paired[name].set_index("capacity")
        cells = [f"{nb.get((f'learned_{name}', k), float('nan')):,.0f}" for k in CAPACITIES]
        deltas = [f"{d.loc[k, 'difference']:,.0f} [{d.loc[k, 'difference_lo']:,.0f}, "
                  f"{d.loc[k, 'difference_hi']:,.0f}]" for k in CAPACITIES]
        r = w["actions"].get("restructuring_offer", {})
        odds = ("-" if r.get("default_12m_odds_ratio") is None else
                f"{r['default_12m_odds_ratio']:.2f} [{r['default_12m_odds_ratio_lo']:.2f}, "
                f"{r['default_12m_odds_ratio_hi']:.2f}]")
        n_re = result["restructurings_in_queue"][name]
        lines.append(f"| {name} | {'yes' if w['honest'] else 'no'} | {w['until']} | "
                     f"{n_tr} ({first[:7]}..{last[:7]}) | {qs} | {odds} | "
                     f"{n_re[str(CAPACITIES[0])]} / {n_re[str(CAPACITIES[-1])]} | "
                     + " | ".join(cells)
                     + " | " + " | ".join(deltas) + " |")
    lines.append("| constants | | | | | | | " + " | ".join(
        f"{nb.get(('constants', k), float('nan')):,.0f}" for k in CAPACITIES) + " | | | |")
    return lines


if __name__ == "__main__":
    main()
