"""Probability calibration stored as plain numbers (JSON), no pickle.

Two methods, both fitted on validation scores (never on the training rows):

- ``isotonic``: scikit-learn's ``IsotonicRegression`` fitted on the raw score. Its
  raw map is a step function: every customer in a block gets the block's rate, so
  many live customers share one PD (plateaus such as 81.9%), and the top block, often
  all defaulters, gives a PD of exactly 100%. By default (``smooth=True``) the stored
  map instead interpolates linearly between the blocks' centres (the mean raw score
  of each block's rows, at the block's rate), which is strictly increasing, and beyond
  the first and last centre it follows the slope of a Platt fit on the logit scale
  instead of a flat line. ``smooth=False`` keeps the step map (the block end points).
- ``platt``: ``sigmoid(coef * logit(raw) + intercept)``, a logistic fit on the logit
  of the raw score with Platt's (1999) smoothed targets, as scikit-learn's
  ``CalibratedClassifierCV(method="sigmoid")`` does, so that perfectly separated
  scores do not send the coefficient to infinity.

:meth:`Calibrator.to_dict` holds only JSON numbers; Python's ``json`` writes floats
with ``repr``, which reads back to the same bits, so a calibrator loaded from JSON
gives bit-identical outputs.

Both methods bound their output to ``[floor, ceiling]`` (stored with the calibrator;
the training config ships 0.0003 and 0.9997): no customer gets a probability of
exactly 0 or 1, and a logit or log loss downstream stays finite.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from postloan.errors import ConfigError, DataValidationError
from postloan.models.evaluation import TABLE, validate_predictions, validate_scores

log = logging.getLogger(__name__)

METHODS = ("isotonic", "platt")
# Raw scores are clipped this far from 0 and 1 before their logit; the default bounds
# of calibrated probabilities (files written before bounds were stored keep these).
EPS = 1e-6
_FIELDS = {"method", "x", "y", "coef", "intercept", "floor", "ceiling", "tail_low",
           "tail_high"}


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1 - EPS)
    return np.log(q) - np.log1p(-q)


@dataclass
class Calibrator:
    """A fitted map from a raw probability to a calibrated probability.

    Attributes:
        method: ``"isotonic"`` or ``"platt"``.
        x_: isotonic breakpoints on the raw score, increasing.
        y_: isotonic calibrated values at `x_`, non-decreasing.
        coef_: Platt slope on ``logit(raw)``.
        intercept_: Platt intercept.
        floor: smallest probability returned. ceiling: largest probability returned.
        tail_low: isotonic, below ``x_[0]``: slope of ``logit(out)`` on ``logit(raw)``
            from the first breakpoint (0 = flat).
        tail_high: the same above ``x_[-1]``.
    """

    method: str
    x_: list[float] = field(default_factory=list)
    y_: list[float] = field(default_factory=list)
    coef_: float = 1.0
    intercept_: float = 0.0
    floor: float = EPS
    ceiling: float = 1 - EPS
    tail_low: float = 0.0
    tail_high: float = 0.0

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
            x = np.asarray(self.x_, dtype="float64")
            y = np.asarray(self.y_, dtype="float64")
            out = np.interp(p, x, y)
            for side, slope, k in (("low", self.tail_low, 0), ("high", self.tail_high, -1)):
                tail = p < x[0] if side == "low" else p > x[-1]
                if slope and tail.any():
                    yk = np.clip(y[k], self.floor, self.ceiling)
                    z = _logit(np.array([yk]))[0] + slope * (_logit(p[tail]) -
                                                            _logit(np.array([x[k]]))[0])
                    out[tail] = 1.0 / (1.0 + np.exp(-z))
        else:
            z = self.coef_ * _logit(p) + self.intercept_
            out = 1.0 / (1.0 + np.exp(-z))
        return np.clip(out, self.floor, self.ceiling)

    def to_dict(self) -> dict:
        """JSON-able parameters; :meth:`from_dict` reads them back exactly."""
        bounds = {"floor": float(self.floor), "ceiling": float(self.ceiling)}
        if self.method == "isotonic":
            return {"method": "isotonic", "x": [float(v) for v in self.x_],
                    "y": [float(v) for v in self.y_], **bounds,
                    "tail_low": float(self.tail_low), "tail_high": float(self.tail_high)}
        return {"method": "platt", "coef": float(self.coef_),
                "intercept": float(self.intercept_), **bounds}

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
        bounds = {k: _number(d, k) for k in ("floor", "ceiling") if k in d}
        if not 0 <= bounds.get("floor", EPS) < bounds.get("ceiling", 1 - EPS) <= 1:
            raise ConfigError("calibrator fields 'floor' and 'ceiling' must satisfy "
                              f"0 <= floor < ceiling <= 1, got {bounds}")
        if method == "platt":
            return cls("platt", coef_=_number(d, "coef"), intercept_=_number(d, "intercept"),
                       **bounds)
        tails = {k: _number(d, k) for k in ("tail_low", "tail_high") if k in d}
        if any(v < 0 for v in tails.values()):
            raise ConfigError(f"calibrator fields 'tail_low' and 'tail_high' must be >= 0, "
                              f"got {tails}")
        x, y = _numbers(d, "x"), _numbers(d, "y")
        if len(x) != len(y) or len(x) < 2:
            raise ConfigError(f"calibrator fields 'x' and 'y' must be equal-length lists of at "
                              f"least two breakpoints, got {len(x)} and {len(y)}")
        if any(b <= a for a, b in zip(x, x[1:], strict=False)):
            raise ConfigError("calibrator field 'x' must be strictly increasing")
        if any(b < a for a, b in zip(y, y[1:], strict=False)) or not all(0 <= v <= 1 for v in y):
            raise ConfigError("calibrator field 'y' must be non-decreasing probabilities in "
                              "[0, 1]")
        return cls("isotonic", x_=x, y_=y, **bounds, **tails)


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


def _platt(p: np.ndarray, yy: np.ndarray) -> tuple[float, float]:
    """Platt's fit (coef, intercept) of ``logit(p)`` with Platt's smoothed targets."""
    # Targets: (n_pos + 1) / (n_pos + 2) for positives, 1 / (n_neg + 2) for negatives.
    # LogisticRegression takes no soft targets, so each row enters twice, once per
    # class, weighted by its target probability (same cross-entropy).
    n_pos = yy.sum()
    n_neg = len(yy) - n_pos
    t = np.where(yy == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    z = _logit(p).reshape(-1, 1)
    lr = LogisticRegression(C=np.inf, max_iter=1000).fit(
        np.vstack([z, z]), np.r_[np.ones(len(z)), np.zeros(len(z))], sample_weight=np.r_[t, 1 - t])
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def _block_centres(p: np.ndarray, yy: np.ndarray) -> tuple[list[float], list[float]]:
    """Isotonic blocks as (mean raw score of the block's rows, block rate) knots."""
    fitted = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(p, yy).predict(p)
    order = np.argsort(p, kind="stable")
    ps, fs = p[order], fitted[order]
    # A block is a run of equal fitted values over sorted scores.
    starts = np.r_[0, np.flatnonzero(np.diff(fs) != 0) + 1]
    xs = np.add.reduceat(ps, starts) / np.diff(np.r_[starts, len(ps)])
    return xs.tolist(), fs[starts].tolist()


def fit_calibrator(raw_score: np.ndarray, y: np.ndarray, method: str = "isotonic",
                   floor: float = EPS, ceiling: float = 1 - EPS, smooth: bool = True
                   ) -> Calibrator:
    """Fit a calibrator on validation scores and labels.

    Args:
        raw_score: raw model probabilities in [0, 1].
        y: labels, 0 or 1, both present.
        method: ``"isotonic"`` or ``"platt"``.
        floor: smallest probability the calibrator returns.
        ceiling: largest probability the calibrator returns.
        smooth: isotonic only: interpolate between block centres with Platt-slope
            tails (see the module docstring) instead of the raw step map.

    Returns:
        The fitted :class:`Calibrator`.

    Raises:
        DataValidationError: NaN or out-of-range scores, non-binary or missing labels,
            different lengths, a single class, or (isotonic) a constant raw score.
        ConfigError: unknown `method`, or bounds outside ``0 <= floor < ceiling <= 1``.
    """
    if method not in METHODS:
        raise ConfigError(f"calibration method must be one of {METHODS}, got {method!r}")
    if not 0 <= floor < ceiling <= 1:
        raise ConfigError(f"calibration bounds must satisfy 0 <= floor < ceiling <= 1, got "
                          f"floor={floor}, ceiling={ceiling}")
    yy, p = validate_predictions(y, raw_score, label_name="y", score_name="raw_score")
    bounds = {"floor": float(floor), "ceiling": float(ceiling)}
    if method == "platt":
        coef, intercept = _platt(p, yy)
        cal = Calibrator("platt", coef_=coef, intercept_=intercept, **bounds)
        log.info("platt calibrator: coef %.4f, intercept %.4f", cal.coef_, cal.intercept_)
        return cal
    if np.all(p == p[0]):
        raise DataValidationError(
            TABLE, f"all {len(p)} raw scores equal {p[0]:.6g}: isotonic calibration needs "
            "at least two distinct scores", "raw_score")
    if not smooth:
        iso = IsotonicRegression(y_min=floor, y_max=ceiling, increasing=True,
                                 out_of_bounds="clip").fit(p, yy)
        cal = Calibrator("isotonic", x_=iso.X_thresholds_.tolist(),
                         y_=iso.y_thresholds_.tolist(), **bounds)
        log.info("isotonic calibrator (steps): %d breakpoints from %d rows", len(cal.x_), len(p))
        return cal
    xs, ys = _block_centres(p, yy)
    ys = np.clip(ys, floor, ceiling).tolist()
    if len(xs) < 2:  # one block: the data hold no order to follow; Platt's line alone
        coef, intercept = _platt(p, yy)
        return Calibrator("platt", coef_=coef, intercept_=intercept, **bounds)
    # The tails follow Platt's slope (never negative: a raw score that ranks worse
    # never gets a lower probability).
    slope = max(_platt(p, yy)[0], 0.0)
    cal = Calibrator("isotonic", x_=xs, y_=ys, tail_low=slope, tail_high=slope, **bounds)
    log.info("isotonic calibrator (block centres): %d knots from %d rows, tail slope %.3f",
             len(xs), len(p), slope)
    return cal
