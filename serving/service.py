"""The postloan HTTP service (BentoML 1.4): score, early warning, prioritise, explain.

Thin by design: the request models check the input (``serving/schemas.py``), the
library's online scoring core does the work (:class:`postloan.decisions.scoring.Scorer`: the one
feature function, the champions' bundles, TreeSHAP reasons, uplift effects, the one
decision), and this module only adds HTTP, authentication, the audit trail and the
response shapes.
Champions are loaded once, at start-up, from a bundle folder (``POSTLOAN_MODEL_DIR``)
or from the MLflow registry by alias; any problem stops start-up with one sentence.

Run: ``python -m serving`` or ``bentoml serve serving.service:PostloanService``
(binds 127.0.0.1:3000 unless told otherwise). See ``serving/README.md``.
"""

from __future__ import annotations

import os

# One request is one or a few rows: OpenMP's thread start-up and spinning cost 10-100x
# the work of a single-row LightGBM prediction (and starve the event loop on a busy
# machine). Parallelism comes from workers instead. Must be set before LightGBM loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import logging  # noqa: E402
import signal  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import UTC, date, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TypeVar  # noqa: E402

import bentoml  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from postloan.data.database import mask_url  # noqa: E402
from postloan.data.features import (  # noqa: E402
    feature_spec,
)
from postloan.data.online import SnapshotStore  # noqa: E402
from postloan.data.snapshot import SNAPSHOT_FIELDS  # noqa: E402
from postloan.decisions import strategy  # noqa: E402
from postloan.decisions.batch import SCORE_COLUMNS, model_versions  # noqa: E402
from postloan.decisions.scoring import Scorer  # noqa: E402
from postloan.errors import (  # noqa: E402
    ConfigError,
    PostloanError,
)
from postloan.models import registry, store  # noqa: E402
from postloan.models.bundle import ModelBundle  # noqa: E402
from postloan.models.store import load_uplift_from_dir  # noqa: E402
from postloan.models.uplift import UpliftBundle  # noqa: E402
from postloan.settings import get_settings  # noqa: E402
from serving import schemas  # noqa: E402
from serving.config import ServingConfig  # noqa: E402
from serving.logs import (  # noqa: E402
    ServiceStartError,
    audit_logger,
    audit_record,
    install_short_errors,
)
from serving.openapi import OpenAPIMiddleware  # noqa: E402
from serving.schemas import (  # noqa: E402
    EarlyWarningRequest,
    EarlyWarningResponse,
    ExplainRequest,
    ExplainResponse,
    PredictRequest,
    PredictResponse,
    PrioritizeRequest,
    PrioritizeResponse,
    ScoreRequest,
    ScoreResponse,
)
from serving.security import GuardMiddleware  # noqa: E402
from serving.supervisor import exit_with_parent, in_bentoml_worker  # noqa: E402

log = logging.getLogger("postloan.serving")
API_VERSION = "1"
AUDIT_DECISION = ("risk_grade", "expected_loss", "warning_level", "segment",
                  "recommended_action", "net_benefit", "decision_basis")
DECISION_FIELDS = ("recommended_action", "net_benefit", "decision_basis", "pressure_rule",
                   "action_reasons", "action_reasons_zh")
SCORE_FIELDS = ("customer_id", *SCORE_COLUMNS.values(), "risk_grade", "ead", "lgd",
                "expected_loss", "warning_level", "response", "response_zh", "signals",
                "warning_reasons", "warning_reasons_zh", "customer_value", "segment",
                *DECISION_FIELDS)
WARNING_FIELDS = ("customer_id", "warning_level", "warning_rank", "response", "response_zh",
                  "signals", "warning_reasons", "warning_reasons_zh", "risk_grade",
                  SCORE_COLUMNS["default_risk"], "expected_loss", *DECISION_FIELDS)
_T = TypeVar("_T")


# ---------------------------------------------------------------------------- champions
def uplift_champions(config: ServingConfig) -> dict[str, UpliftBundle]:
    """The uplift champions by action, from the same place as the three models (bundle
    folder, or the registry's champions); actions without one decide on the constants.

    Raises:
        ModelNotFoundError: an uplift model that is present but unreadable, or trained on
            other features than this version builds (the message names the model).
    """
    if config.model_dir is not None:
        return load_uplift_from_dir(config.model_dir)
    return registry.load_uplift_champions()


def champions_and_sources(config: ServingConfig
                          ) -> tuple[dict[str, ModelBundle], dict[str, dict]]:
    """The three champions (:func:`postloan.models.registry.load_champions`) and where each
    came from.

    Args:
        config: the service settings (bundle folder, or registry alias).

    Returns:
        (model -> bundle, model -> {source, registered_name, version, alias, run_id}).

    Raises:
        ModelNotFoundError: a model is missing, unreadable, or not the model its folder
            or registry name says.
    """
    uri = get_settings().tracking_uri
    if config.model_dir is None:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # log noise
    bundles = registry.load_champions(config.model_dir, config.alias, uri)
    if config.model_dir is not None:
        info = {m: {"source": f"folder {config.model_dir}", "alias": None,
                    "champion": _folder_champion(config.model_dir, m, bundles[m])}
                for m in bundles}
    else:
        info = {m: {"source": f"registry {mask_url(uri)}", "alias": config.alias,
                    "champion": config.alias == registry.CHAMPION} for m in bundles}
    versions = model_versions(bundles)
    for m, b in bundles.items():
        info[m].update(registered_name=registry.registered_name(m), version=versions[m],
                       run_id=b.metadata.get("run_id"))
    return bundles, info


def _folder_champion(model_dir: Path, model: str, bundle: ModelBundle) -> bool | None:
    """Whether the folder's bundle passed the promotion gate (None: not recorded).

    ``postloan train`` writes every trained version to ``<model>/v<N>/`` and records
    the gate's verdict on the latest in ``<model>/latest.json``; the folder loader takes
    the highest version, which may be a challenger the gate kept out.
    """
    version = bundle.metadata.get("registered_version")
    champion = store.latest_verdict(model_dir, model, version)
    if champion is False:
        log.warning("%s v%s in %s was kept out by the promotion gate and is served anyway "
                    "(a bundle folder serves its highest version)", model, version, model_dir)
    return champion


def _refuse_start(error: Exception) -> None:
    """Log why start-up is refused, stop a ``bentoml serve`` arbiter, and raise.

    Under ``bentoml serve`` a worker whose start-up fails is restarted forever by the
    process manager; terminating the parent (the arbiter) stops the server instead.
    """
    log.critical("postloan service cannot start: %s", error)
    if in_bentoml_worker():
        os.kill(os.getppid(), signal.SIGTERM)
    raise ServiceStartError(str(error)) from None


# ---------------------------------------------------------------------------- scoring
def _lists(columns: dict[str, np.ndarray | list], names: tuple[str, ...] | list[str],
           rows: np.ndarray | None = None) -> dict[str, list]:
    """Columns (all rows, or `rows`) as lists of plain Python values for the response."""
    out = {}
    for c in names:
        v = columns[c]
        if isinstance(v, np.ndarray):
            out[c] = (v if rows is None else v[rows]).tolist()
        else:
            out[c] = list(v) if rows is None else [v[i] for i in rows.tolist()]
    return out


def _none_if_nan(v: object) -> object:
    """NaN (a model the service does not hold) as JSON null."""
    return None if isinstance(v, float) and v != v else v


def _slim_reasons(cell: dict) -> dict:
    """Reasons without texts for the audit trail: feature and contribution only."""
    return {k: [[r["feature"], r["contribution"]] for r in cell[k]] for k in ("up", "down")}


# ---------------------------------------------------------------------------- service
def _workers() -> int:
    """``POSTLOAN_WORKERS`` (BentoML reads its service config when the module loads)."""
    raw = os.environ.get("POSTLOAN_WORKERS", "").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise ConfigError(f"POSTLOAN_WORKERS={raw!r}: use a whole number from 1 to 64")
    return int(raw)


def _client_errors(fn: Callable[[], _T]) -> _T | JSONResponse:
    """Run `fn`; a library error on the input (PostloanError) is a 422, not a 500."""
    try:
        return fn()
    except PostloanError as e:
        # The message may quote the customer's values: it goes back to the caller only.
        log.warning("422: %s", type(e).__name__)
        return JSONResponse({"error": str(e).splitlines()[0]}, status_code=422)


@bentoml.service(
    name="postloan",
    # BentoML binds 0.0.0.0 by default; a scoring service with customer data does not
    # listen beyond this machine unless the operator says so (--host).
    http={"host": "127.0.0.1", "port": 3000},
    traffic={"timeout": 60},
    workers=_workers(),
    logging={"access": {"enabled": True, "request_content_length": True,
                        "request_content_type": True, "response_content_length": True,
                        "response_content_type": True}},
)
class PostloanService:
    """Early warning and prioritisation over the champion models."""

    def __init__(self) -> None:
        install_short_errors()
        try:
            self.config = ServingConfig.from_env()
            bundles, self.model_info = champions_and_sources(self.config)
            uplift = uplift_champions(self.config)
            cfg = strategy.load_strategy_config(self.config.strategy_config)
        except PostloanError as e:
            _refuse_start(e)
        self.scorer = Scorer(bundles, cfg, uplift)
        try:
            self.store = (None if self.config.online_store is None
                          else SnapshotStore(self.config.online_store))
        except PostloanError as e:
            _refuse_start(e)
        self.audit = audit_logger(self.config.audit_log)
        if self.config.insecure_local:
            log.warning("no API token configured and POSTLOAN_INSECURE_LOCAL=1: every "
                        "request is accepted without authentication")
        self._metadata = self._build_metadata()
        log.info("postloan service ready: %s", self.scorer.versions)

    # -- helpers
    def _lookup(self, ids: list[int]) -> tuple[list[dict], dict]:
        """Records of `ids` from the online store, and what the response says about it."""
        if self.store is None:
            raise ConfigError("this service has no online snapshot store "
                              "(POSTLOAN_ONLINE_STORE): send full `customers` records")
        found = self.store.lookup(ids, raw=True)
        records = [schemas.CustomerSnapshot.model_validate_json(found.records[i]).model_dump()
                   for i in ids if i in found.records]
        meta: dict = {"unknown_customer_ids": found.missing}
        if found.as_of is not None:
            as_of = date.fromisoformat(found.as_of)
            age = (datetime.now(UTC).date() - as_of).days
            limit = self.config.snapshot_max_age_days
            meta["snapshot"] = {"as_of": as_of, "age_days": age, "max_age_days": limit,
                                "stale": age > limit, "book_hash": found.manifest_hash}
        return records, meta

    def _customers(self, request: schemas._Batch) -> tuple[list[dict], dict]:
        """The request's records: sent in full, or looked up by id."""
        if request.customer_ids is not None:
            return self._lookup(request.customer_ids)
        return [c.model_dump() for c in request.customers], {}

    def _audit(self, endpoint: str, records: list[dict], scores: dict[str, list],
               reasons: dict[str, list] | None, decision: dict[str, list] | None) -> None:
        """One audit line per customer (see :func:`serving.logs.audit_record`).

        Args:
            scores: score column -> values (missing columns: the model did not run).
            reasons: model -> reasons cells, or None.
            decision: decision column -> values (:data:`AUDIT_DECISION`), or None.
        """
        rid = uuid.uuid4().hex
        for i, rec in enumerate(records):
            self.audit.info(audit_record(
                endpoint, rid, rec["customer_id"], schemas.input_hash(rec),
                self.scorer.versions,
                {c: (_none_if_nan(scores[c][i]) if c in scores else None)
                 for c in SCORE_COLUMNS.values()},
                None if reasons is None else {m: _slim_reasons(v[i]) for m, v in reasons.items()},
                {} if decision is None else {c: decision[c][i] for c in AUDIT_DECISION}))

    def _build_metadata(self) -> dict:
        models = {}
        for m, b in self.scorer.bundles.items():
            meta = b.metadata
            metrics = meta.get("metrics", {}) or {}
            models[m] = {
                **self.model_info[m], "label": b.label, "family": b.family,
                "score_column": SCORE_COLUMNS[m],
                "trained": {k: meta.get(k) for k in ("calibration", "best_iteration",
                                                     "data_content_hash", "git_commit")},
                "oot_metrics": {k: v for k, v in metrics.items() if k.startswith("oot_")},
            }
        return {
            "service": "postloan", "api_version": API_VERSION,
            "models": models,
            "feature_spec": feature_spec(
                self.scorer.bundles["default_risk"].categories,
                self.scorer.bundles["default_risk"].metadata.get("feature_families_present")),
            "snapshot_fields": list(SNAPSHOT_FIELDS),
            "strategy": self.scorer.cfg.model_dump(mode="json"),
            "decisions": {
                "basis": strategy.decision_bases(self.scorer.uplift),
                "uplift_models": {a: {"version": self.scorer.uplift_versions[a],
                                      "decision_gate": {k: _none_if_nan(v) for k, v in
                                                        b.decision_gate.items()}}
                                  for a, b in self.scorer.uplift.items()}},
            "limits": {"max_batch": self.config.max_batch},
            "auth": "none (insecure local)" if self.config.insecure_local else "bearer",
        }

    def metadata(self) -> dict:
        """Models (names, versions, aliases, run ids), feature spec, thresholds in force."""
        return self._metadata

    # -- endpoints
    @bentoml.api(route="/score")
    def score(self, request: ScoreRequest, /) -> ScoreResponse:
        """Probabilities, risk grade, expected loss, warning level, segment and top reasons."""
        return _client_errors(lambda: self._score(request))

    def _score(self, request: ScoreRequest) -> ScoreResponse:
        records, by_id = self._customers(request)
        flags = self.scorer.check(records)
        d = self.scorer.score(records, k=request.k_reasons)
        values = _lists(d, SCORE_FIELDS)
        reasons = {m: d[f"reasons_{m}"] for m in self.scorer.bundles}
        self._audit("score", records, values, reasons, values)
        results = [{**{c: _none_if_nan(values[c][i]) for c in SCORE_FIELDS},
                    "actions": strategy.action_numbers(d, i),
                    "as_of": rec["as_of"], "reasons": {m: reasons[m][i] for m in reasons},
                    "unknown_categories": d["unknown_categories"][i], "data_flags": flags[i]}
                   for i, rec in enumerate(records)]
        return ScoreResponse(model_versions=self.scorer.versions, results=results, **by_id)

    @bentoml.api(route="/early_warning")
    def early_warning(self, request: EarlyWarningRequest, /) -> EarlyWarningResponse:
        """Only the customers at or above `min_level`, most urgent first, with reasons."""
        return _client_errors(lambda: self._early_warning(request))

    def _early_warning(self, request: EarlyWarningRequest) -> EarlyWarningResponse:
        records, by_id = self._customers(request)
        self.scorer.check(records)
        d = self.scorer.score(records)
        reasons = {m: d[f"reasons_{m}"] for m in self.scorer.bundles}
        self._audit("early_warning", records, _lists(d, list(SCORE_COLUMNS.values())),
                    reasons, _lists(d, AUDIT_DECISION))
        keep = strategy.early_warnings(d, request.min_level)
        values = _lists(d, WARNING_FIELDS, keep)
        warnings = [{**{c: values[c][i] for c in WARNING_FIELDS}, "as_of": records[j]["as_of"],
                     "actions": strategy.action_numbers(d, j),
                     "reasons": reasons["default_risk"][j]} for i, j in enumerate(keep.tolist())]
        return EarlyWarningResponse(model_versions=self.scorer.versions,
                                    min_level=request.min_level,
                                    n_customers=len(records), warnings=warnings, **by_id)

    @bentoml.api(route="/prioritize")
    def prioritize(self, request: PrioritizeRequest, /) -> PrioritizeResponse:
        """The outreach queue: who to contact first, with which action and why."""
        return _client_errors(lambda: self._prioritize(request))

    def _prioritize(self, request: PrioritizeRequest) -> PrioritizeResponse:
        records, by_id = self._customers(request)
        self.scorer.check(records)
        d = self.scorer.score(records)
        reasons = {m: d[f"reasons_{m}"] for m in self.scorer.bundles}
        self._audit("prioritize", records, _lists(d, list(SCORE_COLUMNS.values())),
                    reasons, _lists(d, AUDIT_DECISION))
        frame = pd.DataFrame({c: d[c] for c in strategy.QUEUE_COLUMNS
                              if c != "queue_rank" and c in d})
        q = strategy.outreach_queue(frame, request.capacity, self.scorer.cfg)
        rows = q["customer_id"].map(pd.Series(np.arange(len(frame)),
                                              index=frame["customer_id"].to_numpy()))
        cols = [c for c in schemas.QueueEntry.model_fields if c in q.columns]
        values = _lists({c: q[c].to_numpy() for c in cols}, cols)
        queue = [{**{c: _none_if_nan(values[c][i]) for c in cols},
                  "actions": strategy.action_numbers(d, int(r))}
                 for i, r in enumerate(rows.tolist())]
        return PrioritizeResponse(model_versions=self.scorer.versions,
                                  capacity=request.capacity, n_customers=len(records),
                                  queue=queue, **by_id)

    @bentoml.api(route="/predict")
    def predict(self, request: PredictRequest, /) -> PredictResponse:
        """Calibrated probabilities only: no reasons, no strategy (the lightest call)."""
        return _client_errors(lambda: self._predict(request))

    def _predict(self, request: PredictRequest) -> PredictResponse:
        records, by_id = self._customers(request)
        self.scorer.check(records)
        models = list(dict.fromkeys(request.models or list(self.scorer.bundles)))
        cols = [SCORE_COLUMNS[m] for m in models]
        values = self.scorer.predict(records, models)
        self._audit("predict", records, values, None, None)
        unknown = self.scorer.unknown_categories(records)
        results = [{"customer_id": rec["customer_id"], "as_of": rec["as_of"],
                    "probabilities": {c: values[c][i] for c in cols},
                    "unknown_categories": unknown[i]}
                   for i, rec in enumerate(records)]
        return PredictResponse(model_versions={m: self.scorer.versions[m] for m in models},
                               results=results, **by_id)

    @bentoml.api(route="/explain")
    def explain(self, request: ExplainRequest, /) -> ExplainResponse:
        """Every feature's contribution (log-odds) to each model's score for one customer."""
        return _client_errors(lambda: self._explain(request))

    def _explain(self, request: ExplainRequest) -> ExplainResponse:
        if request.customer_id is None:
            record, by_id = request.customer.model_dump(), {}
        else:
            found, by_id = self._lookup([request.customer_id])
            if not found:
                as_of = by_id["snapshot"]["as_of"] if "snapshot" in by_id else None
                return JSONResponse({"error": f"customer_id {request.customer_id} is not in "
                                     "the online snapshot store (not an active customer as "
                                     f"of {as_of})"}, status_code=404)
            record = found[0]
            del by_id["unknown_customer_ids"]
        self.scorer.check([record])
        models = list(dict.fromkeys(request.models or list(self.scorer.bundles)))
        expl = self.scorer.explain(record, models)
        # The warning and the decision with its numbers, as /score gives them: the
        # customer page's content (issue 21) for a caller holding only the id.
        d = self.scorer.score([record])
        decision = {c: _none_if_nan(_lists(d, WARNING_FIELDS)[c][0]) for c in WARNING_FIELDS
                    if c not in ("customer_id", "warning_rank")}
        decision["actions"] = strategy.action_numbers(d, 0)
        self._audit("explain", [record],
                    {SCORE_COLUMNS[m]: [e["probability"]] for m, e in expl.items()}, None,
                    _lists(d, AUDIT_DECISION))
        return ExplainResponse(customer_id=record["customer_id"], as_of=record["as_of"],
                               explanations=expl, decision=decision, **by_id)


# GET /metadata: BentoML's API methods are POST-only, so a small Starlette route is
# mounted beside them (behind the same guard middleware).
async def _metadata_endpoint(_: Request) -> JSONResponse:
    return JSONResponse(bentoml.get_current_service().metadata())


def _current_config() -> ServingConfig:
    return bentoml.get_current_service().config


PostloanService.mount_asgi_app(
    Starlette(routes=[Route("/metadata", _metadata_endpoint, methods=["GET"])]), path="/")
PostloanService.add_asgi_middleware(GuardMiddleware, get_config=_current_config)
PostloanService.add_asgi_middleware(OpenAPIMiddleware, service=PostloanService)

if in_bentoml_worker():
    # A worker holds the listening socket in a session of its own: it must not outlive
    # its server (the arbiter), however that dies, or the port stays taken.
    exit_with_parent()
