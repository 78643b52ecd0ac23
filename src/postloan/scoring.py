"""Score customer snapshots with the three models: probabilities and reason codes.

The same function serves batch scoring, the HTTP service and notebooks, so a
customer gets the same numbers wherever it is scored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from postloan import explain
from postloan.bundle import MODELS, ModelBundle
from postloan.errors import ModelNotFoundError
from postloan.features import build_features

# Column of each model's calibrated probability in a scored frame.
SCORE_COLUMNS = {"default_risk": "pd_12m", "churn": "p_churn_6m",
                 "satisfaction": "p_dissatisfied_3m"}


def load_bundles_from_dir(model_dir: Path) -> dict[str, ModelBundle]:
    """Load the three bundles from ``model_dir/<model>/`` (a bundle folder each).

    ``model_dir/<model>`` may itself be a bundle, or hold ``v<N>`` folders as written
    by ``postloan train``: the version named in ``champion.json`` (what the promotion
    gate accepted), else the highest.
    """
    model_dir = Path(model_dir)
    out = {}
    for model in MODELS:
        base = model_dir / model
        if (base / "model.txt").is_file():
            out[model] = ModelBundle.load(base)
            continue
        champion = base / "champion.json"
        if champion.is_file():
            try:
                version = json.loads(champion.read_text())["version"]
            except (ValueError, KeyError) as e:
                raise ModelNotFoundError(f"unreadable {champion}: {e}") from e
            out[model] = ModelBundle.load(base / f"v{version}")
            continue
        versions = sorted((p for p in base.glob("v*") if p.name[1:].isdigit()),
                          key=lambda p: int(p.name[1:]))
        if not versions:
            raise ModelNotFoundError(f"no bundle for model '{model}' under {base}")
        out[model] = ModelBundle.load(versions[-1])
    return out


def score_snapshot(bundles: dict[str, ModelBundle], snapshot: pd.DataFrame,
                   k_reasons: int = 3, with_reasons: bool = True) -> pd.DataFrame:
    """Probabilities (and reasons) of every model for snapshot rows.

    Args:
        bundles: model name -> bundle (all three for a full scoring).
        snapshot: customer snapshot rows (the snapshot contract's fields).
        k_reasons: reasons per direction and model.
        with_reasons: compute TreeSHAP reason codes (the costly part).

    Returns:
        Frame aligned with `snapshot`: ``customer_id``, ``as_of`` when present, one
        probability column per model (:data:`SCORE_COLUMNS`) and, with reasons, a
        ``reasons_<model>`` column holding ``{"up": [...], "down": [...]}`` per row.
    """
    X = build_features(snapshot)  # once, shared by the three models
    out = pd.DataFrame(index=snapshot.index)
    for col in ("customer_id", "as_of"):
        if col in snapshot.columns:
            out[col] = snapshot[col].to_numpy()
    for model, bundle in bundles.items():
        out[SCORE_COLUMNS[model]] = bundle.predict_features(X)
        if with_reasons:
            contrib = explain.contributions(bundle.booster, X)
            out[f"reasons_{model}"] = explain.reason_codes(model, contrib, X, k=k_reasons)
    return out


def model_versions(bundles: dict[str, ModelBundle]) -> dict[str, str]:
    """Model -> registered version (or 'local') for audit trails."""
    return {m: str(b.metadata.get("registered_version", "local")) for m, b in bundles.items()}


__all__ = ["SCORE_COLUMNS", "load_bundles_from_dir", "score_snapshot", "model_versions"]
