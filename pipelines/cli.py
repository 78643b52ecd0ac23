"""The ``postloan`` command: one subcommand per pipeline.

Library errors (:class:`postloan.errors.PostloanError`) become a short message and
exit code 2; a book that fails the data-quality gate
(:class:`postloan.errors.DataQualityError`) exits 4; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from pipelines.console import console, err_console, print_frame
from postloan.errors import DataQualityError, DataValidationError, PostloanError
from postloan.settings import get_settings

app = typer.Typer(help="postloan: post-loan management models, early warning and outreach.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def handle_errors(fn):
    """Turn PostloanError into a one-paragraph message and exit code 2 (4 for data quality).

    A database that refuses us (the MLflow tracking store on PostgreSQL: wrong password,
    server down) is reported the same way: the driver's one-line reason, which names
    the host and user but never the password, and no traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from sqlalchemy.exc import OperationalError

        try:
            return fn(*args, **kwargs)
        except DataQualityError as e:
            err_console.print(f"[bold red]data-quality gate:[/] {e}", markup=True,
                              highlight=False)
            raise typer.Exit(DataQualityError.exit_code) from None
        except PostloanError as e:
            err_console.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
            raise typer.Exit(2) from None
        except OperationalError as e:
            from rich.markup import escape

            reason = escape(" ".join(str(e.orig or e).split()))
            err_console.print(f"[bold red]error:[/] cannot use the database: {reason}",
                              markup=True, highlight=False)
            raise typer.Exit(2) from None

    return wrapper


# Options several commands share, declared once.
DataOpt = Annotated[Path | None, typer.Option(help="Book folder (default data/raw).")]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace an existing output folder.")]
ModelDirOpt = Annotated[Path | None, typer.Option(
    help="Bundle folder (<dir>/<model>/v<N>/, the champion its champion.json names) instead "
    "of the MLflow registry.")]
AliasOpt = Annotated[str, typer.Option(help="Registry alias to load (champion, challenger).")]
AsOfOpt = Annotated[str, typer.Option(help="As-of date YYYY-MM-DD.")]
ModelOpt = Annotated[str, typer.Option(help="default_risk | churn | satisfaction")]
MonthsOpt = Annotated[int, typer.Option(help="Months simulated.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed: same seed, same files.")]
EngineOpt = Annotated[str, typer.Option(
    help="local: in this process (streams partitions when the book is partitioned or "
    "--partitions is given); dask: one task per partition on a Dask cluster.")]
SchedulerOpt = Annotated[str | None, typer.Option(
    help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster sized "
    "to this machine). Needs --engine dask.")]
AcceptOpt = Annotated[str | None, typer.Option(
    help="Go ahead despite these hard data-quality rules (comma-separated rule ids or "
    "globs, e.g. bureau.completeness,activity.*); recorded in the output manifest.")]
DataQualityOpt = Annotated[Path | None, typer.Option(
    help="Data-quality limits YAML (default: the shipped config/data_quality.yaml).")]
PartitionsOpt = Annotated[int | None, typer.Option(
    help="Split a plain book into this many customer partitions on the fly (a "
    "partitioned book keeps its own).", min=1)]


@app.command()
@handle_errors
def generate(
    customers: Annotated[int, typer.Option(help="Customers in the book (existing + new).")] = 20_000,
    months: MonthsOpt = 36,
    seed: SeedOpt = 42,
    start: Annotated[str, typer.Option(help="First simulated month, YYYY-MM.")] = "2023-01",
    out: Annotated[Path | None, typer.Option(help="Output folder (default data/raw).")] = None,
    shock: Annotated[bool, typer.Option(help="Add a macro shock (unemployment and rates jump).")]
    = False,
    shock_month: Annotated[str | None, typer.Option(
        help="Month the shock starts, YYYY-MM (default: two thirds into the window).")] = None,
    overwrite: OverwriteOpt = False,
    partitions: Annotated[int | None, typer.Option(
        help="Write a partitioned book (customers hashed into N parts) for the scale-out "
        "engines.", min=1)] = None,
    holdout: Annotated[float, typer.Option(
        help="Share of customers eligible for outreach kept out at random (the control "
        "group logged in interactions).", min=0.0, max=1.0)] = 0.10,
    contacts: Annotated[bool, typer.Option(
        help="Simulate the lender's contact policy (--no-contacts: the book of earlier "
        "versions, one random stream, no outreach).")] = True,
) -> None:
    """Simulate a post-loan book and write its parquet tables and manifest.json."""
    import dataclasses

    from pipelines.generate import run_generate, shock_from_month
    from postloan.simulation import ContactPolicy, SimulationConfig

    if customers < 10 or months < 4:
        raise PostloanError("--customers must be >= 10 and --months >= 4")
    try:
        import pandas as pd

        pd.Timestamp(start + "-01")
    except ValueError:
        raise PostloanError(f"--start {start!r} is not a month (YYYY-MM)") from None
    cfg = SimulationConfig(n_customers=customers, n_months=months, seed=seed, start=start)
    if shock or shock_month:
        cfg = SimulationConfig(customers, months, seed, start, shock_from_month(cfg, shock_month))
    cfg = dataclasses.replace(cfg, contacts=ContactPolicy(holdout=holdout) if contacts else None)
    out = out or get_settings().raw_dir
    manifest = run_generate(cfg, out, overwrite=overwrite, partitions=partitions)
    rows = {k: v["rows"] for k, v in manifest["tables"].items()}
    console.print(f"wrote book to [bold]{out}[/] ({manifest['start']}..{manifest['end']}, "
                  f"seed {seed}, content hash {manifest['content_hash'][:12]})")
    console.print(", ".join(f"{k}: {v:,}" for k, v in rows.items()))
    if partitions:
        console.print(f"partitioned into {partitions} parts by customer id")


@app.command()
@handle_errors
def partition(
    partitions: Annotated[int, typer.Option(help="Number of customer partitions.", min=1)],
    out: Annotated[Path, typer.Option(help="Output folder of the partitioned book.")],
    data: DataOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Split a book into customer partitions (one table in memory at a time) for Dask."""
    from postloan.scale import partition_book

    src = data or get_settings().raw_dir
    with err_console.status(f"partitioning {src}"):
        m = partition_book(src, out, partitions, overwrite=overwrite)
    console.print(f"wrote {m['n_partitions']} partitions to [bold]{out}[/] "
                  f"({m['tables']['customers']['rows']:,} customers)")


@app.command()
@handle_errors
def ingest(
    source: Annotated[Path, typer.Option(help="Source mapping YAML (see docs/data-contract.md).")],
    out: Annotated[Path, typer.Option(help="Output folder of the canonical book.")],
    partitions: Annotated[int | None, typer.Option(
        help="Write a partitioned book (customers hashed into N parts).", min=1)] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Read a lender's tables through its source mapping and write a canonical book.

    Streams each source in chunks, converts (renames, casts, code maps, units), validates
    against the contract and writes the book with its manifest; the folder appears only
    when every table passed.
    """
    from pipelines.ingest import run_ingest

    manifest = run_ingest(source, out, partitions=partitions, overwrite=overwrite)
    rows = {k: v["rows"] for k, v in manifest["tables"].items()}
    console.print(f"wrote book to [bold]{out}[/] from {manifest['lender']} "
                  f"(mapping {manifest['mapping_sha256'][:12]}, content hash "
                  f"{manifest['content_hash'][:12]})")
    console.print(", ".join(f"{k}: {v:,}" for k, v in rows.items()))
    print_money(manifest.get("money") or {})
    if manifest["absent_tables"]:
        from postloan.data.contract import DISABLES

        for name in manifest["absent_tables"]:
            console.print(f"[yellow]absent[/] {name} (optional): {DISABLES[name]}")


def print_money(money: dict) -> None:
    """Each money column's median in the book's currency, and the scale warnings."""
    if not money.get("medians"):
        return
    cur = money.get("currency")
    unit = f" (source unit {money['money_unit']})" if money.get("money_unit") else ""
    console.print(f"money medians, in {cur or 'the currency (not declared: scale not checked)'}"
                  f"{unit}: " + ", ".join(f"{c} {v:,.2f}" for c, v in money["medians"].items()),
                  highlight=False)
    for w in money.get("warnings", []):
        console.print(f"[yellow]warning[/] {w}", highlight=False)


@app.command("check-data")
@handle_errors
def check_data(
    data: Annotated[Path | None, typer.Option(help="Book folder to profile.")] = None,
    source: Annotated[Path | None, typer.Option(
        help="Source mapping YAML: profile the lender's tables through it instead.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "--profile", help="Also write the HTML data profile to this file "
        "(nothing is written without it).")] = None,
) -> None:
    """Profile a book (or a mapping's sources) against the data contract.

    Prints rows, keys, date range, null shares and every contract violation with the
    first offending rows (and, with --out, writes them as an HTML profile). Exit 0 when
    clean, 2 on violations; absent optional tables are reported with what they disable.
    """
    from pipelines.ingest import profile_book, profile_source, write_profile

    if (data is None) == (source is None):
        raise PostloanError("give exactly one of --data or --source")
    from rich.table import Table

    profiles, title, money = profile_source(source) if source else profile_book(data)
    summary = Table(title=title)
    for c in ("table", "status", "rows", "keys", "date range", "max null share"):
        summary.add_column(c)
    for p in profiles:
        colour = {"ok": "green", "absent": "dim"}.get(p.status, "red")
        summary.add_row(p.table, f"[{colour}]{p.status}[/]", f"{p.rows:,}",
                        "" if p.n_keys is None else f"{p.n_keys:,}",
                        " .. ".join(p.date_range) if p.date_range else "",
                        f"{max(p.null_share.values()):.1%}" if p.null_share else "")
    console.print(summary)
    for p in profiles:
        if p.status == "absent":
            console.print(f"[dim]{p.table} absent (optional): {p.disables}[/]")
        for v in p.violations:
            console.print(f"[bold red]{p.table}[/]"
                          + (f", column '{v.column}'" if v.column else "")
                          + f": {v.rule}" + (f" ({v.n_rows:,} rows)" if v.n_rows else ""),
                          highlight=False, markup=True)
            if v.rows:
                console.print(v.rows, highlight=False, markup=False)
    print_money(money)
    if out is not None:  # only when asked: check-data reads, it does not litter
        write_profile(profiles, title, out, money)
        console.print(f"wrote data profile to [bold]{out}[/]")
    if any(p.status in ("violations", "error") for p in profiles):
        raise typer.Exit(2)


@app.command()
@handle_errors
def snapshot(
    as_of: Annotated[list[str], typer.Option("--as-of", help="As-of date YYYY-MM-DD; repeat "
                                             "for several.")],
    data: DataOpt = None,
    out: Annotated[Path | None, typer.Option(help="Output parquet or .csv (default "
                                             "data/processed/snapshots.parquet).")] = None,
    labels: Annotated[bool, typer.Option(help="Add labels after the as-of date.")] = True,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    partitions: PartitionsOpt = None,
) -> None:
    """Build point-in-time customer snapshots (and labels) for one or more as-of dates.

    Through the partition engines (--engine dask, or a partitioned book) the output is a
    folder of parquet parts (pandas.read_parquet reads it whole) with _manifest.json.
    """
    from pipelines.scale import uses_partitions
    from pipelines.snapshot import run_snapshot, run_snapshot_engine, summarise

    s = get_settings()
    out = out or s.processed_dir / "snapshots.parquet"
    data = data or s.raw_dir
    if uses_partitions(engine, data, partitions):
        table = run_snapshot_engine(data, as_of, out, engine, scheduler, partitions, labels)
    else:
        if scheduler:
            raise PostloanError("--scheduler needs --engine dask")
        table = summarise(run_snapshot(data, as_of, out, with_labels=labels))
    print_frame(table, f"snapshots written to {out}")


def _tracking(s) -> tuple[str, Path | None]:
    uri = s.tracking_uri
    # A database store (SQLite, PostgreSQL) keeps artifacts under the project's artifact
    # root; a tracking server decides for itself.
    served = uri.startswith(("http://", "https://", "databricks"))
    return uri, (None if served else s.artifact_root)


@app.command()
@handle_errors
def train(
    target: Annotated[str, typer.Option(
        help="default_risk | churn | satisfaction | uplift | all")] = "all",
    data: DataOpt = None,
    config: Annotated[Path | None, typer.Option(help="Training YAML (splits, params, gate).")]
    = None,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    partitions: PartitionsOpt = None,
    accept_data_issues: AcceptOpt = None,
    data_quality: DataQualityOpt = None,
) -> None:
    """Train, evaluate (OOT), explain, log to MLflow, register and gate the models.

    The book is first checked against the current champion's data expectations (exit
    code 4 on a hard finding; a model trained on a broken feed learns the fault).

    --engine dask builds the training snapshots per partition on the cluster and fits
    LightGBM with lightgbm.dask; early stopping (round count), calibration, the baseline
    and the evaluation run on a customer sample (see docs/scale.md).
    """
    from pipelines.quality import parse_accepted
    from pipelines.scale import check_engine
    from pipelines.train import UPLIFT_TARGET, check_models, metrics_table, run_train
    from postloan.models.bundle import MODELS
    from postloan.models.training import load_train_config

    s = get_settings()
    cfg = load_train_config(config)
    uri, art = _tracking(s)
    if target == UPLIFT_TARGET:
        _train_uplift(data or s.raw_dir, uri, art, s, cfg, required=True)
        return
    models = list(MODELS) if target == "all" else check_models([target])
    if check_engine(engine) == "dask":
        from pipelines.train import run_train_dask

        results = run_train_dask(data or s.raw_dir, models, cfg, uri, art, s.models_dir,
                                 s.root, scheduler=scheduler, partitions=partitions,
                                 explicit=target != "all")
    else:
        if scheduler or partitions:
            raise PostloanError("--scheduler and --partitions need --engine dask for train")
        results = run_train(data or s.raw_dir, models, cfg, uri, art, s.models_dir, s.root,
                            explicit=target != "all",
                            accept_data_issues=parse_accepted(accept_data_issues),
                            data_quality=data_quality)
    trained = [r for r in results if "skipped" not in r]
    if trained:
        print_frame(metrics_table(trained), "out-of-time metrics (OOT as-of dates)")
    for r in results:
        if "skipped" in r:
            console.print(r["skipped"])
            continue
        console.print(f"[bold]{r['model']}[/] v{r['version']}: {r['gate']}; top drivers: "
                      + ", ".join(r["top_features"][:5]))
    if target == "all":
        _train_uplift(data or s.raw_dir, uri, art, s, cfg, required=False)


def _train_uplift(data: Path, uri: str, art, s, cfg, required: bool) -> None:
    """Train the uplift models (docs/uplift.md); with `required` False (``--target all``,
    after the other models were registered) a book they cannot learn from skips them
    with a one-line reason instead of failing."""
    from pipelines.train import run_train_uplift, uplift_skip_reason, uplift_table

    if not required and (reason := uplift_skip_reason(data)) is not None:
        console.print(reason)
        return
    try:
        up = run_train_uplift(data, uri, art, s.models_dir, s.root, seed=cfg.seed,
                              n_dates=cfg.uplift.n_dates,
                              n_test_dates=cfg.uplift.n_test_dates,
                              learner=cfg.uplift.learner)
    except DataValidationError as e:
        if required:
            raise
        console.print(f"uplift models skipped: {e}", highlight=False)
        return
    if not up:
        console.print("uplift models skipped: no action had enough logged contacts to "
                      "learn from")
        return
    print_frame(uplift_table(up).set_index("action"),
                "uplift models: held-out Qini / AUUC and the simulator's truth")
    for r in up:
        console.print(f"[bold]{r['model']}[/] v{r['version']}: {r['gate']}")


@app.command()
@handle_errors
def models() -> None:
    """List registered model versions, their aliases and gate decisions."""
    import pandas as pd

    from postloan.models import registry

    s = get_settings()
    client = registry.configure(_tracking(s)[0])
    rows = registry.list_models(client)
    if not rows:
        console.print("no registered models yet: run `postloan train`")
        return
    print_frame(pd.DataFrame(rows).set_index("name"), "registered models")


@app.command()
@handle_errors
def promote(
    model: ModelOpt,
    version: Annotated[str, typer.Option(help="Registered version to make champion.")],
    force: Annotated[bool, typer.Option(help="Skip the promotion gate.")] = False,
) -> None:
    """Run the promotion gate on a version (or force it to champion)."""
    from postloan.models import registry
    from postloan.models.training import load_train_config

    s = get_settings()
    client = registry.configure(_tracking(s)[0])
    registry.registered_name(model)
    if force:
        registry.set_champion(client, model, version, "forced by `postloan promote --force`")
        console.print(f"{model} v{version} is champion (forced)")
        return
    gate = load_train_config().gate  # the thresholds `postloan train` gates with
    d = registry.promotion_gate(client, model, version, gate.auc_tolerance, gate.max_ece)
    console.print(f"{model} v{version}: {'promoted' if d.promoted else 'kept out'} — {d.reason}")


@app.command()
@handle_errors
def explain(
    customer: Annotated[int, typer.Option("--customer", "--customer-id", help="Customer id.")],
    as_of: AsOfOpt,
    target: Annotated[str | None, typer.Option(
        help="Print only this model's reasons: default_risk | churn | satisfaction.")] = None,
    lang: Annotated[str, typer.Option(help="Language of the page: en | zh.")] = "en",
    out: Annotated[Path | None, typer.Option(
        help="Write the customer page (HTML): scores, reason codes, signals, decision, "
             "score history.")] = None,
    data: DataOpt = None,
    alias: AliasOpt = "champion",
    k: Annotated[int, typer.Option(help="Reasons per direction.")] = 3,
) -> None:
    """Explain a customer: print scores and reason codes, or write the customer page."""
    from postloan.data import io
    from postloan.glossary import check_lang
    from postloan.models import registry

    check_lang(lang)
    s = get_settings()
    uri = _tracking(s)[0]
    registry.configure(uri)
    tables = io.read_tables(data or s.raw_dir)
    if out is not None:
        from pipelines.report import run_customer_page

        path = run_customer_page(tables, customer, as_of, out, lang, uri, alias, k)
        console.print(f"written: [bold]{path}[/]")
        return
    from postloan.data.snapshot import build_snapshot
    from postloan.models.bundle import MODELS

    models = [target] if target else list(MODELS)
    snap = build_snapshot(tables, as_of, with_labels=False)
    row = snap[snap["customer_id"] == customer]
    if row.empty:
        raise PostloanError(f"customer {customer} is not active at {as_of}")
    text = "text_zh" if lang == "zh" else "text_en"
    for model in models:
        bundle = registry.load_bundle(model, alias=alias)
        p = bundle.predict(row)[0]
        _, reasons = bundle.explain(row, k=k)
        console.print(f"[bold]{model}[/] probability for customer {customer} as of {as_of}: "
                      f"[bold]{p:.2%}[/]")
        for key, title in (("up", "raising the score"), ("down", "lowering the score")):
            console.print(f"  {title}:")
            for r in reasons[0][key]:
                other = r["text_zh"] if text == "text_en" else r["text_en"]
                console.print(f"    {r['contribution']:+.3f}  {r[text]}  /  {other}")


@app.command()
@handle_errors
def score(
    as_of: AsOfOpt,
    data: DataOpt = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default "
                                             "data/processed/scores/<as-of>).")] = None,
    model_dir: ModelDirOpt = None,
    alias: AliasOpt = "champion",
    capacity: Annotated[int | None, typer.Option(help="Calls per day for the outreach queue "
                                                 "(default from the strategy config).")] = None,
    config: Annotated[Path | None, typer.Option(help="Strategy YAML (grades, LGD, signals, "
                                                "levels, segments, queue).")] = None,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    partitions: PartitionsOpt = None,
    to: Annotated[str | None, typer.Option(
        help="Also write scores, decisions and the queue to this database (SQLAlchemy URL, "
        "e.g. sqlite:///decisions.db or postgresql://user@host/db), one transaction per "
        "run; re-running a date replaces its rows.")] = None,
    table_prefix: Annotated[str, typer.Option(help="Prefix of the decision tables (--to).")]
    = "postloan_",
    accept_data_issues: AcceptOpt = None,
    data_quality: DataQualityOpt = None,
    scorecard: Annotated[bool, typer.Option(
        "--scorecard", help="Also give each customer the default-risk champion's scorecard "
        "points (a scorecard_points column at the end of the scores; local engine, plain "
        "book).")] = False,
) -> None:
    """Score every active customer: PD, churn, dissatisfaction, grades, EL, warnings, queue.

    The book is first checked against the champions' data expectations: a hard finding
    (a feed late, incomplete or in the wrong unit, an impossible combination) stops the
    run with exit code 4 and writes nothing, unless accepted with --accept-data-issues.

    Through the partition engines (--engine dask, or a partitioned book) scores and
    decisions are written as folders of parquet parts, the queue whole, manifest.json last.
    """
    from pipelines.quality import parse_accepted
    from pipelines.scale import uses_partitions
    from pipelines.score import load_uplift, print_summary, run_score, run_score_engine
    from postloan.models.registry import load_champions

    s = get_settings()
    out = out or s.processed_dir / "scores" / as_of
    data = data or s.raw_dir
    partitioned = uses_partitions(engine, data, partitions)
    if scheduler and not partitioned:
        raise PostloanError("--scheduler needs --engine dask")
    if scorecard and partitioned:
        raise PostloanError("--scorecard works with the local engine on a plain book; the "
                            "partition engines do not compute scorecard points yet")
    if to:  # reach the database before scoring: a wrong URL fails before any file is written
        from postloan.data.database import connect

        connect(to).dispose()
    bundles = load_champions(model_dir, alias, _tracking(s)[0])
    # Uplift champions from the same place as the three models.
    uplift = load_uplift(_tracking(s)[0], model_dir)
    if partitioned:
        outputs = run_score_engine(data, as_of, out, bundles, capacity, config, engine,
                                   scheduler, partitions, model_dir,
                                   accept_data_issues=parse_accepted(accept_data_issues),
                                   data_quality=data_quality, uplift=uplift)
    else:
        outputs = run_score(data, as_of, out, bundles, capacity, config,
                            parse_accepted(accept_data_issues), data_quality, uplift=uplift,
                            scorecard=scorecard)
    print_summary(outputs, out)
    if to:
        from pipelines.score import write_to_database

        res = write_to_database(out, to, as_of, bundles, table_prefix)
        console.print(f"written to {res['url']}: " + ", ".join(
            f"{t} ({n:,} rows)" for t, n in res["rows"].items()) + f", run {res['run_id']}")


@app.command()
@handle_errors
def materialize(
    as_of: Annotated[str, typer.Option(help="As-of date YYYY-MM-DD of the snapshots.")],
    data: DataOpt = None,
    store: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL of the online store (default POSTLOAN_ONLINE_STORE, else "
        "sqlite:///online.db at the project root). Passwords come from PGPASSWORD or "
        "~/.pgpass, not the URL.")] = None,
    table_prefix: Annotated[str, typer.Option(help="Prefix of the store's tables.")]
    = "postloan_",
    keep: Annotated[int, typer.Option(help="As-of dates kept in the store.", min=1)] = 3,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    partitions: PartitionsOpt = None,
) -> None:
    """Write every active customer's snapshot at AS_OF to the online store, keyed by id.

    One transaction per date: the service reads the old date or the new one, never a
    mix; re-running a date replaces it.
    """
    from pipelines.materialize import run_materialize
    from postloan.data.database import mask_url

    s = get_settings()
    url = store or s.online_store_url
    info = run_materialize(data or s.raw_dir, as_of, url, table_prefix, keep, engine,
                           scheduler, partitions)
    console.print(f"materialised {info['n_customers']:,} customers as of {info['as_of']} "
                  f"into {mask_url(url)} (book {info['manifest_hash'][:12]})"
                  + (f"; pruned {', '.join(info['pruned'])}" if info["pruned"] else ""))


@app.command()
@handle_errors
def monitor(
    reference: Annotated[str, typer.Option(help="Reference as-of date YYYY-MM-DD.")],
    current: Annotated[str, typer.Option(help="Current as-of date YYYY-MM-DD.")],
    data: DataOpt = None,
    model_dir: ModelDirOpt = None,
    config: Annotated[Path | None, typer.Option(help="Monitoring thresholds YAML.")] = None,
    out: Annotated[Path | None, typer.Option(help="HTML report (default data/processed/"
                                             "monitoring/<ref>_vs_<cur>.html).")] = None,
    fail_on_drift: Annotated[bool, typer.Option(
        help="Exit 3 when any model's verdict is re-validate (for schedulers).")] = False,
    data_quality: DataQualityOpt = None,
) -> None:
    """Feed checks, drift (PSI/CSI), performance (estimated and realised) and a verdict
    per model between two dates: data fault (fix the feed; do not retrain), population
    shift (watch or re-validate), performance decay (retrain) or stable."""
    import pandas as pd

    from pipelines.monitor import run_monitor
    from postloan.models.registry import load_champions
    from postloan.operations.monitoring import load_monitoring_config

    s = get_settings()
    cfg = load_monitoring_config(config)
    uri = _tracking(s)[0]
    bundles = load_champions(model_dir, tracking_uri=uri)
    out = out or s.processed_dir / "monitoring" / f"{reference}_vs_{current}.html"
    results = run_monitor(data or s.raw_dir, reference, current, bundles, cfg, out,
                          tracking_uri=None if model_dir else uri, data_quality=data_quality)
    table = pd.DataFrame([{"model": r["model"], "verdict": r["diagnosis"],
                           "action": r["action"], "drift": r["verdict"],
                           "score PSI": f"{r['score_psi']:.3f}",
                           "AUC est.": f"{r['estimate']['auc']:.3f}",
                           "reasons": "; ".join((r["diagnosis_reasons"] or r["reasons"])[:3])
                           or "-"} for r in results])
    print_frame(table.set_index("model"), f"drift {reference} vs {current} (report: {out})")
    if fail_on_drift and any(r["verdict"] == "re-validate" for r in results):
        err_console.print("re-validate: at least one model has drifted (--fail-on-drift)")
        raise typer.Exit(3)


@app.command()
@handle_errors
def stress(
    scenario: Annotated[str, typer.Option(help="Scenario YAML file, or a built-in name: "
                                          "mild | severe.")],
    as_of: Annotated[str, typer.Option(help="As-of date of the book YYYY-MM-DD.")],
    data: DataOpt = None,
    model_dir: ModelDirOpt = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default "
                                             "data/processed/stress/<scenario>).")] = None,
    accept_data_issues: AcceptOpt = None,
    data_quality: DataQualityOpt = None,
) -> None:
    """Re-score the book under a macro scenario: PD, EL, warnings by segment, before/after.

    The book is checked against the champions' data expectations first (exit code 4 on
    a hard finding, nothing written)."""
    from pipelines.quality import parse_accepted
    from pipelines.stress import run_stress
    from postloan.models.registry import load_champions
    from postloan.operations.stress import load_scenario

    s = get_settings()
    sc = load_scenario(scenario)
    bundles = load_champions(model_dir, tracking_uri=_tracking(s)[0])
    out = out or s.processed_dir / "stress" / sc.name
    t = run_stress(data or s.raw_dir, as_of, sc, bundles, out,
                   parse_accepted(accept_data_issues), data_quality)
    view = t.assign(mean_pd=t["mean_pd"].map("{:.2%}".format),
                    expected_loss=t["expected_loss"].map("{:,.0f}".format))
    print_frame(view.set_index("group"), f"scenario '{sc.name}': {sc.description}")
    console.print(f"table and plot written to {out}")


@app.command("evaluate-policy")
@handle_errors
def evaluate_policy(
    as_of: Annotated[str, typer.Option(help="As-of date YYYY-MM-DD (a month end with 12 "
                                       "simulated months after it).")],
    capacity: Annotated[list[int], typer.Option(help="Contacts per policy; repeat for "
                                                "several capacities.")],
    data: Annotated[Path | None, typer.Option(help="Simulated book folder (default "
                                              "data/raw).")] = None,
    seeds: Annotated[int, typer.Option(help="Replay seeds (futures) for the intervals; "
                                       "seed 0 is the book's own.", min=1)] = 5,
    scores: Annotated[str, typer.Option(help="Scores behind the queues: models (the "
                                        "champions) or truth (the simulator's true "
                                        "probabilities).")] = "models",
    model_dir: ModelDirOpt = None,
    alias: AliasOpt = "champion",
    config: Annotated[Path | None, typer.Option(help="Strategy YAML for the constants "
                                                "queue.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default "
                                             "data/processed/policy/<as-of>).")] = None,
) -> None:
    """Replay the simulated book from --as-of under each outreach policy and compare.

    Policies: `decision` (postloan's one decision with the registered uplift
    champions: learned effects where their decision gate admits them, else the
    constants), `learned_all` (every uplift champion decides, gate ignored: what the gate
    protects against), `constants` (strategy.yaml only), PD only, random, no contact. Each is
    contacted in the month after the as-of, then the simulator runs 12 months with
    common random numbers; losses, churned value, complaints and contact cost come
    from the simulated outcomes. Net benefit is against no contact, with 90% intervals
    over seeds.
    """
    from pipelines.replay import decision_queue_builder, run_evaluate_policy, summary_view
    from pipelines.score import load_uplift
    from postloan.models.registry import load_champions

    s = get_settings()
    data = data or s.raw_dir
    out = out or s.processed_dir / "policy" / as_of
    bundles = load_champions(model_dir, alias, _tracking(s)[0]) if scores == "models" else None
    uplift = load_uplift(_tracking(s)[0], model_dir)
    extra = {}
    if uplift:
        extra["decision"] = decision_queue_builder(uplift, config)
        extra["learned_all"] = decision_queue_builder(uplift, config, respect_gate=False)
        import pandas as pd

        from postloan.models.uplift import outcomes_seen_until

        seen = {a: d for a, b in uplift.items()
                if (d := outcomes_seen_until(b)) is not None and d > pd.Timestamp(as_of)}
        if seen:  # e.g. after `make demo`, which trains on the whole book
            console.print(f"[yellow]the uplift champions of {', '.join(sorted(seen))} learned "
                          f"from outcomes up to {max(seen.values()):%Y-%m-%d}, after the "
                          f"as-of {as_of}: this replay is not an out-of-time test of them "
                          "(benchmarks/policy_replay.py trains them as of the date; "
                          "docs/uplift.md, \"Training windows\")[/]")
    else:
        console.print("no uplift model: the decision is the constants' and the learned "
                      "arms are left out (train them with `postloan train --target uplift`)")
    outputs = run_evaluate_policy(data, as_of, capacity, seeds, scores, bundles, config, out,
                                  extra_queues=extra)
    print_frame(summary_view(outputs["summary"]),
                f"policy replay from {as_of}: 12 months, {seeds} seed(s), 90% intervals")
    console.print(f"written to {out}: runs, summary and queues (parquet + CSV)")


def benchmark_module(name: str):
    """A module of the checkout's ``benchmarks/`` folder (benchmarks are not library code),
    imported by name with that folder at the end of ``sys.path`` (its scripts must not
    shadow the packages) so its process pools import it too."""
    import importlib
    import sys

    folder = get_settings().root / "benchmarks"
    if not (folder / f"{name}.py").is_file():
        raise PostloanError(f"benchmark code {folder / f'{name}.py'} not found: benchmarks "
                            "run from a source checkout of postloan (set POSTLOAN_ROOT to it)")
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    return importlib.import_module(name)


@app.command()
@handle_errors
def benchmark(
    name: Annotated[str, typer.Argument(help="Benchmark to run: german-credit.")],
    repeats: Annotated[int, typer.Option(help="CV repeats.")] = 5,
    splits: Annotated[int, typer.Option(help="CV folds per repeat.")] = 5,
    seed: SeedOpt = 42,
) -> None:
    """Real-data benchmark through the same training code (German credit, repeated CV)."""
    import pandas as pd

    from pipelines.console import progress_bar

    if name != "german-credit":
        raise PostloanError(f"unknown benchmark '{name}'; available: german-credit")
    german_credit_cv = benchmark_module("german_credit_cv").german_credit_cv
    with progress_bar("outer folds", repeats * splits) as advance:
        res = german_credit_cv(n_splits=splits, n_repeats=repeats, seed=seed,
                               progress=lambda done, total: advance())
    rows = {m: {"mean AUC": f"{r['mean_auc']:.4f}", "sd": f"{r['sd_auc']:.4f}",
                "folds": str(len(r["fold_auc"]))} for m, r in res["models"].items()}
    table = pd.DataFrame(rows).T
    table.index.name = "model"
    print_frame(table, "German credit, repeated stratified CV (tuning inside the folds)")
    console.print("anchors (Lessmann et al. 2015): logistic regression 0.784, best of 41 "
                  "classifiers 0.801. `make bench` writes docs/benchmarks.md.")


@app.command()
@handle_errors
def report(
    model: Annotated[str, typer.Option(help="default_risk | churn | satisfaction | "
                                       "decisions (the decision layer)")],
    lang: Annotated[str, typer.Option(help="Language of the pack: en | zh.")] = "en",
    pdf: Annotated[bool, typer.Option("--pdf", help="Also print a PDF beside the HTML "
                                      "(headless Chromium).")] = False,
    version: Annotated[str | None, typer.Option(help="Registered version (default: "
                                                "champion).")] = None,
    alias: Annotated[str | None, typer.Option(help="Registry alias, e.g. champion, "
                                              "challenger.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output HTML (default "
                                             "models/<model>/v<N>/pack_<lang>.html).")] = None,
    data: DataOpt = None,
) -> None:
    """Write a model's validation pack (one offline HTML page, English or Chinese)."""
    from pipelines.report import run_pack

    s = get_settings()
    with console.status(f"building the {lang} validation pack of {model}"):
        paths = run_pack(model, lang, out=out, pdf=pdf, version=version, alias=alias,
                         tracking_uri=_tracking(s)[0], data_dir=data or s.raw_dir,
                         models_dir=s.models_dir)
    for path in paths:
        console.print(f"written: [bold]{path}[/]")


@app.command("scorecard")
@handle_errors
def scorecard_cmd(
    model: ModelOpt = "default_risk",
    out: Annotated[Path | None, typer.Option(help="Output folder (default "
                                             "models/<model>/scorecard).")] = None,
    model_dir: ModelDirOpt = None,
    alias: AliasOpt = "champion",
    data: Annotated[Path | None, typer.Option(help="Book folder (default data/raw), to "
                                              "refit a bundle that has no scorecard.")] = None,
    config: Annotated[Path | None, typer.Option(help="Training YAML (its scorecard section) "
                                                "for a refit.")] = None,
) -> None:
    """Write a model's points scorecard: scorecard.csv (feature, bin, woe, points; the
    first row the base points) and scorecard.json.

    The default-risk champion carries the scorecard fitted beside it in training; a
    bundle without one gets it refitted on its own training dates from the book.
    """
    from pipelines.scorecard import run_scorecard, summary
    from postloan.models.training import load_train_config

    s = get_settings()
    res = run_scorecard(model, out or s.models_dir / model / "scorecard", data or s.raw_dir,
                        load_train_config(config), model_dir, alias, _tracking(s)[0])
    card = res["scorecard"]
    print_frame(summary(card), f"{model} v{res['version']} scorecard ({res['source']}): base "
                f"{card.base:g} points, {card.params.pdo:g} points double the odds")
    aucs = ", ".join(f"{k.replace('_auc', '')} {v:.4f}" for k, v in card.metrics.items()
                     if v == v)
    if aucs:
        console.print(f"OOT AUC: {aucs}")
    console.print(f"written to {res['csv']} and {res['json']}")


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 3000,
    insecure_local: Annotated[bool, typer.Option(
        help="Allow starting without POSTLOAN_API_TOKENS (local experiments only).")] = False,
) -> None:
    """Start the BentoML scoring service (checks configuration and champions first)."""
    import sys

    args = [sys.executable, "-m", "serving", "--host", host, "--port", str(port)]
    if insecure_local:
        args.append("--insecure-local")
    # Replace this process rather than wait on a child: a SIGTERM or SIGINT sent to
    # `postloan serve` then reaches the service's supervisor, which stops the server and
    # its workers (a child left behind would keep the port).
    os.chdir(get_settings().root)
    os.execv(sys.executable, args)


@app.command()
@handle_errors
def demo(
    customers: Annotated[int, typer.Option(help="Customers in the demo book.")] = 20_000,
    months: MonthsOpt = 36,
    seed: SeedOpt = 42,
) -> None:
    """Run the main job end to end on the built-in synthetic portfolio."""
    from pipelines.demo import run_demo

    run_demo(n_customers=customers, n_months=months, seed=seed)


def _ledger(to: str | None, s):
    """The run ledger: in the decision database with --to, else SQLite beside MLflow."""
    from postloan.operations.cycle import Ledger, ledger_url_for

    return Ledger(to or ledger_url_for(_tracking(s)[0], s.root))


@app.command()
@handle_errors
def cycle(
    as_of: Annotated[str, typer.Option(help="The month's as-of date YYYY-MM-DD (month end).")],
    data: Annotated[Path | None, typer.Option(help="Book folder of the month.")] = None,
    source: Annotated[Path | None, typer.Option(
        help="Source mapping YAML: ingest the lender's tables first (instead of --data).")]
    = None,
    to: Annotated[str | None, typer.Option(
        help="Database URL for the decision tables, the month's outreach rows and the run "
        "ledger (one transaction per month's decisions and outreach); default: files only, "
        "the ledger in SQLite beside MLflow.")]
    = None,
    config: Annotated[Path | None, typer.Option(
        help="Cycle YAML (retrain schedule and training config, holdout share, capacity, "
        "steps; default the shipped config/cycle.yaml).")] = None,
    model_dir: ModelDirOpt = None,
    accept_data_issues: AcceptOpt = None,
    data_quality: DataQualityOpt = None,
) -> None:
    """Run one month: ingest, gate, score and decide, write, materialise, monitor,
    retrain, report; every step recorded in the run ledger (`postloan runs`).

    Exit codes (docs/operations.md): 0 ok, 2 bad input, 3 re-validation needed (the
    monitor's verdict; the month's decisions are written), 4 stopped by the data gate
    (nothing of the month written; fix the feed and re-run: the cycle resumes).
    """
    from pipelines.cycle import Paths, run_cycle
    from pipelines.quality import parse_accepted
    from postloan.operations.cycle import load_cycle_config

    s = get_settings()
    cfg = load_cycle_config(config)
    uri, art = _tracking(s)
    paths = Paths(cycles=s.processed_dir / "cycles", books=s.data_dir / "books", tracking_uri=uri,
                  artifact_root=art, models_dir=s.models_dir, root=s.root,
                  online_store=s.online_store_url)
    ledger = _ledger(to, s)
    try:
        res = run_cycle(as_of, paths, cfg, ledger, data=data, source=source, to=to,
                        model_dir=model_dir, accept_data_issues=parse_accepted(accept_data_issues),
                        data_quality=data_quality)
    finally:
        ledger.close()
    console.print(f"cycle {res.cycle_id} of {res.as_of}: " + ", ".join(
        f"{k} {v}" for k, v in res.steps.items()) + f"; written to {res.out}")
    if res.exit_code == 3:
        err_console.print("re-validate: the monitor found a model drifted (exit 3); the "
                          "month's decisions are written")
        raise typer.Exit(3)


@app.command()
@handle_errors
def runs(
    as_of: Annotated[str | None, typer.Option(help="Only this month (YYYY-MM-DD).")] = None,
    to: Annotated[str | None, typer.Option(
        help="The database the cycles wrote their ledger to (their --to).")] = None,
) -> None:
    """List the run ledger: one row per cycle and step (status, versions, counts, verdicts)."""
    from pipelines.cycle import runs_table

    ledger = _ledger(to, get_settings())
    try:
        rows = ledger.rows(as_of)
    finally:
        ledger.close()
    if rows.empty:
        console.print("no cycles recorded" + (f" for {as_of}" if as_of else ""))
        return
    print_frame(runs_table(rows).set_index("as of"), f"run ledger ({ledger.url})")


def main() -> None:
    """Entry point of the ``postloan`` script."""
    import warnings

    # MLflow's own progress bars and advice are noise on our console; runs still log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow\..*")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.basicConfig(level=os.environ.get("POSTLOAN_LOG_LEVEL", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
