"""Feed faults a lender's operations team meets, injected into a book on purpose.

Used by tests, benchmarks and drills of the data-quality gate (issue 14): each
function returns a new book (the input is not modified) in which one feed broke in
the months up to an as-of date, the way real feeds break.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from postloan.data.snapshot import _months_before, data_range


def _as_of(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp | None) -> pd.Timestamp:
    return data_range(tables)[1] if as_of is None else pd.Timestamp(as_of)


def partial_bureau_pull(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp | None = None,
                        delivered: float = 0.6, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The bureau delivers only a share of the last quarterly pull.

    Args:
        tables: the book.
        as_of: the date the book is used at (default: its last statement date).
        delivered: share of the customers pulled in the last quarter whose rows arrive.
        seed: seed of the choice of customers whose rows are lost.

    Returns:
        A new book without the lost rows.
    """
    out = dict(tables)
    at = _as_of(tables, as_of)
    bur = tables["bureau"]
    last_q = ((bur["pull_date"] > _months_before(at, 3)) & (bur["pull_date"] <= at)).to_numpy()
    pulled = np.sort(bur.loc[last_q, "customer_id"].unique())
    rng = np.random.default_rng(seed)
    lost = rng.choice(pulled, size=int(round(len(pulled) * (1 - delivered))), replace=False)
    drop = last_q & bur["customer_id"].isin(lost).to_numpy()
    out["bureau"] = bur[~drop].reset_index(drop=True)
    return out


def income_in_thousands(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp | None = None
                        ) -> dict[str, pd.DataFrame]:
    """The bureau reports the last quarter's verified income in thousands, not units."""
    out = dict(tables)
    at = _as_of(tables, as_of)
    bur = tables["bureau"].copy()
    last_q = ((bur["pull_date"] > _months_before(at, 3)) & (bur["pull_date"] <= at)).to_numpy()
    bur.loc[last_q, "verified_monthly_income"] = (
        bur.loc[last_q, "verified_monthly_income"] / 1000.0).round(3)
    out["bureau"] = bur
    return out


def zero_app_logins(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp | None = None,
                    months: int = 2) -> dict[str, pd.DataFrame]:
    """The app-login feed sends zeros for the last `months` months."""
    out = dict(tables)
    at = _as_of(tables, as_of)
    act = tables["activity"].copy()
    recent = ((act["month_end"] > _months_before(at, months)) & (act["month_end"] <= at)).to_numpy()
    act.loc[recent, "app_logins"] = 0
    out["activity"] = act
    return out


def three_feed_faults(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp | None = None,
                      seed: int = 0) -> dict[str, pd.DataFrame]:
    """The three faults of issue 14 at once: 60% of the last bureau pull, its income in
    thousands, and two months of zero app logins."""
    out = partial_bureau_pull(tables, as_of, delivered=0.6, seed=seed)
    out = income_in_thousands(out, as_of)
    return zero_app_logins(out, as_of, months=2)
