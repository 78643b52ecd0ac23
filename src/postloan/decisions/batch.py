"""The batch scoring step: score, decide, flatten. One step for every caller.

``postloan score`` on a plain book, both scale-out engines (one call per partition,
:mod:`postloan.scale`), the stress run (:func:`postloan.operations.stress.stress_decisions`) and
notebooks score through :func:`score_and_decide`; the HTTP service runs the same
functions on arrays for a few customers (:func:`postloan.data.features.features_from_records`,
:func:`postloan.models.explain.reason_codes_array`, :func:`postloan.decisions.strategy.decide`), and
tests pin the two paths to equal numbers. So a customer gets the same numbers
wherever it is scored.

Steps:

1. :func:`score_snapshot`: features once, each model's calibrated probability
   (:data:`SCORE_COLUMNS`) and, optionally, TreeSHAP reason codes;
2. :func:`postloan.decisions.strategy.apply_strategy` and :func:`postloan.decisions.strategy.outreach_queue`:
   grades, expected loss, warnings, segments, the one decision per customer (learned
   effects where their gate admits them, else the constants) and the queue (a view);
3. :func:`flatten_reasons` / :func:`flat_frame`: lists and dicts as text, so the
   tables read back from parquet and CSV.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from postloan.data.features import (
    FEATURE_NAMES,
    FeatureCache,
)
from postloan.data.snapshot import build_snapshot
from postloan.decisions import strategy
from postloan.errors import DataValidationError
from postloan.models import explain
from postloan.models.bundle import (
    MODELS,
    SCORE_COLUMNS,
    ModelBundle,
)

log = logging.getLogger(__name__)
SCORE_CHUNK = 20_000  # customers scored per step: bounded memory whatever the book size


def score_snapshot(bundles: dict[str, ModelBundle], snapshot: pd.DataFrame,
                   k_reasons: int = 3, with_reasons: bool = True,
                   features: FeatureCache | None = None) -> pd.DataFrame:
    """Probabilities (and reasons) of every model for snapshot rows.

    Args:
        bundles: model name -> bundle (all three for a full scoring).
        snapshot: customer snapshot rows (the snapshot contract's fields).
        k_reasons: reasons per direction and model.
        with_reasons: compute TreeSHAP reason codes (the costly part).
        features: the features of these rows, when already built (else built here, once
            per vocabulary).

    Returns:
        Frame aligned with `snapshot`: ``customer_id``, ``as_of`` when present, one
        probability column per model (:data:`SCORE_COLUMNS`; NaN for a model not in
        `bundles`) and, with reasons, a ``reasons_<model>`` column holding
        ``{"up": [...], "down": [...]}`` per row.
    """
    features = features if features is not None else FeatureCache(snapshot)
    out = pd.DataFrame(index=snapshot.index)
    for col in ("customer_id", "as_of"):
        if col in snapshot.columns:
            out[col] = snapshot[col].to_numpy()
    for model in MODELS:
        if model not in bundles:
            out[SCORE_COLUMNS[model]] = np.nan  # no such model: missing, never 0
            continue
        bundle = bundles[model]
        X = features.get(bundle.categories)
        out[SCORE_COLUMNS[model]] = bundle.predict_features(X)
        if with_reasons:
            contrib = explain.contributions(bundle.booster, X)
            out[f"reasons_{model}"] = explain.reason_codes(model, contrib, X, k=k_reasons,
                                                           categories=bundle.categories)
    return out


def model_versions(bundles: dict[str, ModelBundle]) -> dict[str, str]:
    """Model -> registered version (or 'local') for audit trails."""
    return {m: str(b.metadata.get("registered_version", "local")) for m, b in bundles.items()}


def flatten_reasons(scored: pd.DataFrame) -> pd.DataFrame:
    """Top "up" reason texts as plain ``<model>_top_reasons`` columns (parquet/CSV friendly)."""
    out = scored.drop(columns=[c for c in scored.columns if c.startswith("reasons_")])
    for model in MODELS:
        col = f"reasons_{model}"
        if col in scored.columns:
            out[f"{model}_top_reasons"] = [
                " | ".join(r["text_en"] for r in cell["up"]) for cell in scored[col]]
    return out


def flat_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Lists and dicts as text, so every output reads back from parquet and CSV."""
    flat = df.copy()
    for c in flat.columns:
        if flat[c].map(lambda v: isinstance(v, (list, dict))).any():
            flat[c] = flat[c].map(lambda v: " | ".join(map(str, v)) if isinstance(v, list)
                                  else str(v))
    return flat


def score_and_decide(snap: pd.DataFrame, bundles: dict[str, ModelBundle],
                     cfg: strategy.StrategyConfig | None = None, capacity: int | None = None,
                     with_reasons: bool = True,
                     progress: Callable[[int], None] | None = None,
                     uplift: Mapping[str, Any] | None = None,
                     features: FeatureCache | None = None) -> dict[str, pd.DataFrame]:
    """Scores (in chunks of :data:`SCORE_CHUNK`: bounded memory), decisions and queue.

    Args:
        snap: customer snapshot rows (one per customer).
        bundles: model name -> bundle (the three champions).
        cfg: strategy config (the packaged default when None).
        capacity: outreach capacity (the config's when None).
        with_reasons: compute TreeSHAP reason codes (the costly part).
        progress: called with the number of customers scored after each chunk.
        uplift: action -> registered uplift bundle (:mod:`postloan.models.uplift`); an action
            whose model passed its decision gate is decided on its learned effects, the
            others on the strategy constants (``decision_basis`` says which).
        features: :class:`FeatureCache` of `snap` when the run already built features
            (the data-quality gate did): nothing is built twice.

    Returns:
        ``scores`` (flattened reasons), ``decisions`` (:func:`postloan.decisions.strategy.apply_strategy`
        with ``version_<model>`` columns) and ``queue`` (the top `capacity` of these
        decisions, :func:`postloan.decisions.strategy.outreach_queue`: a view, never a second
        opinion).
    """
    features = features if features is not None else FeatureCache(snap)
    for b in bundles.values():  # once per vocabulary for the whole run, then sliced
        features.get(b.categories)
    parts = []
    for start in range(0, len(snap), SCORE_CHUNK):
        stop = start + SCORE_CHUNK
        chunk = snap.iloc[start:stop]
        parts.append(score_snapshot(bundles, chunk, with_reasons=with_reasons,
                                    features=features.rows(start, stop)))
        if progress:
            progress(len(chunk))
    scored = pd.concat(parts)
    learned = (strategy.learned_effects(uplift, features.get(None)[list(FEATURE_NAMES)]
                                        .to_numpy(float)) if uplift else None)
    decisions = strategy.apply_strategy(scored, snap, cfg, learned)
    queue = strategy.outreach_queue(decisions, capacity, cfg)
    versions = model_versions(bundles)
    decisions = decisions.assign(**{f"version_{m}": v for m, v in versions.items()})
    return {"scores": flatten_reasons(scored), "decisions": decisions, "queue": queue}


def score_tables(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp,
                 bundles: dict[str, ModelBundle], cfg: strategy.StrategyConfig | None = None,
                 capacity: int | None = None, with_reasons: bool = True,
                 progress: Callable[[int], None] | None = None,
                 uplift: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """:func:`score_and_decide` on the customers of one book or partition at `as_of`.

    Returns:
        ``scores``, ``decisions``, ``queue`` (this piece's top `capacity` candidates) and
        ``snapshot``; None when nobody in `tables` is active at `as_of` (an empty
        partition).
    """
    try:
        snap = build_snapshot(tables, as_of, with_labels=False)
    except DataValidationError as e:
        if e.table == "loans":
            return None
        raise
    return {**score_and_decide(snap, bundles, cfg, capacity, with_reasons, progress, uplift),
            "snapshot": snap}


__all__ = ["SCORE_CHUNK", "SCORE_COLUMNS", "flat_frame", "flatten_reasons",
           "model_versions",
           "score_and_decide", "score_snapshot", "score_tables"]
