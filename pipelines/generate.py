"""Generate the synthetic portfolio and write it as a validated book of tables."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipelines.console import progress_bar
from postloan.data import io
from postloan.simulation import Shock, SimulationConfig, simulate

log = logging.getLogger(__name__)


def shock_from_month(cfg: SimulationConfig, month: str | None) -> Shock:
    """A shock starting at `month` (YYYY-MM), or two thirds into the window by default."""
    if month is None:
        return Shock(month_index=(2 * cfg.n_months) // 3)
    months = cfg.month_ends()
    ts = pd.Timestamp(month + "-01") + pd.offsets.MonthEnd(0)
    if ts not in months:
        from postloan.errors import ConfigError

        raise ConfigError(f"--shock-month {month} is outside the simulated window "
                          f"{months[0]:%Y-%m}..{months[-1]:%Y-%m}")
    return Shock(month_index=int(months.get_loc(ts)))


def run_generate(cfg: SimulationConfig, out: Path, overwrite: bool = False,
                 partitions: int | None = None) -> dict:
    """Simulate the book and write parquet tables plus manifest.json atomically.

    With `partitions`, write a partitioned book (:mod:`postloan.scale`) instead.
    """
    with progress_bar("simulating months", cfg.n_months) as advance:
        tables = simulate(cfg, progress=lambda done, total: advance())
    months = cfg.month_ends()
    meta = {
        "generator": "postloan.simulation",
        "seed": cfg.seed,
        "n_customers": cfg.n_customers,
        "n_months": cfg.n_months,
        "start": f"{months[0]:%Y-%m-%d}",
        "end": f"{months[-1]:%Y-%m-%d}",
        "shock": None if cfg.shock is None else {
            "month": f"{months[cfg.shock.month_index]:%Y-%m}",
            "unemployment_jump": cfg.shock.unemployment_jump,
            "rate_jump": cfg.shock.rate_jump,
        },
        # Everything needed to re-run the simulation (postloan evaluate-policy forks
        # the book from it), contact policy included.
        "simulation_config": cfg.to_dict(),
    }
    if partitions:
        from pipelines.console import err_console
        from postloan.scale import write_partitioned_book

        with err_console.status(f"writing {partitions} partitions"):
            return write_partitioned_book(tables, out, partitions, meta=meta,
                                          overwrite=overwrite, consume=True)
    with progress_bar("writing tables", len(tables)) as advance:
        manifest = io.write_tables(tables, out, meta=meta, overwrite=overwrite,
                                   progress=lambda name: advance(), consume=True)
    return manifest
