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
from postloan import policy
from postloan.registry import download_bundle
from postloan.synthetic import SimulationConfig
from postloan.training import load_train_config
from postloan.uplift import UpliftBundle

CAPACITIES = (100, 300, 1000)


def feature_ceiling(raw: Path, as_of: str, n_dates: int, n_test: int) -> dict:
    """How much of the true effects' ranking the features can carry at all: a LightGBM
    regression fitted on the simulator's *true* effects of the training contacts (no
    outcome noise, impossible outside a simulator), scored like the learners on the
    held-out contacts (Qini on the true effects / the oracle's)."""
    import lightgbm as lgb
    import numpy as np

    from pipelines.train import uplift_dates
    from postloan import io, policy, uplift
    from postloan.features import FEATURE_NAMES, build_features

    tables = io.read_tables(raw, names=[*io.S.REQUIRED_TABLES])
    log = policy.outreach_log(tables["interactions"])
    dates = uplift_dates(log, pd.Timestamp(as_of), n_dates)
    data = uplift.training_set(tables, log, dates)
    truth = io.read_table(raw, "contact_truth")
    truth["as_of"] = pd.to_datetime(truth["as_of"]).astype("datetime64[ns]")
    data = data.merge(truth.drop(columns=["action", "eligibility", "assignment"],
                                 errors="ignore"), on=["customer_id", "as_of"], how="left")
    held_out = data["as_of"].isin(pd.DatetimeIndex(dates[-n_test:])).to_numpy()
    out: dict = {}
    for a in uplift.ACTIONS:
        mine = (data["action"] == a).to_numpy()
        tr, te = data[mine & ~held_out], data[mine & held_out]
        Xtr = build_features(tr)[list(FEATURE_NAMES)].to_numpy(float)
        Xte = build_features(te)[list(FEATURE_NAMES)].to_numpy(float)
        for lab in uplift.UPLIFT_LABELS:
            col = f"effect_{a}_{lab}"
            y, true = tr[col].to_numpy(float), te[col].to_numpy(float)
            ok, have = ~np.isnan(y), ~np.isnan(true)
            if ok.sum() < 50 or have.sum() < 50 or np.nanstd(true) == 0:
                continue
            b = lgb.train({"objective": "regression", "num_leaves": 15, "learning_rate": 0.05,
                           "seed": 42, "deterministic": True, "verbose": -1,
                           "num_threads": 2}, lgb.Dataset(Xtr[ok], y[ok]), 300)
            pred = b.predict(Xte[have])
            oracle = uplift.qini_auuc(-true[have], -true[have])[0]
            if oracle > 0:
                out[f"{a}/{lab}"] = uplift.qini_auuc(-pred, -true[have])[0] / oracle
    return out


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
    ucfg = load_train_config().uplift  # the shipped dates (training.yaml)
    queues, train_s, qini = {}, {}, {}
    for learner, name in (("risk", "learned"), ("dr", "learned_dr")):
        t = time.perf_counter()
        uri = f"sqlite:///{tmp / f'mlflow-{learner}.db'}"
        up = run_train_uplift(tmp / "raw", uri, tmp / f"mlartifacts-{learner}", None, tmp,
                              until=as_of, learner=learner, n_dates=ucfg.n_dates,
                              n_test_dates=ucfg.n_test_dates)
        bundles = {r["action"]: UpliftBundle.load(download_bundle(r["model"],
                                                                  version=r["version"]))
                   for r in up}
        train_s[learner] = round(time.perf_counter() - t, 1)
        queues[name] = learned_queue_builder(bundles)
        qini[learner] = {r["action"]: {k: v for k, v in r["metrics"].items()
                                       if "qini" in k or "corr" in k or "odds_ratio" in k
                                       or k.startswith("n_")} for r in up}
    t = time.perf_counter()
    out = run_evaluate_policy(tmp / "raw", as_of, CAPACITIES, args.seeds, scores="truth",
                              extra_queues=queues)
    seconds = time.perf_counter() - t
    s = out["summary"]
    paired = {other: policy.paired_difference(out["runs"], "learned", other)
              for other in ("constants", "pd_only", "learned_dr")}
    ceiling = feature_ceiling(tmp / "raw", as_of, ucfg.n_dates, ucfg.n_test_dates)
    goal = {}
    for k in CAPACITIES:
        row = s[s["capacity"] == k].set_index("policy")["net_benefit"]
        goal[str(k)] = bool(row["learned"] > row["constants"] and row["learned"] > row["pd_only"])
    write_json({"machine": machine(), "as_of": as_of, "customers": args.customers,
                "seeds": args.seeds, "seconds": round(seconds, 1),
                "uplift_train_seconds": train_s, "uplift": qini,
                "learned_beats_constants_and_pd_only": goal,
                "paired_learned_minus": {k: v.to_dict("records") for k, v in paired.items()},
                "feature_ceiling_qini_ratio": ceiling,
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
             "`learned` ranks by the net benefit of the uplift models (risk-based "
             f"learner, trained in {train_s['risk']:,.0f} s on the contacts logged before "
             "the as-of), `learned_dr` by the DR-learner's (effect modelling, "
             f"{train_s['dr']:,.0f} s). Load average {machine().get('load_avg', '?')}. "
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
              "The arms' intervals above include the spread of the futures themselves; "
              "every arm of a seed shares them (common random numbers), so the paired "
              "difference per seed is the sharper test (`postloan.policy.paired_difference`"
              ", 90% intervals):", "",
              "| K | learned minus | net benefit difference | seeds learned ahead |",
              "|---|---|---|---|"]
    for other, d in paired.items():
        for _, r in d.iterrows():
            lines.append(f"| {int(r['capacity'])} | {other} | {r['difference']:,.0f} "
                         f"[{r['difference_lo']:,.0f}, {r['difference_hi']:,.0f}] | "
                         f"{int(r['wins'])} of {int(r['n_seeds'])} |")
    lines += ["",
              "Uplift models on held-out contacts: Qini of the learned ranking / the "
              "oracle's (ranked by the true effects of `contact_truth`), on the true "
              "effects, and the correlation of estimated with true effects, for both "
              "learners; the risk learner's odds ratio of the contact with its 95% "
              "interval:", "",
              "| action | outcome | held-out rows | Qini / oracle: risk | dr | "
              "feature ceiling | corr(est, true): risk | dr | odds ratio [95%] |",
              "|---|---|---|---|---|---|---|---|---|"]

    def num(v) -> str:
        return "-" if v is None or pd.isna(v) else f"{v:.2f}"

    for a, m in qini["risk"].items():
        d = qini["dr"].get(a, {})
        for lab in ("default_12m", "churn_6m", "dissatisfied_3m"):
            odds = ("-" if pd.isna(m.get(f"{lab}_odds_ratio", float("nan"))) else
                    f"{m[f'{lab}_odds_ratio']:.2f} [{m[f'{lab}_odds_ratio_lo']:.2f}, "
                    f"{m[f'{lab}_odds_ratio_hi']:.2f}]")
            lines.append(f"| {a} | {lab} | {m.get('n_heldout', 0):,.0f} | "
                         f"{num(m.get(f'{lab}_qini_true_ratio'))} | "
                         f"{num(d.get(f'{lab}_qini_true_ratio'))} | "
                         f"{num(ceiling.get(f'{a}/{lab}'))} | "
                         f"{num(m.get(f'{lab}_effect_corr'))} | "
                         f"{num(d.get(f'{lab}_effect_corr'))} | {odds} |")
    lines += ["", "Feature ceiling: a LightGBM regression fitted on the simulator's *true* "
              "effects of the training contacts (noise-free supervision, impossible outside "
              "a simulator), scored the same way. Where it stays well below 1, the effect "
              "varies with latent traits (receptiveness, reach) the features do not carry, "
              "and no learner on these features can reach the oracle."]
    update_section("policy-replay", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
