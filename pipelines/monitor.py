"""Monitoring run: drift of scores and features between two dates, decay, verdicts."""

from __future__ import annotations

import base64
import html
import io as _io
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from pipelines.console import progress_bar
from postloan import io, monitoring, registry
from postloan.bundle import ModelBundle
from postloan.features import build_features
from postloan.snapshot import build_snapshot, parse_as_of


def _figure_png(fig) -> str:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _score_figure(ref: np.ndarray, cur: np.ndarray, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.quantile(ref, np.linspace(0, 1, 21))
    bins = np.unique(np.concatenate([[0.0], bins, [1.0]]))
    ax.hist(ref, bins=bins, density=True, alpha=0.55, label="reference")
    ax.hist(cur, bins=bins, density=True, alpha=0.55, label="current")
    ax.set(xlabel="score", ylabel="density", title=title, xscale="log" if ref.min() > 0 else None)
    ax.legend()
    fig.tight_layout()
    return fig


def _csi_figure(drift: pd.DataFrame, cfg: monitoring.MonitoringConfig):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = drift[drift["kind"] == "customer"].head(15).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    colors = ["#c0392b" if v > cfg.psi_shifted else "#e67e22" if v >= cfg.psi_watch
              else "#2e86c1" for v in top["csi"]]
    ax.barh(top["feature"], top["csi"], color=colors)
    ax.axvline(cfg.psi_watch, ls="--", c="grey", lw=1)
    ax.axvline(cfg.psi_shifted, ls="--", c="black", lw=1)
    ax.set(xlabel="CSI", title="Feature stability (top 15)")
    fig.tight_layout()
    return fig


def render_report(reference, current, results: list[dict], drift: pd.DataFrame,
                  figures: dict[str, str]) -> str:
    """A self-contained HTML drift report (plots embedded, no network)."""
    rows = "".join(
        f"<tr><td>{html.escape(r['model'])}</td><td class='{r['verdict']}'>{r['verdict']}</td>"
        f"<td>{r['score_psi']:.3f}</td><td>{html.escape('; '.join(r['reasons']) or '-')}</td>"
        "</tr>" for r in results)
    imgs = "".join(f"<figure><img alt='{html.escape(k)}' src='data:image/png;base64,{v}'>"
                   f"<figcaption>{html.escape(k)}</figcaption></figure>"
                   for k, v in figures.items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>postloan drift report {reference:%Y-%m-%d} vs {current:%Y-%m-%d}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}
.stable{{background:#d5f5e3}}.watch{{background:#fdebd0}}.re-validate,.shifted{{background:#f5b7b1}}
figure{{display:inline-block;margin:8px}}img{{max-width:520px}}</style></head><body>
<h1>Drift report: {reference:%Y-%m-%d} (reference) vs {current:%Y-%m-%d} (current)</h1>
<section id="verdicts"><h2>Verdict per model</h2><table><tr><th>model</th><th>verdict</th>
<th>score PSI</th><th>reasons</th></tr>{rows}</table></section>
<section id="plots"><h2>Plots</h2>{imgs}</section>
<section id="features"><h2>Feature stability (CSI; macro features by level change)</h2>
{drift.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")}</section>
</body></html>"""


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
    X_ref, X_cur = build_features(ref), build_features(cur)
    drift = monitoring.feature_drift(X_ref, X_cur, cfg)
    results, figures = [], {"feature stability": _figure_png(_csi_figure(drift, cfg))}
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
        figures[f"{model} score"] = _figure_png(_score_figure(p_ref, p_cur, f"{model} score"))
    page = render_report(ref_d, cur_d, results, drift, figures)
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_html.with_name(f".{out_html.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out_html)
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


__all__ = ["run_monitor", "render_report"]
