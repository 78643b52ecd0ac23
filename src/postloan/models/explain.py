"""TreeSHAP contributions and plain-language reason codes.

Contributions are exact path-dependent TreeSHAP values in log-odds, the ones
LightGBM's ``pred_contrib=True`` gives, computed by :mod:`postloan.models.treeshap` (several
times faster; equality is tested): for each row, contributions plus the bias equal
the raw margin.
Reason codes turn the largest contributions into sentences built from the
customer's own values, in English and Chinese; the texts live in one table
(``config/reason_texts.yaml``), not in code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources

import lightgbm as lgb
import numpy as np
import pandas as pd
import yaml

from postloan import glossary
from postloan.data import schema as S
from postloan.errors import ConfigError
from postloan.models import treeshap

BIAS = "bias"
LANGS = ("en", "zh")


def contributions(booster: lgb.Booster, X: pd.DataFrame) -> pd.DataFrame:
    """Per-row TreeSHAP contributions in log-odds, plus a ``bias`` column.

    Args:
        booster: a trained binary LightGBM booster.
        X: feature frame with the booster's feature names in order.

    Returns:
        Frame with one column per feature and ``bias``; rows sum to the raw margin.
    """
    values = contributions_array(booster, X.to_numpy(dtype="float64"))
    return pd.DataFrame(values, columns=[*X.columns, BIAS], index=X.index)


def contributions_array(booster: lgb.Booster, X: np.ndarray) -> np.ndarray:
    """:func:`contributions` on a float64 feature matrix: (n, n_features + 1), bias last.

    Equal to ``booster.predict(X, pred_contrib=True)``; the explainer is built once per
    booster object and cached (:meth:`postloan.models.treeshap.TreeExplainer.from_booster`).
    A model that is not a LightGBM booster (the logistic family's
    :class:`~postloan.models.linear.LinearModel`) explains itself with its ``contributions``.
    """
    if not isinstance(booster, lgb.Booster):
        return booster.contributions(X)
    return treeshap.contributions(booster, X)


def global_importance(contrib: pd.DataFrame) -> pd.DataFrame:
    """Mean absolute contribution per feature, largest first."""
    imp = contrib.drop(columns=[BIAS]).abs().mean().sort_values(ascending=False)
    return pd.DataFrame({"feature": imp.index, "mean_abs_shap": imp.to_numpy()})


@lru_cache(maxsize=1)
def reason_table() -> dict:
    """The reason-text table (``base`` plus per-model overrides)."""
    text = resources.files("postloan").joinpath("config/reason_texts.yaml").read_text("utf-8")
    table = yaml.safe_load(text)
    if not isinstance(table, dict) or "base" not in table:
        raise ConfigError("reason_texts.yaml must hold a 'base' section")
    return table


def reason_text(model: str, feature: str, value: float, lang: str = "en",
                categories: Mapping[str, Sequence[str]] | None = None) -> str:
    """One sentence describing `feature` at `value` for `model`, in `lang`.

    `categories` (the model's feature spec) names a category code; None = the default
    contract.

    Raises:
        ConfigError: no text is declared for the feature.
    """
    table = reason_table()
    entry = table.get(model, {}).get(feature) or table["base"].get(feature)
    if entry is None:
        raise ConfigError(f"no reason text for feature '{feature}' (model '{model}')")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if entry.get(f"missing_{lang}"):
            return entry[f"missing_{lang}"]
        if lang == "zh":  # the glossary's definition, never an English fallback
            return f"{glossary.feature_definition(feature, 'zh')}：缺失"
        return entry.get("missing_en") or f"{feature.replace('_', ' ')}: missing"
    label = ""
    if feature in S.CATEGORY_VOCABULARIES:
        vocab = (categories or S.CATEGORY_VOCABULARIES)[feature]
        idx = int(value)
        label = vocab[idx].replace("_", " ") if 0 <= idx < len(vocab) else str(value)
    return entry[lang].format(value=float(value), label=label)


def reason_codes(
    model: str,
    contrib: pd.DataFrame,
    X: pd.DataFrame,
    k: int = 3,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> list[dict]:
    """Top reasons pushing each row's score up, and the top protective ones.

    Args:
        model: model name (``default_risk``, ``churn``, ``satisfaction``): picks texts.
        contrib: output of :func:`contributions` for `X`.
        X: the feature frame the contributions came from.
        k: reasons per direction.
        categories: the model's categories (names category codes in the texts).

    Returns:
        One dict per row: ``{"up": [...], "down": [...]}``; each reason has ``feature``,
        ``value`` (None when missing), ``contribution`` and one text per language.
        Ties break by feature order, so the result is deterministic.
    """
    feats = list(X.columns)
    return reason_codes_array(model, contrib[feats].to_numpy(), X.to_numpy(dtype="float64"),
                              feats, k, categories)


def reason_codes_array(model: str, c: np.ndarray, x: np.ndarray, feats: Sequence[str],
                       k: int = 3, categories: Mapping[str, Sequence[str]] | None = None
                       ) -> list[dict]:
    """:func:`reason_codes` on arrays (the service's path: no frames for one customer).

    Args:
        model: model name (picks the texts).
        c: (n, len(feats)) contributions, without the bias column.
        x: (n, len(feats)) feature values.
        feats: the feature names of the columns.
        k: reasons per direction.
    """
    order_up = np.argsort(-c, axis=1, kind="stable")[:, :k]
    order_down = np.argsort(c, axis=1, kind="stable")[:, :k]
    c_list, x_list = c.tolist(), x.tolist()
    out = []
    for i in range(len(c_list)):
        ci, xi = c_list[i], x_list[i]
        row = {}
        for key, order, sign in (("up", order_up[i].tolist(), 1),
                                 ("down", order_down[i].tolist(), -1)):
            reasons = []
            for j in order:
                if sign * ci[j] <= 0:
                    continue
                v = xi[j]
                reasons.append({
                    "feature": feats[j],
                    "value": None if math.isnan(v) else v,
                    "contribution": ci[j],
                    **{f"text_{lang}": reason_text(model, feats[j], v, lang, categories)
                       for lang in LANGS},
                })
            row[key] = reasons
        out.append(row)
    return out
