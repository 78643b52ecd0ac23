"""Export a model's points scorecard: ``scorecard.csv`` (feature, bin, woe, points) and
``scorecard.json``; and the ``scorecard_points`` column of ``postloan score --scorecard``.

The default-risk bundle carries the scorecard training fitted beside it; it is written
as is. A bundle without one (a model trained before scorecards, or one not listed under
``scorecard.models``) gets one refitted from the book: the snapshots at the bundle's own
training and OOT dates, the one feature function with the bundle's categories, the fit
``postloan train`` uses (:func:`postloan.models.training.scorecard_from_snapshots`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from postloan.data import io
from postloan.data.snapshot import build_snapshot
from postloan.errors import DataValidationError, ModelNotFoundError
from postloan.models import registry
from postloan.models.bundle import MODELS, ModelBundle, is_bundle_folder
from postloan.models.scorecard import FILE, Scorecard
from postloan.models.store import load_bundles_from_dir
from postloan.models.training import TrainConfig, scorecard_from_snapshots

CSV = "scorecard.csv"


def load_model(model: str, model_dir: Path | None, alias: str,
               tracking_uri: str | None) -> ModelBundle:
    """One model's bundle: from a bundle folder (``<dir>/<model>``, itself a bundle or
    its ``v<N>`` folders) or the registry by alias.

    Raises:
        ModelNotFoundError: no such model, alias or folder.
    """
    if model not in MODELS:
        raise DataValidationError("config", f"unknown model '{model}'; choose from "
                                  f"{sorted(MODELS)}", "model")
    if model_dir is not None:
        folder = Path(model_dir) / model
        return (ModelBundle.load(folder) if is_bundle_folder(folder)
                else load_bundles_from_dir(Path(model_dir))[model])
    if tracking_uri is not None:
        registry.configure(tracking_uri)
    return registry.load_bundle(model, alias=alias)


def refit_scorecard(bundle: ModelBundle, data: Path, cfg: TrainConfig) -> Scorecard:
    """The scorecard of `bundle`'s training rows, refitted from the book at `data`.

    Raises:
        DataValidationError: the bundle records no training dates, or the book lacks
            their snapshots or labels.
    """
    splits = bundle.metadata.get("splits") or {}
    if not splits.get("train") or not splits.get("oot"):
        raise DataValidationError("metadata", f"the {bundle.model} bundle records no training "
                                  "and OOT dates to refit a scorecard on", "splits")
    dates = {k: [pd.Timestamp(d) for d in splits[k]] for k in ("train", "oot")}
    tables = io.read_tables(data, names=[*io.S.REQUIRED_TABLES])
    snap = pd.concat([build_snapshot(tables, d) for d in [*dates["train"], *dates["oot"]]],
                     ignore_index=True)
    card = scorecard_from_snapshots(bundle.model, snap, dates, cfg, bundle.categories)
    m = bundle.metadata.get("metrics", {})
    card.metrics.update({"logreg_auc": m.get("baseline_oot_auc", float("nan")),
                         "lightgbm_auc": m.get("lightgbm_oot_auc", float("nan"))})
    return card


def run_scorecard(model: str, out: Path, data: Path, cfg: TrainConfig,
                  model_dir: Path | None = None, alias: str = registry.CHAMPION,
                  tracking_uri: str | None = None) -> dict:
    """Write ``scorecard.csv`` and ``scorecard.json`` of `model` into `out` (atomically).

    Returns:
        ``scorecard`` (the :class:`~postloan.models.scorecard.Scorecard`), ``source``
        (``bundle`` or ``refitted``), ``version`` and the paths written.
    """
    bundle = load_model(model, model_dir, alias, tracking_uri)
    card, source = bundle.scorecard, "bundle"
    if card is None:
        card, source = refit_scorecard(bundle, data, cfg), "refitted"
    out = Path(out)
    csv = io.write_text_atomic(card.table().to_csv(index=False), out / CSV)
    io.write_json_atomic(card.to_dict(), out / FILE)
    return {"scorecard": card, "source": source,
            "version": str(bundle.metadata.get("registered_version", "local")),
            "csv": csv, "json": out / FILE}


def summary(card: Scorecard) -> pd.DataFrame:
    """One row per characteristic: bins, IV and the points range (for the console)."""
    rows = [{"characteristic": t.feature, "bins": len(t.bins), "IV": f"{t.iv:.3f}",
             "points": f"{min(b.points for b in t.bins):g} .. {max(b.points for b in t.bins):g}"}
            for t in card.terms]
    return pd.DataFrame(rows).set_index("characteristic")


def require_scorecard(bundles: dict[str, ModelBundle]) -> Scorecard:
    """The default-risk bundle's scorecard.

    Raises:
        ModelNotFoundError: the default-risk bundle carries none (trained before
            scorecards existed, or with ``default_risk`` out of ``scorecard.models``).
    """
    bundle = bundles.get("default_risk")
    if bundle is None or bundle.scorecard is None:
        version = "" if bundle is None else \
            f" v{bundle.metadata.get('registered_version', 'local')}"
        raise ModelNotFoundError(f"the default-risk model{version} carries no scorecard: "
                                 "retrain it (`postloan train --target default_risk`)")
    return bundle.scorecard


def with_scorecard_points(scores: pd.DataFrame, snap: pd.DataFrame, bundle: ModelBundle,
                          X: pd.DataFrame | None = None) -> pd.DataFrame:
    """`scores` with a last column ``scorecard_points``: each customer's points on
    `bundle`'s scorecard, from the same snapshot and feature function (`X`: the run's
    features of `snap` with the bundle's categories, when already built)."""
    X = bundle.features(snap) if X is None else X
    points = pd.Series(bundle.scorecard.points(X), index=snap["customer_id"].to_numpy())
    return scores.assign(scorecard_points=scores["customer_id"].map(points).to_numpy())
