"""Monitoring run: drift of scores and features between two dates, decay, verdicts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow

from pipelines.console import progress_bar
from postloan import io, monitoring, plots, registry
from postloan.bundle import ModelBundle
from postloan.features import build_features
from postloan.reports.drift_report import render_drift_report
from postloan.snapshot import build_snapshot, parse_as_of


def run_monitor(data: Path, reference: str, current: str, bundles: dict[str, ModelBundle],
                cfg: monitoring.MonitoringConfig, out_html: Path,
                tracking_uri: str | None = None) -> list[dict]:
    """Compare two as-of dates for every model; write the HTML report; log to MLflow."""
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
    drift = monitoring.feature_drift(X_ref, X_cur, cfg)
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
        results.append({"model": model, "verdict": verdict, "score_psi": score_psi,
                        "reasons": reasons, "decay": decay,
                        "version": str(bundle.metadata.get("registered_version", "local"))})
        figures[f"{model} score"] = plots.figure_png(plots.score_distribution_figure(
            p_ref, p_cur, f"{model} score", cfg.n_bins, cfg))
    page = render_drift_report(ref_d, cur_d, results, drift, figures)
    out_html = io.write_text_atomic(page, Path(out_html))
    if tracking_uri:
        registry.configure(tracking_uri)
        exp = registry.ensure_experiment("postloan-monitoring", None if not tracking_uri.startswith(
            "sqlite:") else Path(tracking_uri[len("sqlite:///"):]).parent / "mlartifacts")
        with mlflow.start_run(experiment_id=exp,
                              run_name=f"drift {ref_d:%Y-%m-%d} vs {cur_d:%Y-%m-%d}"):
            mlflow.set_tags({"reference": f"{ref_d:%Y-%m-%d}", "current": f"{cur_d:%Y-%m-%d}",
                             **{f"verdict_{r['model']}": r["verdict"] for r in results}})
            mlflow.log_metrics({f"score_psi_{r['model']}": r["score_psi"] for r in results})
            mlflow.log_artifact(str(out_html), "monitoring")
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / "feature_drift.csv"
                drift.to_csv(p, index=False)
                mlflow.log_artifact(str(p), "monitoring")
    return results


__all__ = ["run_monitor"]
