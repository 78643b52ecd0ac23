"""Does confidence-based performance estimation (CBPE) know a model's AUC early?

On three simulated books, a default-risk model (LightGBM + isotonic calibration) is
trained on the first as-of dates, then every later month-end is scored and its AUC
and event rate are estimated from the calibrated probabilities alone
(:func:`postloan.models.estimation.estimate_performance`), as if the labels had not matured.
The simulator runs long enough that every label does mature, so each estimate is
compared with the realised figure:

* quiet: the same book, nothing changes;
* covariate shift: each monitored month keeps customers with a probability that
  falls with their bureau score (a riskier population; the relation between
  features and default is untouched);
* macro shock: unemployment and rates jump (``postloan generate --shock``): how
  features relate to default changes, so the estimate is expected to miss, and the
  drift checks (:mod:`postloan.operations.monitoring`) must flag the months it misses.

The estimate is recalibrated on the latest matured months the model was not fitted
on and its 95% interval carries calibration's uncertainty besides the labels' noise
(:func:`postloan.models.estimation.estimate_from_reference`); the interval of label noise
alone (the previous method) is reported beside it. Goal (issue 20): on quiet months
the interval covers the realised AUC in at least 90% of months and the mean absolute
error is at most 0.02.

NannyML's CBPE runs on the same scores in a virtualenv of its own (its pins conflict
with ours: it is no project dependency): the script creates it with
``python -m venv`` + ``pip install nannyml`` when missing (``--nannyml-env``), writes
the scores as parquet and runs ``benchmarks/nannyml_cbpe.py`` there.

    python benchmarks/performance_estimation.py [--customers 10000] [--months 48]
        [--books quiet shock] [--nannyml-env /tmp/nannyml-env]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from _common import RESULTS, machine, update_section, write_json
from postloan.data.features import CATEGORICAL_FEATURES, build_features
from postloan.data.snapshot import build_snapshots
from postloan.models.bundle import booster_probability
from postloan.models.calibration import fit_calibrator
from postloan.models.estimation import (
    estimate_from_reference,
    estimate_performance,
    expected_auc,
    reference_calibrator,
)
from postloan.models.training import LgbmParams, fit_lightgbm
from postloan.operations import monitoring
from postloan.simulation import Shock, SimulationConfig, simulate

LABEL = "default_12m"
GOAL_AUC_ERROR = 0.02


def _train(snaps: pd.DataFrame, dates: list[pd.Timestamp], seed: int):
    part = snaps[snaps["as_of"].isin(dates) & snaps[LABEL].notna()]
    held = (part["customer_id"].to_numpy() * 2654435761 % 2**32) % 5 == 0
    X, y = build_features(part), part[LABEL].to_numpy("float64")
    booster = fit_lightgbm(X[~held], y[~held], X[held], y[held],
                           LgbmParams(seed=seed, num_threads=2), CATEGORICAL_FEATURES)
    calibrator = fit_calibrator(booster_probability(booster, X[held]), y[held], "isotonic")
    return booster, calibrator, X


def _covariate_keep(snap: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    # Keep a customer with a probability falling with the bureau score: P(X) moves,
    # P(default | X) does not.
    pct = snap["bureau_score"].rank(pct=True).fillna(0.5).to_numpy()
    return rng.random(len(snap)) < 0.15 + 0.85 * (1.0 - pct)


def nannyml_python(env: Path) -> Path | None:
    """The python of a virtualenv holding nannyml, created when missing (None: failed)."""
    py = env / "bin" / "python"
    ok = py.exists() and subprocess.run([str(py), "-c", "import nannyml"],
                                        capture_output=True).returncode == 0
    if not ok:
        print(f"creating {env} with nannyml (its pins conflict with ours)", flush=True)
        # The interpreter this venv was made from: a venv inside ours would see our pins.
        r = subprocess.run([str(Path(sys.base_prefix) / "bin" / "python3"), "-m", "venv",
                            str(env)], capture_output=True, text=True)
        if r.returncode == 0:
            # nannyml 0.13.1 imports statsmodels without declaring it.
            r = subprocess.run([str(py), "-m", "pip", "install", "-q", "nannyml", "statsmodels",
                                "pyarrow"], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"nannyml not installed: {r.stderr[-500:]}", flush=True)
            return None
    return py


def run_nannyml(py: Path, scores: Path, plan: list[dict], out: Path) -> dict:
    """NannyML's CBPE on the same scores and references (benchmarks/nannyml_cbpe.py)."""
    plan_file = out.with_suffix(".plan.json")
    plan_file.write_text(json.dumps(plan))
    script = Path(__file__).with_name("nannyml_cbpe.py")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([str(py), str(script), str(scores), str(plan_file), str(out)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"nannyml run failed: {r.stderr[-2000:]}", flush=True)
        return {}
    return json.loads(out.read_text())


def run_book(names: list[str], sim: SimulationConfig, n_train: int, seed: int,
             reference_months: int, scores_out: list[pd.DataFrame] | None = None
             ) -> list[dict]:
    """Train once on the book, then monitor it as each named variant."""
    tables = simulate(sim)
    months = sim.month_ends()
    horizon = 12
    train_dates = list(months[6:6 + n_train])
    after = list(months[6 + n_train:len(months) - horizon])  # labels mature in the book
    monitored = after[horizon:]  # each has at least one matured month after training
    snaps = build_snapshots(tables, [*train_dates, *after])
    booster, calibrator, X_ref = _train(snaps, train_dates, seed)
    p_ref = calibrator.transform(booster_probability(booster, X_ref))
    raw = {}
    for d in after:
        part = snaps[(snaps["as_of"] == d) & snaps[LABEL].notna()]
        raw[d] = (part, booster_probability(booster, build_features(part)))
    mcfg = monitoring.load_monitoring_config()
    rng = np.random.default_rng(seed)
    rows = []
    if scores_out is not None:  # every scored row, for NannyML's run on the same scores
        scores_out.append(pd.DataFrame({
            "book": names[0], "as_of": np.concatenate([np.repeat(d, len(raw[d][1]))
                                                       for d in after]),
            "p_raw": np.concatenate([raw[d][1] for d in after]),
            "p": calibrator.transform(np.concatenate([raw[d][1] for d in after])),
            "y": np.concatenate([raw[d][0][LABEL].to_numpy("float64") for d in after])}))
    for name, d in ((n, d) for n in names for d in monitored):
        # CBPE's reference: the latest months whose labels have matured at date d
        # (as-of at most d - 12 months), all after the model's training dates.
        ref = [r for r in after if r <= d - pd.DateOffset(months=horizon)][-reference_months:]
        p_ref_raw = np.concatenate([raw[r][1] for r in ref])
        y_ref = np.concatenate([raw[r][0][LABEL] for r in ref])
        ref_periods = np.concatenate([np.repeat(i, len(raw[r][1])) for i, r in enumerate(ref)])
        recal = reference_calibrator(p_ref_raw, y_ref)
        cur, p_raw = raw[d]
        if name == "covariate shift":
            keep = _covariate_keep(cur, rng)
            cur, p_raw = cur[keep], p_raw[keep]
        X = build_features(cur)
        p = calibrator.transform(p_raw)
        y = cur[LABEL].to_numpy("float64")
        est = estimate_from_reference(p_raw, p_ref_raw, y_ref, ref_periods, scores=p,
                                      n_samples=300, n_calibrations=50, seed=seed)
        labels_only = estimate_performance(recal.transform(p_raw), scores=p, n_samples=300,
                                           seed=seed)
        drift = monitoring.feature_drift(X_ref, X, mcfg)
        verdict, reasons = monitoring.verdict(monitoring.psi(p_ref, p, mcfg.n_bins), drift,
                                              [], None, mcfg)
        realised = float(roc_auc_score(y, p))
        rows.append({
            "book": name, "as_of": f"{d:%Y-%m-%d}", "n": int(len(y)),
            "reference": [f"{r:%Y-%m-%d}" for r in (ref[0], ref[-1])],
            "auc_estimated": est.auc, "auc_low": est.auc_low, "auc_high": est.auc_high,
            "auc_low_labels_only": labels_only.auc_low,
            "auc_high_labels_only": labels_only.auc_high,
            "auc_estimated_training_calibration": expected_auc(p),
            "auc_realised": realised, "auc_error": est.auc - realised,
            "event_rate_estimated": est.event_rate, "event_rate_realised": float(y.mean()),
            "drift_verdict": verdict, "drift_reasons": reasons,
            "after_shock": bool(sim.shock is not None and d >= months[sim.shock.month_index]),
        })
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Per book: errors against the goal, interval coverage and what drift flagged."""
    df = pd.DataFrame(rows)
    summary = []
    for name, g in df.groupby("book", sort=False):
        err = g["auc_error"].abs()
        covered = ((g["auc_low"] <= g["auc_realised"]) & (g["auc_realised"] <= g["auc_high"]))
        covered_labels = ((g["auc_low_labels_only"] <= g["auc_realised"])
                          & (g["auc_realised"] <= g["auc_high_labels_only"]))
        nanny = {}
        if "nannyml_auc" in g and g["nannyml_auc"].notna().all():
            nerr = (g["nannyml_auc"] - g["auc_realised"]).abs()
            real = g["auc_realised"]
            nanny = {"nannyml_mean_abs_auc_error": float(nerr.mean()),
                     "nannyml_interval_covers": int(((g["nannyml_auc_low"] <= real)
                                                     & (real <= g["nannyml_auc_high"])).sum()),
                     "nannyml_interval_covers_95": int(((g["nannyml_auc_low_95"] <= real)
                                                        & (real <= g["nannyml_auc_high_95"]))
                                                       .sum())}
        missed = err > GOAL_AUC_ERROR
        rate_err = (g["event_rate_estimated"] - g["event_rate_realised"]).abs()
        # What the drift checks flag among the months the estimate missed, counting only
        # months at or after the shock: before it, nothing in the data can show it.
        visible = missed & (g["after_shock"] | (name != "macro shock"))
        n_pos = (g["n"] * g["event_rate_realised"]).round().astype(int)
        # The realised AUC of a month is itself a sample: its own standard error bounds how
        # close any estimate can come month by month.
        se = [monitoring.auc_standard_error(a, int(p), int(n - p))
              for a, p, n in zip(g["auc_realised"], n_pos, g["n"], strict=True)]
        summary.append({
            "book": name, "months": int(len(g)), "rows_per_month": int(g["n"].median()),
            "positives_per_month": int(n_pos.median()),
            "auc_realised_mean": float(g["auc_realised"].mean()),
            "realised_auc_se_mean": float(np.mean(se)),
            "mean_abs_auc_error": float(err.mean()), "max_abs_auc_error": float(err.max()),
            "mean_auc_error": float(g["auc_error"].mean()),
            "mean_abs_auc_error_training_calibration": float(
                (g["auc_estimated_training_calibration"] - g["auc_realised"]).abs().mean()),
            "within_goal": int((~missed).sum()), "interval_covers": int(covered.sum()),
            "interval_covers_labels_only": int(covered_labels.sum()),
            "interval_width_mean": float((g["auc_high"] - g["auc_low"]).mean()), **nanny,
            "mean_abs_event_rate_error": float(rate_err.mean()),
            "drift_flagged_months": int((g["drift_verdict"] != "stable").sum()),
            "missed_visible_months": int(visible.sum()),
            "missed_visible_flagged": int((visible & (g["drift_verdict"] != "stable")).sum()),
        })
    return summary


def write_docs(result: dict) -> str:
    """The docs/benchmarks.md section of a result (also from a saved JSON)."""
    args = argparse.Namespace(**result["args"])
    shock_month = 6 + args.train_dates + 12 + 3
    summary, nanny = result["summary"], result["nannyml"]
    lines = [
        "## Performance estimation before labels mature (CBPE)",
        "",
        "`python benchmarks/performance_estimation.py` "
        f"({args.customers:,} customers, {args.months} months, seed {args.seed}, books "
        f"{', '.join(getattr(args, 'books', ['quiet', 'shock']))}; load average "
        f"{result['machine']['load_avg']}). A default-risk model (LightGBM + isotonic "
        f"calibration) trained on {args.train_dates} early month-ends; every later "
        "month-end whose 12-month label matures inside the book is scored, its AUC and "
        "event rate estimated from the probabilities alone "
        "(`postloan.models.estimation.estimate_from_reference`): recalibrated (Platt) on the "
        f"latest {args.reference_months} as-of months whose labels had matured at that "
        "date (all after the training dates), the 95% interval drawn from label noise and "
        "from the spread of the months' own calibrations; then compared with the "
        "realised figures once the labels matured. Goal (issue 20): on quiet months the "
        "interval covers the realised AUC in at least 90% of months and the mean absolute "
        "error is at most 0.02. On the macro shock (from month "
        f"{shock_month}) the estimate may miss and the drift verdict must flag it.",
        "",
        "| book | months | rows (positives)/month | realised AUC (its own SE) | mean AUC error "
        "| mean abs AUC error | max abs AUC error | within 0.02 | 95% interval covers "
        "| same, label noise only (before) | mean interval width "
        "| mean abs event-rate error | training calibration: mean abs AUC error "
        "| drift flagged | missed after shock, flagged |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        flagged = (f"{s['missed_visible_flagged']}/{s['missed_visible_months']}"
                   if s["book"] == "macro shock" else "-")
        lines.append(
            f"| {s['book']} | {s['months']} | {s['rows_per_month']:,} "
            f"({s['positives_per_month']}) | {s['auc_realised_mean']:.3f} "
            f"(±{s['realised_auc_se_mean']:.3f}) | {s['mean_auc_error']:+.3f} | "
            f"{s['mean_abs_auc_error']:.3f} | {s['max_abs_auc_error']:.3f} | "
            f"{s['within_goal']}/{s['months']} | {s['interval_covers']}/{s['months']} | "
            f"{s.get('interval_covers_labels_only', '-')}/{s['months']} | "
            f"{s.get('interval_width_mean', float('nan')):.3f} | "
            f"{s['mean_abs_event_rate_error']:.4f} | "
            f"{s['mean_abs_auc_error_training_calibration']:.3f} | "
            f"{s['drift_flagged_months']}/{s['months']} | {flagged} |")
    books = {s["book"]: s for s in summary}
    q = books.get("quiet")
    if q:
        goal = (q["interval_covers"] >= 0.9 * q["months"]
                and q["mean_abs_auc_error"] <= GOAL_AUC_ERROR)
        lines += ["", f"Quiet months: the interval covers the realised AUC in "
                  f"{q['interval_covers']} of {q['months']} (label noise alone: "
                  f"{q.get('interval_covers_labels_only', '-')}), mean absolute error "
                  f"{q['mean_abs_auc_error']:.3f}: goal {'met' if goal else 'NOT met'}. A "
                  "single month's realised AUC is itself a sample with a standard error of "
                  f"~{q['realised_auc_se_mean']:.3f} at this size, which bounds how close any "
                  "estimate can come month by month."]
    if "macro shock" in books:
        m = books["macro shock"]
        lines += ["", f"On the macro shock the estimate misses by {m['mean_abs_auc_error']:.3f} "
                  f"and the event rate by {m['mean_abs_event_rate_error']:.3f}, as expected; "
                  "the months it misses before the shock cannot be seen in any data at their "
                  "as-of date, and the drift verdict flags "
                  f"{m['missed_visible_flagged']} of the {m['missed_visible_months']} it "
                  "misses from the shock on."]
    else:
        lines += ["", "The macro-shock book was not re-run in this measurement (time); "
                  "`--books quiet shock` runs it."]
    if nanny:
        rows = [s for s in summary if "nannyml_mean_abs_auc_error" in s]
        lines += ["", f"NannyML's CBPE (nannyml {nanny}, in a virtualenv of its own: its pins "
                  "conflict with ours) on the same scores, fitted on the same reference "
                  "months (it recalibrates on them, isotonic, when they look miscalibrated) "
                  "and estimating each month as one chunk:", "",
                  "| book | mean abs AUC error | its band (3 sampling errors) covers "
                  "| 1.96 sampling errors covers |", "|---|---|---|---|"]
        for s in rows:
            lines.append(f"| {s['book']} | {s['nannyml_mean_abs_auc_error']:.3f} | "
                         f"{s['nannyml_interval_covers']}/{s['months']} | "
                         f"{s['nannyml_interval_covers_95']}/{s['months']} |")
    else:
        lines += ["", "NannyML's CBPE: not run (`--no-nannyml`, or its virtualenv could not be "
                  "made)."]
    lines += ["", f"Run time {result['seconds']:.0f} s."]
    text = "\n".join(lines)
    update_section("performance-estimation", text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--months", type=int, default=48)
    ap.add_argument("--train-dates", type=int, default=8)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--reference-months", type=int, default=12,
                    help="matured months CBPE recalibrates on")
    ap.add_argument("--books", nargs="+", default=["quiet", "shock"],
                    choices=["quiet", "shock"],
                    help="quiet: the quiet and covariate-shift variants; shock: the macro shock")
    ap.add_argument("--work", default="/tmp/postloan-performance-estimation",
                    help="folder for the scores parquet handed to NannyML")
    ap.add_argument("--nannyml-env", default="/tmp/nannyml-env",
                    help="virtualenv for NannyML (created when missing)")
    ap.add_argument("--no-nannyml", action="store_true", help="skip the NannyML comparison")
    ap.add_argument("--docs-only", action="store_true",
                    help="rewrite the docs section from the saved JSON without re-running")
    args = ap.parse_args()
    if args.docs_only:
        result = json.loads((RESULTS / "performance_estimation.json").read_text())
        result["summary"] = summarise(result["periods"])
        write_json(result, "performance_estimation")
        print(write_docs(result))
        return
    t0 = time.perf_counter()
    base = SimulationConfig(args.customers, args.months, seed=args.seed)
    shock_month = 6 + args.train_dates + 12 + 3  # three monitored months before the shock
    books = [(["quiet", "covariate shift"], base),
             (["macro shock"], SimulationConfig(args.customers, args.months, seed=args.seed,
                                                shock=Shock(shock_month)))]
    books = [b for b, key in zip(books, ("quiet", "shock"), strict=True) if key in args.books]
    rows, scores = [], []
    for names, sim in books:
        rows += run_book(names, sim, args.train_dates, args.seed, args.reference_months,
                         scores)
        print(f"{', '.join(names)}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    scores_file = work / "scores.parquet"
    pd.concat(scores, ignore_index=True).to_parquet(scores_file)
    nanny, nanny_version = {}, None
    py = None if args.no_nannyml else nannyml_python(Path(args.nannyml_env))
    if py is not None:
        plan = [{"book": r["book"], "as_of": r["as_of"], "reference": r["reference"]}
                for r in rows if r["book"] != "covariate shift"]
        nanny = run_nannyml(py, scores_file, plan, work / "nannyml.json")
        nanny_version = nanny.get("version")
        for r in rows:
            n = nanny.get("estimates", {}).get(f"{r['book']}|{r['as_of']}")
            if n:
                r.update({f"nannyml_{k}": v for k, v in n.items()})
    args_d = {k: v for k, v in vars(args).items() if k != "docs_only"}
    result = {"machine": machine(), "args": args_d, "goal_auc_error": GOAL_AUC_ERROR,
              "nannyml": nanny_version, "lightgbm": lgb.__version__,
              "summary": summarise(rows), "periods": rows,
              "seconds": time.perf_counter() - t0}
    write_json(result, "performance_estimation")
    print(write_docs(result))


if __name__ == "__main__":
    main()
