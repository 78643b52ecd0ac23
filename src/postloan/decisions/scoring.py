"""The online scoring core: scores, reasons and the one decision for a few records at once.

One request holds one or a few customers, so the work runs on arrays and lists, not
frames: for one customer pandas would cost more than the models. The numbers are the
batch's (:func:`postloan.decisions.batch.score_and_decide`): the same feature function (its array
path :func:`postloan.data.features.features_from_records`), the same bundles, TreeSHAP
reasons, uplift effects and decision rules (:func:`postloan.decisions.strategy.decide`);
tests/serving/test_serving.py pins the two paths to each other customer by customer. The
HTTP service (``serving/``) only adds the request schemas, authentication, the audit
trail and the response shapes around this class.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from postloan.data.features import (
    FEATURE_NAMES,
    category_vocabularies,
    code_maps,
    features_from_records,
    unknown_categories,
)
from postloan.data.quality import load_data_quality_config, record_flags
from postloan.data.snapshot import NUMERIC_FIELDS, SNAPSHOT_FIELDS
from postloan.decisions import strategy
from postloan.decisions.batch import SCORE_COLUMNS, model_versions
from postloan.errors import DataQualityError, ModelNotFoundError
from postloan.models import explain
from postloan.models.bundle import ModelBundle
from postloan.models.uplift import UpliftBundle

log = logging.getLogger("postloan.serving")
_NUMERIC_SNAPSHOT = frozenset(NUMERIC_FIELDS)
_UPLIFT = "uplift"


class Scorer:
    """Scores and decisions for validated records: the library's functions, composed.

    Kept apart from the BentoML class so it can be used and tested without a server.
    """

    def __init__(self, bundles: dict[str, ModelBundle], cfg: strategy.StrategyConfig,
                 uplift: dict[str, UpliftBundle] | None = None) -> None:
        self.bundles = bundles
        self.cfg = cfg
        self.uplift = dict(uplift or {})
        self.versions = model_versions(bundles)
        self.uplift_versions = {a: str(b.metadata.get("registered_version", "local"))
                                for a, b in self.uplift.items()}
        # Category codes of each model's own vocabulary (its feature spec); models
        # trained on the same book share one map, so the features are built once.
        # The uplift models learned on the default contract's vocabularies ("uplift").
        self._maps: dict[str, dict] = {}
        self._map_key: dict[str, str] = {}
        vocabularies = {m: b.categories for m, b in bundles.items()}
        if self.uplift:
            vocabularies[_UPLIFT] = None
        for m, categories in vocabularies.items():
            key = json.dumps({c: list(v) for c, v in
                              category_vocabularies(categories).items()}, sort_keys=True)
            self._map_key[m] = key
            self._maps.setdefault(key, code_maps(categories))
        self.data_quality = load_data_quality_config()
        # Build the tree explainers and load (or compile) their TreeSHAP and margin
        # kernels now, not on the first request.
        warm = np.zeros((1, len(FEATURE_NAMES)))
        for bundle in bundles.values():
            explain.contributions_array(bundle.booster, warm)
            bundle.margin(warm)
        for up in self.uplift.values():
            up.effects_features(warm, interval=True)

    def score(self, records: list[dict], k: int = 3) -> dict[str, np.ndarray | list]:
        """Scores, reasons and the one decision per customer, as columns.

        The features come from :func:`postloan.data.features.features_from_records` (the
        feature function's array path: same arithmetic, no pandas); probabilities,
        contributions and reasons from the same bundle and explain calls as batch
        scoring, the uplift models' effects from the same bundles as batch scoring, the
        decisions from :func:`postloan.decisions.strategy.decide` (the rules of
        ``apply_strategy``), so the numbers are the batch numbers (tests/serving/test_serving.py
        checks equality).

        Returns:
            The decision columns of :func:`postloan.decisions.strategy.apply_strategy` plus a
            ``reasons_<model>`` list per model.
        """
        Xs = self.features(records)
        scores: dict[str, np.ndarray | list] = {
            c: np.full(len(records), np.nan) for c in SCORE_COLUMNS.values()}  # no model
        for model, bundle in self.bundles.items():
            X = Xs[model]
            scores[SCORE_COLUMNS[model]] = bundle.predict_features(X)
            contrib = explain.contributions_array(bundle.booster, X)[:, :-1]
            scores[f"reasons_{model}"] = explain.reason_codes_array(
                model, contrib, X, FEATURE_NAMES, k=k, categories=bundle.categories)
        snap = {f: (np.array([r[f] for r in records], dtype="float64")
                    if f in _NUMERIC_SNAPSHOT else [r[f] for r in records])
                for f in SNAPSHOT_FIELDS}
        learned = (strategy.learned_effects(self.uplift, Xs[_UPLIFT]) if self.uplift
                   else None)
        decisions = strategy.decide(scores, snap, self.cfg, learned)
        decisions.update({c: v for c, v in scores.items() if c.startswith("reasons_")})
        decisions["unknown_categories"] = self.unknown_categories(records)
        return decisions

    def features(self, records: list[dict]) -> dict[str, np.ndarray]:
        """Model (and ``uplift``) -> its feature matrix (built once per distinct
        vocabulary)."""
        built = {key: features_from_records(records, maps) for key, maps in self._maps.items()}
        return {m: built[key] for m, key in self._map_key.items()}

    def unknown_categories(self, records: list[dict]) -> list[list[str]]:
        """Per record, the category values outside any served model's categories."""
        flags = [set() for _ in records]
        for maps in self._maps.values():
            for i, f in enumerate(unknown_categories(records, maps)):
                flags[i].update(f)
        if any(flags):  # field names only: a request's values never reach the log
            log.warning("categories outside the models' vocabularies scored as missing in "
                        "field(s) %s", sorted({f.split("=", 1)[0] for f in set().union(*flags)}))
        return [sorted(f) for f in flags]

    def check_models(self, models: list[str]) -> None:
        """Raise ModelNotFoundError (a 422) for a requested model this service lacks."""
        lacking = [m for m in models if m not in self.bundles]
        if lacking:
            raise ModelNotFoundError(f"model(s) {lacking} not served (the book they were "
                                     f"trained on lacked their label's tables); served: "
                                     f"{sorted(self.bundles)}")

    def check(self, records: list[dict], now: pd.Timestamp | None = None) -> list[list[str]]:
        """Refuse records that break a hard data rule; the soft `data_flags` of the rest.

        Hard rules (an `as_of` after the service's clock, impossible DPD and count
        combinations) raise DataQualityError, which the endpoints turn into a 422
        naming the customer and the rule. Soft flags (a stale bureau pull, a missing
        feed family, an `as_of` older than the configured age) go back per customer;
        historical snapshots stay scorable for back-testing.
        """
        columns = {f: [r[f] for r in records] for f in records[0]} if records else {}
        if not columns:
            return []
        hard, soft = record_flags(columns, now or pd.Timestamp.now(), self.data_quality)
        for i, rules in enumerate(hard):
            if rules:
                raise DataQualityError(None, f"customer {records[i]['customer_id']}: breaks "
                                       f"the hard data-quality rule(s) {', '.join(rules)}")
        return soft

    def predict(self, records: list[dict], models: list[str]) -> dict[str, list[float]]:
        """Calibrated probabilities only (the batch numbers without reasons), no pandas."""
        self.check_models(models)
        Xs = self.features(records)
        return {SCORE_COLUMNS[m]: self.bundles[m].predict_features(Xs[m]).tolist()
                for m in models}

    def explain(self, record: dict, models: list[str], k: int = 3) -> dict[str, dict]:
        """Every feature's TreeSHAP contribution for one customer, per model."""
        self.check_models(models)
        Xs = self.features([record])
        out = {}
        for model in models:
            X = Xs[model]
            bundle = self.bundles[model]
            contrib = explain.contributions_array(bundle.booster, X)
            c = contrib[:, :-1]
            order = np.argsort(-np.abs(c[0]), kind="stable")
            out[model] = {
                "version": self.versions[model],
                "probability": float(bundle.predict_features(X)[0]),
                "raw_margin": float(bundle.margin(X)[0]),
                "bias": float(contrib[0, -1]),
                "contributions": [
                    {"feature": FEATURE_NAMES[j],
                     "value": None if np.isnan(X[0, j]) else float(X[0, j]),
                     "contribution": float(c[0, j])} for j in order],
                "reasons": explain.reason_codes_array(model, c, X, FEATURE_NAMES, k=k,
                                                      categories=bundle.categories)[0],
            }
        return out


__all__ = ["Scorer"]
