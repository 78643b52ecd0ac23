"""Monitoring run: feed checks, drift between two dates, estimated and realised
performance, and a verdict per model with its action."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np

from pipelines.console import progress_bar
from postloan.data import io
from postloan.data.features import build_features
from postloan.data.quality import champion_expectations, check_book, load_data_quality_config
from postloan.data.snapshot import build_snapshot, parse_as_of
from postloan.models import registry
from postloan.models.bundle import ModelBundle
from postloan.models.estimation import (
    calibration_dates,
    estimable,
    estimate_from_reference,
    estimate_performance,
)
from postloan.operations import monitoring
from postloan.reporting import figures as plots
from postloan.reporting.drift_report import render_drift_report


def _estimate(bundle: ModelBundle, tables: dict, snapshots: dict, current, p_cur: np.ndarray,
              categories) -> dict:
    """CBPE at the current date, recalibrated on the model's out-of-time months (labelled,
    never fitted on), its interval carrying that calibration's uncertainty; the model's
    own calibration when the bundle names no such months or their labels are missing."""
    p_ref, y_ref, periods = [], [], []
    for d in calibration_dates(bundle.metadata, current):
        if d not in snapshots:
            snapshots[d] = build_snapshot(tables, d)
        snap = snapshots[d]
        known = snap[bundle.label].notna().to_numpy()
        p_ref.append(bundle.predict_features(build_features(snap[known], categories)))
        y_ref.append(snap.loc[known, bundle.label].to_numpy("float64"))
        periods.append(np.full(int(known.sum()), d.value))
    y = np.concatenate(y_ref) if y_ref else np.array([])
    if len(np.unique(y)) == 2:
        return estimate_from_reference(p_cur, np.concatenate(p_ref), y,
                                       np.concatenate(periods), n_samples=200,
                                       n_calibrations=50).to_dict()
    return estimate_performance(p_cur, n_samples=200).to_dict()


def run_monitor(data: Path, reference: str, current: str, bundles: dict[str, ModelBundle],
                cfg: monitoring.MonitoringConfig, out_html: Path,
                tracking_uri: str | None = None, data_quality: Path | None = None
                ) -> list[dict]:
    """Compare two as-of dates for every model; write the HTML report; log to MLflow.

    The current date's feeds are checked first against the champions' data
    expectations: a hard finding makes every model's verdict a data fault (fix the
    feed, do not retrain). Otherwise realised decay means retrain and drift a
    population shift (:func:`postloan.operations.monitoring.diagnose`). Each model's AUC and event
    rate at the current date are estimated from its probabilities (CBPE) beside the
    realised figures once they exist.
    """
    ref_d, cur_d = parse_as_of(reference), parse_as_of(current)
    tables = io.read_tables(data)
    with progress_bar("building snapshots", 2) as advance:
        ref = build_snapshot(tables, ref_d)
        advance()
        cur = build_snapshot(tables, cur_d)
        advance()
    # The champions were trained on one book: one vocabulary codes their categories.
    categories = next(iter(bundles.values())).categories
    X_ref, X_cur = build_features(ref, categories), build_features(cur, categories)
    exp = champion_expectations(bundles)
    quality = (check_book(tables, cur, exp, load_data_quality_config(data_quality), X_cur)
               if exp is not None else None)
    data_faults = [f.rule for f in quality.blocking] if quality is not None else []
    drift = monitoring.feature_drift(X_ref, X_cur, cfg)
    calibration_snapshots = {ref_d: ref, cur_d: cur}
    results = []
    figures = {"feature stability": plots.figure_png(plots.csi_figure(drift, cfg))}
    for model, bundle in bundles.items():
        p_ref, p_cur = bundle.predict_features(X_ref), bundle.predict_features(X_cur)
        score_psi = monitoring.psi(p_ref, p_cur, cfg.n_bins)
        y = cur[bundle.label]
        decay = None
        if y.notna().mean() >= cfg.min_labelled_share and y.dropna().nunique() == 2:
            ok = y.notna().to_numpy()
            decay = monitoring.performance_decay(y[ok], p_cur[ok],
                                                 bundle.metadata.get("metrics", {}))
        top = bundle.metadata.get("top_features", [])[: cfg.top_features]
        verdict, reasons = monitoring.verdict(score_psi, drift, top, decay, cfg)
        diagnosis, action, why = monitoring.diagnose(verdict, reasons, decay, data_faults, cfg)
        results.append({"model": model, "verdict": verdict, "score_psi": score_psi,
                        "reasons": reasons, "decay": decay, "diagnosis": diagnosis,
                        "action": action, "diagnosis_reasons": why,
                        "estimate": _estimate(bundle, tables, calibration_snapshots, cur_d,
                                              p_cur[estimable(cur, bundle.label)],
                                              categories),
                        "realised_auc": decay["auc_now"] if decay else None,
                        "version": str(bundle.metadata.get("registered_version", "local"))})
        figures[f"{model} score"] = plots.figure_png(plots.score_distribution_figure(
            p_ref, p_cur, f"{model} score", cfg.n_bins, cfg))
    page = render_drift_report(ref_d, cur_d, results, drift, figures,
                               quality.to_dict() if quality is not None else None)
    out_html = io.write_text_atomic(page, Path(out_html))
    if tracking_uri:
        registry.configure(tracking_uri)
        exp = registry.ensure_experiment("postloan-monitoring", None if not tracking_uri.startswith(
            "sqlite:") else Path(tracking_uri[len("sqlite:///"):]).parent / "mlartifacts")
        with mlflow.start_run(experiment_id=exp,
                              run_name=f"drift {ref_d:%Y-%m-%d} vs {cur_d:%Y-%m-%d}"):
            mlflow.set_tags({"reference": f"{ref_d:%Y-%m-%d}", "current": f"{cur_d:%Y-%m-%d}",
                             **{f"verdict_{r['model']}": r["verdict"] for r in results},
                             **{f"diagnosis_{r['model']}": r["diagnosis"] for r in results}})
            mlflow.log_metrics({f"auc_estimated_{r['model']}": r["estimate"]["auc"]
                                for r in results})
            if quality is not None:
                mlflow.log_dict(quality.to_dict(), "monitoring/data_quality.json")
            mlflow.log_metrics({f"score_psi_{r['model']}": r["score_psi"] for r in results})
            mlflow.log_artifact(str(out_html), "monitoring")
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / "feature_drift.csv"
                drift.to_csv(p, index=False)
                mlflow.log_artifact(str(p), "monitoring")
    return results


__all__ = ["run_monitor"]
