"""The model bundle: what a champion needs to score and explain, without pickle.

A bundle folder holds the LightGBM booster as native text (``model.txt``), the
calibrator as plain numbers (``calibrator.json``), the feature spec
(``feature_spec.json``), training metadata (``metadata.json``) and the data
expectations of its training reference (``data_expectations.json``, see
:mod:`postloan.quality`; absent from bundles trained before the gate existed). Loading it back
gives bit-identical scores: the booster text keeps full precision and the
calibrator is piecewise-linear interpolation on stored numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from postloan import explain
from postloan.calibration import Calibrator
from postloan.errors import ModelNotFoundError
from postloan.features import FEATURE_NAMES, build_features, feature_spec
from postloan.quality.expectations import DataExpectations
from postloan.treeshap import TreeExplainer

# The three models: name -> label they predict.
MODELS = {"default_risk": "default_12m", "churn": "churn_6m",
          "satisfaction": "dissatisfied_3m"}
# Column of each model's calibrated probability in a scored frame (batch scoring,
# the strategy rules and the service all read it from here).
SCORE_COLUMNS = {"default_risk": "pd_12m", "churn": "p_churn_6m",
                 "satisfaction": "p_dissatisfied_3m"}
FILES = ("model.txt", "calibrator.json", "feature_spec.json", "metadata.json")
EXPECTATIONS_FILE = "data_expectations.json"


def booster_probability(booster: lgb.Booster, X: pd.DataFrame | np.ndarray,
                        num_threads: int | None = None) -> np.ndarray:
    """The booster's uncalibrated probability: the one code path from margin to sigmoid,
    shared by calibration fitting (training) and scoring."""
    margin = TreeExplainer.from_booster(booster).margin(X, num_threads)
    return 1.0 / (1.0 + np.exp(-margin))


@dataclass
class ModelBundle:
    """A trained model: booster, calibrator, feature spec and metadata.

    Attributes:
        model: model name, a key of :data:`MODELS`.
        booster: LightGBM booster on :data:`postloan.features.FEATURE_NAMES`.
        calibrator: maps the booster's probability to a calibrated probability.
        metadata: training facts (dates, metrics, versions); JSON-able.
        expectations: what the training reference's data looked like (the data-quality
            gate checks a book against it before scoring); None for old bundles.
    """

    model: str
    booster: lgb.Booster
    calibrator: Calibrator
    metadata: dict = field(default_factory=dict)
    expectations: DataExpectations | None = None

    @property
    def label(self) -> str:
        return MODELS[self.model]

    def features(self, snapshot: pd.DataFrame) -> pd.DataFrame:
        """The model's features for snapshot rows (the one feature function)."""
        return build_features(snapshot)

    def margin(self, X: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """Raw log-odds of the booster.

        Bit-identical to ``booster.predict(X, raw_score=True)`` (same trees, same float64
        additions in the same order; tests/test_treeshap.py), computed by the booster's
        cached :class:`~postloan.treeshap.TreeExplainer`: several times LightGBM's
        throughput and no per-call overhead for one row.

        Args:
            X: feature frame (or float matrix) in :data:`FEATURE_NAMES` order.
            num_threads: threads (None: numba's thread count, all cores by default).
        """
        return self.explainer.margin(X, num_threads)

    def predict_features(self, X: pd.DataFrame | np.ndarray,
                         num_threads: int | None = None) -> np.ndarray:
        """Calibrated probabilities from a feature frame (or float matrix)."""
        return self.calibrator.transform(booster_probability(self.booster, X, num_threads))

    def predict(self, snapshot: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities for snapshot rows."""
        return self.predict_features(self.features(snapshot))

    @property
    def explainer(self) -> TreeExplainer:
        """The booster's exact TreeSHAP explainer, built on first use and cached per booster
        (what :func:`postloan.explain.contributions` uses; touch it to warm a service)."""
        return TreeExplainer.from_booster(self.booster)

    def explain(self, snapshot: pd.DataFrame, k: int = 3) -> tuple[pd.DataFrame, list[dict]]:
        """TreeSHAP contributions (log-odds) and reason codes for snapshot rows."""
        X = self.features(snapshot)
        contrib = explain.contributions(self.booster, X)
        return contrib, explain.reason_codes(self.model, contrib, X, k=k)

    def save(self, folder: Path) -> Path:
        """Write the bundle's files into `folder` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.txt").write_text(self.booster.model_to_string(), encoding="utf-8")
        (folder / "calibrator.json").write_text(json.dumps(self.calibrator.to_dict()),
                                                encoding="utf-8")
        spec = {**feature_spec(), "model": self.model, "label": self.label}
        (folder / "feature_spec.json").write_text(json.dumps(spec, indent=1, ensure_ascii=False),
                                                  encoding="utf-8")
        (folder / "metadata.json").write_text(
            json.dumps({"model": self.model, **self.metadata}, indent=1, sort_keys=True,
                       default=str), encoding="utf-8")
        if self.expectations is not None:
            (folder / EXPECTATIONS_FILE).write_text(self.expectations.to_json(),
                                                    encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: Path) -> ModelBundle:
        """Load a bundle folder written by :meth:`save`.

        Raises:
            ModelNotFoundError: the folder or one of its files is missing or unreadable,
                or its features differ from this version's feature function.
        """
        folder = Path(folder)
        missing = [f for f in FILES if not (folder / f).is_file()]
        if missing:
            raise ModelNotFoundError(f"model bundle {folder} is missing {missing}")
        try:
            booster = lgb.Booster(model_str=(folder / "model.txt").read_text(encoding="utf-8"))
            cal = Calibrator.from_dict(json.loads((folder / "calibrator.json").read_text()))
            spec = json.loads((folder / "feature_spec.json").read_text(encoding="utf-8"))
            meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
            exp_path = folder / EXPECTATIONS_FILE
            expectations = (DataExpectations.from_json(exp_path.read_text(encoding="utf-8"))
                            if exp_path.is_file() else None)
        except Exception as e:  # corrupt text, JSON or LightGBM model
            raise ModelNotFoundError(f"model bundle {folder} cannot be loaded: {e}") from e
        names = [f["name"] for f in spec["features"]]
        if names != list(FEATURE_NAMES) or booster.feature_name() != list(FEATURE_NAMES):
            raise ModelNotFoundError(
                f"model bundle {folder} was trained on other features than this version of "
                "postloan builds; retrain it")
        return cls(model=spec["model"], booster=booster, calibrator=cal, metadata=meta,
                   expectations=expectations)
