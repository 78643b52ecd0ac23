"""The monthly cycle: ingest -> gate -> score and decide -> write -> materialise ->
monitor -> retrain -> report, each step recorded in the run ledger (docs/operations.md).

The month's files go to ``<cycles>/<as-of>/``: they are written into a staging folder
``<cycles>/.<as-of>.staged`` by the score step and put in place whole by the write step
(after the database transaction with ``--to``), so a reader sees the previous month's
files, or the old version of this month, until the new one is complete. A run that
failed at a step resumes from that step (:meth:`postloan.operations.cycle.Ledger.resume_point`);
a month that finished is re-run from the start and replaced.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.console import console, progress_bar
from postloan.data import io
from postloan.data.database import first_line
from postloan.data.features import FeatureCache
from postloan.data.snapshot import build_snapshot, parse_as_of
from postloan.decisions import strategy
from postloan.decisions.batch import flat_frame, model_versions
from postloan.errors import DataQualityError, PostloanError
from postloan.operations import cycle
from postloan.operations.cycle import FAILED, OK, SKIPPED, CycleConfig, Ledger

FRAMES = ("scores", "decisions", "queue", "outreach")


@dataclass
class CycleResult:
    """What one month's cycle did: its id, exit code, folder and each step's status."""

    as_of: str
    cycle_id: str
    exit_code: int
    out: Path
    steps: dict[str, str] = field(default_factory=dict)
    monitor: dict | None = None
    retrain: str | None = None
    resumed: bool = False


@dataclass
class Paths:
    """Where a cycle reads and writes (the CLI derives them from the project settings)."""

    cycles: Path            # data/processed/cycles
    books: Path             # ingested books, one per as-of (with --source)
    tracking_uri: str
    artifact_root: Path | None
    models_dir: Path | None
    root: Path
    online_store: str | None = None


def all_versions(bundles: dict, uplift: dict) -> dict[str, str]:
    """Every model's version: the three champions and the uplift model of each action."""
    return {**model_versions(bundles),
            **{f"uplift_{a}": str(b.metadata.get("registered_version", "local"))
               for a, b in sorted(uplift.items())}}


def _folder_cycle(folder: Path) -> str | None:
    """The cycle id a month's folder was written by (None: no such folder)."""
    import json

    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["cycle_id"]
    except (OSError, ValueError, KeyError):
        return None


class _Month:
    """One month's state, built lazily so a resumed cycle builds only what it needs."""

    def __init__(self, as_of: str, data: Path | None, paths: Paths,
                 model_dir: Path | None):
        self.as_of, self.data, self.paths, self.model_dir = as_of, data, paths, model_dir
        self._tables = self._snap = self._features = None
        self._bundles = self._uplift = None
        self.gate_report = None

    def tables(self) -> dict[str, pd.DataFrame]:
        if self._tables is None:
            self._tables = io.read_tables(self.data)
        return self._tables

    def snapshot(self) -> pd.DataFrame:
        if self._snap is None:
            self._snap = build_snapshot(self.tables(), self.as_of, with_labels=False)
            self._features = FeatureCache(self._snap)
        return self._snap

    def features(self) -> FeatureCache:
        self.snapshot()
        return self._features

    def bundles(self) -> dict:
        if self._bundles is None:
            from postloan.models.registry import load_champions

            self._bundles = load_champions(self.model_dir, tracking_uri=self.paths.tracking_uri)
        return self._bundles

    def uplift(self) -> dict:
        if self._uplift is None:
            from pipelines.score import load_uplift

            self._uplift = load_uplift(self.paths.tracking_uri, self.model_dir)
        return self._uplift

    def reload_models(self) -> None:
        """After a retraining the gates may have promoted new champions."""
        self._bundles = self._uplift = None

    def data_hash(self) -> str:
        from pipelines.materialize import book_hash

        return book_hash(self.data)


def run_cycle(as_of: str, paths: Paths, cfg: CycleConfig, ledger: Ledger,
              data: Path | None = None, source: Path | None = None, to: str | None = None,
              model_dir: Path | None = None, accept_data_issues: Sequence[str] = (),
              data_quality: Path | None = None, table_prefix: str = "postloan_"
              ) -> CycleResult:
    """Run (or resume) one month's cycle; see the module docstring.

    Args:
        as_of: the month's as-of date (a month end, ``YYYY-MM-DD``).
        paths: where the cycle reads and writes.
        cfg: the cycle config.
        ledger: the run ledger the steps are recorded in.
        data: the book folder (or `source`: a source mapping ingested first).
        source: a source mapping YAML (``postloan ingest``'s).
        to: a database URL the decision tables are written to (one transaction).
        model_dir: bundle folder instead of the MLflow registry.
        accept_data_issues: hard data-quality rules the operator accepted.
        data_quality: data-quality limits YAML.
        table_prefix: prefix of the decision tables.

    Returns:
        The :class:`CycleResult` (exit code 3 when the monitor asks for re-validation).

    Raises:
        DataQualityError: the gate stopped the month (nothing of it is written).
        PostloanError: bad input at a step (the ledger records it).
    """
    if (data is None) == (source is None):
        raise PostloanError("give the book with --data or a source mapping with --source "
                            "(one of them)")
    as_of = parse_as_of(as_of).date().isoformat()
    if cfg.steps.retrain and cfg.training:
        # A bad training config stops the month before anything is written, not at the
        # retrain step after the decisions went out.
        from postloan.models.training import load_train_config

        load_train_config(cfg.training)
    run = _Cycle(as_of, paths, cfg, ledger, data, source, to, model_dir,
                 accept_data_issues, data_quality, table_prefix)
    for name in cycle.STEPS:
        run.step(name, getattr(run, f"step_{name}"))
    if run.result.monitor is not None and run.result.monitor["revalidate"]:
        run.result.exit_code = cycle.EXIT_REVALIDATE
    return run.result


class _Cycle:
    """One run of a month's cycle: its state, and one method per step (``step_<name>``),
    each returning the step's status and the ledger fields it records."""

    def __init__(self, as_of: str, paths: Paths, cfg: CycleConfig, ledger: Ledger,
                 data: Path | None, source: Path | None, to: str | None,
                 model_dir: Path | None, accept_data_issues: Sequence[str],
                 data_quality: Path | None, table_prefix: str) -> None:
        self.as_of, self.paths, self.cfg, self.ledger = as_of, paths, cfg, ledger
        self.source, self.to, self.model_dir = source, to, model_dir
        self.accept_data_issues, self.data_quality = accept_data_issues, data_quality
        self.table_prefix = table_prefix
        cycle_id, self.done = ledger.resume_point(as_of)
        resumed = cycle_id is not None
        self.cycle_id = cycle_id or Ledger.new_cycle_id(as_of)
        self.out = paths.cycles / as_of
        self.staged = paths.cycles / f".{as_of}.staged"
        self.data = paths.books / as_of if source is not None else data
        self.month = _Month(as_of, self.data, paths, model_dir)
        self.result = CycleResult(as_of, self.cycle_id, cycle.EXIT_OK, self.out,
                                  resumed=resumed)
        if resumed:
            console.print(f"resuming cycle {self.cycle_id} of {as_of}: done "
                          f"{', '.join(s for s in cycle.STEPS if s in self.done) or 'nothing'}")
        elif self.staged.exists():  # a staging folder of an abandoned run: never written out
            shutil.rmtree(self.staged)
        if "monitor" in self.done:  # a resumed month keeps the verdict its monitor step found
            rows = ledger.rows(as_of)
            prev = rows[(rows["cycle_id"] == self.cycle_id) & (rows["step"] == "monitor")]
            details = prev["details"].iloc[-1] if len(prev) else None
            self.result.monitor = (details if isinstance(details, dict) and "by_model" in details
                                   else None)

    def step(self, name: str, fn: Callable[[], tuple[str, dict[str, Any]]]) -> None:
        """Run one step (unless an earlier attempt of this cycle did) and record it."""
        if name in self.done:
            self.result.steps[name] = "done before"
            return
        row = self.ledger.start(self.cycle_id, self.as_of, name)
        try:
            status, fields = fn()
        except DataQualityError as e:
            self.ledger.finish(row, FAILED, gate_verdict="blocked", error=str(e))
            self.result.steps[name] = FAILED
            raise
        except BaseException as e:
            self.ledger.finish(row, FAILED, error=f"{type(e).__name__}: {first_line(e)}")
            self.result.steps[name] = FAILED
            raise
        self.ledger.finish(row, status, **fields)
        self.result.steps[name] = status

    def common(self) -> dict[str, Any]:
        """The fields every model-dependent step records: versions and data hash."""
        return {"model_versions": all_versions(self.month.bundles(), self.month.uplift()),
                "data_hash": self.month.data_hash()}

    def step_ingest(self):
        if self.source is None:
            return SKIPPED, {"details": {"reason": "book given with --data"}}
        from pipelines.ingest import run_ingest

        m = run_ingest(self.source, self.data, overwrite=True)
        return OK, {"data_hash": m["content_hash"], "details": {"book": str(self.data)}}

    def step_gate(self):
        from pipelines.quality import run_gate

        month = self.month
        report = run_gate(month.tables(), month.snapshot(), month.bundles(),
                          self.accept_data_issues, self.data_quality, month.features())
        month.gate_report = report
        verdict = ("unchecked" if report is None else
                   "accepted" if report.accepted_findings else
                   "warnings" if report.warnings else "pass")
        return OK, {**self.common(), "gate_verdict": verdict,
                    "n_customers": len(month.snapshot())}

    def step_score(self):
        from postloan.data.quality import gate_record

        month, cfg = self.month, self.cfg
        with progress_bar("scoring customers", len(month.snapshot())) as advance:
            outputs = cycle.decide_month(month.snapshot(), month.bundles(), self.as_of, cfg,
                                         uplift=month.uplift(), features=month.features(),
                                         progress=advance)
        counts, bases, outreach = (outputs.pop("counts"), outputs.pop("decision_basis"),
                                   outputs.pop("outreach"))
        manifest = {"as_of": self.as_of, "cycle_id": self.cycle_id, **self.common(),
                    "decision_basis": bases, "holdout_share": cfg.holdout_share, **counts}
        quality = (gate_record(month.gate_report) if month.gate_report is not None else
                   {"checked": True, "note": "passed in an earlier attempt of this cycle"})
        frames = {n: flat_frame(df) for n, df in outputs.items()}
        io.write_frames_atomic({**frames, "outreach": outreach}, self.staged,
                               json_files={"manifest.json": manifest,
                                           "data_quality.json": quality})
        return OK, {**self.common(), "n_customers": counts["n_customers"],
                    "warnings": counts["warnings"], "queue_size": counts["queue_size"],
                    "n_none": counts["n_none"], "decision_basis": bases,
                    "details": {"assignments": counts["assignments"]}}

    def step_write(self):
        folder = self.staged
        if not self.staged.is_dir():  # the process died between the rename and the ledger
            if _folder_cycle(self.out) != self.cycle_id:
                raise PostloanError(f"the staged decisions {self.staged} are gone; re-run the "
                                    f"month from the start (a new cycle of {self.as_of})")
            folder = self.out
        db = None
        if self.to:
            from postloan.data.decision_tables import write_decisions

            # The month's outreach rows go in the same transaction as its decisions:
            # next month's feed and the uplift models read them from there.
            frames = {f: pd.read_parquet(folder / f"{f}.parquet") for f in FRAMES}
            db = write_decisions(self.to, frames, self.as_of, self.cycle_id,
                                 all_versions(self.month.bundles(), self.month.uplift()),
                                 self.table_prefix)
        if folder == self.staged:
            io.replace_folder(self.staged, self.out)
        return OK, {**self.common(), "details": {"folder": str(self.out),
                                                "database": db["url"] if db else None}}

    def step_materialize(self):
        if not self.cfg.steps.materialize:
            return SKIPPED, {"details": {"reason": "steps.materialize is off"}}
        from pipelines.materialize import run_materialize

        url = self.cfg.online_store or self.paths.online_store
        info = run_materialize(self.data, self.as_of, url)
        return OK, {"n_customers": info["n_customers"], "details": {"store": url}}

    def step_monitor(self):
        if not self.cfg.steps.monitor:
            return SKIPPED, {"details": {"reason": "steps.monitor is off"}}
        prev = self.ledger.last_as_of(self.as_of, "write")
        if prev is None:
            return SKIPPED, {"details": {"reason": "no previous cycle to compare with"}}
        from pipelines.monitor import run_monitor
        from postloan.operations.monitoring import load_monitoring_config

        results = run_monitor(self.data, prev, self.as_of, self.month.bundles(),
                              load_monitoring_config(self.cfg.monitoring),
                              self.out / "reports" / f"monitor_{prev}_vs_{self.as_of}.html",
                              tracking_uri=None if self.model_dir else self.paths.tracking_uri)
        verdict = cycle.monitor_verdict(results)
        self.result.monitor = {**verdict, "reference": prev}
        return OK, {"monitor_verdict": "re-validate" if verdict["revalidate"] else
                    "retrain" if verdict["retrain"] else
                    "data fault" if verdict["data_fault"] else "stable",
                    "details": {"reference": prev, **verdict}}

    def step_retrain(self):
        last = self.ledger.last_as_of(self.as_of, "retrain") or self.ledger.first_as_of()
        reason = cycle.retrain_reason(self.cfg, self.as_of, self.result.monitor, last)
        self.result.retrain = reason
        if reason is None:
            return SKIPPED, {"details": {"reason": "neither the monitor nor the schedule "
                                                   "asks for it"}}
        from postloan.models.training import load_train_config

        console.print(f"retraining: {reason}")
        before = strategy.decision_bases(self.month.uplift())
        trained = retrain_models(self.data, self.as_of, load_train_config(self.cfg.training),
                                 self.paths, self.cfg.retrain_uplift, self.accept_data_issues,
                                 self.data_quality)
        self.month.reload_models()
        after = strategy.decision_bases(self.month.uplift())
        # When an action's basis changes (constants -> learned effects once its decision
        # gate admits an uplift model, or back), the ledger says so here.
        switched = {a: [before.get(a), b] for a, b in after.items() if before.get(a) != b}
        return OK, {**self.common(), "decision_basis": after,
                    "details": {"reason": reason, **trained,
                                "decision_basis_before": before, "basis_switched": switched}}

    def step_report(self):
        if not self.cfg.steps.report:
            return SKIPPED, {"details": {"reason": "steps.report is off"}}
        rows = self.ledger.rows(self.as_of)
        rows = rows[rows["cycle_id"] == self.cycle_id]
        res = self.result
        summary = {"as_of": self.as_of, "cycle_id": self.cycle_id, "steps": res.steps,
                   "monitor": res.monitor, "retrain": res.retrain,
                   "ledger": rows.drop(columns=["id"]).to_dict("records")}
        io.write_json_atomic(summary, self.out / "reports" / "cycle.json")
        return OK, {"details": {"report": str(self.out / "reports" / "cycle.json")}}


def retrain_models(data: Path, as_of: str, tcfg: Any, paths: Paths,
                   retrain_uplift: bool = True, accept_data_issues: Sequence[str] = (),
                   data_quality: Path | None = None) -> dict[str, Any]:
    """The cycle's retrain step: challengers of the three models and (with
    `retrain_uplift`) of the uplift models, each through its gate.

    The uplift models learn from the book's logged outreach whose outcomes are known by
    `as_of`, the cycle's own holdout rows included once they mature. A book whose log
    cannot train them (no outreach columns, too few matured dates) keeps its uplift
    champions, or the constants: the reason is recorded, the month goes on.

    Returns:
        ``gates`` (model -> version, promoted, the gate's reason; uplift models also
        whether their decision gate admits them) and ``uplift`` (``trained`` or why not).
    """
    from pipelines.train import run_train, run_train_uplift, uplift_skip_reason
    from postloan.errors import DataValidationError
    from postloan.models.bundle import MODELS

    res = run_train(data, list(MODELS), tcfg, paths.tracking_uri, paths.artifact_root,
                    paths.models_dir, paths.root, accept_data_issues=accept_data_issues,
                    data_quality=data_quality)
    # Each challenger's registered version and its gate's verdict (promoted or why
    # not): with the versions recorded after, the ledger says which one decides next.
    gates = {r["model"]: ({"version": str(r["version"]), "promoted": r["promoted"],
                           "gate": r["gate"]} if "version" in r
                          else {"skipped": r.get("skipped")}) for r in res}
    skip = uplift_skip_reason(data) if retrain_uplift else "retrain_uplift is off"
    if skip is None:
        try:
            up = run_train_uplift(data, paths.tracking_uri, paths.artifact_root,
                                  paths.models_dir, paths.root, seed=tcfg.seed,
                                  n_dates=tcfg.uplift.n_dates,
                                  n_test_dates=tcfg.uplift.n_test_dates, until=as_of,
                                  learner=tcfg.uplift.learner)
        except DataValidationError as e:  # e.g. too few dates with matured outcomes
            skip = f"uplift models not retrained: {e}"
        else:
            gates.update({r["model"]: {"version": str(r["version"]),
                                       "promoted": r["promoted"], "gate": r["gate"],
                                       "decides": bool(r["decision_gate"].get("decides"))}
                          for r in up})
    return {"gates": gates, "uplift": skip or "trained"}


def runs_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The ledger as the ``postloan runs`` table shows it."""
    def short(v, n=40):
        s = "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
        return s if len(s) <= n else s[: n - 1] + "…"

    return pd.DataFrame({
        "as of": rows["as_of"], "cycle": rows["cycle_id"].str[-10:], "step": rows["step"],
        "status": rows["status"], "started": rows["started"].str[11:19],
        "ended": rows["ended"].fillna("").str[11:19],
        "versions": [short(", ".join(f"{k}={v}" for k, v in m.items()), 48)
                     if isinstance(m, dict) else "" for m in rows["model_versions"]],
        "customers": rows["n_customers"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}"),
        "queue": rows["queue_size"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}"),
        "none": rows["n_none"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}"),
        "gate": rows["gate_verdict"].fillna(""), "monitor": rows["monitor_verdict"].fillna(""),
        "error": [short(e, 60) for e in rows["error"]]})


__all__ = ["CycleResult", "Paths", "retrain_models", "run_cycle", "runs_table"]
