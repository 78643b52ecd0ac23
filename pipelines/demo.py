"""The demo: generate the book, build snapshots, print a summary (later: train, score, serve)."""

from __future__ import annotations

from pipelines.console import console, print_frame
from pipelines.generate import run_generate
from pipelines.snapshot import run_snapshot, summarise
from postloan.data.snapshot import month_end_dates
from postloan.settings import get_settings
from postloan.simulation import SimulationConfig


def run_demo(n_customers: int = 20_000, n_months: int = 36, seed: int = 42) -> None:
    """Generate the default portfolio, snapshot it quarterly and print what came out."""
    s = get_settings()
    cfg = SimulationConfig(n_customers=n_customers, n_months=n_months, seed=seed)
    console.rule("1. generate the synthetic book")
    manifest = run_generate(cfg, s.raw_dir, overwrite=True)
    console.print(", ".join(f"{k}: {v['rows']:,}" for k, v in manifest["tables"].items()))
    console.rule("2. point-in-time snapshots (quarterly)")
    months = cfg.month_ends()
    dates = [f"{d:%Y-%m-%d}" for d in month_end_dates(months[5], months[-1], every=3)]
    out = s.processed_dir / "snapshots.parquet"
    snap = run_snapshot(s.raw_dir, dates, out)
    print_frame(summarise(snap), f"snapshots written to {out}")
    console.print("labels are missing (NaN) where their horizon runs past the end of the data.")

    console.rule("3. train, explain, register (MLflow) and gate the three models")
    from pipelines.train import metrics_table, run_train
    from postloan.models.bundle import MODELS
    from postloan.models.training import TrainConfig

    uri = s.tracking_uri
    art = s.artifact_root if uri.startswith("sqlite:") else None
    results = run_train(s.raw_dir, list(MODELS), TrainConfig(seed=seed), uri, art,
                        s.models_dir, s.root)
    print_frame(metrics_table(results), "out-of-time metrics")
    for r in results:
        console.print(f"[bold]{r['model']}[/] v{r['version']} "
                      f"({'champion' if r['promoted'] else 'challenger'}: {r['gate']})")
        console.print("  top drivers: " + ", ".join(r["top_features"][:6]))
    from pipelines.train import run_train_uplift, uplift_table

    console.rule("3b. uplift models: what a contact does, learned from the randomised logs")
    # The shipped learner and dates (training.yaml, `uplift`).
    up = run_train_uplift(s.raw_dir, uri, art, s.models_dir, s.root, seed=seed)
    print_frame(uplift_table(up).set_index("action"),
                "uplift models: held-out Qini / AUUC and the simulator's truth")
    for r in up:
        console.print(f"[bold]{r['model']}[/] v{r['version']} "
                      f"({'champion' if r['promoted'] else 'challenger'}: {r['gate']})")
    console.print(f"MLflow runs: {uri}  (browse with `make mlflow`)")
    console.print(f"model bundles: {s.models_dir}/<model>/v<version>/")

    console.rule("4. validation packs for reviewers (self-contained HTML, English and Chinese)")
    import time

    from pipelines.report import run_champion_packs

    started = time.perf_counter()
    for model, paths in run_champion_packs(uri, s.raw_dir, s.models_dir).items():
        console.print(f"{model}: " + ", ".join(str(p) for p in paths))
    console.print(f"packs written in {time.perf_counter() - started:.0f} s "
                  "(`postloan report --model NAME --lang zh --pdf` prints one to PDF)")

    console.rule("5. score today's book: early warnings and the outreach queue")
    from pipelines.score import load_uplift, print_summary, run_score
    from postloan.models.registry import load_champions

    today = f"{months[-1]:%Y-%m-%d}"
    bundles = load_champions(tracking_uri=uri)
    out_dir = s.processed_dir / "scores" / today
    print_summary(run_score(s.raw_dir, today, out_dir, bundles, uplift=load_uplift(uri)),
                  out_dir)
    console.rule("next")
    console.print("serve the champions over HTTP:  POSTLOAN_API_TOKENS=<token> make serve   "
                  "(see serving/README.md)")
