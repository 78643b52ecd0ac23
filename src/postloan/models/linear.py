"""The logistic baseline as plain numbers: a linear model that scores and explains itself.

What :func:`postloan.models.training.fit_baseline` learns (clipping bounds, the log of money
amounts, imputation values with missing flags, standardisation, the one-hot vocabulary
and the coefficients) is stored in JSON and applied with numpy, so a logistic champion
is saved, loaded and scored like a LightGBM one: no pickle, no scikit-learn at scoring
time, and the same bundle calls (``margin``, ``contributions``).

Contributions are ``coefficient x (z - mean z)`` on the model's own (standardised,
one-hot) scale, summed per input feature (a feature's value and its missing flag are
one feature); the bias is the margin at the training mean, so contributions plus bias
equal the margin, as for TreeSHAP, and reason codes read them the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from postloan.errors import ConfigError, DataValidationError


@dataclass
class NumericTerm:
    """One numeric input: clip, optional log1p, impute, standardise, weigh.

    Attributes:
        feature: index of the input feature.
        low: lower clipping bound. high: upper clipping bound (None: no bound; a
            column with no value in training).
        log: floor at 0 and take log1p after clipping (money amounts).
        impute: value that replaces a missing input (after clip and log).
        mean: standardisation mean. scale: standardisation scale.
        coef: coefficient of the standardised value. center: its training mean.
        missing: ``[mean, scale, coef, center]`` of the missing flag, or None when the
            training rows had no missing value (no flag learned).
    """

    feature: int
    low: float | None
    high: float | None
    log: bool
    impute: float
    mean: float
    scale: float
    coef: float
    center: float
    missing: list[float] | None = None


@dataclass
class CategoricalTerm:
    """One categorical (code) input: impute the most frequent code, one-hot, weigh.

    Attributes:
        feature: index of the input feature.
        impute: code that replaces a missing input.
        codes: the training vocabulary (codes unseen in training get no weight).
        coefs: coefficient of each code's indicator.
        centers: training share of each code (the indicator's mean).
    """

    feature: int
    impute: float
    codes: list[float]
    coefs: list[float]
    centers: list[float]


@dataclass
class LinearModel:
    """A logistic model on the feature matrix (columns in ``features`` order).

    Attributes:
        features: input feature names, in column order.
        intercept: the intercept.
        numeric: numeric terms. categorical: categorical terms.
    """

    features: list[str]
    intercept: float
    numeric: list[NumericTerm] = field(default_factory=list)
    categorical: list[CategoricalTerm] = field(default_factory=list)

    def _matrix(self, X) -> np.ndarray:
        a = np.asarray(X, dtype="float64")
        if a.ndim != 2 or a.shape[1] != len(self.features):
            raise DataValidationError("features", f"expected {len(self.features)} feature "
                                      f"columns, got shape {a.shape}")
        return a

    def contributions(self, X, num_threads: int | None = None) -> np.ndarray:
        """Per-feature contributions to the margin, bias last: ``(n, n_features + 1)``.

        ``num_threads`` is accepted for the same call as the tree explainer and unused.
        """
        a = self._matrix(X)
        out = np.zeros((a.shape[0], len(self.features) + 1))
        bias = self.intercept
        for t in self.numeric:
            v = a[:, t.feature]
            miss = np.isnan(v)
            v = np.clip(v, -np.inf if t.low is None else t.low,
                        np.inf if t.high is None else t.high)
            if t.log:
                v = np.log1p(np.clip(v, 0.0, None))
            v = np.where(miss, t.impute, v)
            out[:, t.feature] += t.coef * ((v - t.mean) / t.scale - t.center)
            bias += t.coef * t.center
            if t.missing is not None:
                m_mean, m_scale, m_coef, m_center = t.missing
                out[:, t.feature] += m_coef * ((miss - m_mean) / m_scale - m_center)
                bias += m_coef * m_center
        for c in self.categorical:
            v = a[:, c.feature]
            v = np.where(np.isnan(v), c.impute, v)
            coefs = np.asarray(c.coefs)
            centers = np.asarray(c.centers)
            hit = v[:, None] == np.asarray(c.codes)[None, :]
            out[:, c.feature] += (hit * coefs).sum(axis=1) - float(coefs @ centers)
            bias += float(coefs @ centers)
        out[:, -1] = bias
        return out

    def margin(self, X, num_threads: int | None = None) -> np.ndarray:
        """Log-odds of label 1 (contributions plus bias)."""
        return self.contributions(X).sum(axis=1)

    def to_dict(self) -> dict:
        """JSON-able parameters; :meth:`from_dict` reads them back exactly."""
        return {"kind": "logistic", "features": list(self.features),
                "intercept": float(self.intercept),
                "numeric": [asdict(t) for t in self.numeric],
                "categorical": [asdict(t) for t in self.categorical]}

    @classmethod
    def from_dict(cls, d: dict) -> LinearModel:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ConfigError: a field is missing or has a wrong type (the message names it).
        """
        try:
            if d.get("kind") != "logistic":
                raise ValueError(f"field 'kind': expected 'logistic', got {d.get('kind')!r}")
            model = cls(features=[str(f) for f in d["features"]],
                        intercept=float(d["intercept"]),
                        numeric=[NumericTerm(**t) for t in d["numeric"]],
                        categorical=[CategoricalTerm(**t) for t in d["categorical"]])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ConfigError(f"linear model JSON: {type(e).__name__}: {e}") from e
        values = [model.intercept, *(v for t in model.numeric for v in asdict(t).values()
                                     if isinstance(v, float))]
        if not all(math.isfinite(v) for v in values):
            raise ConfigError("linear model JSON: every number must be finite")
        return model
