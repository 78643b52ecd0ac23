"""Batch scoring: champions -> scores, grades, EL, warnings, segments, outreach queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipelines.console import console, print_frame, progress_bar
from pipelines.quality import run_gate
from pipelines.scorecard import require_scorecard, with_scorecard_points
from postloan.data import io
from postloan.data.features import FeatureCache
from postloan.data.quality import gate_record
from postloan.data.snapshot import build_snapshot
from postloan.decisions import strategy
from postloan.decisions.batch import flat_frame, score_and_decide
from postloan.models import registry
from postloan.models.bundle import ModelBundle
from postloan.models.store import load_uplift_from_dir


def load_uplift(tracking_uri: str | None, model_dir: Path | None = None) -> dict:
    """The uplift champions by action: from the bundle folder when given, else the
    registry (empty: every action is decided on the strategy constants)."""
    if model_dir is not None:
        return load_uplift_from_dir(model_dir)
    if tracking_uri is None:
        return {}
    registry.configure(tracking_uri)
    return registry.load_uplift_champions()


def say_decision_basis(uplift: dict | None) -> None:
    """One console line: which actions are decided on learned effects, which on constants."""
    bases = strategy.decision_bases(uplift)
    learned = [a for a, b in bases.items() if b == strategy.LEARNED]
    fallback = [a for a in bases if a not in learned]
    if not uplift:
        console.print("decisions: no uplift model, every action decided on the strategy "
                      "constants")
        return
    why = []
    for a in fallback:
        if a in uplift:
            why.append(f"{a} ({uplift[a].decision_gate.get('reason', 'not judged')})")
        else:
            why.append(f"{a} (no model)")
    console.print(f"decisions: learned effects for {', '.join(learned) or 'no action'}; "
                  f"strategy constants for {'; '.join(why) or 'no action'}")


def run_score(data: Path, as_of: str, out: Path, bundles: dict[str, ModelBundle],
              capacity: int | None = None, config: Path | None = None,
              accept_data_issues: Sequence[str] = (), data_quality: Path | None = None,
              uplift: dict | None = None, scorecard: bool = False) -> dict[str, pd.DataFrame]:
    """Score every active customer at `as_of` and write the decision tables atomically.

    The book is first checked against the champions' data expectations: a hard finding
    not in `accept_data_issues` raises DataQualityError and nothing is written; the
    report goes into the output folder as ``data_quality.json``. With `uplift` bundles
    (action -> bundle) an action whose model passed its decision gate is decided on its
    learned effects, the others on the strategy constants (console line and the
    ``decision_basis`` column say which); the queue is a view of those decisions. With
    `scorecard`, the scores end with each customer's ``scorecard_points`` (the
    default-risk bundle's scorecard).
    """
    card = require_scorecard(bundles) if scorecard else None
    cfg = strategy.load_strategy_config(config)
    tables = io.read_tables(data)
    snap = build_snapshot(tables, as_of, with_labels=False)
    features = FeatureCache(snap)  # built once: the gate checks what the models score
    report = run_gate(tables, snap, bundles, accept_data_issues, data_quality, features)
    say_decision_basis(uplift)
    with progress_bar("scoring customers", len(snap)) as advance:
        outputs = score_and_decide(snap, bundles, cfg, capacity, progress=advance,
                                   uplift=uplift, features=features)
    if card is not None:
        dr = bundles["default_risk"]
        outputs["scores"] = with_scorecard_points(outputs["scores"], snap, dr,
                                                  features.get(dr.categories))
    io.write_frames_atomic({name: flat_frame(df) for name, df in outputs.items()}, Path(out),
                           json_files={"data_quality.json": gate_record(report)})
    return outputs


def run_score_engine(data: Path, as_of: str, out: Path, bundles: dict[str, ModelBundle],
                     capacity: int | None = None, config: Path | None = None,
                     engine_name: str = "local", scheduler: str | None = None,
                     partitions: int | None = None, model_dir: Path | None = None,
                     with_reasons: bool = True, accept_data_issues: Sequence[str] = (),
                     data_quality: Path | None = None,
                     uplift: dict | None = None) -> dict[str, pd.DataFrame]:
    """Score through the partition engine (local streaming or Dask); partitioned output.

    With `uplift` bundles (by action) the decisions use learned effects as
    :func:`run_score`'s: they are saved to a temporary folder beside `out` for the
    workers (like the champions; a remote cluster needs it on a shared file system).

    Workers load the champions from `model_dir`; champions from the registry are first
    saved to a temporary bundle folder beside `out` (visible to a local cluster; a
    remote cluster needs `model_dir` on a shared file system). Before any partition is
    scored, the data-quality gate checks the book on its first partition (a customer
    sample: feed freshness, completeness and scale are shares and medians), and its
    report is added to the output's ``manifest.json``.
    """
    import shutil
    import tempfile

    from pipelines.scale import partitioned_book, runner
    from postloan import scale

    out = Path(out)
    staged = None
    if model_dir is None:
        out.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.models-", dir=out.parent))
        for m, b in bundles.items():
            b.save(staged / m)
        model_dir = staged
    uplift_dir = None
    if uplift:
        out.parent.mkdir(parents=True, exist_ok=True)
        uplift_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.uplift-", dir=out.parent))
        for action, b in uplift.items():
            b.save(uplift_dir / action)
    say_decision_basis(uplift)
    try:
        with partitioned_book(data, partitions) as book:
            sample = scale.read_partition(book, 0)
            report = run_gate(sample, build_snapshot(sample, as_of, with_labels=False),
                              bundles, accept_data_issues, data_quality)
            n = scale.book_manifest(book)["n_partitions"]
            with runner(engine_name, scheduler, "scoring partitions", n) as r:
                res = scale.score_book(book, as_of, out, model_dir, r, capacity, config,
                                        with_reasons=with_reasons, uplift_dir=uplift_dir)
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        io.write_json_atomic({**manifest, "data_quality": gate_record(report)},
                             out / "manifest.json")
    finally:
        for folder in (staged, uplift_dir):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
    return {"decisions": res["decisions"], "queue": res["queue"]}


def _first(reasons) -> str:
    """The first reason of a list (or of its ' | '-joined text, as read back from files)."""
    if isinstance(reasons, str):
        return reasons.split(" | ")[0]
    return reasons[0] if len(reasons) else ""


def _short(text: str, n: int = 56) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def print_summary(outputs: dict[str, pd.DataFrame], out: Path, top: int = 10) -> None:
    """Counts per warning level and segment, and the top of the outreach queue."""
    summary = strategy.summarise(outputs["decisions"])
    for dim in ("warning_level", "segment"):
        part = summary[summary["dimension"] == dim].set_index("name")
        table = pd.DataFrame({
            "customers": part["n_customers"].map("{:,}".format),
            "share": part["share"].map("{:.1%}".format),
            "exposure": part["ead"].map("{:,.0f}".format),
            "expected loss": part["expected_loss"].map("{:,.0f}".format)})
        table.index.name = dim.replace("_", " ")
        print_frame(table, f"customers by {dim.replace('_', ' ')}")
    d = outputs["decisions"]
    actions = d["recommended_action"].astype(str).value_counts()
    table = pd.DataFrame({"customers": actions.map("{:,}".format),
                          "share": (actions / max(len(d), 1)).map("{:.1%}".format)})
    table.index.name = "decision"
    print_frame(table, "decisions (one per customer; the queue ranks those not 'none')")
    console.print(f"no contact ('none'): {actions.get('none', 0) / max(len(d), 1):.1%} of "
                  "customers")
    q = outputs["queue"].head(top)
    view = pd.DataFrame({
        "customer": q["customer_id"].astype(str), "action": q["recommended_action"],
        "net benefit": q["net_benefit"].map("{:,.0f}".format),
        "basis": q["decision_basis"].astype(str).str.replace("learned_uplift", "learned"),
        "level": q["warning_level"].astype(str), "PD": q["pd_12m"].map("{:.1%}".format),
        "churn": q["p_churn_6m"].map("{:.1%}".format),
        "dissat.": q["p_dissatisfied_3m"].map(lambda p: "-" if pd.isna(p) else f"{p:.1%}"),
        "why": [_short(_first(r)) for r in q["action_reasons"]]}
    ).set_index("customer")
    print_frame(view, f"top {len(view)} of the outreach queue (ranked by net benefit)")
    if (Path(out) / "scores").is_dir():
        console.print(f"written to {out}: scores/ and decisions/ (parquet parts), queue "
                      "(parquet + CSV), manifest.json")
    else:
        console.print(f"written to {out}: scores, decisions and queue (parquet + CSV)")


def write_to_database(out: Path, url: str, as_of: str, bundles: dict[str, ModelBundle],
                      table_prefix: str = "postloan_") -> dict:
    """Copy a finished run's files (plain or partitioned layout) into decision tables.

    The tables get exactly what the files hold; one transaction, so a reader never sees
    half a run. Returns :func:`postloan.data.decision_tables.write_decisions`' summary.
    """
    import uuid

    from postloan import scale
    from postloan.data.decision_tables import write_decisions
    from postloan.decisions.batch import model_versions

    out = Path(out)
    if (out / "scores").is_dir():
        frames = scale.read_score_output(out)
    else:
        frames = {f: pd.read_parquet(out / f"{f}.parquet") for f in ("scores", "decisions",
                                                                       "queue")}
    run_id = f"{pd.Timestamp(as_of):%Y%m%d}-{uuid.uuid4().hex[:12]}"
    return write_decisions(url, frames, as_of, run_id, model_versions(bundles), table_prefix)
