"""The model catalogue and the model bundle: what a champion needs to score and explain,
without pickle.

A bundle folder holds the fitted model, the calibrator as plain numbers
(``calibrator.json``), the feature spec (``feature_spec.json``) and training metadata
(``metadata.json``). The model is either a LightGBM booster as native text
(``model.txt``) or, when the logistic baseline won out of time, a
:class:`~postloan.models.linear.LinearModel` as JSON (``linear_model.json``); both score and
explain through the same bundle calls. Loading a bundle back gives bit-identical
scores: the booster text and Python's JSON floats keep full precision. The folder also
holds the data expectations of the model's training reference
(``data_expectations.json``, see :mod:`postloan.data.quality`; absent from bundles trained
before the gate existed), and a default-risk bundle the points scorecard fitted beside
it as a challenger (``scorecard.json``, see :mod:`postloan.models.scorecard`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from postloan.data.features import FEATURE_NAMES, build_features, feature_spec
from postloan.data.quality.expectations import DataExpectations
from postloan.errors import DataValidationError, ModelNotFoundError
from postloan.models import explain
from postloan.models.calibration import Calibrator
from postloan.models.linear import LinearModel
from postloan.models.scorecard import FILE as SCORECARD_FILE
from postloan.models.scorecard import Scorecard
from postloan.models.treeshap import TreeExplainer

# The model catalogue: each model, the label it predicts, and the column of its
# calibrated probability in scored frames. Everything that lists the models reads these.
MODELS = {"default_risk": "default_12m", "churn": "churn_6m",
          "satisfaction": "dissatisfied_3m"}
# Column of each model's calibrated probability in a scored frame (batch scoring,
# the strategy rules and the service all read it from here).
SCORE_COLUMNS = {"default_risk": "pd_12m", "churn": "p_churn_6m",
                 "satisfaction": "p_dissatisfied_3m"}
# Models a book may lack: satisfaction needs the surveys and interactions tables.
OPTIONAL_MODELS = frozenset({"satisfaction"})
# The files of a bundle folder; the model file depends on the family.
MODEL_FILES = {"lightgbm": "model.txt", "logistic": "linear_model.json"}
FILES = ("calibrator.json", "feature_spec.json", "metadata.json")

Model = lgb.Booster | LinearModel
EXPECTATIONS_FILE = "data_expectations.json"


def family_of(model: Model) -> str:
    """``lightgbm`` or ``logistic``: the family of a fitted model."""
    return "logistic" if isinstance(model, LinearModel) else "lightgbm"


def model_explainer(model: Model) -> TreeExplainer | LinearModel:
    """What computes the margin and the contributions of `model`: the booster's cached
    TreeSHAP explainer, or the linear model itself."""
    return model if isinstance(model, LinearModel) else TreeExplainer.from_booster(model)


def booster_probability(booster: Model, X: pd.DataFrame | np.ndarray,
                        num_threads: int | None = None) -> np.ndarray:
    """The model's uncalibrated probability: the one code path from margin to sigmoid,
    shared by calibration fitting (training) and scoring."""
    margin = model_explainer(booster).margin(X, num_threads)
    return 1.0 / (1.0 + np.exp(-margin))


def is_bundle_folder(folder: Path) -> bool:
    """Whether `folder` holds a bundle's model file (of either family)."""
    return any((Path(folder) / f).is_file() for f in MODEL_FILES.values())


@dataclass
class ModelBundle:
    """A trained model: booster, calibrator, feature spec and metadata.

    Attributes:
        model: model name, a key of :data:`MODELS`.
        booster: the fitted model on :data:`postloan.data.features.FEATURE_NAMES`: a LightGBM
            booster, or a :class:`~postloan.models.linear.LinearModel` (logistic family).
        calibrator: maps the booster's probability to a calibrated probability.
        metadata: training facts (dates, metrics, versions); JSON-able.
        categories: category field -> the categories the model was trained with, in
            code order (the training book's vocabularies); None = the default contract.
        expectations: what the training reference's data looked like (the data-quality
            gate checks a book against it before scoring); None for old bundles.
        scorecard: the points scorecard fitted on the same training rows (a challenger
            beside the model; ``postloan score --scorecard``); None when not trained.
    """

    model: str
    booster: Model
    calibrator: Calibrator
    metadata: dict = field(default_factory=dict)
    categories: dict[str, list[str]] | None = None
    expectations: DataExpectations | None = None
    scorecard: Scorecard | None = None

    @property
    def label(self) -> str:
        return MODELS[self.model]

    @property
    def family(self) -> str:
        """``lightgbm`` or ``logistic``."""
        return family_of(self.booster)

    def features(self, snapshot: pd.DataFrame) -> pd.DataFrame:
        """The model's features for snapshot rows (the one feature function, with the
        categories the model was trained with; unseen ones are missing)."""
        return build_features(snapshot, self.categories)

    def margin(self, X: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """Raw log-odds of the booster.

        For LightGBM bit-identical to ``booster.predict(X, raw_score=True)`` (same
        trees, same float64 additions in the same order; tests/models/test_treeshap.py),
        computed by the booster's cached :class:`~postloan.models.treeshap.TreeExplainer`:
        several times LightGBM's throughput and no per-call overhead for one row.

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
    def explainer(self) -> TreeExplainer | LinearModel:
        """The booster's exact TreeSHAP explainer, built on first use and cached per booster
        (what :func:`postloan.models.explain.contributions` uses; touch it to warm a service);
        for the logistic family the linear model itself."""
        return model_explainer(self.booster)

    def explanation_sample(self, snapshot: pd.DataFrame, n: int = 2000, seed: int = 42
                           ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Features and TreeSHAP contributions of a seeded sample of snapshot rows.

        Args:
            snapshot: customer snapshot rows.
            n: rows sampled (without replacement, kept in snapshot order).
            seed: sampling seed.

        Returns:
            ``(X, contrib)`` for ``min(n, len(snapshot))`` rows (contrib has a ``bias``
            column; rows sum to the raw margin).

        Raises:
            DataValidationError: `snapshot` has no rows.
        """
        if len(snapshot) == 0:
            raise DataValidationError("snapshot", "no rows to explain")
        idx = np.sort(np.random.default_rng(seed).choice(len(snapshot), min(n, len(snapshot)),
                                                         replace=False))
        X = self.features(snapshot.iloc[idx])
        return X, explain.contributions(self.booster, X)

    def explain(self, snapshot: pd.DataFrame, k: int = 3) -> tuple[pd.DataFrame, list[dict]]:
        """TreeSHAP contributions (log-odds) and reason codes for snapshot rows."""
        X = self.features(snapshot)
        contrib = explain.contributions(self.booster, X)
        return contrib, explain.reason_codes(self.model, contrib, X, k=k,
                                             categories=self.categories)

    def save(self, folder: Path) -> Path:
        """Write the bundle's files into `folder` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(self.booster, LinearModel):
            (folder / MODEL_FILES["logistic"]).write_text(
                json.dumps(self.booster.to_dict(), indent=1), encoding="utf-8")
        else:
            (folder / MODEL_FILES["lightgbm"]).write_text(self.booster.model_to_string(),
                                                          encoding="utf-8")
        (folder / "calibrator.json").write_text(json.dumps(self.calibrator.to_dict()),
                                                encoding="utf-8")
        spec = {**feature_spec(self.categories,
                                self.metadata.get("feature_families_present")),
                "model": self.model, "label": self.label}
        (folder / "feature_spec.json").write_text(json.dumps(spec, indent=1, ensure_ascii=False),
                                                  encoding="utf-8")
        (folder / "metadata.json").write_text(
            json.dumps({"model": self.model, **self.metadata, "family": self.family},
                       indent=1, sort_keys=True,
                       default=str), encoding="utf-8")
        if self.expectations is not None:
            (folder / EXPECTATIONS_FILE).write_text(self.expectations.to_json(),
                                                    encoding="utf-8")
        if self.scorecard is not None:
            self.scorecard.save(folder)
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
        if not is_bundle_folder(folder):
            missing.insert(0, " or ".join(MODEL_FILES.values()))
        if missing:
            raise ModelNotFoundError(f"model bundle {folder} is missing {missing}")
        try:
            linear = folder / MODEL_FILES["logistic"]
            if linear.is_file():
                booster = LinearModel.from_dict(json.loads(linear.read_text(encoding="utf-8")))
                trained_on = booster.features
            else:
                booster = lgb.Booster(
                    model_str=(folder / MODEL_FILES["lightgbm"]).read_text(encoding="utf-8"))
                trained_on = booster.feature_name()
            cal = Calibrator.from_dict(json.loads((folder / "calibrator.json").read_text()))
            spec = json.loads((folder / "feature_spec.json").read_text(encoding="utf-8"))
            meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
            exp_path = folder / EXPECTATIONS_FILE
            expectations = (DataExpectations.from_json(exp_path.read_text(encoding="utf-8"))
                            if exp_path.is_file() else None)
            scorecard = (Scorecard.load(folder / SCORECARD_FILE)
                         if (folder / SCORECARD_FILE).is_file() else None)
        except Exception as e:  # corrupt text, JSON or LightGBM model
            raise ModelNotFoundError(f"model bundle {folder} cannot be loaded: {e}") from e
        names = [f["name"] for f in spec["features"]]
        if names != list(FEATURE_NAMES) or trained_on != list(FEATURE_NAMES):
            raise ModelNotFoundError(
                f"model bundle {folder} was trained on other features than this version of "
                "postloan builds; retrain it")
        try:
            categories = feature_spec(spec.get("categories"))["categories"]
        except DataValidationError as e:
            raise ModelNotFoundError(f"model bundle {folder}: {e}") from None
        return cls(model=spec["model"], booster=booster, calibrator=cal, metadata=meta,
                   categories=categories, expectations=expectations, scorecard=scorecard)
