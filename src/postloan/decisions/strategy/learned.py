"""Learned effects for the decision: what each uplift model estimates, and whether it decides.

An action's uplift model (:mod:`postloan.models.uplift`) decides that action only when its
decision gate (:mod:`postloan.decisions.strategy.gate`, run at training time and stored in the
bundle) found that deciding with its effects is worth at least as much as deciding with
the strategy constants on held-out randomised contacts. Its effects are still computed
and reported otherwise, and the decision says why it fell back to the constants.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from postloan.data.features import FEATURE_NAMES, build_features
from postloan.decisions.strategy.actions import CONSTANTS, LEARNED, LearnedEffects
from postloan.decisions.strategy.config import ACTIONS
from postloan.models.uplift import UpliftBundle


def uplift_features(snapshot: pd.DataFrame) -> np.ndarray:
    """The uplift models' feature matrix of snapshot rows: the one feature function on
    the default contract's vocabularies, what the uplift models were trained on (the
    service builds the same matrix from records: :class:`postloan.decisions.scoring.Scorer`)."""
    return build_features(snapshot)[list(FEATURE_NAMES)].to_numpy(float)


def learned_effects(bundles: Mapping[str, UpliftBundle], X: np.ndarray,
                    respect_gate: bool = True) -> LearnedEffects | None:
    """Effects (with 95% intervals) of every action's uplift model for feature rows.

    Args:
        bundles: action -> uplift bundle (registered champions).
        X: :func:`uplift_features` of the customers.
        respect_gate: let an action's learned effects decide only when its decision gate
            passed (False: every given model decides; for comparisons only).

    Returns:
        :class:`~postloan.decisions.strategy.actions.LearnedEffects`, or None without bundles.
    """
    if not bundles:
        return None
    effects: dict[str, np.ndarray] = {}
    for action, b in bundles.items():
        for c, v in b.effect_arrays(X, interval=True).items():
            effects[f"effect_{action}_{c[len('effect_'):]}"] = v
    deciding, gates, odds = _verdicts(bundles, respect_gate)
    return LearnedEffects(effects, deciding, gates, odds)


_VERDICTS: dict[tuple, tuple] = {}


def _verdicts(bundles: Mapping[str, UpliftBundle], respect_gate: bool) -> tuple:
    """Which actions decide, the gates' records and the odds ratios of these bundles:
    the same for every request of a service, so worked out once (the key holds each
    bundle's identity and verdict, so a changed verdict is seen)."""
    key = (respect_gate, *((a, id(b), b.metadata.get("decision_gate", {}).get("decides"))
                           for a, b in bundles.items()))
    hit = _VERDICTS.get(key)
    if hit is not None and all(hit[0].get(a) is b for a, b in bundles.items()):
        return hit[1]
    deciding = frozenset(a for a, b in bundles.items()
                         if not respect_gate or b.decision_gate.get("decides", False))
    value = (deciding, {a: _gate_summary(b) for a, b in bundles.items()},
             {a: b.odds_ratios() for a, b in bundles.items()})
    if len(_VERDICTS) >= 16:
        _VERDICTS.clear()
    _VERDICTS[key] = (dict(bundles), value)
    return value


def _gate_summary(bundle: UpliftBundle) -> dict:
    gate = bundle.decision_gate
    if not gate:
        return {"decides": False, "reason": "the model was never judged against the "
                "constants (retrain it)", "reason_zh": "模型未与策略常数比较（请重新训练）"}
    return gate




def decision_bases(bundles: Mapping[str, UpliftBundle] | None) -> dict[str, str]:
    """Action -> the basis its decisions use with these uplift bundles (for manifests,
    the console and the service's metadata)."""
    bundles = bundles or {}
    return {a: LEARNED if a in bundles and bundles[a].decision_gate.get("decides", False)
            else CONSTANTS for a in ACTIONS}


__all__ = ["decision_bases", "learned_effects", "uplift_features"]
