"""Stress run: score the book as it is and under a macro scenario, side by side."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from postloan import io, strategy
from postloan.bundle import ModelBundle
from postloan.snapshot import build_snapshot
from postloan.stress import Scenario, compare, stress_decisions


def stress_figure(table: pd.DataFrame, scenario: Scenario):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table[table["group"] != "all"]
    groups = list(dict.fromkeys(t["group"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, title in ((axes[0], "expected_loss", "expected loss"),
                              (axes[1], "orange_or_red", "customers orange or red")):
        for i, when in enumerate(("before", "after")):
            vals = t[t["when"] == when].set_index("group").reindex(groups)[metric]
            ax.bar([j + i * 0.4 for j in range(len(groups))], vals, width=0.4, label=when)
        ax.set_xticks([j + 0.2 for j in range(len(groups))], groups)
        ax.set_title(title)
        ax.legend()
    fig.suptitle(f"stress scenario '{scenario.name}'")
    fig.tight_layout()
    return fig


def run_stress(data: Path, as_of: str, scenario: Scenario, bundles: dict[str, ModelBundle],
               out: Path) -> pd.DataFrame:
    """Before/after table by segment; writes table (parquet + CSV) and a PNG atomically."""
    from postloan.plots import save_figure

    snap = build_snapshot(io.read_tables(data), as_of, with_labels=False)
    before, after = stress_decisions(snap, scenario, bundles, strategy.load_strategy_config())
    table = compare(before, after)
    io.write_frames_atomic({"stress": table}, Path(out))
    save_figure(stress_figure(table, scenario), Path(out) / "stress.png")
    return table
