"""Probability calibration stored as plain numbers (JSON), no pickle.

Isotonic: breakpoints from scikit-learn's IsotonicRegression, applied with
``np.interp`` (clipped at the ends). Platt: a logistic fit on the logit of the raw
score. Both round-trip through JSON with bit-identical outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from postloan.errors import ConfigError, DataValidationError

_EPS = 1e-6


def _check(raw: np.ndarray, y: np.ndarray | None = None) -> None:
    if np.isnan(raw).any() or np.isinf(raw).any():
        raise DataValidationError("predictions", "scores contain NaN or inf", "score")
    if y is not None:
        if len(y) != len(raw):
            raise DataValidationError("predictions", f"{len(raw)} scores but {len(y)} labels",
                                      "label")
        if np.isnan(y).any() or not np.isin(y, (0, 1)).all():
            raise DataValidationError("predictions", "labels must be 0 or 1", "label")
        if len(np.unique(y)) < 2:
            raise DataValidationError("predictions", "labels hold one class only: cannot "
                                      "calibrate", "label")


@dataclass
class Calibrator:
    """A fitted calibration map from raw probability to calibrated probability."""

    method: str
    x_: list[float] = field(default_factory=list)
    y_: list[float] = field(default_factory=list)
    coef_: float = 1.0
    intercept_: float = 0.0

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw probabilities."""
        raw = np.asarray(raw, dtype="float64")
        _check(raw)
        if self.method == "isotonic":
            return np.interp(raw, np.asarray(self.x_), np.asarray(self.y_))
        z = np.log(np.clip(raw, _EPS, 1 - _EPS) / (1 - np.clip(raw, _EPS, 1 - _EPS)))
        return 1.0 / (1.0 + np.exp(-(self.coef_ * z + self.intercept_)))

    def to_dict(self) -> dict:
        return {"method": self.method, "x": list(map(float, self.x_)),
                "y": list(map(float, self.y_)), "coef": float(self.coef_),
                "intercept": float(self.intercept_)}

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ConfigError: a field is missing or has the wrong type.
        """
        if not isinstance(d, dict):
            raise ConfigError("calibrator: expected a JSON object")
        method = d.get("method")
        if method not in ("isotonic", "platt"):
            raise ConfigError(f"calibrator field 'method': expected isotonic or platt, "
                              f"got {method!r}")
        try:
            x = [float(v) for v in d.get("x", [])]
            y = [float(v) for v in d.get("y", [])]
            coef, intercept = float(d.get("coef", 1.0)), float(d.get("intercept", 0.0))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"calibrator fields 'x', 'y', 'coef', 'intercept' must be "
                              f"numbers: {e}") from e
        if method == "isotonic" and (len(x) < 2 or len(x) != len(y)):
            raise ConfigError("calibrator fields 'x' and 'y' must be equal-length lists of at "
                              "least two breakpoints")
        return cls(method, x, y, coef, intercept)


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str = "isotonic") -> Calibrator:
    """Fit a calibrator on validation scores and labels."""
    raw = np.asarray(raw, dtype="float64")
    y = np.asarray(y, dtype="float64")
    _check(raw, y)
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=_EPS, y_max=1 - _EPS)
        iso.fit(raw, y)
        return Calibrator("isotonic", x_=iso.X_thresholds_.tolist(),
                          y_=iso.y_thresholds_.tolist())
    if method == "platt":
        z = np.log(np.clip(raw, _EPS, 1 - _EPS) / (1 - np.clip(raw, _EPS, 1 - _EPS)))
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(z.reshape(-1, 1), y)
        return Calibrator("platt", coef_=float(lr.coef_[0, 0]), intercept_=float(lr.intercept_[0]))
    raise ConfigError(f"calibration method must be isotonic or platt, got {method!r}")
