"""MLflow "model from code" entry point for postloan bundles (no pickle).

MLflow stores this file with each logged model and runs it when the model is
loaded; it is not imported by the library. The model takes customer snapshot rows
(a DataFrame with the snapshot fields) and returns calibrated probabilities, so
``mlflow.pyfunc.load_model("models:/postloan-default-risk@champion")`` alone can score.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class BundleModel(PythonModel):
    """A pyfunc wrapper around :class:`postloan.models.bundle.ModelBundle`."""

    def load_context(self, context) -> None:
        from pathlib import Path

        from postloan.models.bundle import ModelBundle
        from postloan.models.uplift import UpliftBundle

        folder = context.artifacts["bundle"]
        # An uplift bundle (uplift.json) returns effects per outcome, not a probability.
        self.bundle = (UpliftBundle.load(folder) if (Path(folder) / "uplift.json").is_file()
                       else ModelBundle.load(folder))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None
                ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        out = self.bundle.predict(frame)
        if isinstance(out, pd.DataFrame):
            return out
        return pd.DataFrame({"probability": out}, index=frame.index)


mlflow.models.set_model(BundleModel())
