"""Same seed and data, trained twice from scratch: identical models, scores and queue."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.score import run_score
from pipelines.train import run_train
from postloan.models.bundle import MODELS
from postloan.models.store import load_bundles_from_dir
from postloan.models.training import Splits, TrainConfig

pytestmark = pytest.mark.integration


def test_two_runs_give_identical_models_scores_and_queue(trained, small_book, tmp_path):
    # The `trained` fixture's configuration exactly (LightGBM for all three models).
    cfg = TrainConfig(shap_sample=500, splits=Splits(n_train=6),
                      models={m: {"family": "lightgbm"} for m in MODELS})
    root = tmp_path / "again"
    run_train(small_book, ["default_risk", "churn", "satisfaction"], cfg,
              f"sqlite:///{root / 'mlflow.db'}", root / "mlartifacts", root / "models", root)
    first = load_bundles_from_dir(trained["root"] / "models")
    second = load_bundles_from_dir(root / "models")
    for model in first:
        a, b = first[model].booster, second[model].booster  # either family
        assert (a.to_dict() == b.to_dict() if hasattr(a, "to_dict")
                else a.model_to_string() == b.model_to_string())
        assert first[model].calibrator.to_dict() == second[model].calibrator.to_dict()
    a = run_score(small_book, "2024-06-30", tmp_path / "a", first, capacity=50)
    b = run_score(small_book, "2024-06-30", tmp_path / "b", second, capacity=50)
    pd.testing.assert_frame_equal(a["queue"], b["queue"])
    pd.testing.assert_frame_equal(a["decisions"], b["decisions"])
    assert (tmp_path / "a" / "queue.csv").read_bytes() == (tmp_path / "b" / "queue.csv").read_bytes()
