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
import math
import tempfile
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from postloan.data.database import mask_url
from postloan.data.snapshot import NUMERIC_FIELDS, SNAPSHOT_FIELDS
from postloan.errors import ModelNotFoundError, PostloanError
from postloan.models.bundle import MODELS, OPTIONAL_MODELS, ModelBundle
from postloan.models.store import load_bundles_from_dir
from postloan.models.uplift import ACTIONS as UPLIFT_ACTIONS
from postloan.models.uplift import UpliftBundle, model_name

UPLIFT_MODELS = tuple(model_name(a) for a in UPLIFT_ACTIONS)

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"


def registered_name(model: str) -> str:
    """Registry name of a model: ``default_risk`` -> ``postloan-default-risk``,
    ``uplift_payment_reminder`` -> ``postloan-uplift-payment-reminder``."""
    if model not in MODELS and model not in UPLIFT_MODELS:
        raise PostloanError(f"unknown model '{model}'; known: "
                            f"{sorted(MODELS) + sorted(UPLIFT_MODELS)}")
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


def input_example(snapshot: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """A few snapshot rows as the model's input example: the snapshot fields only (no
    labels, no PII, which the snapshot never holds). Numeric fields are float64, so
    the signature declares them double: a count may be missing in a live record, and
    an integer input still passes (MLflow widens int to double, never the reverse)."""
    example = snapshot.loc[:, list(SNAPSHOT_FIELDS)].head(n).reset_index(drop=True)
    return example.astype(dict.fromkeys(NUMERIC_FIELDS, "float64"))


def log_bundle(bundle: ModelBundle, register: bool = True,
               example: pd.DataFrame | None = None) -> tuple[str, str | None]:
    """Log a bundle to the active run as a pyfunc model from code; register it.

    Args:
        bundle: the trained bundle.
        register: register a new version of the model's registered name.
        example: a few snapshot rows (:func:`input_example`); they are logged as the
            input example and give the model's signature (snapshot fields in,
            ``probability`` out), which ``mlflow models serve`` and the registry show
            and enforce.

    Returns:
        (model URI, registered version or None).
    """
    code = str(resources.files("postloan.models").joinpath("mlflow_model_code.py"))
    signature = None
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # MLflow advises type hints for input validation; the signature does it here.
        warnings.filterwarnings("ignore", message="Add type hints", category=UserWarning)
        # ... and warns of integer columns: only customer_id is one, never missing.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer",
                                category=UserWarning)
        if example is not None:
            example = input_example(example, n=len(example))
            # A risk bundle returns probabilities, an uplift bundle a frame of effects.
            out = bundle.predict(example)
            signature = infer_signature(example, out if isinstance(out, pd.DataFrame)
                                        else pd.DataFrame({"probability": out}))
        folder = bundle.save(Path(tmp) / "bundle")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=code,
            artifacts={"bundle": str(folder)},
            registered_model_name=registered_name(bundle.model) if register else None,
            pip_requirements=["postloan", "lightgbm", "pandas", "numpy"],
            signature=signature,
            input_example=example,
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


def promotion_gate(client: MlflowClient, model: str, version: str, auc_tolerance: float,
                   max_ece: float, metric: str = "oot_auc",
                   ece_metric: str = "oot_ece") -> GateDecision:
    """Decide whether challenger `version` becomes champion; act and record the decision.

    The thresholds come from the training config's ``gate`` (``config/training.yaml``).
    """
    name = registered_name(model)
    client.set_registered_model_alias(name, CHALLENGER, version)
    ch_auc = _version_metric(client, name, version, metric)
    ch_ece = _version_metric(client, name, version, ece_metric)
    champ = _alias_version(client, name, CHAMPION)
    champ_auc = None if champ is None else _version_metric(client, name, champ, metric)
    if ch_ece > max_ece:
        promoted, reason = False, f"calibration error {ch_ece:.4f} above bound {max_ece}"
    else:
        promoted, reason = _against_champion("OOT AUC", version, ch_auc, champ, champ_auc,
                                             auc_tolerance)
    d = GateDecision(promoted, reason, version, champ, ch_auc, champ_auc, ch_ece, auc_tolerance,
                     max_ece)
    return _record(client, model, d)


def _against_champion(what: str, version: str, value: float, champ: str | None,
                      champ_value: float | None, tolerance: float) -> tuple[bool, str]:
    """The rule both gates share once the challenger passed its own checks: promoted
    unless `value` is worse than the champion's by more than `tolerance`."""
    if champ is None:
        return True, "no champion yet"
    if champ == version:
        return True, "already champion"
    if value < champ_value - tolerance:
        return False, (f"{what} {value:.4f} worse than champion v{champ} "
                       f"({champ_value:.4f}) by more than {tolerance}")
    return True, (f"{what} {value:.4f} within {tolerance} of or above "
                  f"champion v{champ} ({champ_value:.4f})")


def _record(client: MlflowClient, model: str, d: GateDecision | UpliftGateDecision
            ) -> GateDecision | UpliftGateDecision:
    """Tag the challenger with the decision (``gate_*``) and promote it when it won."""
    name = registered_name(model)
    for k, v in asdict(d).items():
        client.set_model_version_tag(name, d.challenger_version, f"gate_{k}", str(v))
    if d.promoted and d.champion_version != d.challenger_version:
        set_champion(client, model, d.challenger_version, d.reason)
    return d


def models_to_load(client: MlflowClient) -> list[str]:
    """The models to load from the registry: all, but the optional ones never registered.

    A book without surveys and complaints cannot train the satisfaction model
    (:data:`postloan.models.bundle.OPTIONAL_MODELS`); scoring and serving then run without it.
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


@dataclass
class UpliftGateDecision:
    """Outcome of the uplift gate: held-out Qini and AUUC of the challenger.

    ``qini_tolerance`` is the margin the challenger's Qini may fall below the
    champion's: ``UPLIFT_GATE_Z`` times the combined standard error of the two, unless
    a fixed one was asked for.
    """

    promoted: bool
    reason: str
    challenger_version: str
    champion_version: str | None
    challenger_qini: float
    champion_qini: float | None
    challenger_auuc: float
    qini_tolerance: float | None
    challenger_qini_se: float = 0.0
    challenger_auuc_se: float = 0.0
    champion_qini_se: float | None = None


# One-sided 95%: refuse a ranking reliably worse than random, or reliably worse than the
# champion's.
UPLIFT_GATE_Z = 1.645


def uplift_gate(client: MlflowClient, action: str, version: str, metric: str = "gate_qini",
                auuc_metric: str = "gate_auuc", qini_tolerance: float | None = None
                ) -> UpliftGateDecision:
    """Gate an uplift model on held-out contacts.

    Refused when its held-out Qini or AUUC is reliably below zero (below by more than
    :data:`UPLIFT_GATE_Z` bootstrap standard errors: contacting in its order would
    cause outcomes, not avoid them), or when its Qini is reliably below the champion's:
    by more than :data:`UPLIFT_GATE_Z` times the combined standard error
    ``sqrt(se_challenger^2 + se_champion^2)`` (or by a fixed `qini_tolerance` when one
    is given). A Qini near zero is not refused: on a few hundred held-out contacts its
    sign is mostly noise. Nor is a challenger refused for a Qini a little below the
    champion's: the two differ by noise of the order of 0.015 on the demo book, and a
    fixed margin of 0.002 kept whichever version drew the luckier held-out sample (on
    the demo book, a 12-date version against the 24-date one on the same held-out
    dates; docs/uplift.md, "Training windows"). A challenger the noise cannot tell apart
    replaces the champion: it is the newer version, trained on contacts at least as
    recent. Recorded like :func:`promotion_gate`.
    """
    model = model_name(action)
    name = registered_name(model)
    client.set_registered_model_alias(name, CHALLENGER, version)
    metrics = client.get_run(client.get_model_version(name, version).run_id).data.metrics
    q = float(metrics.get(metric, float("nan")))
    auuc = float(metrics.get(auuc_metric, float("nan")))
    q_se = float(metrics.get(f"{metric}_se", 0.0))
    auuc_se = float(metrics.get(f"{auuc_metric}_se", 0.0))
    champ = _alias_version(client, name, CHAMPION)
    champ_q = champ_se = None
    if champ is not None:
        champ_q = _version_metric(client, name, champ, metric)
        # A champion logged before the gate read its noise has no standard error: 0.
        champ_se = float(client.get_run(client.get_model_version(name, champ).run_id)
                         .data.metrics.get(f"{metric}_se", 0.0))
    tolerance = qini_tolerance
    if tolerance is None and champ is not None:
        tolerance = UPLIFT_GATE_Z * math.hypot(q_se, champ_se)
    if q != q or auuc != auuc:  # NaN: no outcome had enough held-out contacts to judge
        promoted, reason = False, (f"too few held-out contacts to measure Qini "
                                   f"({int(metrics.get('n_heldout', 0))} rows)")
    elif q + UPLIFT_GATE_Z * q_se < 0 or auuc + UPLIFT_GATE_Z * auuc_se < 0:
        promoted, reason = False, (f"held-out Qini {q:.4f} (se {q_se:.4f}) / AUUC {auuc:.4f} "
                                   f"(se {auuc_se:.4f}): the ranking is reliably worse than "
                                   "random contacting")
    else:
        promoted, reason = _against_champion("held-out Qini", version, q, champ, champ_q,
                                             round(tolerance or 0.0, 4))
        if champ not in (None, version) and qini_tolerance is None:
            reason += (f" ({UPLIFT_GATE_Z} x the combined standard error, se {q_se:.4f} "
                       f"and {champ_se:.4f})")
    d = UpliftGateDecision(promoted, reason, version, champ, q, champ_q, auuc, tolerance,
                           q_se, auuc_se, champ_se)
    return _record(client, model, d)


def load_uplift(action: str, alias: str | None = CHAMPION) -> UpliftBundle:
    """Load an action's registered uplift bundle (default: its champion); its metadata's
    ``registered_version`` names the version the alias points at (audit trails, the
    cycle's ledger), as the three champions' do.

    Raises:
        ModelNotFoundError: none registered under that alias.
    """
    bundle = UpliftBundle.load(download_bundle(model_name(action), alias=alias))
    if alias is not None:
        try:
            mv = mlflow.MlflowClient().get_model_version_by_alias(
                registered_name(model_name(action)), alias)
        except MlflowException:  # loaded a moment ago: the alias exists
            return bundle
        bundle.metadata["registered_version"] = str(mv.version)
    return bundle


def load_uplift_champions() -> dict[str, UpliftBundle]:
    """Every action's uplift champion that exists (empty when none is registered)."""
    out = {}
    for action in UPLIFT_ACTIONS:
        try:
            out[action] = load_uplift(action)
        except ModelNotFoundError:
            continue
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


def _missing_sqlite_store(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI when it does not exist, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:" or Path(path).is_file():
        return None
    return Path(path)


def load_champions(model_dir: Path | None = None, alias: str = CHAMPION,
                   tracking_uri: str | None = None) -> dict[str, ModelBundle]:
    """The bundles of every model: from a bundle folder, else from the registry by alias.

    The one loader of champions for batch scoring, reports, monitoring and the service.

    Args:
        model_dir: a folder with one bundle (or ``v<N>`` bundles) per model, as
            ``postloan train`` exports them; None reads the registry.
        alias: registry alias to load (``champion`` by default).
        tracking_uri: the MLflow tracking store (None: MLflow's current one).

    Returns:
        Model name -> bundle; registry bundles carry ``registered_version`` and
        ``run_id`` in their metadata. Versions are pinned when found, so an alias that
        moves during the download cannot mix versions.

    Raises:
        ModelNotFoundError: a model, version or alias is missing or unreadable, the
            store is unreachable or (SQLite) does not exist, or a bundle is not the
            model its folder or registered name says.
    """
    if model_dir is not None:
        bundles = load_bundles_from_dir(model_dir)
    else:
        uri = tracking_uri or mlflow.get_tracking_uri()
        shown = mask_url(uri)  # never a password in a message or a log
        store = _missing_sqlite_store(uri)
        if store is not None:  # MLflow would create an empty store there: refuse instead
            raise ModelNotFoundError(f"no MLflow store at {store} (MLFLOW_TRACKING_URI={shown}); "
                                     "train first (`postloan train`), or use a bundle folder")
        try:
            client = configure(uri)
            bundles = {}
            for m in models_to_load(client):
                name = registered_name(m)
                try:
                    mv = client.get_model_version_by_alias(name, alias)
                except MlflowException as e:
                    raise ModelNotFoundError(
                        f"no '{alias}' version of {name} in the registry at {shown} "
                        f"({type(e).__name__}); train and promote one (`postloan train`), "
                        "or use a bundle folder") from None
                bundles[m] = load_bundle(m, alias=None, version=str(mv.version))
                bundles[m].metadata["registered_version"] = str(mv.version)
                bundles[m].metadata.setdefault("run_id", mv.run_id)
        except PostloanError:
            raise
        except Exception as e:  # unreachable tracking server, corrupt store, ...
            raise ModelNotFoundError(f"cannot load champions from the registry at {shown}: "
                                     f"{type(e).__name__}: {e}") from None
    for m, b in bundles.items():
        if b.model != m:
            raise ModelNotFoundError(f"the bundle loaded for '{m}' is a '{b.model}' model")
    return bundles


def list_models(client: MlflowClient) -> list[dict]:
    """Every registered postloan version with its aliases and gate tags."""
    rows = []
    for model in (*MODELS, *UPLIFT_MODELS):
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
