"""MLflow tracking and registry: experiments, model logging, aliases, promotion gate.

Registered models are ``postloan-default-risk``, ``postloan-churn`` and
``postloan-satisfaction``. A new version gets the alias ``challenger``; the
promotion gate moves ``champion`` to it only if its out-of-time AUC is not worse
than the current champion's by more than a tolerance and its calibration error is
within bound. Every decision and its numbers are recorded as version tags, and
every champion change is appended to the registered model's ``champion_history``
tag, so it is always known which version was in production when.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from postloan.bundle import MODELS, OPTIONAL_MODELS, ModelBundle
from postloan.errors import ModelNotFoundError, PostloanError

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"


def registered_name(model: str) -> str:
    """Registry name of a model: ``default_risk`` -> ``postloan-default-risk``."""
    if model not in MODELS:
        raise PostloanError(f"unknown model '{model}'; known: {sorted(MODELS)}")
    return "postloan-" + model.replace("_", "-")


def experiment_name(model: str) -> str:
    return registered_name(model)


def store_uri(tracking_uri: str) -> str:
    """The tracking URI MLflow is given: ``postgresql://`` names the installed driver.

    SQLAlchemy reads a bare ``postgresql://`` as psycopg2; postgloan installs psycopg 3,
    so without psycopg2 the URI becomes ``postgresql+psycopg://`` (same server, same
    credentials: from the URI, the environment or ``~/.pgpass``).
    """
    if tracking_uri.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None \
                and importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + tracking_uri[len("postgresql://"):]
    return tracking_uri


def masked_uri(uri: str) -> str:
    """`uri` with any password replaced by ``***`` (for messages and logs)."""
    import re

    return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", uri)


def configure(tracking_uri: str) -> MlflowClient:
    """Point MLflow at a tracking store and return a client.

    Any store MLflow supports: SQLite for a laptop, PostgreSQL (``postgresql://...``)
    in production (see :func:`store_uri`), or a tracking server.
    """
    uri = store_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(name: str, artifact_root: Path | None) -> str:
    """Create the experiment if needed (artifacts under `artifact_root`); return its id."""
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None if artifact_root is None else (Path(artifact_root) / name).resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def log_bundle(bundle: ModelBundle, register: bool = True) -> tuple[str, str | None]:
    """Log a bundle to the active run as a pyfunc model from code; register it.

    Returns:
        (model URI, registered version or None).
    """
    code = str(resources.files("postloan").joinpath("mlflow_model_code.py"))
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # MLflow advises type hints for input validation; the bundle validates its own input.
        warnings.filterwarnings("ignore", message="Add type hints", category=UserWarning)
        folder = bundle.save(Path(tmp) / "bundle")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=code,
            artifacts={"bundle": str(folder)},
            registered_model_name=registered_name(bundle.model) if register else None,
            pip_requirements=["postloan", "lightgbm", "pandas", "numpy"],
        )
    version = None if info.registered_model_version is None else str(
        info.registered_model_version)
    return info.model_uri, version


@dataclass
class GateDecision:
    """Outcome of the promotion gate and the numbers behind it."""

    promoted: bool
    reason: str
    challenger_version: str
    champion_version: str | None
    challenger_auc: float
    champion_auc: float | None
    challenger_ece: float
    auc_tolerance: float
    max_ece: float


def _version_metric(client: MlflowClient, name: str, version: str, metric: str) -> float:
    mv = client.get_model_version(name, version)
    run = client.get_run(mv.run_id)
    if metric not in run.data.metrics:
        raise ModelNotFoundError(f"{name} v{version}: run {mv.run_id} has no metric {metric}")
    return float(run.data.metrics[metric])


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_champion(client: MlflowClient, model: str, version: str, reason: str) -> None:
    """Point ``champion`` at a version and append the change to ``champion_history``."""
    name = registered_name(model)
    prev = _alias_version(client, name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, version)
    rm = client.get_registered_model(name)
    history = json.loads(rm.tags.get("champion_history", "[]"))
    history.append({"version": version, "previous": prev, "reason": reason,
                    "at": datetime.now(UTC).isoformat(timespec="seconds")})
    client.set_registered_model_tag(name, "champion_history", json.dumps(history))
    client.set_model_version_tag(name, version, "promoted_at", history[-1]["at"])


def promotion_gate(client: MlflowClient, model: str, version: str, auc_tolerance: float = 0.005,
                   max_ece: float = 0.02, metric: str = "oot_auc",
                   ece_metric: str = "oot_ece") -> GateDecision:
    """Decide whether challenger `version` becomes champion; act and record the decision."""
    name = registered_name(model)
    client.set_registered_model_alias(name, CHALLENGER, version)
    ch_auc = _version_metric(client, name, version, metric)
    ch_ece = _version_metric(client, name, version, ece_metric)
    champ = _alias_version(client, name, CHAMPION)
    champ_auc = None if champ is None else _version_metric(client, name, champ, metric)
    if ch_ece > max_ece:
        promoted, reason = False, f"calibration error {ch_ece:.4f} above bound {max_ece}"
    elif champ is None:
        promoted, reason = True, "no champion yet"
    elif champ == version:
        promoted, reason = True, "already champion"
    elif ch_auc < champ_auc - auc_tolerance:
        promoted, reason = False, (f"OOT AUC {ch_auc:.4f} worse than champion v{champ} "
                                   f"({champ_auc:.4f}) by more than {auc_tolerance}")
    else:
        promoted, reason = True, (f"OOT AUC {ch_auc:.4f} within {auc_tolerance} of or above "
                                  f"champion v{champ} ({champ_auc:.4f})")
    d = GateDecision(promoted, reason, version, champ, ch_auc, champ_auc, ch_ece, auc_tolerance,
                     max_ece)
    for k, v in asdict(d).items():
        client.set_model_version_tag(name, version, f"gate_{k}", str(v))
    if promoted and champ != version:
        set_champion(client, model, version, reason)
    return d


def models_to_load(client: MlflowClient) -> list[str]:
    """The models to load from the registry: all, but the optional ones never registered.

    A book without surveys and complaints cannot train the satisfaction model
    (:data:`postloan.bundle.OPTIONAL_MODELS`); scoring and serving then run without it.
    A registered optional model without the requested alias is still an error.
    """
    out = []
    for model in MODELS:
        if model in OPTIONAL_MODELS:
            try:
                client.get_registered_model(registered_name(model))
            except MlflowException:
                log.warning("no registered '%s' model: running without it", model)
                continue
        out.append(model)
    return out


def download_bundle(model: str, alias: str | None = CHAMPION, version: str | None = None,
                    dst: Path | None = None) -> Path:
    """Download a registered bundle (by alias or version) and return its folder."""
    name = registered_name(model)
    ref = f"models:/{name}/{version}" if version else f"models:/{name}@{alias}"
    dst = Path(dst or tempfile.mkdtemp(prefix="postloan-bundle-"))
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=ref, dst_path=str(dst)))
    except MlflowException as e:
        raise ModelNotFoundError(f"cannot load {ref}: {e.message}") from e
    folder = local / "artifacts" / "bundle"
    if not folder.is_dir():
        raise ModelNotFoundError(f"{ref} holds no postloan bundle (looked in {folder})")
    return folder


def load_bundle(model: str, alias: str | None = CHAMPION, version: str | None = None
                ) -> ModelBundle:
    """Load a registered model's bundle by alias (default champion) or version."""
    return ModelBundle.load(download_bundle(model, alias=alias, version=version))


def list_models(client: MlflowClient) -> list[dict]:
    """Every registered postloan version with its aliases and gate tags."""
    rows = []
    for model in MODELS:
        name = registered_name(model)
        try:
            versions = client.search_model_versions(f"name='{name}'")
            # search_model_versions leaves `aliases` empty on MLflow 3.17: read them from
            # the registered model instead.
            aliases = client.get_registered_model(name).aliases or {} if versions else {}
        except MlflowException:
            continue
        by_version: dict[str, list[str]] = {}
        for alias, v in aliases.items():
            by_version.setdefault(str(v), []).append(alias)
        for mv in sorted(versions, key=lambda v: int(v.version)):
            rows.append({"model": model, "name": name, "version": str(mv.version),
                         "aliases": ",".join(sorted(by_version.get(str(mv.version), []))),
                         "run_id": mv.run_id,
                         "gate": mv.tags.get("gate_reason", ""),
                         "promoted_at": mv.tags.get("promoted_at", "")})
    return rows
