"""Which outreach queue does the most good, judged on the simulator's own outcomes?

On the demo book, fork the simulation at an as-of date 12 months before the end and
replay it forward under each policy with common random numbers (`postloan
evaluate-policy`): postloan's one decision (uplift models trained on the randomised
contacts logged before the as-of decide the actions their decision gate admits, the
strategy constants the rest), every uplift model deciding (gate ignored), the
constants only, PD only, random (the constants' candidates in random order) and no
contact, at a few capacities. Realised credit losses, churned value, complaints and contact costs come
from the simulated months; net benefit is against no contact, with 90% intervals over
replay seeds. The queues' scores are the simulator's true probabilities (`--scores
truth`), so the comparison is of the ranking rules, not of model error.

    python benchmarks/policy_replay.py [--customers 20000] [--months 36] [--seeds 5]
        [--demo data/processed/policy/2024-12-31]   # evaluate-policy's output, side by side
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from _common import machine, update_section, write_json
from pipelines.generate import run_generate
from pipelines.replay import decision_queue_builder, run_evaluate_policy
from pipelines.train import run_train, run_train_uplift
from postloan.models.bundle import MODELS
from postloan.models.registry import download_bundle
from postloan.models.training import TrainConfig, load_train_config
from postloan.models.uplift import UpliftBundle
from postloan.simulation import SimulationConfig, replay

CAPACITIES = (100, 300, 1000)


def feature_ceiling(raw: Path, as_of: str, n_dates: int, n_test: int) -> dict:
    """How much of the true effects' ranking the features can carry at all: a LightGBM
    regression fitted on the simulator's *true* effects of the training contacts (no
    outcome noise, impossible outside a simulator), scored like the learners on the
    held-out contacts (Qini on the true effects / the oracle's)."""
    import lightgbm as lgb
    import numpy as np

    from pipelines.train import uplift_dates
    from postloan.data import io
    from postloan.data.features import FEATURE_NAMES, build_features
    from postloan.models import uplift

    tables = io.read_tables(raw, names=[*io.S.REQUIRED_TABLES])
    log = uplift.outreach_log(tables["interactions"])
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


def _demo_summary(folder: Path | None) -> pd.DataFrame | None:
    """Mean net benefit by capacity and policy of a `postloan evaluate-policy` output."""
    if folder is None or not (Path(folder) / "summary.parquet").is_file():
        return None
    s = pd.read_parquet(Path(folder) / "summary.parquet")
    s = s[s["capacity"] > 0]
    return s.pivot(index="capacity", columns="policy", values="net_benefit")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--demo", type=Path, default=None,
                    help="a `postloan evaluate-policy` output folder (after `make demo`) "
                         "to show beside this run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="postloan-bench-policy-"))
    sim = SimulationConfig(args.customers, args.months, seed=42)
    run_generate(sim, tmp / "raw")
    as_of = f"{sim.month_ends()[-13]:%Y-%m-%d}"
    ucfg = load_train_config().uplift  # the shipped dates (training.yaml)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    t = time.perf_counter()
    # The three models value the decision gate's held-out contacts (the queues themselves
    # use the simulator's true probabilities).
    run_train(tmp / "raw", list(MODELS), TrainConfig(seed=42), uri, tmp / "mlartifacts",
              None, tmp)
    classifier_s = round(time.perf_counter() - t, 1)
    queues, train_s, qini, gates = {}, {}, {}, {}
    for learner in ("risk",):
        t = time.perf_counter()
        up = run_train_uplift(tmp / "raw", uri, tmp / f"mlartifacts-{learner}", None, tmp,
                              until=as_of, learner=learner, n_dates=ucfg.n_dates,
                              n_test_dates=ucfg.n_test_dates)
        bundles = {r["action"]: UpliftBundle.load(download_bundle(r["model"],
                                                                  version=r["version"]))
                   for r in up}
        train_s[learner] = round(time.perf_counter() - t, 1)
        queues["decision"] = decision_queue_builder(bundles)
        queues["learned_all"] = decision_queue_builder(bundles, respect_gate=False)
        qini[learner] = {r["action"]: {k: v for k, v in r["metrics"].items()
                                       if "qini" in k or "corr" in k or "odds_ratio" in k
                                       or k.startswith("n_")} for r in up}
        gates = {r["action"]: r["decision_gate"] for r in up}
    t = time.perf_counter()
    out = run_evaluate_policy(tmp / "raw", as_of, CAPACITIES, args.seeds, scores="truth",
                              extra_queues=queues)
    seconds = time.perf_counter() - t
    s = out["summary"]
    paired = {(arm, other): replay.paired_difference(out["runs"], arm, other)
              for arm, other in (("decision", "constants"), ("learned_all", "constants"),
                                 ("decision", "pd_only"))}
    ceiling = feature_ceiling(tmp / "raw", as_of, ucfg.n_dates, ucfg.n_test_dates)
    never_worse = {}
    for k in CAPACITIES:
        d = paired[("decision", "constants")].set_index("capacity").loc[k]
        never_worse[str(k)] = bool(d["difference"] >= 0)
    demo = _demo_summary(args.demo)
    write_json({"machine": machine(), "as_of": as_of, "customers": args.customers,
                "seeds": args.seeds, "seconds": round(seconds, 1),
                "classifier_train_seconds": classifier_s,
                "uplift_train_seconds": train_s, "uplift": qini, "decision_gates": gates,
                "decision_not_below_constants": never_worse,
                "paired": {f"{a}-{b}": v.to_dict("records") for (a, b), v in paired.items()},
                "feature_ceiling_qini_ratio": ceiling,
                "summary": s.to_dict("records"),
                "demo_evaluate_policy": None if demo is None else demo.to_dict("records")},
               "policy_replay")

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
             "`decision` is postloan's one decision (`postloan.decisions.strategy.actions`): each "
             "action decided on its uplift model's learned effects where the decision gate "
             "admitted them (risk-based learner trained in "
             f"{train_s['risk']:,.0f} s on the contacts logged before the as-of; the gate "
             "values their held-out contacts with the three models, trained in "
             f"{classifier_s:,.0f} s), on the strategy constants elsewhere; `learned_all` "
             "lets every uplift model decide (the gate ignored); `constants` decides on "
             "strategy.yaml only. Every queue is its decisions ranked by net benefit. "
             f"Load average {machine().get('load_avg', '?')}. {seconds:,.0f} s for "
             f"{len(out['runs'])} replays (`python benchmarks/policy_replay.py`).", "",
             "Decision gate (learned minus constants, money per held-out contact, IPW):", "",
             "| action | verdict | learned - constants | se | held-out contacts | "
             "decided differently |", "|---|---|---|---|---|---|"]
    for a, g in gates.items():
        lines.append(f"| {a} | {'learned' if g['decides'] else 'constants'} | "
                     f"{g.get('value_difference', float('nan')):+,.1f} | "
                     f"{g.get('se', float('nan')):,.1f} | {g.get('n', 0):,} | "
                     f"{g.get('n_differ', 0):,} |")
    lines += ["", "| K | policy | net benefit | credit loss | churned value | complaints | "
              "contact cost |", "|---|---|---|---|---|---|---|"]
    for _, r in s.sort_values(["capacity", "policy"]).iterrows():
        lines.append(f"| {r['capacity']} | {r['policy']} | {iv(r, 'net_benefit')} | "
                     f"{iv(r, 'credit_loss')} | {iv(r, 'churned_value')} | "
                     f"{iv(r, 'complaints')} | {r['contact_cost']:,.0f} |")
    verdict = ", ".join(f"K={k}: {'yes' if v else 'no'}" for k, v in never_worse.items())
    lines += ["", f"The decision's queue at least the constants' (paired mean): {verdict}.", "",
              "Paired by replay seed (common random numbers: the difference per seed "
              "removes the future's own noise; `postloan.simulation.replay.paired_difference`, 90% "
              "intervals):", "",
              "| K | difference | net benefit difference | seeds ahead |", "|---|---|---|---|"]
    for (arm, other), d in paired.items():
        for _, r in d.iterrows():
            lines.append(f"| {int(r['capacity'])} | {arm} - {other} | {r['difference']:,.0f} "
                         f"[{r['difference_lo']:,.0f}, {r['difference_hi']:,.0f}] | "
                         f"{int(r['wins'])} of {int(r['n_seeds'])} |")
    if demo is not None:
        lines += ["", "Side by side with `postloan evaluate-policy --as-of "
                  f"{as_of} --seeds {args.seeds}` after `make demo` (the registered "
                  "champions, trained on the whole demo book; model scores), mean net "
                  "benefit:", "", "| K | " + " | ".join(demo.columns) + " |",
                  "|---|" + "---|" * len(demo.columns)]
        for k, row in demo.iterrows():
            lines.append(f"| {k} | " + " | ".join(f"{v:,.0f}" for v in row) + " |")
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
        d = qini.get("dr", {}).get(a, {})
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
