"""The one feature function: customer snapshot in, numeric feature frame out.

Training, batch scoring and the HTTP service all call :func:`build_features`, so a
model sees the same features wherever it runs. Categories become fixed integer
codes: the position in the vocabulary the model was trained with (the default
contract of :mod:`postloan.data.schema`, or the book's own, stored in the feature spec;
never refitted; a value outside it is missing),
missing values stay NaN (LightGBM routes them natively; the baseline imputes and
flags them), and a few ratios are derived from snapshot fields.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from postloan.data import schema as S
from postloan.data.snapshot import CATEGORY_FIELDS, FEATURE_FAMILIES, NUMERIC_FIELDS
from postloan.errors import DataValidationError

log = logging.getLogger(__name__)


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


def _unknown_to_missing(column: str, values: pd.Series, vocab: tuple[str, ...]) -> np.ndarray:
    """Codes of `values` in `vocab`; a value outside it becomes NaN, with a warning."""
    codes = S.category_code(column, values, vocabulary=vocab, unknown="missing")
    unknown = values.notna().to_numpy() & np.isnan(codes)
    if unknown.any():
        # Category values (regions, products) are not personal data: safe to log.
        log.warning("%s: %d value(s) outside the model's categories %s scored as missing: "
                    "%s", column, int(unknown.sum()), list(vocab),
                    sorted(map(str, set(values[unknown])))[:5])
    return codes


def build_features(snapshot: pd.DataFrame,
                   categories: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Turn customer snapshots into the numeric model features.

    Args:
        snapshot: rows with at least :data:`REQUIRED_FIELDS` (extra columns such as ids
            and labels are ignored).
        categories: category field -> its categories in code order (a model's feature
            spec, or :func:`postloan.data.schema.snapshot_categories` of a book's
            vocabularies); None = the default contract. A value outside them becomes a
            missing code (NaN, logged as a warning): a category the model never saw
            tells it nothing, and scoring must not stop on it.

    Returns:
        float64 frame with columns :data:`FEATURE_NAMES`, same index as the input.

    Raises:
        DataValidationError: a field is missing, not numeric or infinite.
    """
    missing = [c for c in REQUIRED_FIELDS if c not in snapshot.columns]
    if missing:
        raise DataValidationError("snapshot", f"missing field(s) {missing}", missing[0])
    cats = {c: _unknown_to_missing(c, snapshot[c], v)
            for c, v in category_vocabularies(categories).items()}
    num = {c: _numeric(snapshot, c) for c in NUMERIC_FIELDS}
    return pd.DataFrame(_derive(cats, num), index=snapshot.index, columns=list(FEATURE_NAMES))


def category_vocabularies(categories: Mapping[str, Sequence[str]] | None = None
                          ) -> dict[str, tuple[str, ...]]:
    """Category field -> vocabulary tuple: `categories`, or the default contract."""
    if categories is None:
        return {c: S.CATEGORY_VOCABULARIES[c] for c in CATEGORY_FIELDS}
    missing = [c for c in CATEGORY_FIELDS if c not in categories]
    if missing:
        raise DataValidationError("feature_spec", f"no categories for {missing}", missing[0])
    return {c: tuple(categories[c]) for c in CATEGORY_FIELDS}


def code_maps(categories: Mapping[str, Sequence[str]] | None = None
              ) -> dict[str, dict[str, float]]:
    """Category field -> {value: code} for :func:`features_from_records`."""
    return {c: {v: float(i) for i, v in enumerate(vocab)}
            for c, vocab in category_vocabularies(categories).items()}


_CODE_MAPS = code_maps()


def unknown_categories(records: list[dict], maps: Mapping[str, Mapping[str, float]] | None
                       = None) -> list[list[str]]:
    """Per record, the ``field=value`` pairs outside the categories (scored as missing)."""
    maps = _CODE_MAPS if maps is None else maps
    return [[f"{c}={r[c]}" for c in CATEGORY_FIELDS
             if r.get(c) is not None and r[c] not in maps[c]] for r in records]


def features_from_records(records: list[dict],
                          maps: Mapping[str, Mapping[str, float]] | None = None) -> np.ndarray:
    """The same features from already-validated records (e.g. a JSON request body).

    A fast path for one or a few customers that skips pandas: the records must hold
    every field of :data:`REQUIRED_FIELDS` with numbers or None (the service's request
    models guarantee it). Same arithmetic as :func:`build_features` (:func:`_derive`),
    so the values are identical; a category outside `maps` is missing (NaN), as there.

    Args:
        records: snapshot records.
        maps: :func:`code_maps` of the model's categories (default contract if None).

    Returns:
        (n, len(FEATURE_NAMES)) float64 array in :data:`FEATURE_NAMES` order.
    """
    maps = _CODE_MAPS if maps is None else maps
    nan = float("nan")
    try:
        cats = {c: np.array([nan if r[c] is None else maps[c].get(r[c], nan)
                             for r in records], dtype="float64") for c in CATEGORY_FIELDS}
        num = {c: np.array([np.nan if r[c] is None else r[c] for r in records],
                           dtype="float64") for c in NUMERIC_FIELDS}
    except KeyError as e:
        raise DataValidationError("snapshot", f"missing field {e}") from e
    return _derive(cats, num)


def feature_spec(categories: Mapping[str, Sequence[str]] | None = None,
                 families_present: Mapping[str, bool] | None = None) -> dict:
    """The feature spec as plain JSON-able data.

    Args:
        categories: the categories the model was trained with (default contract if None).
        families_present: feature family -> whether the training book held its table
            (:func:`postloan.data.snapshot.feature_families_present`); None = all present.

    Returns:
        ``features`` (name, kind, description, money, family), ``categories`` and
        ``feature_families_present``.
    """
    fam_of = {f: fam for fam, fields in FEATURE_FAMILIES.items() for f in fields}
    for derived, src in (("rate_gap", "market_rate"), ("external_debt_to_income",
                                                       "external_debt")):
        fam_of[derived] = fam_of[src]
    present = families_present or {fam: True for fam in FEATURE_FAMILIES}
    return {
        "features": [
            {"name": f.name, "kind": f.kind, "description": f.description, "money": f.money,
             "family": fam_of.get(f.name, "core")}
            for f in FEATURES
        ],
        "categories": {c: list(v) for c, v in category_vocabularies(categories).items()},
        "feature_families_present": {fam: bool(present.get(fam, True))
                                     for fam in FEATURE_FAMILIES},
    }


class FeatureCache:
    """The one feature function's matrix of a snapshot, built once per vocabulary.

    A scoring run builds the features once and every consumer reads them from here: the
    data-quality gate, the three models (each with its feature spec's categories; models
    trained on one book share one matrix) and the uplift models (the default contract's).
    """

    def __init__(self, snapshot: pd.DataFrame, built: dict[str, pd.DataFrame] | None = None
                 ) -> None:
        self.snapshot = snapshot
        self._built = built if built is not None else {}

    @staticmethod
    def _key(categories) -> str:
        return json.dumps({c: list(v) for c, v in category_vocabularies(categories).items()},
                          sort_keys=True)

    def get(self, categories=None) -> pd.DataFrame:
        """The features of every row with `categories` (None: the default contract's)."""
        key = self._key(categories)
        if key not in self._built:
            self._built[key] = build_features(self.snapshot, categories)
        return self._built[key]

    def rows(self, start: int, stop: int) -> FeatureCache:
        """The cache of rows ``start:stop`` (the matrices already built, sliced)."""
        return FeatureCache(self.snapshot.iloc[start:stop],
                            {k: v.iloc[start:stop] for k, v in self._built.items()})


