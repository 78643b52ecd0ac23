"""Write the reviewer-facing HTML report of a registered model version.

Fetches the version's run (metrics, params, tags, plots, evaluation tables), its
bundle and the registry's gate decisions from MLflow; rebuilds the training-date and
OOT-date snapshots from the book for the stability (PSI) and dependence plots;
renders with :func:`postloan.reporting.render_report`; writes the page atomically and
logs it to the version's MLflow run as ``report/report.html``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from postloan import reporting as reports
from postloan.data import io
from postloan.data.features import CATEGORICAL_FEATURES
from postloan.data.snapshot import build_snapshot
from postloan.errors import ModelNotFoundError, PostloanError
from postloan.models import registry
from postloan.models.bundle import MODELS, ModelBundle
from postloan.operations import monitoring
from postloan.reporting import figures as plots
from postloan.settings import get_settings

log = logging.getLogger(__name__)

N_DEPENDENCE = 6  # dependence plots: the top features by mean |SHAP|
N_PSI_FEATURES = 10  # features whose PSI is reported besides the score
N_EXPLAIN = 2000  # OOT rows behind the dependence plots


class Book:
    """The book's tables with a snapshot cache, shared by the reports of several models."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.tables = io.read_tables(self.data_dir)
        self.manifest = io.read_manifest(self.data_dir)
        self._snaps: dict[str, pd.DataFrame] = {}
        self._labelled: set[str] = set()
        self._truth: pd.DataFrame | None = None
        self._truth_read = False

    def truth(self) -> pd.DataFrame | None:
        """The simulator's truth table (simulated books only), read once; else None."""
        if not self._truth_read:
            if (self.data_dir / "truth.parquet").exists():
                self._truth = io.read_table(self.data_dir, "truth")
            self._truth_read = True
        return self._truth

    def snapshots(self, dates: list[str], labels: bool = False) -> pd.DataFrame:
        """Stacked snapshots at `dates`, built once per date and shared by every model's
        report; with `labels`, the labels too (NaN where a horizon runs past the data).
        A labelled snapshot serves later unlabelled requests of its date."""
        for d in dates:
            if d not in self._snaps or (labels and d not in self._labelled):
                self._snaps[d] = build_snapshot(self.tables, d, with_labels=labels)
                if labels:
                    self._labelled.add(d)
        return pd.concat([self._snaps[d] for d in dates], ignore_index=True)


def resolve_version(client: MlflowClient, model: str, version: str | None,
                    alias: str | None) -> object:
    """The registered model version for a version number or an alias (default champion).

    Raises:
        ModelNotFoundError: unknown model, no such registered model, version or alias.
        PostloanError: both a version and an alias are given.
    """
    if model not in MODELS:
        raise ModelNotFoundError(f"unknown model '{model}'; known: {sorted(MODELS)}")
    if version is not None and alias is not None:
        raise PostloanError("give either a version or an alias, not both")
    name = registry.registered_name(model)
    try:
        client.get_registered_model(name)
    except MlflowException:
        raise ModelNotFoundError(f"no registered model '{name}' in this tracking store: "
                                 "run `postloan train` first") from None
    try:
        if version is not None:
            return client.get_model_version(name, str(version))
        return client.get_model_version_by_alias(name, alias or registry.CHAMPION)
    except MlflowException:
        known = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        what = f"version {version}" if version is not None else f"alias '{alias or 'champion'}'"
        raise ModelNotFoundError(f"{name} has no {what}; registered versions: "
                                 f"{', '.join(map(str, known)) or 'none'}") from None


def _download(run_id: str, path: str, dst: Path) -> Path | None:
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path,
                                                        dst_path=str(dst)))
    except (MlflowException, OSError) as e:
        log.warning("run %s has no artifact %s: %s", run_id, path, e)
        return None


def _versions(client: MlflowClient, name: str) -> list[dict]:
    # search_model_versions leaves aliases empty: take them from the registered model.
    aliases: dict[str, list[str]] = {}
    for alias, v in (client.get_registered_model(name).aliases or {}).items():
        aliases.setdefault(str(v), []).append(alias)
    out = []
    for mv in client.search_model_versions(f"name='{name}'"):
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(
            timespec="seconds") if mv.creation_timestamp else ""
        out.append({"version": str(mv.version), "run_id": mv.run_id,
                    "aliases": sorted(aliases.get(str(mv.version), [])), "created": created,
                    "tags": dict(mv.tags or {})})
    return out


def gather(model: str, version: str | None = None, alias: str | None = None,
           tracking_uri: str | None = None, data_dir: Path | None = None,
           book: Book | None = None) -> reports.ReportInputs:
    """Collect everything the report of one model version shows.

    Raises:
        ModelNotFoundError: the model, version or alias does not exist, or the version
            holds no postloan bundle.
        DataValidationError: the book cannot be read.
    """
    s = get_settings()
    uri = tracking_uri or s.tracking_uri
    client = registry.configure(uri)
    mv = resolve_version(client, model, version, alias)
    name, ver = registry.registered_name(model), str(mv.version)
    run = client.get_run(mv.run_id)
    with tempfile.TemporaryDirectory(prefix="postloan-report-") as tmp:
        tmp = Path(tmp)
        bundle = ModelBundle.load(registry.download_bundle(model, version=ver, dst=tmp / "b"))
        images, tables = {}, {}
        plot_dir = _download(run.info.run_id, "plots", tmp / "a")
        if plot_dir is not None:
            images = {p.name: p.read_bytes() for p in sorted(plot_dir.glob("*.png"))}
        evaluation = _download(run.info.run_id, "evaluation", tmp / "a")
        if evaluation is not None:
            tables = {p.stem: pd.read_csv(p) for p in sorted(evaluation.glob("*.csv"))}
    history = json.loads(client.get_registered_model(name).tags.get("champion_history", "[]"))
    versions = _versions(client, name)
    inputs = reports.ReportInputs(
        model=model, version=ver, metadata=bundle.metadata, run_id=run.info.run_id,
        metrics=dict(run.data.metrics), params=dict(run.data.params), tags=dict(run.data.tags),
        tables=tables, images=images, registered_name=name,
        aliases=next((v["aliases"] for v in versions if v["version"] == ver), []),
        versions=versions, champion_history=history)

    book = book or Book(data_dir or s.raw_dir)
    inputs.manifest = book.manifest
    trained_on = run.data.tags.get("data_content_hash", "")
    if trained_on and book.manifest.get("content_hash") != trained_on:
        note = (f"The book read for the stability and dependence sections ({book.data_dir}, "
                f"hash {book.manifest.get('content_hash', 'unknown')}) is not the book this "
                f"model was trained on (hash {trained_on}): those sections describe another "
                "population.")
        log.warning(note)
        inputs.notes.append(note)
    splits = bundle.metadata.get("splits", {})
    ref_dates, oot_dates = splits.get("train", []), splits.get("oot", [])
    ref, cur = book.snapshots(ref_dates), book.snapshots(oot_dates)
    top = list(bundle.metadata.get("top_features") or [])
    if not top and "shap_importance" in tables:
        top = tables["shap_importance"]["feature"].head(N_PSI_FEATURES).tolist()
    cfg = monitoring.default_monitoring_config()
    stab = monitoring.stability_table(bundle, ref, cur, top[:N_PSI_FEATURES], cfg.n_bins, cfg)
    inputs.stability = stab
    inputs.stability_png = plots.figure_png(plots.psi_figure(
        stab, f"{model} v{ver}: PSI, training dates -> OOT dates", cfg))
    inputs.stability_dates = {"reference": ref_dates, "current": oot_dates}
    seed = int(bundle.metadata.get("params", {}).get("seed", 42))
    X, contrib = bundle.explanation_sample(cur, N_EXPLAIN, seed)
    inputs.explained_rows = {"n": len(X), "dates": oot_dates}
    inputs.dependence = {f: plots.figure_png(plots.dependence_figure(contrib, X, f))
                         for f in top[:N_DEPENDENCE]}
    # A typical customer: the median value, the most frequent one for categories.
    typical = X.median().fillna(X.mode().iloc[0])
    typical[list(CATEGORICAL_FEATURES)] = X[list(CATEGORICAL_FEATURES)].mode().iloc[0]
    inputs.reason_examples = {f: float(v) for f, v in typical.items() if pd.notna(v)}
    return inputs


def run_report(model: str, version: str | None = None, alias: str | None = None,
               out: Path | None = None, tracking_uri: str | None = None,
               data_dir: Path | None = None, models_dir: Path | None = None,
               book: Book | None = None, log_to_run: bool = True) -> Path:
    """Write the HTML report of a registered model version and log it to its run.

    Args:
        model: ``default_risk``, ``churn`` or ``satisfaction``.
        version: registered version; with neither version nor alias, the champion.
        alias: registry alias (``champion``, ``challenger``).
        out: output file (default ``<models_dir>/<model>/v<version>/report.html``).
        tracking_uri: MLflow tracking store (default from settings).
        data_dir: the book (default ``data/raw``), for stability and dependence plots.
        models_dir: root of the default output (default ``models/``).
        book: an already-read book to share between several reports.
        log_to_run: also log the page to the version's run as ``report/report.html``.

    Returns:
        The path written.

    Raises:
        ModelNotFoundError: the model, version or alias does not exist.
        DataValidationError: the book cannot be read.
    """
    inputs = gather(model, version, alias, tracking_uri, data_dir, book)
    page = reports.render_report(inputs)
    if out is None:
        out = Path(models_dir or get_settings().models_dir) / model / f"v{inputs.version}" / \
            "report.html"
    path = io.write_text_atomic(page, Path(out))
    if log_to_run:
        client = registry.configure(tracking_uri or get_settings().tracking_uri)
        with tempfile.TemporaryDirectory() as tmp:
            named = io.write_text_atomic(page, Path(tmp) / "report.html")
            client.log_artifact(inputs.run_id, str(named), artifact_path="report")
    log.info("wrote %s (%d kB)", path, path.stat().st_size // 1024)
    return path


def run_champion_reports(tracking_uri: str | None = None, data_dir: Path | None = None,
                         models_dir: Path | None = None) -> dict[str, Path]:
    """Write the report of every model's champion (for `make demo`); model -> path."""
    s = get_settings()
    book = Book(data_dir or s.raw_dir)
    return {m: run_report(m, alias=registry.CHAMPION, tracking_uri=tracking_uri,
                          models_dir=models_dir, book=book) for m in MODELS}


# ----------------------------------------------------------------------- validation pack
N_CSI = 5  # top features whose CSI is shown by month
N_REFERENCE_DATES = 3  # training as-of dates behind the PSI/CSI reference


def _scorecard(folder: Path) -> tuple[pd.DataFrame, dict] | None:
    """The scorecard challenger of a bundle folder, or None when none was trained.

    ``postloan.models.scorecard`` is imported lazily: the pack works without it.
    """
    try:
        from postloan.models import scorecard
    except ImportError:
        return None
    try:
        return scorecard.report_table(folder)
    except (FileNotFoundError, PostloanError) as e:
        log.info("no scorecard in %s: %s", folder, e)
        return None


def _training_config(model: str) -> dict[str, object]:
    """The shipped training configuration's entries that concern `model`, flattened."""
    from postloan.models.training import load_train_config

    cfg = load_train_config().model_dump(mode="json")
    keep = {"seed": cfg.get("seed"), "splits": cfg.get("splits"), "gate": cfg.get("gate"),
            f"models.{model}": cfg.get("models", {}).get(model)}
    flat: dict[str, object] = {}

    def walk(prefix: str, node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}", v)
        else:
            flat[prefix] = node

    for k, v in keep.items():
        walk(k, v)
    return flat


def gather_pack(model: str, version: str | None = None, alias: str | None = None,
                tracking_uri: str | None = None, data_dir: Path | None = None,
                book: Book | None = None, models_dir: Path | None = None
                ) -> reports.PackInputs:
    """Collect everything a model's validation pack shows.

    The run's records (metrics, tables, tags, registry) come from MLflow; the month by
    month evaluation, stability by month and the stress results are computed on the book.

    Raises:
        ModelNotFoundError: the model, version or alias does not exist.
        DataValidationError: the book cannot be read.
    """
    from postloan.data.snapshot import oracle_scores
    from postloan.operations import stress

    s = get_settings()
    uri = tracking_uri or s.tracking_uri
    client = registry.configure(uri)
    mv = resolve_version(client, model, version, alias)
    name, ver = registry.registered_name(model), str(mv.version)
    run = client.get_run(mv.run_id)
    with tempfile.TemporaryDirectory(prefix="postloan-pack-") as tmp:
        tmp = Path(tmp)
        folder = registry.download_bundle(model, version=ver, dst=tmp / "b")
        bundle = ModelBundle.load(folder)
        exported = Path(models_dir or s.models_dir) / model / f"v{ver}"
        card = _scorecard(exported if exported.is_dir() else Path(folder))
        tables = {}
        evaluation = _download(run.info.run_id, "evaluation", tmp / "a")
        if evaluation is not None:
            tables = {p.stem: pd.read_csv(p) for p in sorted(evaluation.glob("*.csv"))}
    versions = _versions(client, name)
    inputs = reports.ReportInputs(
        model=model, version=ver, metadata=bundle.metadata, run_id=run.info.run_id,
        metrics=dict(run.data.metrics), params=dict(run.data.params), tags=dict(run.data.tags),
        tables=tables, registered_name=name,
        aliases=next((v["aliases"] for v in versions if v["version"] == ver), []),
        versions=versions)
    book = book or Book(data_dir or s.raw_dir)
    inputs.manifest = book.manifest
    trained_on = run.data.tags.get("data_content_hash", "")
    if trained_on and book.manifest.get("content_hash") != trained_on:
        inputs.notes.append(f"book {book.data_dir} (hash {book.manifest.get('content_hash')}) "
                            f"!= training data (hash {trained_on})")
    md = bundle.metadata
    splits, label = md.get("splits", {}), md["label"]
    train_dates, valid_dates, oot_dates = (splits.get(k, []) for k in ("train", "valid", "oot"))
    seed = int(md.get("params", {}).get("seed", 42))
    pack = reports.PackInputs(report=inputs, scorecard=card,
                              training_config=_training_config(model))
    if not oot_dates:
        return pack
    oot = book.snapshots(oot_dates, labels=True)
    p_oot = bundle.predict(oot)
    y = oot[label].to_numpy(dtype="float64")
    truth = book.truth()
    oracle = oracle_scores(truth, oot)[label].to_numpy() if truth is not None else None
    pack.monthly = reports.monthly_performance(y, p_oot, oot["as_of"], oracle, seed=seed)
    ok = ~np.isnan(y)
    pack.oot_y, pack.oot_p = y[ok].astype(int), p_oot[ok]
    if train_dates:
        # The PSI reference: the last training dates (not all of them: each date is a
        # snapshot of the whole book, and the pack must build in under a minute).
        pack.reference_dates = train_dates[-N_REFERENCE_DATES:]
        ref = book.snapshots(pack.reference_dates)
        later_dates = [*valid_dates, *oot_dates]
        later = book.snapshots(later_dates)
        X_ref, X_later = bundle.features(ref), bundle.features(later)
        scores = later[["as_of"]].assign(score=bundle.predict_features(X_later))
        pack.score_psi = reports.score_psi_by_month(bundle.predict_features(X_ref), scores)
        top = [f for f in (md.get("top_features") or [])][:N_CSI]
        cats = [f for f in top if f in CATEGORICAL_FEATURES]
        rows = []
        for d, idx in later.groupby(pd.to_datetime(later["as_of"])).groups.items():
            t = monitoring.psi_table(X_ref, X_later.loc[idx], top, categorical=cats)
            rows += [{"feature": r.variable, "as_of": f"{d:%Y-%m-%d}", "psi": r.psi,
                      "status": r.status} for r in t.itertuples()]
        pack.csi = pd.DataFrame(rows, columns=["feature", "as_of", "psi", "status"])
    last = oot_dates[-1]
    scenarios = [stress.load_scenario(n) for n in stress.builtin_scenarios()]
    pack.stress = reports.stress_sensitivity(bundle.predict, book.snapshots([last]), scenarios)
    pack.stress_as_of = last
    return pack


def gather_decisions(tracking_uri: str, processed_dir: Path) -> reports.DecisionInputs:
    """The decision layer's facts: the registered uplift champions' metrics, the latest
    policy replay summary (``<processed>/policy/<as-of>/summary.parquet``) and the
    shipped strategy configuration."""
    import yaml

    from postloan.config_files import shipped_text
    from postloan.models.uplift import UPLIFT_LABELS, model_name

    client = registry.configure(tracking_uri)
    uplift = registry.load_uplift_champions()
    rows, gates = [], []
    for action, b in sorted(uplift.items()):
        gate = b.decision_gate
        gates.append({"action": action, "decision_basis": "learned_uplift"
                      if gate.get("decides") else "constants",
                      "difference": gate.get("value_difference", np.nan),
                      "se": gate.get("se", np.nan),
                      "reason": gate.get("reason", "not judged (retrain the model)"),
                      "reason_zh": gate.get("reason_zh", "未经决策闸门评估（请重新训练）")})
        m = {**b.metadata.get("metrics", {}), **b.metadata}
        try:
            version = client.get_model_version_by_alias(
                registry.registered_name(model_name(action)), registry.CHAMPION).version
        except MlflowException:
            version = "-"
        for lab in UPLIFT_LABELS:
            rows.append({"action": action, "outcome": lab, "version": str(version),
                         "learner": b.learner,
                         **{k: m.get(f"{lab}_{k}", np.nan) for k in (
                             "odds_ratio", "odds_ratio_lo", "odds_ratio_hi", "qini",
                             "qini_se", "auuc")}})
    replay, replay_as_of = None, ""
    runs = sorted((processed_dir / "policy").glob("*/summary.parquet"))
    if runs:
        replay, replay_as_of = pd.read_parquet(runs[-1]), runs[-1].parent.name
    return reports.DecisionInputs(uplift=pd.DataFrame(rows), replay=replay,
                                  replay_as_of=replay_as_of,
                                  strategy=yaml.safe_load(shipped_text("config/strategy.yaml")),
                                  gates=pd.DataFrame(gates))


def run_pack(model: str, lang: str = "en", out: Path | None = None, pdf: bool = False,
             version: str | None = None, alias: str | None = None,
             tracking_uri: str | None = None, data_dir: Path | None = None,
             models_dir: Path | None = None, book: Book | None = None,
             inputs: reports.PackInputs | None = None) -> list[Path]:
    """Write a model's validation pack (HTML, and PDF when asked) in `lang`.

    Args:
        model: ``default_risk``, ``churn``, ``satisfaction`` or ``decisions`` (the
            decision layer).
        lang: ``en`` or ``zh``.
        out: the HTML file (default ``<models_dir>/<model>/v<N>/pack_<lang>.html``;
            ``<models_dir>/decisions/pack_<lang>.html`` for the decision layer).
        pdf: also print the page to a PDF beside it (headless Chromium).
        version, alias: which registered version (default the champion).
        tracking_uri, data_dir, models_dir: stores (defaults from settings).
        book: an already-read book shared between packs.
        inputs: already-gathered inputs (to write both languages from one gathering).

    Returns:
        The files written (HTML, then PDF).

    Raises:
        ModelNotFoundError, DataValidationError, ConfigError (unknown language),
        PostloanError (PDF asked and no Chromium).
    """
    from postloan.glossary import check_lang

    check_lang(lang)
    s = get_settings()
    mdir = Path(models_dir or s.models_dir)
    if model == "decisions":
        d = gather_decisions(tracking_uri or s.tracking_uri, s.processed_dir)
        page = reports.render_decision_pack(d, lang)
        out = Path(out) if out else mdir / "decisions" / f"pack_{lang}.html"
    else:
        p = inputs or gather_pack(model, version, alias, tracking_uri, data_dir, book,
                                  models_dir)
        page = reports.render_pack(p, lang)
        out = Path(out) if out else mdir / model / f"v{p.report.version}" / f"pack_{lang}.html"
    paths = [io.write_text_atomic(page, out)]
    if pdf:
        paths.append(reports.html_to_pdf(paths[0], out.with_suffix(".pdf")))
    log.info("wrote %s", ", ".join(map(str, paths)))
    return paths


def run_champion_packs(tracking_uri: str | None = None, data_dir: Path | None = None,
                       models_dir: Path | None = None, langs: tuple[str, ...] = ("en", "zh")
                       ) -> dict[str, list[Path]]:
    """Both languages of every champion's pack and of the decision layer's (`make demo`)."""
    s = get_settings()
    book = Book(data_dir or s.raw_dir)
    out: dict[str, list[Path]] = {}
    for m in MODELS:
        p = gather_pack(m, alias=registry.CHAMPION, tracking_uri=tracking_uri, book=book,
                        models_dir=models_dir)
        out[m] = [path for lang in langs for path in run_pack(
            m, lang, inputs=p, tracking_uri=tracking_uri, models_dir=models_dir)]
    d = gather_decisions(tracking_uri or s.tracking_uri, s.processed_dir)  # once for both
    folder = Path(models_dir or s.models_dir) / "decisions"
    out["decisions"] = [io.write_text_atomic(reports.render_decision_pack(d, lang),
                                             folder / f"pack_{lang}.html") for lang in langs]
    return out


def run_customer_page(tables: dict[str, pd.DataFrame], customer_id: int, as_of: str,
                      out: Path, lang: str = "en", tracking_uri: str | None = None,
                      alias: str = registry.CHAMPION, k: int = 3) -> Path:
    """Write one customer's page (scores, reasons, signals, decision, score history).

    The champions and the uplift champions come from the registry; the decision uses the
    learned effects when uplift models are registered, the strategy constants otherwise.

    Raises:
        ModelNotFoundError: a champion is missing.
        DataValidationError: the customer is not active at `as_of`.
    """
    from postloan.glossary import check_lang
    from postloan.reporting.customer import customer_content, render_customer_page

    check_lang(lang)
    uri = tracking_uri or get_settings().tracking_uri
    bundles = registry.load_champions(alias=alias, tracking_uri=uri)
    try:
        uplift = registry.load_uplift_champions()
    except ModelNotFoundError:
        uplift = {}
    content = customer_content(tables, customer_id, as_of, bundles, uplift or None, k=k)
    return io.write_text_atomic(render_customer_page(content, lang), Path(out))
