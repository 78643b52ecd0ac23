"""The one feature function: customer snapshot in, numeric feature frame out.

Training, batch scoring and the HTTP service all call :func:`build_features`, so a
model sees the same features wherever it runs. Categories become fixed integer
codes from :mod:`postloan.schema` (position in the vocabulary, never refitted),
missing values stay NaN (LightGBM routes them natively; the baseline imputes and
flags them), and a few ratios are derived from snapshot fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from postloan import schema as S
from postloan.errors import DataValidationError
from postloan.snapshot import CATEGORY_FIELDS, NUMERIC_FIELDS


@dataclass(frozen=True)
class Feature:
    """One model feature: name, kind (numeric/categorical) and a plain description."""

    name: str
    kind: str
    description: str
    money: bool = False


# Snapshot fields passed through unchanged (all but ids and the raw income/debt).
_PASSTHROUGH = tuple(f for f in NUMERIC_FIELDS if f not in ("declared_monthly_income",))
_MONEY = {"verified_monthly_income", "external_debt", "total_principal", "total_balance",
          "total_instalment", "income"}

FEATURES: tuple[Feature, ...] = (
    *(Feature(c, "categorical", f"{c.replace('_', ' ')} (fixed code)") for c in CATEGORY_FIELDS),
    *(Feature(c, "numeric", c.replace("_", " "), money=c in _MONEY) for c in _PASSTHROUGH),
    Feature("income", "numeric", "monthly income: verified if known, else declared", money=True),
    Feature("debt_to_income", "numeric", "monthly instalments / monthly income"),
    Feature("external_debt_to_income", "numeric", "external debt / annual income"),
    Feature("rate_gap", "numeric", "customer's rate minus the market rate (points)"),
    Feature("balance_to_principal", "numeric", "outstanding balance / original principal"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES
                                              if f.kind == "categorical")
MONEY_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.money)
REQUIRED_FIELDS: tuple[str, ...] = (*CATEGORY_FIELDS, *NUMERIC_FIELDS)


def _numeric(snapshot: pd.DataFrame, col: str) -> np.ndarray:
    s = snapshot[col]
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype="float64")
    if not pd.api.types.is_numeric_dtype(s):
        coerced = pd.to_numeric(s, errors="coerce")
        bad = coerced.isna() & s.notna()
        if bad.any():
            raise DataValidationError(
                "snapshot", "expected numbers", col,
                snapshot.loc[bad.to_numpy(), [col]].head(5).to_string(),
            )
        s = coerced
    v = s.to_numpy(dtype="float64", na_value=np.nan)
    if np.isinf(v).any():
        raise DataValidationError("snapshot", "infinite values", col,
                                  snapshot.loc[np.isinf(v), [col]].head(5).to_string())
    return v


def _derive(cat_codes: dict[str, np.ndarray], num: dict[str, np.ndarray]) -> np.ndarray:
    """The feature arithmetic, on plain arrays: (n, len(FEATURE_NAMES)) float64."""
    cols: dict[str, np.ndarray] = dict(cat_codes)
    for c in _PASSTHROUGH:
        cols[c] = num[c]
    income = np.where(np.isnan(num["verified_monthly_income"]), num["declared_monthly_income"],
                      num["verified_monthly_income"])
    safe_income = np.where(income > 0, income, np.nan)  # zero income: ratio undefined
    cols["income"] = income
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["debt_to_income"] = num["total_instalment"] / safe_income
        cols["external_debt_to_income"] = num["external_debt"] / (12.0 * safe_income)
        cols["rate_gap"] = num["weighted_rate"] - num["market_rate"]
        principal = np.where(num["total_principal"] > 0, num["total_principal"], np.nan)
        cols["balance_to_principal"] = num["total_balance"] / principal
    return np.column_stack([np.asarray(cols[f], dtype="float64") for f in FEATURE_NAMES])


def build_features(snapshot: pd.DataFrame) -> pd.DataFrame:
    """Turn customer snapshots into the numeric model features.

    Args:
        snapshot: rows with at least :data:`REQUIRED_FIELDS` (extra columns such as ids
            and labels are ignored).

    Returns:
        float64 frame with columns :data:`FEATURE_NAMES`, same index as the input.

    Raises:
        DataValidationError: a field is missing, not numeric, infinite, or a category
            value is unknown.
    """
    missing = [c for c in REQUIRED_FIELDS if c not in snapshot.columns]
    if missing:
        raise DataValidationError("snapshot", f"missing field(s) {missing}", missing[0])
    cats = {c: S.category_code(c, snapshot[c], table="snapshot") for c in CATEGORY_FIELDS}
    num = {c: _numeric(snapshot, c) for c in NUMERIC_FIELDS}
    return pd.DataFrame(_derive(cats, num), index=snapshot.index, columns=list(FEATURE_NAMES))


_CODE_MAPS = {c: {v: float(i) for i, v in enumerate(S.CATEGORY_VOCABULARIES[c])}
              for c in CATEGORY_FIELDS}


def features_from_records(records: list[dict]) -> np.ndarray:
    """The same features from already-validated records (e.g. a JSON request body).

    A fast path for one or a few customers that skips pandas: the records must hold
    every field of :data:`REQUIRED_FIELDS` with known categories and numbers or None
    (the service's request models guarantee it). Same arithmetic as
    :func:`build_features` (:func:`_derive`), so the values are identical.

    Returns:
        (n, len(FEATURE_NAMES)) float64 array in :data:`FEATURE_NAMES` order.
    """
    try:
        cats = {c: np.array([_CODE_MAPS[c][r[c]] if r[c] is not None else np.nan
                             for r in records]) for c in CATEGORY_FIELDS}
        num = {c: np.array([np.nan if r[c] is None else r[c] for r in records],
                           dtype="float64") for c in NUMERIC_FIELDS}
    except KeyError as e:
        raise DataValidationError("snapshot", f"missing field or unknown category {e}") from e
    return _derive(cats, num)


def feature_spec() -> dict:
    """The feature spec as plain JSON-able data (names, kinds, category vocabularies)."""
    return {
        "features": [
            {"name": f.name, "kind": f.kind, "description": f.description, "money": f.money}
            for f in FEATURES
        ],
        "categories": {c: list(S.CATEGORY_VOCABULARIES[c]) for c in CATEGORY_FIELDS},
    }
