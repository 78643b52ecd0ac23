"""The bundle folder on disk and its champion pointer: the one module that knows them.

``postloan train --models-dir DIR`` writes every trained version of a model to
``DIR/<model>/v<N>/`` (:meth:`~postloan.models.bundle.ModelBundle.save` or
:meth:`~postloan.models.uplift.UpliftBundle.save`) and two pointer files beside them:

- ``latest.json``: the newest version and whether the promotion gate made it the
  champion (``{"version", "champion"}``);
- ``champion.json``: the version the gate accepted last (``{"version", "reason"}``).

Readers (``postloan score --model-dir``, the scale-out engines, the service, the
monthly cycle) load the champion named in ``champion.json``, else the highest version;
a ``DIR/<model>`` that is itself a bundle folder is loaded as it is. The pointers are
written atomically, so a reader never sees half a pointer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from postloan.data import io
from postloan.errors import ModelNotFoundError
from postloan.models.bundle import MODELS, OPTIONAL_MODELS, ModelBundle, is_bundle_folder
from postloan.models.uplift import ACTIONS as UPLIFT_ACTIONS
from postloan.models.uplift import UpliftBundle
from postloan.models.uplift import model_name as uplift_model_name

log = logging.getLogger(__name__)
LATEST = "latest.json"
CHAMPION = "champion.json"


def version_folder(models_dir: Path, model: str, version: str | int) -> Path:
    """``models_dir/<model>/v<version>``: where a trained version's bundle is saved."""
    return Path(models_dir) / model / f"v{version}"


def write_pointers(models_dir: Path, model: str, version: str | int, promoted: bool,
                   reason: str) -> None:
    """Record a trained version: ``latest.json`` always, ``champion.json`` when promoted.

    Args:
        models_dir: the bundle folder (``--models-dir``).
        model: model name (``default_risk``, ``uplift_payment_reminder``...).
        version: the registered version just saved under :func:`version_folder`.
        promoted: whether the promotion gate made it the champion.
        reason: the gate's reason, kept in ``champion.json``.
    """
    base = Path(models_dir) / model
    io.write_json_atomic({"version": version, "champion": bool(promoted)}, base / LATEST)
    if promoted:  # the folder deployment follows the registry's gate
        io.write_json_atomic({"version": version, "reason": reason}, base / CHAMPION)


def latest_verdict(models_dir: Path, model: str, version: str | int | None) -> bool | None:
    """Whether `version` of `model` passed the promotion gate, from ``latest.json``.

    None when the folder records no verdict for that version (no ``latest.json``, an
    unreadable one, or one about another version).
    """
    try:
        latest = json.loads((Path(models_dir) / model / LATEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if str(latest.get("version")) != str(version):
        return None
    return bool(latest.get("champion"))


def load_bundles_from_dir(model_dir: Path) -> dict[str, ModelBundle]:
    """Load the bundles from ``model_dir/<model>/`` (a bundle folder each).

    ``model_dir/<model>`` may itself be a bundle, or hold ``v<N>`` folders as written
    by ``postloan train``: the version named in ``champion.json`` (what the promotion
    gate accepted), else the highest. Default risk and churn are required; the
    satisfaction model is optional (a book without surveys and complaints cannot train
    it): without it, ``p_dissatisfied_3m`` is missing.
    """
    model_dir = Path(model_dir)
    out = {}
    for model in MODELS:
        base = model_dir / model
        if model in OPTIONAL_MODELS and not base.exists():
            log.warning("no '%s' model under %s: scoring without it", model, model_dir)
            continue
        out[model] = ModelBundle.load(base if is_bundle_folder(base) else champion_folder(base))
    return out


def champion_folder(base: Path) -> Path:
    """``base/v<N>`` of the version ``base/champion.json`` names (what the promotion gate
    accepted), else the highest ``v<N>``."""
    champion = base / CHAMPION
    if champion.is_file():
        try:
            return base / f"v{json.loads(champion.read_text())['version']}"
        except (ValueError, KeyError) as e:
            raise ModelNotFoundError(f"unreadable {champion}: {e}") from e
    versions = sorted((p for p in base.glob("v*") if p.name[1:].isdigit()),
                      key=lambda p: int(p.name[1:]))
    if not versions:
        raise ModelNotFoundError(f"no bundle for model '{base.name}' under {base.parent}")
    return versions[-1]


def load_uplift_from_dir(model_dir: Path) -> dict[str, UpliftBundle]:
    """The uplift champions by action from ``model_dir/uplift_<action>/`` (as written by
    ``postloan train``); actions without a folder are decided on the constants.

    Raises:
        ModelNotFoundError: a folder that exists but holds no loadable bundle, or a
            bundle trained on other features, named by its model.
    """
    out = {}
    for action in UPLIFT_ACTIONS:
        base = Path(model_dir) / uplift_model_name(action)
        if not base.is_dir():
            continue
        folder = base if (base / "uplift.json").is_file() else champion_folder(base)
        out[action] = UpliftBundle.load(folder)
    return out


__all__ = ["CHAMPION", "LATEST", "champion_folder", "latest_verdict", "load_bundles_from_dir",
           "load_uplift_from_dir", "version_folder", "write_pointers"]
