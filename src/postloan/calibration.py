"""Probability calibration stored as plain numbers (JSON), no pickle.

Two methods, both fitted on validation scores (never on the training rows):

- ``isotonic``: the breakpoints of scikit-learn's ``IsotonicRegression`` fitted on
  the raw score, applied with ``np.interp`` (flat beyond the end points, like
  ``out_of_bounds="clip"``). Calibrated values are kept in [1e-6, 1 - 1e-6] so
  that a log loss or a logit downstream stays finite. With many tied raw scores
  the map is a step function; that is expected.
- ``platt``: ``sigmoid(coef * logit(raw) + intercept)``, a logistic fit on the logit
  of the raw score with Platt's (1999) smoothed targets, as scikit-learn's
  ``CalibratedClassifierCV(method="sigmoid")`` does, so that perfectly separated
  scores do not send the coefficient to infinity.

:meth:`Calibrator.to_dict` holds only JSON numbers; Python's ``json`` writes floats
with ``repr``, which reads back to the same bits, so a calibrator loaded from JSON
gives bit-identical outputs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from postloan.errors import ConfigError, DataValidationError
from postloan.evaluation import TABLE, validate_predictions, validate_scores

log = logging.getLogger(__name__)

METHODS = ("isotonic", "platt")
# Calibrated probabilities stay this far from 0 and 1 (isotonic); raw scores are
# clipped this far before their logit (platt).
EPS = 1e-6
_FIELDS = {"method", "x", "y", "coef", "intercept"}


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1 - EPS)
    return np.log(q) - np.log1p(-q)


@dataclass
class Calibrator:
    """A fitted map from a raw probability to a calibrated probability.

    Attributes:
        method: ``"isotonic"`` or ``"platt"``.
        x_: isotonic breakpoints on the raw score, increasing.
        y_: isotonic calibrated values at `x_`, non-decreasing, in [1e-6, 1 - 1e-6].
        coef_: Platt slope on ``logit(raw)``.
        intercept_: Platt intercept.
    """

    method: str
    x_: list[float] = field(default_factory=list)
    y_: list[float] = field(default_factory=list)
    coef_: float = 1.0
    intercept_: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"calibrator field 'method': expected one of {METHODS}, "
                              f"got {self.method!r}")
        if self.method == "isotonic" and (len(self.x_) < 2 or len(self.x_) != len(self.y_)):
            raise ConfigError("calibrator fields 'x' and 'y': isotonic needs equal-length "
                              f"lists of at least two breakpoints (got {len(self.x_)} and "
                              f"{len(self.y_)})")

    def transform(self, raw_score: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw probabilities.

        Args:
            raw_score: raw model probabilities in [0, 1], 1-D.

        Returns:
            Calibrated probabilities, same length.

        Raises:
            DataValidationError: `raw_score` is not 1-D, or holds NaN, inf or values
                outside [0, 1].
        """
        p = validate_scores(raw_score, score_name="raw_score")
        if self.method == "isotonic":
            return np.interp(p, np.asarray(self.x_, dtype="float64"),
                             np.asarray(self.y_, dtype="float64"))
        z = self.coef_ * _logit(p) + self.intercept_
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict:
        """JSON-able parameters; :meth:`from_dict` reads them back exactly."""
        if self.method == "isotonic":
            return {"method": "isotonic", "x": [float(v) for v in self.x_],
                    "y": [float(v) for v in self.y_]}
        return {"method": "platt", "coef": float(self.coef_),
                "intercept": float(self.intercept_)}

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        """Rebuild a calibrator from :meth:`to_dict` output (e.g. after ``json.loads``).

        Fields a method does not use are ignored, so files that store every field
        (``x``, ``y``, ``coef`` and ``intercept``) still load.

        Args:
            d: ``{"method": "isotonic", "x": [...], "y": [...]}`` or
                ``{"method": "platt", "coef": c, "intercept": b}``.

        Returns:
            The calibrator.

        Raises:
            ConfigError: `d` is not a dict, or a field is missing or has a wrong type
                or value; the message names the field.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"calibrator: expected a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - _FIELDS)
        if unknown:
            log.warning("calibrator: ignoring unknown fields %s", unknown)
        method = d.get("method")
        if method not in METHODS:
            raise ConfigError(f"calibrator field 'method': expected one of {METHODS}, "
                              f"got {method!r}")
        if method == "platt":
            return cls("platt", coef_=_number(d, "coef"), intercept_=_number(d, "intercept"))
        x, y = _numbers(d, "x"), _numbers(d, "y")
        if len(x) != len(y) or len(x) < 2:
            raise ConfigError(f"calibrator fields 'x' and 'y' must be equal-length lists of at "
                              f"least two breakpoints, got {len(x)} and {len(y)}")
        if any(b <= a for a, b in zip(x, x[1:], strict=False)):
            raise ConfigError("calibrator field 'x' must be strictly increasing")
        if any(b < a for a, b in zip(y, y[1:], strict=False)) or not all(0 <= v <= 1 for v in y):
            raise ConfigError("calibrator field 'y' must be non-decreasing probabilities in "
                              "[0, 1]")
        return cls("isotonic", x_=x, y_=y)


def _number(d: dict, name: str) -> float:
    if name not in d:
        raise ConfigError(f"calibrator field '{name}' is missing")
    v = d[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"calibrator field '{name}' must be a finite number, got {v!r}")
    return float(v)


def _numbers(d: dict, name: str) -> list[float]:
    if name not in d:
        raise ConfigError(f"calibrator field '{name}' is missing")
    v = d[name]
    if not isinstance(v, list) or not v:
        raise ConfigError(f"calibrator field '{name}' must be a non-empty list of numbers")
    bad = [e for e in v if isinstance(e, bool) or not isinstance(e, (int, float))
           or not math.isfinite(e)]
    if bad:
        raise ConfigError(f"calibrator field '{name}' must hold finite numbers only, got "
                          f"{bad[:3]!r}")
    return [float(e) for e in v]


def fit_calibrator(raw_score: np.ndarray, y: np.ndarray, method: str = "isotonic"
                   ) -> Calibrator:
    """Fit a calibrator on validation scores and labels.

    Args:
        raw_score: raw model probabilities in [0, 1].
        y: labels, 0 or 1, both present.
        method: ``"isotonic"`` or ``"platt"``.

    Returns:
        The fitted :class:`Calibrator`.

    Raises:
        DataValidationError: NaN or out-of-range scores, non-binary or missing labels,
            different lengths, a single class, or (isotonic) a constant raw score.
        ConfigError: unknown `method`.
    """
    if method not in METHODS:
        raise ConfigError(f"calibration method must be one of {METHODS}, got {method!r}")
    yy, p = validate_predictions(y, raw_score, label_name="y", score_name="raw_score")
    if method == "isotonic":
        if np.all(p == p[0]):
            raise DataValidationError(
                TABLE, f"all {len(p)} raw scores equal {p[0]:.6g}: isotonic calibration needs "
                "at least two distinct scores", "raw_score")
        iso = IsotonicRegression(y_min=EPS, y_max=1 - EPS, increasing=True,
                                 out_of_bounds="clip").fit(p, yy)
        cal = Calibrator("isotonic", x_=iso.X_thresholds_.tolist(),
                         y_=iso.y_thresholds_.tolist())
        log.info("isotonic calibrator: %d breakpoints from %d rows", len(cal.x_), len(p))
        return cal
    # Platt's targets: (n_pos + 1) / (n_pos + 2) for positives, 1 / (n_neg + 2) for
    # negatives. LogisticRegression takes no soft targets, so each row enters twice,
    # once per class, weighted by its target probability (same cross-entropy).
    n_pos = yy.sum()
    n_neg = len(yy) - n_pos
    t = np.where(yy == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    z = _logit(p).reshape(-1, 1)
    lr = LogisticRegression(C=np.inf, max_iter=1000).fit(
        np.vstack([z, z]), np.r_[np.ones(len(z)), np.zeros(len(z))], sample_weight=np.r_[t, 1 - t])
    cal = Calibrator("platt", coef_=float(lr.coef_[0, 0]), intercept_=float(lr.intercept_[0]))
    log.info("platt calibrator: coef %.4f, intercept %.4f", cal.coef_, cal.intercept_)
    return cal
