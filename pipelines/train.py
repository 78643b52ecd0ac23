"""Train the three models, log every run to MLflow, register and gate the champions."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from pipelines.console import console, progress_bar
from pipelines.quality import run_gate
from postloan.data import io
from postloan.data.features import FEATURE_NAMES, build_features
from postloan.data.quality import DataExpectations, gate_record, learn_expectations
from postloan.data.snapshot import (
    LABEL_SOURCES,
    build_snapshot,
    data_range,
    feature_families_present,
    missing_label_sources,
)
from postloan.errors import DataValidationError, ModelNotFoundError
from postloan.models import registry, store
from postloan.models.bundle import MODELS
from postloan.models.training import TrainConfig, TrainOutput, resolve_splits, train_one
from postloan.reporting.figures import save_figure


def git_commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _log_output(out: TrainOutput, cfg: TrainConfig, manifest: dict, commit: str) -> None:
    model = out.bundle.model
    mcfg = cfg.models[model]
    families = out.bundle.metadata.get("feature_families_present", {})
    absent = sorted(f for f, present in families.items() if not present)
    mlflow.log_params({"model": model, "label": MODELS[model], "seed": cfg.seed,
                       "family": out.bundle.family, "family_rule": mcfg.family,
                       "calibration": mcfg.calibration,
                       "probability_floor": mcfg.probability_floor,
                       "probability_ceiling": mcfg.probability_ceiling,
                       "n_features": len(FEATURE_NAMES),
                       "feature_families_absent": ",".join(absent) or "none",
                       **{f"lgbm_{k}": v for k, v in mcfg.lgbm.model_dump().items()},
                       **{f"split_{k}": ",".join(v) for k, v in out.splits.items()}})
    mlflow.set_tags({"git_commit": commit, "data_content_hash": manifest.get("content_hash", ""),
                     "data_seed": str(manifest.get("seed", "")), "postloan_model": model,
                     "model_family": out.bundle.family,
                     "family_reason": out.bundle.metadata.get("family_reason", ""),
                     **{f"feature_family.{f}": "present" if v else "absent (NaN)"
                        for f, v in families.items()}})
    mlflow.log_metrics(out.metrics)
    mlflow.log_dict(cfg.model_dump(), "config/train_config.json")
    mlflow.log_dict({"features": list(FEATURE_NAMES), "feature_families_present": families,
                     "categories": out.bundle.categories}, "config/features.json")
    if out.bundle.expectations is not None:
        mlflow.log_dict(out.bundle.expectations.to_dict(), "data_quality/data_expectations.json")
    side = {k[len("baseline_oot_"):]: {"lightgbm": out.metrics.get("lightgbm_oot_"
                                                                   + k[len("baseline_oot_"):]),
                                      "baseline": v, "chosen": out.bundle.family}
            for k, v in out.metrics.items() if k.startswith("baseline_oot_")}
    mlflow.log_dict(side, "evaluation/lightgbm_vs_baseline.json")
    if out.bundle.scorecard is not None:  # the challenger scorecard (also in the bundle)
        mlflow.log_dict(out.bundle.scorecard.to_dict(), "scorecard/scorecard.json")
    with tempfile.TemporaryDirectory() as tmp:
        for name, fig in out.figures.items():
            mlflow.log_artifact(str(save_figure(fig, Path(tmp) / name)), "plots")
        for name, table in out.tables.items():
            p = Path(tmp) / f"{name}.csv"
            table.to_csv(p, index=False)
            mlflow.log_artifact(str(p), "evaluation")


def skip_reason(model: str, tables) -> str | None:
    """Why `model` cannot be trained on a book holding `tables` (None: it can)."""
    lacking = missing_label_sources(MODELS[model], tables)
    if not lacking:
        return None
    return (f"{model} skipped: its label {MODELS[model]} needs the "
            f"{' and '.join(LABEL_SOURCES[MODELS[model]])} tables; this book lacks "
            f"{', '.join(lacking)}")


def plan_models(models: list[str], tables, explicit: bool) -> tuple[list[str], list[dict]]:
    """The models the book can train, and one skip record per model it cannot.

    Raises:
        DataValidationError: an explicitly requested model cannot be trained.
    """
    keep, skipped = [], []
    for m in models:
        reason = skip_reason(m, tables)
        if reason is None:
            keep.append(m)
        elif explicit:
            raise DataValidationError("book", reason, MODELS[m])
        else:
            skipped.append({"model": m, "skipped": reason})
    return keep, skipped


def champion_gate(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp,
                  accept_data_issues: Sequence[str] = (), data_quality: Path | None = None
                  ) -> dict:
    """Check the book against the current default-risk champion's expectations.

    A model trained on a broken feed learns the fault, so training stops on a hard
    finding (DataQualityError) like scoring does. Without a champion (the first
    training) there is nothing to check against.

    Returns:
        The gate's record for the MLflow run (see :func:`pipelines.quality.gate_record`).
    """
    try:
        champion = {"default_risk": registry.load_bundle("default_risk")}
    except ModelNotFoundError:
        return {"checked": False, "reason": "no champion yet"}
    snap = build_snapshot(tables, as_of, with_labels=False)
    return gate_record(run_gate(tables, snap, champion, accept_data_issues, data_quality))


def run_train(data: Path, models: list[str], cfg: TrainConfig, tracking_uri: str,
              artifact_root: Path | None, models_dir: Path | None, root: Path,
              explicit: bool = False, accept_data_issues: Sequence[str] = (),
              data_quality: Path | None = None) -> list[dict]:
    """Train each model, log to MLflow, register, gate, export the bundle folder.

    A model whose label needs a table the book lacks is skipped (a result with a
    ``skipped`` reason), or refused when it was asked for by name (`explicit`). The
    book is first checked against the current champion's data expectations (at its
    last statement date); a hard finding not accepted stops the run before any MLflow
    run is written.
    """
    tables = io.read_tables(data, names=[*io.S.REQUIRED_TABLES])
    models, skipped = plan_models(models, tables, explicit)
    truth = None
    if (Path(data) / "truth.parquet").exists():
        truth = io.read_table(data, "truth")
    manifest = io.read_manifest(data)
    categories = io.S.snapshot_categories(io.book_vocabularies(manifest))
    families = feature_families_present(tables)
    start, end = data_range(tables)
    registry.configure(tracking_uri)
    gate = champion_gate(tables, end, accept_data_issues, data_quality)
    plan = {m: resolve_splits(cfg.splits, MODELS[m], start, end) for m in models}
    dates = sorted({d for s in plan.values() for v in s.values() for d in v})
    snaps = {}
    with progress_bar("building snapshots", len(dates)) as advance:
        for d in dates:
            snaps[d] = build_snapshot(tables, d)
            advance()
    client = registry.configure(tracking_uri)
    commit = git_commit(root)
    results = []
    learned: dict[tuple, DataExpectations] = {}
    with progress_bar("training models", len(models)) as advance:
        for model in models:
            needed = [d for v in plan[model].values() for d in v]
            snap = pd.concat([snaps[d] for d in needed], ignore_index=True)
            out = train_one(model, snap, plan[model], cfg, truth, categories=categories)
            out.bundle.metadata["feature_families_present"] = families
            # The data expectations of the training reference travel with the bundle.
            key = tuple(plan[model]["train"])
            if key not in learned:
                ref = pd.concat([snaps[d] for d in key], ignore_index=True)
                learned[key] = learn_expectations(tables, ref, build_features(ref, categories))
            out.bundle.expectations = learned[key]
            results.append(_log_and_register(out, cfg, manifest, commit, client,
                                             artifact_root, models_dir, gate))
            advance()
    return results + skipped


def _log_and_register(out: TrainOutput, cfg: TrainConfig, manifest: dict, commit: str,
                      client, artifact_root: Path | None, models_dir: Path | None,
                      data_gate: dict | None = None) -> dict:
    """Log one trained model to MLflow, register it, gate it, export its bundle folder."""
    model = out.bundle.model
    exp_id = registry.ensure_experiment(registry.experiment_name(model), artifact_root)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{model}-{out.bundle.family}") as run:
        _log_output(out, cfg, manifest, commit)
        if data_gate is not None:  # what the data-quality gate found and what was accepted
            mlflow.log_dict(data_gate, "data_quality/gate.json")
            mlflow.set_tag("data_issues_accepted", ",".join(data_gate.get("accepted", [])))
        if "engine" in out.bundle.metadata:
            mlflow.set_tag("engine", out.bundle.metadata["engine"]["name"])
            mlflow.log_dict(out.bundle.metadata["engine"], "config/engine.json")
        out.bundle.metadata.update(run_id=run.info.run_id, git_commit=commit,
                                   data_content_hash=manifest.get("content_hash"))
        _, version = registry.log_bundle(out.bundle, example=out.example)
    decision = registry.promotion_gate(client, model, version,
                                       cfg.gate.auc_tolerance, cfg.gate.max_ece)
    folder = None
    if models_dir is not None:
        out.bundle.metadata["registered_version"] = version
        folder = out.bundle.save(store.version_folder(models_dir, model, version))
        store.write_pointers(models_dir, model, version, decision.promoted, decision.reason)
    return {"model": model, "version": version, "run_id": run.info.run_id,
            "promoted": decision.promoted, "gate": decision.reason,
            "family": out.bundle.family,
            "metrics": out.metrics, "bundle": str(folder) if folder else None,
            "top_features": out.bundle.metadata["top_features"]}


def run_train_dask(data: Path, models: list[str], cfg: TrainConfig, tracking_uri: str,
                   artifact_root: Path | None, models_dir: Path | None, root: Path,
                   scheduler: str | None = None, partitions: int | None = None,
                   max_sample_customers: int = 50_000, work_dir: Path | None = None,
                   explicit: bool = False) -> list[dict]:
    """Train on a Dask cluster (lightgbm.dask); log, register and gate like run_train.

    Snapshots and features of every partition are built on the workers and written to
    `work_dir` (a temporary folder by default; on a remote cluster it must be shared);
    a customer sample of at most `max_sample_customers` feeds early stopping (round
    count), calibration, the baseline and the OOT evaluation.
    """
    import shutil

    from pipelines.scale import bar, cluster, partitioned_book
    from postloan import scale

    work = Path(work_dir or tempfile.mkdtemp(prefix="postloan-dask-train-"))
    try:
        with partitioned_book(data, partitions) as book:
            bm = scale.book_manifest(book)
            models, skipped = plan_models(models, bm["tables"], explicit)
            families = feature_families_present(bm["tables"])
            start, end = (pd.Timestamp(d) for d in bm["book_range"])
            plan = {m: resolve_splits(cfg.splits, MODELS[m], start, end) for m in models}
            dates = sorted({d for sp in plan.values() for v in sp.values() for d in v})
            with cluster("dask", scheduler) as dask_client:
                with bar(dask_client, "training snapshots", bm["n_partitions"]) as r:
                    prepared = scale.prepare_training(book, dates, r, work / "parts",
                                                       max_sample_customers)
                client = registry.configure(tracking_uri)
                commit = git_commit(root)
                manifest = {**bm, "content_hash": bm.get("source_content_hash")
                            or bm.get("content_hash")}
                results = []
                learned: dict[tuple, DataExpectations] = {}
                with progress_bar("training models (lightgbm.dask)", len(models)) as advance:
                    for model in models:
                        out = scale.train_one_dask(model, dask_client, prepared,
                                                    plan[model], cfg)
                        out.bundle.metadata["feature_families_present"] = families
                        key = tuple(plan[model]["train"])
                        if key not in learned:
                            learned[key] = _sample_expectations(book, prepared, key)
                        out.bundle.expectations = learned[key]
                        results.append(_log_and_register(out, cfg, manifest, commit, client,
                                                         artifact_root, models_dir))
                        advance()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results + skipped


def _sample_expectations(book: Path, prepared: dict, train_dates: tuple
                         ) -> DataExpectations:
    """Data expectations of a partitioned book's training reference, learned on its
    first partition (a hash sample of the customers; feed freshness, completeness and
    scale are shares and medians), which is also what the partition engine's gate
    checks a book on."""
    from postloan import scale

    tables = scale.read_partition(book, 0)
    sample = prepared["sample"]
    ref = sample[sample["as_of"].isin(pd.DatetimeIndex(train_dates))
                 & sample["customer_id"].isin(tables["customers"]["customer_id"])]
    if ref.empty:  # partition 0 has none of the sampled customers: use the sample
        ref = sample[sample["as_of"].isin(pd.DatetimeIndex(train_dates))]
    ref = ref.reset_index(drop=True)
    return learn_expectations(tables, ref, build_features(ref, prepared.get("categories")))


def metrics_table(results: list[dict]) -> pd.DataFrame:
    """The OOT metrics table printed by `postloan train` and the demo (metrics x models)."""
    def fmt(v: float, pct: bool = False) -> str:
        return "-" if v is None or pd.isna(v) else (f"{v:.1%}" if pct else f"{v:.4f}")

    cols = {}
    for r in results:
        if "skipped" in r:
            continue
        m = r["metrics"]
        cols[r["model"]] = {
            "family": r["family"],
            "AUC": fmt(m["oot_auc"]), "LightGBM AUC": fmt(m["lightgbm_oot_auc"]),
            "baseline AUC": fmt(m["baseline_oot_auc"]),
            "scorecard AUC": fmt(m.get("scorecard_oot_auc")),
            "Gini": fmt(m["oot_gini"]), "KS": fmt(m["oot_ks"]), "Brier": fmt(m["oot_brier"]),
            "ECE": fmt(m["oot_ece"]), "ECE, isotonic steps": fmt(m.get("oot_ece_isotonic_steps")),
            "top-decile lift": f"{m['oot_top_decile_lift']:.2f}",
            "top-decile capture": fmt(m["oot_top_decile_capture"], pct=True),
            "oracle AUC": fmt(m.get("oracle_auc")),
            "model / oracle": fmt(m.get("oracle_ratio"), pct=True),
            "base rate": fmt(m["oot_base_rate"], pct=True),
            "version": f"v{r['version']}", "champion": "yes" if r["promoted"] else "no",
        }
    df = pd.DataFrame(cols)
    df.index.name = "OOT metric"
    return df


def check_models(models: list[str]) -> list[str]:
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise DataValidationError("config", f"unknown target(s) {unknown}; choose from "
                                  f"{sorted(MODELS)} or all", "target")
    return models


UPLIFT_TARGET = "uplift"


# The outreach columns an uplift model cannot learn without: which action each eligible
# customer-month got, and whether it was contacted or held out (the randomisation).
OUTREACH_COLUMNS = ("action", "assignment")


def uplift_skip_reason(data: Path) -> str | None:
    """Why the uplift models cannot be trained on a book (None: they can).

    They learn from logged randomised outreach: ``outreach`` rows of interactions that
    carry an action and an assignment. A lender's log without those columns (a mapping
    leaves optional columns out) has outreach rows but nothing to learn from.
    """
    import pyarrow.parquet as pq

    path = Path(data) / "interactions.parquet"
    if not path.is_file():
        return "uplift models skipped: the book has no interactions table (no logged outreach)"
    names = pq.read_schema(path).names
    cols = ["kind", *(c for c in OUTREACH_COLUMNS if c in names)]
    log = pq.read_table(path, columns=cols).to_pandas()
    log = log[log["kind"].astype(object) == "outreach"]
    if log.empty:
        return ("uplift models skipped: the book logs no randomised outreach "
                "(interactions of kind 'outreach')")
    lacking = [c for c in OUTREACH_COLUMNS if c not in log.columns or log[c].isna().all()]
    if lacking:
        return (f"uplift models skipped: the outreach log has no {' or '.join(lacking)} "
                f"(interactions.{lacking[0]} is empty on every outreach row); uplift models "
                "learn from which action each customer got and whether it was contacted "
                "or held out")
    return None


def uplift_dates(log: pd.DataFrame, end: pd.Timestamp, n_dates: int) -> list:
    """The latest `n_dates` as-of dates of logged outreach whose longest label
    (``default_12m``) is observed by `end`."""
    return [d for d in sorted(log["as_of"].unique())
            if pd.Timestamp(d) + pd.offsets.MonthEnd(12) <= end][-n_dates:]


def run_train_uplift(data: Path, tracking_uri: str, artifact_root: Path | None,
                     models_dir: Path | None, root: Path, seed: int = 42,
                     n_dates: int | None = None, n_test_dates: int | None = None,
                     until: str | pd.Timestamp | None = None,
                     learner: str | None = None) -> list[dict]:
    """Train, evaluate, explain, register and gate one uplift model per contact action.

    The training set is the logged outreach (randomised holdout, logged propensity) of
    the latest `n_dates` as-of dates whose labels are observed; the last
    `n_test_dates` of them are held out for the Qini/AUUC gate and, on a simulated
    book, the comparison with ``contact_truth``. With `until`, only contacts whose
    12-month outcome is known by that date are used (a model as of `until`).
    """
    from postloan.models import uplift
    from postloan.models.training import load_train_config

    shipped = load_train_config().uplift  # what is not given: training.yaml's `uplift`
    n_dates = shipped.n_dates if n_dates is None else n_dates
    n_test_dates = shipped.n_test_dates if n_test_dates is None else n_test_dates
    learner = shipped.learner if learner is None else learner
    tables = io.read_tables(data, names=[*io.S.REQUIRED_TABLES])
    manifest = io.read_manifest(data)
    truth = None
    if (Path(data) / "contact_truth.parquet").exists():
        truth = io.read_table(data, "contact_truth")
    if "interactions" not in tables:
        raise DataValidationError("interactions", "the book has no interactions table: "
                                  "uplift models learn from its logged outreach")
    log = uplift.outreach_log(tables["interactions"])
    if log.empty:
        raise DataValidationError("interactions", "no logged outreach: uplift models learn "
                                  "from randomised contacts (generate with a contact policy)",
                                  "kind", "outreach")
    for col in OUTREACH_COLUMNS:
        if log[col].isna().all():
            raise DataValidationError("interactions", f"the outreach rows carry no {col}: "
                                      "uplift models learn from which action each customer "
                                      "got and whether it was contacted or held out", col)
    _, end = data_range(tables)
    if until is not None:
        end = min(end, pd.Timestamp(until))
    dates = uplift_dates(log, end, n_dates)
    if len(dates) <= n_test_dates:
        raise DataValidationError("interactions", f"outreach on {len(dates)} as-of dates with "
                                  f"observed labels; need more than {n_test_dates}", "as_of")
    with progress_bar("uplift: snapshots of the logged contacts", 1) as advance:
        data_set = uplift.training_set(tables, log, dates)
        advance()
    test_dates = dates[-n_test_dates:]
    params = uplift.UpliftParams(seed=seed, learner=learner)
    client = registry.configure(tracking_uri)
    commit = git_commit(root)
    champions = _gate_champions(tracking_uri)
    results = []
    with progress_bar("training uplift models", len(uplift.ACTIONS)) as advance:
        for action in uplift.ACTIONS:
            try:
                out = uplift.train_action(data_set, action, test_dates, params, truth)
            except DataValidationError as e:
                # A rare action on a small book: nothing to learn from, no model (the
                # queue leaves that action out).
                console.print(f"uplift model for {action} skipped: {e}")
                advance()
                continue
            held = data_set[(data_set["action"] == action)
                            & data_set["as_of"].isin(pd.DatetimeIndex(test_dates))]
            out.bundle.metadata["decision_gate"] = _decision_gate(
                out.bundle, held, champions, shipped.decision_gate_min_z)
            results.append(_log_uplift(out, action, manifest, commit, client, artifact_root,
                                       models_dir, example=data_set.head(5)))
            advance()
    return results


def _gate_champions(tracking_uri: str) -> dict | None:
    """The three models' champions, which the decision gate scores the held-out contacts
    with (None when there are none yet: the constants then decide every action)."""
    from postloan.errors import ModelNotFoundError

    try:
        return registry.load_champions(None, registry.CHAMPION, tracking_uri)
    except ModelNotFoundError:
        return None


def _decision_gate(bundle, held: pd.DataFrame, champions: dict | None, min_z: float) -> dict:
    """The decision gate's record for one action (postloan.decisions.strategy.gate)."""
    from postloan.decisions import strategy
    from postloan.decisions.batch import score_snapshot

    if champions is None:
        return {"decides": False, "n": 0,
                "reason": "no default-risk and churn champions to value the decisions with "
                          "(train them first)",
                "reason_zh": "尚无违约与流失冠军模型用于估值（请先训练）"}
    eff = bundle.effects_features(strategy.uplift_features(held), interval=True)
    effects = {f"effect_{bundle.action}_{c[len('effect_'):]}": eff[c].to_numpy()
               for c in eff.columns}
    scores = score_snapshot(champions, held.reset_index(drop=True), with_reasons=False)
    return strategy.decision_gate(held, scores, bundle.action, effects,
                                  strategy.load_strategy_config(), min_z)


LEARNER_NAMES = {"risk": "risk-based (LightGBM baseline + log odds ratio)",
                 "dr": "DR-learner (LightGBM)"}


def _log_uplift(out, action: str, manifest: dict, commit: str, client,
                artifact_root: Path | None, models_dir: Path | None,
                example: pd.DataFrame | None = None) -> dict:
    """Log one action's uplift bundle to MLflow, register it, gate it, export it.

    `example` (a few training snapshot rows) gives the logged model its signature and
    input example (without one MLflow warns it failed to infer a signature)."""
    from postloan.models.uplift import UPLIFT_LABELS

    model = out.bundle.model
    m = dict(out.metrics)
    # The gate's numbers: mean over outcomes of the held-out Qini and AUUC.
    for k in ("qini", "auuc"):
        est = pd.Series([m.get(f"{lab}_{k}") for lab in UPLIFT_LABELS], dtype=float)
        se = pd.Series([m.get(f"{lab}_{k}_se") for lab in UPLIFT_LABELS], dtype=float)
        m[f"gate_{k}"] = float(est.mean())
        # The standard error of that mean (outcomes' errors taken as independent).
        m[f"gate_{k}_se"] = float(np.sqrt((se[est.notna()] ** 2).sum()) / est.notna().sum()
                                  if est.notna().any() else float("nan"))
    exp_id = registry.ensure_experiment(registry.experiment_name(model), artifact_root)
    learner = out.bundle.learner
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{model}-{learner}") as run:
        mlflow.log_params({"model": model, "action": action, "learner": LEARNER_NAMES[learner],
                           **{f"uplift_{k}": v for k, v in
                              out.bundle.metadata["params"].items()},
                           **{f"split_{k}": ",".join(v) for k, v in out.splits.items()}})
        mlflow.set_tags({"git_commit": commit, "postloan_model": model,
                         "data_content_hash": manifest.get("content_hash", "")})
        gate = out.bundle.decision_gate
        for k in ("value_learned", "value_constants", "value_difference", "se", "n",
                  "n_differ"):
            if pd.notna(gate.get(k, float("nan"))):
                m[f"decision_{k}"] = float(gate[k])
        mlflow.log_metrics({k: v for k, v in m.items() if pd.notna(v)})
        mlflow.set_tags({"decision_gate": "learned" if gate.get("decides") else "constants",
                         "decision_gate_reason": gate.get("reason", "")})
        mlflow.log_dict(out.drivers, "explain/effect_drivers.json")
        out.bundle.metadata.update(run_id=run.info.run_id, git_commit=commit)
        _, version = registry.log_bundle(out.bundle, example=example)
    decision = registry.uplift_gate(client, action, version)
    folder = None
    if models_dir is not None:
        folder = out.bundle.save(store.version_folder(models_dir, model, version))
        store.write_pointers(models_dir, model, version, decision.promoted, decision.reason)
    return {"model": model, "action": action, "version": version, "run_id": run.info.run_id,
            "promoted": decision.promoted, "gate": decision.reason, "metrics": m,
            "decision_gate": out.bundle.decision_gate,
            "bundle": str(folder) if folder else None, "drivers": out.drivers}


def _odds_ratio(m: dict, lab: str) -> str:
    """The contact's odds ratio on an outcome with its interval (risk learner), or '-'."""
    if pd.isna(m.get(f"{lab}_odds_ratio", float("nan"))):
        return "-"
    return (f"{m[f'{lab}_odds_ratio']:.2f} [{m[f'{lab}_odds_ratio_lo']:.2f}, "
            f"{m[f'{lab}_odds_ratio_hi']:.2f}]")


def _decides(gate: dict) -> str:
    """The decision gate's verdict and its number, for the table."""
    if not gate.get("n"):
        return "constants"
    return (f"{'learned' if gate['decides'] else 'constants'} "
            f"{gate['value_difference']:+,.0f}±{gate['se']:,.0f}")


def uplift_table(results: list[dict]) -> pd.DataFrame:
    """Held-out uplift metrics per action and outcome (printed by train and the demo)."""
    from postloan.models.uplift import UPLIFT_LABELS

    def f(v) -> str:
        return "-" if v is None or pd.isna(v) else f"{v:.4f}"

    rows = []
    for r in results:
        m = r["metrics"]
        for lab in UPLIFT_LABELS:
            rows.append({"action": r["action"], "outcome": lab,
                         "odds ratio [95%]": _odds_ratio(m, lab),
                         "Qini": f(m.get(f"{lab}_qini")), "AUUC": f(m.get(f"{lab}_auuc")),
                         "oracle Qini": f(m.get(f"{lab}_qini_oracle")),
                         "Qini / oracle (true effects)": f(m.get(f"{lab}_qini_true_ratio")),
                         "corr(est, true)": f(m.get(f"{lab}_effect_corr")),
                         "version": f"v{r['version']}",
                         "champion": "yes" if r["promoted"] else "no",
                         "decides": _decides(r.get("decision_gate", {}))})
    return pd.DataFrame(rows)
