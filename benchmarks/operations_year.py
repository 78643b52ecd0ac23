"""A closed-loop year on the simulator: does running postloan month after month pay?

From a simulated book at T0 (the book's own history, its own randomised contact
policy), twelve months are run one at a time for each arm. Each month m: the book as
known at m (rows dated up to its month end only) is snapshotted, the arm decides
(``postloan.decisions.batch.score_and_decide``: the one decision core `postloan cycle` calls),
its queue (capacity K) is contacted in the simulator, and the simulator advances one
month (``postloan.simulation.advance_month``). Every arm of a seed advances with the
same replay stream: common random numbers, so differences between arms are their
decisions, not luck.

Arms: ``none`` (no contact); ``handbook`` (the strategy constants' queue scored by
the champions trained at T0, never learning); ``frozen`` (champions and uplift models
trained at T0, never retrained); ``cycle`` (the same at T0, then `postloan cycle`'s own
steps with the shipped ``config/cycle.yaml``: ``postloan.operations.cycle.decide_month``
decides and holds out a random ``holdout_share`` of the customers it would contact (the
capacity still filled: the holdout costs no call slots), its outreach rows -
assignment, propensity, reached - join its book, and ``pipelines.cycle.retrain_models``
retrains the three models and uplift, gated against its current champions, every
``retrain_every_months`` and when the monthly drift check says re-validate).

Outcomes over the year (``postloan.simulation.replay.realised_outcomes``, the policy replay's own
money terms): credit loss of new defaults, churned value, complaints, contact cost;
net benefit against ``none``; paired 90% intervals against ``handbook`` over seeds.

    python benchmarks/operations_year.py [--customers 3000] [--seeds 3] [--history 30]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from postloan.data import schema as S
from postloan.data.features import build_features
from postloan.data.snapshot import build_snapshot
from postloan.decisions import batch
from postloan.errors import DataQualityError
from postloan.models import store
from postloan.models.evaluation import binary_metrics
from postloan.operations import cycle, monitoring
from postloan.simulation import (
    DEFAULT_MISSED,
    Shock,
    SimulationConfig,
    advance_month,
    simulate_until,
)
from postloan.simulation import replay as policy
from postloan.simulation.contacts import NO_CONTACT, queue_plan

log = logging.getLogger("operations_year")

ARMS = ("none", "handbook", "frozen", "cycle")
WHOLE = ("customers", "loans", "macro")  # tables a month's output carries whole
MONTHS = 12
SHOCK_MONTH = 6  # month of the year the macro shock starts in
# The cycle arm runs as shipped: config/cycle.yaml's schedule and holdout.
SHIPPED = cycle.load_cycle_config()
RETRAIN_EVERY = SHIPPED.retrain_every_months
HOLDOUT = SHIPPED.holdout_share
HOLDOUT_WEIGHTING = SHIPPED.holdout_weighting
TRAIN_DATES = 6  # snapshot dates a champion trains on (shipped: 10)
METRICS = ("n_contacts", "contact_cost", "n_defaults", "credit_loss", "n_churned",
           "churned_value", "complaints", "net_benefit")
AUC_MODELS = {"default_risk": ("pd_12m", "defaulted", "pd_12m"),
              "churn": ("p_churn_6m", "churned", "pchurn_6m")}


def extend(book: dict[str, pd.DataFrame], month: dict[str, pd.DataFrame]
           ) -> dict[str, pd.DataFrame]:
    """The book with one more simulated month appended."""
    out = {}
    for name, frame in book.items():
        if name in WHOLE:
            out[name] = month.get(name, frame)
        elif name in month:
            out[name] = pd.concat([frame, month[name]], ignore_index=True)
        else:
            out[name] = frame
    return out


def known_at(book: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """What the lender knows at `as_of`: no future customers, macro months or truth."""
    out = dict(book)
    out["customers"] = book["customers"][book["customers"]["customer_since"] <= as_of]
    out["macro"] = book["macro"][book["macro"]["month_end"] <= as_of]
    out["loans"] = book["loans"][book["loans"]["origination_date"] <= as_of]
    return out


def write_book(book: dict[str, pd.DataFrame], folder: Path, cfg: SimulationConfig,
               as_of: pd.Timestamp) -> Path:
    from postloan.data import io

    meta = {"generator": "postloan.simulation", "seed": cfg.seed,
            "n_customers": cfg.n_customers, "end": f"{as_of:%Y-%m-%d}",
            "simulation_config": cfg.to_dict()}
    io.write_tables({k: v for k, v in book.items()}, folder, meta=meta, overwrite=True)
    return folder


def train(book: dict[str, pd.DataFrame], cfg: SimulationConfig, as_of: pd.Timestamp,
          work: Path, champions: Path | None = None) -> tuple[dict, dict, dict]:
    """The cycle's retrain step (``pipelines.cycle.retrain_models``: the three models and
    the uplift models, each through its gate) on the book known at `as_of`.

    `champions` is the folder whose MLflow store and bundle folder the arm has used so
    far: it is copied into `work` first, so the challengers meet the current champions
    at the gates, as in ``postloan cycle``; None starts an empty store (T0).

    Returns:
        The champions, the uplift champions (by action) and the step's record (gates,
        ``uplift``: trained or why not).
    """
    import shutil

    from pipelines.cycle import Paths, retrain_models
    from postloan.models.training import Splits, TrainConfig

    work.mkdir(parents=True, exist_ok=True)
    if champions is not None:
        shutil.copy(champions / "mlflow.db", work / "mlflow.db")
        shutil.copytree(champions / "models", work / "models", dirs_exist_ok=True)
    raw = write_book(known_at(book, as_of), work / "raw", cfg, as_of)
    paths = Paths(cycles=work / "cycles", books=work / "books",
                  tracking_uri=f"sqlite:///{work / 'mlflow.db'}",
                  artifact_root=work / "mlartifacts", models_dir=work / "models", root=work)
    # Fewer training dates and SHAP rows than shipped (6 and 500): a year retrains often.
    # The uplift models learn as shipped (24 as-of dates of matured outreach).
    cfg_train = TrainConfig(seed=42, shap_sample=500, splits=Splits(n_train=TRAIN_DATES))
    record = retrain_models(raw, f"{as_of:%Y-%m-%d}", cfg_train, paths)
    if record["uplift"] != "trained":
        log.warning("uplift at %s: %s", as_of.date(), record["uplift"])
    return (store.load_bundles_from_dir(paths.models_dir),
            store.load_uplift_from_dir(paths.models_dir), record)


def decide(book, as_of, bundles, uplift, capacity) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Snapshot of the book as known, decisions and queue (the cycle's decision core)."""
    snap = build_snapshot(known_at(book, as_of), as_of, with_labels=False)
    out = batch.score_and_decide(snap, bundles, capacity=capacity, with_reasons=False,
                                 uplift=uplift or None)
    return snap, out


def queue_codes(queue: pd.DataFrame, cid: np.ndarray) -> np.ndarray:
    q = pd.DataFrame({"customer_id": queue["customer_id"].to_numpy(),
                      "action": queue["recommended_action"].astype(object).to_numpy()})
    return policy.queue_codes(q, cid)


def holdout_cost(decisions: pd.DataFrame, outreach: pd.DataFrame, capacity: int) -> float:
    """What the holdout costs by the strategy's own valuation: the net benefit of the
    top `capacity` candidates (the handbook's contacts) less that of those contacted."""
    nb = decisions.set_index("customer_id")["net_benefit"]
    cand = outreach.loc[outreach["assignment"] != "over_capacity", "customer_id"]
    sent = outreach.loc[outreach["assignment"] == "contacted", "customer_id"]
    top = nb.reindex(cand).sort_values(ascending=False).iloc[:capacity].sum()
    return float(top - nb.reindex(sent).sum())


def drift_check(bundles, ref: pd.DataFrame, cur: pd.DataFrame,
                cfg: monitoring.MonitoringConfig) -> tuple[str, list[str]]:
    """pipelines/monitor.py's verdict (drift part), worst over the models."""
    categories = next(iter(bundles.values())).categories
    X_ref, X_cur = build_features(ref, categories), build_features(cur, categories)
    drift = monitoring.feature_drift(X_ref, X_cur, cfg)
    worst, reasons = "stable", []
    for model, b in bundles.items():
        psi = monitoring.psi(b.predict_features(X_ref), b.predict_features(X_cur), cfg.n_bins)
        top = b.metadata.get("top_features", [])[: cfg.top_features]
        v, r = monitoring.verdict(psi, drift, top, None, cfg)
        if monitoring.VERDICTS.index(v) > monitoring.VERDICTS.index(worst):
            worst = v
        reasons += [f"{model}: {x}" for x in r]
    return worst, reasons


def run_year(n_customers: int, seed: int, shock: bool, history: int, capacity: int,
             t0_models: dict, work: Path, months: int = MONTHS,
             keep_months: bool = False, retrain_every: int = RETRAIN_EVERY) -> dict:
    """One seed and scenario: the four arms over `months` months (twelve: a year).

    `t0_models` caches, per seed, the T0 champions and uplift models (and training
    seconds); a caller may fill it with models of its own. With `keep_months`, the
    result carries each arm's monthly tables and contacted customer ids. The cycle arm
    retrains every `retrain_every` months (0: only on the monitor's re-validate verdict)
    and after a re-validate verdict (at least two months after its last retraining).
    """
    t0 = history - 1
    cfg = SimulationConfig(n_customers, history + months + 1, seed=seed,
                           shock=Shock(t0 + SHOCK_MONTH) if shock else None)
    w, s0, hist = simulate_until(cfg, t0)
    ends = cfg.month_ends()
    as_of0 = pd.Timestamp(ends[t0])
    if seed not in t0_models:  # the history before the shock is the same in both years
        t = time.perf_counter()
        b0, u0, _ = train(hist, cfg, as_of0, work / f"s{seed}-t0")
        t0_models[seed] = (b0, u0, time.perf_counter() - t, work / f"s{seed}-t0")
    # (bundles, uplift, seconds[, store]): models given without their store start the
    # cycle arm's retraining in an empty store.
    bundles0, uplift0, train_s, *rest = t0_models[seed]
    ccfg = SHIPPED.model_copy(update={"capacity": capacity})
    costs = np.array([cfg.contacts.spec(a).cost for a in S.CONTACT_ACTIONS])
    mcfg = monitoring.default_monitoring_config()
    arms = {a: {"s": s0.copy(), "book": dict(hist), "year": [], "cost": 0.0, "n": 0,
                "scores": [], "contacted": []} for a in ARMS}
    cyc = {"bundles": bundles0, "uplift": uplift0, "retrained": [], "holdout": 0,
           "verdicts": [], "prev_snap": None, "last_retrain": 0,
           "store": rest[0] if rest else None, "basis": [], "retrain_records": [],
           "own_rows": 0, "holdout_cost": 0.0}
    seconds_retrain = 0.0
    for m in range(months):
        as_of = pd.Timestamp(ends[t0 + m])
        for a, arm in arms.items():
            codes = np.full(w.n, NO_CONTACT, np.int64)
            if a != "none":
                if a == "cycle":
                    flagged = (bool(cyc["verdicts"]) and cyc["verdicts"][-1] == "re-validate"
                               and m - cyc["last_retrain"] >= 2)
                    due = m > 0 and ((retrain_every > 0 and m % retrain_every == 0)
                                     or flagged)
                    if due:
                        t = time.perf_counter()
                        folder = work / f"s{seed}-{int(shock)}-m{m}"
                        try:
                            cyc["bundles"], cyc["uplift"], record = train(
                                arm["book"], cfg, as_of, folder, champions=cyc["store"])
                            cyc["store"] = folder  # its champions meet the next challengers
                        except DataQualityError as e:  # the champions' data gate refused
                            record = {"blocked": str(e).splitlines()[0]}
                            log.warning("retraining at month %d blocked: %s", m, e)
                        seconds_retrain += time.perf_counter() - t
                        cyc["retrained"].append(m)
                        cyc["retrain_records"].append({"month": m, **record})
                        cyc["last_retrain"] = m
                    bundles, uplift = cyc["bundles"], cyc["uplift"]
                elif a == "frozen":
                    bundles, uplift = bundles0, uplift0
                else:
                    bundles, uplift = bundles0, None
                if a == "cycle":
                    # `postloan cycle`'s score step: decisions, queue, and the outreach
                    # rows with the randomised holdout the uplift models learn from.
                    snap = build_snapshot(known_at(arm["book"], as_of), as_of,
                                          with_labels=False)
                    out = cycle.decide_month(snap, bundles, as_of, ccfg,
                                             uplift=uplift or None, with_reasons=False)
                    outreach = out["outreach"]
                    codes = queue_codes(out["queue"], w.cid)  # the holdout is not in it
                    cyc["holdout"] += int((outreach["assignment"] == "holdout").sum())
                    cyc["holdout_cost"] += holdout_cost(out["decisions"], outreach, capacity)
                    cyc["basis"].append(out["decision_basis"])
                else:
                    snap, out = decide(arm["book"], as_of, bundles, uplift, capacity)
                    codes = queue_codes(out["queue"], w.cid)
                if a == "cycle":
                    if cyc["prev_snap"] is not None:
                        v, _ = drift_check(bundles, cyc["prev_snap"], snap, mcfg)
                        cyc["verdicts"].append(v)
                    else:
                        cyc["verdicts"].append("stable")
                    cyc["prev_snap"] = snap
                if a in ("frozen", "cycle"):
                    arm["scores"].append(out["scores"][["customer_id", "pd_12m",
                                                        "p_churn_6m"]])
            contacted = codes[codes >= 0]
            arm["n"] += int(contacted.size)
            arm["contacted"].append(w.cid[codes >= 0])
            arm["cost"] += float(costs[contacted].sum())

            plans = []

            def planner(w_, s_, t_, rng, codes=codes, plans=plans):
                plans.append(queue_plan(w_, codes, rng))
                return plans[-1]

            month = advance_month(w, arm["s"], t0 + m + 1, seed,
                                  planner if (codes >= 0).any() else None)
            known = month
            if a == "cycle":
                # The lender's outreach log of the month (assignment, propensity, and for
                # the contacted whether they were reached) joins the book the cycle
                # retrains on: its own randomised contacts, once their outcomes mature.
                known = {**month, "interactions": with_outreach(
                    month["interactions"], outreach, plans[0] if plans else None, w)}
                cyc["own_rows"] += len(outreach)
            arm["book"] = extend(arm["book"], known)
            arm["year"].append(month)
        log.info("seed %d shock %s month %d done", seed, shock, m + 1)
    in_default = w.cid[s0.missed >= DEFAULT_MISSED]
    funding = float(w.policy[t0]) + policy.Valuation().funding_spread_pct
    rows, base = {}, None
    for a, arm in arms.items():
        year = {k: pd.concat([mo[k] for mo in arm["year"]], ignore_index=True)
                for k in ("repayments", "interactions", "truth")}
        year["loans"] = arm["year"][-1]["loans"]
        outc = policy.realised_outcomes(year, as_of0, policy.Valuation(horizon_months=months),
                                        funding, in_default)
        tot = {"n_contacts": arm["n"], "contact_cost": arm["cost"],
               "n_defaults": int(outc["defaulted"].sum()),
               "credit_loss": float(outc["credit_loss"].sum()),
               "n_churned": int(outc["churned"].sum()),
               "churned_value": float(outc["churned_value"].sum()),
               "complaints": int(outc["complaints"].sum())}
        base = base or tot
        tot["net_benefit"] = ((base["credit_loss"] - tot["credit_loss"])
                              + (base["churned_value"] - tot["churned_value"])
                              + 100.0 * (base["complaints"] - tot["complaints"])
                              - tot["contact_cost"])
        rows[a] = tot
        if a in ("frozen", "cycle"):
            arm["auc"] = monthly_auc(arm, year, ends, t0, funding, in_default, months)
    flagged = next((m for m, v in enumerate(cyc["verdicts"]) if v == "re-validate"), None)
    kept = ({"months": {a: arm["year"] for a, arm in arms.items()},
             "contacted": {a: arm["contacted"] for a, arm in arms.items()}}
            if keep_months else {})
    return {**kept, "seed": seed, "shock": shock, "arms": rows,
            "auc": {a: arms[a]["auc"] for a in ("frozen", "cycle")},
            "verdicts": cyc["verdicts"], "first_flagged_month": flagged,
            "retrained_months": cyc["retrained"], "holdout_customer_months": cyc["holdout"],
            "holdout_expected_cost": round(cyc["holdout_cost"], 1),
            "own_outreach_rows": cyc["own_rows"], "decision_basis": cyc["basis"],
            "first_learned_month": next((m for m, b in enumerate(cyc["basis"])
                                         if "learned_uplift" in b.values()), None),
            "retrain_records": cyc["retrain_records"],
            "t0_train_seconds": round(train_s, 1), "retrain_seconds": round(seconds_retrain, 1)}


def with_outreach(interactions: pd.DataFrame, outreach: pd.DataFrame, plan, w
                  ) -> pd.DataFrame:
    """The month's interactions with the cycle's outreach rows; a contacted row's outcome
    is whether the simulator's contact reached the customer."""
    rows = outreach.copy()
    if plan is not None:
        reached = pd.Series(plan.reached, index=w.cid)
        hit = reached.reindex(rows["customer_id"]).to_numpy(bool)
        contacted = (rows["assignment"] == "contacted").to_numpy()
        rows["outcome"] = np.where(contacted, np.where(hit, "reached", "no_answer"), "none")
    rows = S.validate_table("interactions", rows)
    return S.validate_table("interactions", pd.concat([interactions, rows], ignore_index=True))


def monthly_auc(arm: dict, year: dict, ends, t0: int, funding: float,
                in_default: np.ndarray, months: int) -> list[dict]:
    """AUC of the month's scores and of the simulator's true probabilities (oracle)
    against the events in the rest of the year (the horizon the year reveals)."""
    out = []
    truth = year["truth"]
    hist_truth = arm["book"]["truth"]
    for m, sc in enumerate(arm["scores"][:-1]):
        as_of = pd.Timestamp(ends[t0 + m])
        left = months - m
        ev = policy.realised_outcomes(year, as_of, policy.Valuation(horizon_months=left),
                                      funding, in_default)
        tr = hist_truth[hist_truth["month_end"] == as_of] if m == 0 else \
            truth[truth["month_end"] == as_of]
        row = {"month": m}
        for model, (score, event, true_col) in AUC_MODELS.items():
            d = sc.merge(tr[["customer_id", true_col]].rename(columns={true_col: "_true"}),
                         on="customer_id", how="inner")
            y = d["customer_id"].isin(ev.loc[ev[event], "customer_id"]).to_numpy(int)
            if model == "default_risk":
                keep = ~d["customer_id"].isin(in_default).to_numpy()
                d, y = d[keep], y[keep]
            if y.min() == y.max():
                continue
            auc = binary_metrics(y, d[score].to_numpy(float))["auc"]
            oracle = binary_metrics(y, d["_true"].to_numpy(float))["auc"]
            row[model] = {"auc": auc, "oracle_auc": oracle, "ratio": auc / oracle,
                          "events": int(y.sum())}
        out.append(row)
    return out


def paired(runs: list[dict], arm: str, against: str, metric: str = "net_benefit",
           level: float = 0.90) -> dict:
    from scipy import stats

    x = np.array([r["arms"][arm][metric] - r["arms"][against][metric] for r in runs])
    k = len(x)
    half = (float(stats.t.ppf(0.5 + level / 2, k - 1) * x.std(ddof=1) / math.sqrt(k))
            if k > 1 else math.nan)
    return {"difference": float(x.mean()), "lo": float(x.mean()) - half,
            "hi": float(x.mean()) + half, "wins": int((x > 0).sum()), "n": k}


def main() -> None:
    from _common import machine, update_section, write_json

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--history", type=int, default=30, help="months of history before T0")
    ap.add_argument("--capacity", type=int, default=100)
    ap.add_argument("--scenarios", default="quiet,shock")
    ap.add_argument("--seed-list", default=None,
                    help="run these seeds only (comma-separated), e.g. one per process")
    ap.add_argument("--out", default="operations_year",
                    help="JSON name; a part (--seed-list) writes no docs section, another "
                         "name than the default writes its own section")
    ap.add_argument("--title", default="",
                    help="added to the docs section's heading (what this run is)")
    ap.add_argument("--retrain-every", type=int, default=RETRAIN_EVERY,
                    help="months between scheduled retrainings (0: monitor-triggered only)")
    ap.add_argument("--t0-models", nargs="*", default=(),
                    help="SEED=DIR: T0 models already trained for a seed (a `models` "
                         "folder of an earlier run), reused instead of training")
    ap.add_argument("--combine", nargs="*", default=None,
                    help="JSON files of parts: report them together (no simulation)")
    args = ap.parse_args()
    if args.combine:
        parts = [json.loads(Path(p).read_text()) for p in args.combine]
        runs = [r for p in parts for r in p["runs"]]
        args.seeds = len({r["seed"] for r in runs})
        args.customers, args.capacity = parts[0]["customers"], parts[0]["capacity"]
        args.history = parts[0]["history_months"]
        args.retrain_every = parts[0]["retrain_every"]
        mach = {**machine(), "load_avg": "; ".join(str(p["machine"].get("load_avg"))
                                                   for p in parts) + " (per process, at its end)"}
        reused = len({r["seed"] for r in runs if math.isnan(r["t0_train_seconds"])})
        report(runs, args, max(p["seconds"] for p in parts), mach, write_json,
               update_section, name=args.out,
               wall=(f"{len(parts)} processes in parallel, the slowest "
                     if len(parts) > 1 else "One process, ")
                    + f"{max(p['seconds'] for p in parts) / 60:,.1f} min"
                    + (f" (T0 models of {reused} seeds reused from an earlier run with the "
                       "same settings: their T0 training not counted)" if reused else ""))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("mlflow", "alembic", "postloan", "pipelines", "lightgbm"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="postloan-bench-year-"))
    t_all = time.perf_counter()
    runs, t0_models = [], {}
    for spec in args.t0_models:
        seed, folder = spec.split("=", 1)
        t0_models[int(seed)] = (store.load_bundles_from_dir(Path(folder)),
                                store.load_uplift_from_dir(Path(folder)), float("nan"))
    seeds = ([int(x) for x in args.seed_list.split(",")] if args.seed_list
             else list(range(1, args.seeds + 1)))
    for seed in seeds:
        for scen in args.scenarios.split(","):
            t = time.perf_counter()
            r = run_year(args.customers, seed, scen == "shock", args.history, args.capacity,
                         t0_models, work, retrain_every=args.retrain_every)
            r["seconds"] = round(time.perf_counter() - t, 1)
            runs.append(r)
            log.info("%s", json.dumps({k: r[k] for k in ("seed", "shock", "arms",
                                                          "first_flagged_month", "seconds")},
                                      default=str))
            # Written after every year: a cut-short run still leaves its measured years.
            report(runs, args, time.perf_counter() - t_all, machine(), write_json,
                   update_section if args.seed_list is None else None, name=args.out)


def report(runs, args, seconds, mach, write_json, update_section, name: str,
           wall: str | None = None) -> None:
    comparisons = {}
    for scen in (None, False, True):
        sub = [r for r in runs if scen is None or r["shock"] == scen]
        if not sub:
            continue
        key = "all" if scen is None else ("shock" if scen else "quiet")
        comparisons[key] = {f"{a}-handbook": {m: paired(sub, a, "handbook", m)
                                              for m in METRICS}
                            for a in ("frozen", "cycle", "none")}
        comparisons[key]["cycle-frozen"] = {"net_benefit": paired(sub, "cycle", "frozen")}
    write_json({"machine": mach, "customers": args.customers, "seeds": args.seeds,
                "history_months": args.history, "capacity": args.capacity,
                "retrain_every": args.retrain_every, "holdout": HOLDOUT,
                "seconds": round(seconds, 1), "runs": runs, "paired": comparisons},
               name)
    if update_section is None:  # a part of a parallel run: combined later
        return
    lines = ["## A closed-loop year on the simulator"
             + (f" ({args.title})" if getattr(args, "title", "") else ""), "",
             f"`python benchmarks/operations_year.py --customers {args.customers} --seeds "
             f"{args.seeds} --capacity {args.capacity}`: {len(runs)} years "
             f"({args.history} months of history, then 12 months run one at a time: "
             "snapshot of the book as known, `postloan.decisions.batch.score_and_decide`, "
             "contact the queue, `postloan.simulation.advance_month`), common random numbers "
             f"across arms. The cycle arm decides with `postloan.operations.cycle.decide_month` "
             "(the score step of `postloan cycle`), holds out "
             f"{HOLDOUT:.0%} of the customers it would contact (`assign_outreach`, seeded by the "
             "as-of; the candidates go deeper so the capacity is still filled) and logs "
             "every eligible customer's outreach row (assignment, propensity, reached) "
             "into its own book; it retrains with the cycle's retrain step "
             "(`pipelines.cycle.retrain_models`: the three models and the uplift models, "
             "each challenger gated against the arm's current champions in one MLflow "
             "store) "
             + (f"every {args.retrain_every} months and " if args.retrain_every else "")
             + "after a re-validate verdict of the monthly drift "
             f"check (champions on {TRAIN_DATES} snapshot dates). "
             f"{wall or f'{seconds / 60:,.1f} min'}, "
             f"load average {mach.get('load_avg', '?')}.", "",
             "Mean over seeds per scenario (net benefit against no contact):", "",
             "| scenario | arm | net benefit | credit loss | churned value | complaints | "
             "contact cost |", "|---|---|---|---|---|---|---|"]
    for scen in (False, True):
        sub = [r for r in runs if r["shock"] == scen]
        if not sub:
            continue
        for a in ARMS:
            mean = {m: np.mean([r["arms"][a][m] for r in sub]) for m in METRICS}
            lines.append(f"| {'shock' if scen else 'quiet'} | {a} | "
                         f"{mean['net_benefit']:,.0f} | {mean['credit_loss']:,.0f} | "
                         f"{mean['churned_value']:,.0f} | {mean['complaints']:,.1f} | "
                         f"{mean['contact_cost']:,.0f} |")
    lines += ["", "Paired differences against the handbook arm (90% intervals over seeds; "
              "negative credit loss / churned value / complaints = fewer):", "",
              "| scenario | arm - handbook | net benefit | credit loss | churned value | "
              "complaints | contact cost | seeds ahead |", "|---|---|---|---|---|---|---|---|"]

    def iv(d: dict) -> str:
        if math.isnan(d["lo"]):
            return f"{d['difference']:+,.0f}"
        return f"{d['difference']:+,.0f} [{d['lo']:+,.0f}, {d['hi']:+,.0f}]"

    for key, comp in comparisons.items():
        for pair in ("frozen-handbook", "cycle-handbook"):
            c = comp[pair]
            lines.append(f"| {key} | {pair} | {iv(c['net_benefit'])} | "
                         f"{iv(c['credit_loss'])} | {iv(c['churned_value'])} | "
                         f"{iv(c['complaints'])} | {iv(c['contact_cost'])} | "
                         f"{c['net_benefit']['wins']} of {c['net_benefit']['n']} |")
        lines.append(f"| {key} | cycle - frozen | {iv(comp['cycle-frozen']['net_benefit'])} "
                     f"| | | | | {comp['cycle-frozen']['net_benefit']['wins']} of "
                     f"{comp['cycle-frozen']['net_benefit']['n']} |")
    lines += ["", "Monitor and retraining per year (month 0 = T0; the shock starts in "
              f"month {SHOCK_MONTH}):", "",
              "| seed | scenario | cycle - handbook | holdout's expected cost | "
              "first re-validate | retrained in months (promoted) | "
              "first month on learned effects | "
              "default AUC / oracle by month: frozen | cycle |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        def ratios(a: str, r: dict = r) -> str:
            return " ".join(f"{x['default_risk']['ratio']:.2f}" if "default_risk" in x
                            else "-" for x in r["auc"][a])
        def promoted(r: dict = r) -> str:
            out = []
            for rec in r.get("retrain_records", []):
                ok = [m for m, g in rec.get("gates", {}).items() if g.get("promoted")]
                out.append(f"{rec['month']} ({', '.join(ok) or 'none'})" if "gates" in rec
                           else f"{rec['month']} (blocked)")
            return "; ".join(out) or "-"

        gap = r["arms"]["cycle"]["net_benefit"] - r["arms"]["handbook"]["net_benefit"]
        lines.append(f"| {r['seed']} | {'shock' if r['shock'] else 'quiet'} | {gap:+,.0f} | "
                     f"{r.get('holdout_expected_cost', math.nan):,.0f} | "
                     f"{r['first_flagged_month']} | {promoted()} | "
                     f"{r.get('first_learned_month', '-')} | "
                     f"{ratios('frozen')} | {ratios('cycle')} |")
    if "shock" in comparisons:
        sh, al = comparisons["shock"], comparisons["all"]
        ch = sh["cycle-handbook"]["net_benefit"]
        flags = [r["first_flagged_month"] for r in runs if r["shock"]]

        def met(ok: bool) -> str:
            return "met" if ok else "**not met**"

        lines += ["", "Goals (issue 22): the cycle ahead of the handbook on net benefit in "
                  f"every seed of the shock year: {ch['wins']} of {ch['n']}, "
                  f"{met(ch['wins'] == ch['n'])}; the paired interval over all seeds and "
                  f"scenarios above 0: [{al['cycle-handbook']['net_benefit']['lo']:+,.0f}, "
                  f"{al['cycle-handbook']['net_benefit']['hi']:+,.0f}], "
                  f"{met(al['cycle-handbook']['net_benefit']['lo'] > 0)}; ahead of the "
                  f"frozen arm in the shock year: "
                  f"{sh['cycle-frozen']['net_benefit']['difference']:+,.0f} on average "
                  f"({sh['cycle-frozen']['net_benefit']['wins']} of "
                  f"{sh['cycle-frozen']['net_benefit']['n']} seeds), "
                  f"{met(sh['cycle-frozen']['net_benefit']['difference'] > 0)} on the mean; "
                  f"the whole benchmark within 45 min on 2 cores: {seconds / 60:,.1f} min, "
                  f"{met(seconds <= 45 * 60)}; the shock "
                  f"flagged at the first cycle after it (month {SHOCK_MONTH}): months "
                  f"{flags}, {met(all(f == SHOCK_MONTH for f in flags))}."]
    same = sum(r["arms"]["frozen"] == r["arms"]["handbook"] for r in runs)
    lines += ["", f"The frozen arm equals the handbook arm in {same} of {len(runs)} years: "
              "where no uplift model passes its decision gate at T0, postloan's decision is "
              "the constants' (`decision_basis`), so without retraining the two queues are "
              "the same."]
    learned = sum(r.get("first_learned_month") is not None for r in runs)
    lines += ["", f"In {len(runs) - learned} of {len(runs)} years the cycle arm decided on "
              "the constants all year (no learned effects passed the decision gate, at T0 "
              "or after a retraining), like the handbook: there, the cycle differs from the "
              "handbook only by its retrained scores and its holdout, whose outcomes mature "
              "3 to 12 months later. Within one year the holdout is a cost (below) and its "
              "lesson is not yet learnable, so the cycle can only be ahead by better "
              "scores; the paired differences above are what that comes to."]
    own = np.mean([r.get("own_outreach_rows", 0) for r in runs])
    lines += ["", "AUC month by month is against the events in the rest of the year (the "
              "horizon the year reveals), the oracle the simulator's true probabilities on "
              "the same customers and events. The cycle arm logged "
              f"{own:,.0f} outreach rows a year on average (its holdout "
              f"{np.mean([r['holdout_customer_months'] for r in runs]):,.0f} customer-"
              "months), and its uplift retraining reads them, but only once their 12-month "
              "outcome is observed (`run_train_uplift --until`, the longest label): none of "
              "this year's own contacts matures inside the year, so its re-learned effects "
              "still come from the history's randomised contacts, plus its own from the "
              "second year on. 'First month on learned effects' is the first month any "
              "action's decision basis (the ledger's `decision_basis`) was learned effects "
              "(0: at T0 already)."]
    costs = [r["holdout_expected_cost"] for r in runs if "holdout_expected_cost" in r]
    if costs:
        lines += ["", "The holdout's expected cost is what the strategy itself expected to "
                  "forgo by holding out instead of contacting its top "
                  f"{args.capacity} (net benefit of the top {args.capacity} candidates less "
                  "that of those contacted, summed over the year): "
                  f"{np.mean(costs):,.0f} a year on average "
                  f"({HOLDOUT_WEIGHTING} weighting). It is paid every month; "
                  "what the holdout teaches the uplift models pays back only once its "
                  "outcomes mature, after the year."]
    update_section(name.replace("_", "-"), "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
