"""Every figure of postloan under one name, and the portfolio's own figures.

The portfolio: vintage curves and past-due buckets. The others are re-exported from
their domains (:mod:`postloan.models.figures`: the toolkit, model quality and
explanations; :mod:`postloan.operations.figures`: stability, score history, stress), so
a page builds any figure as ``figures.<name>``.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from postloan.models.figures import *  # noqa: F403
from postloan.models.figures import __all__ as _model_figures
from postloan.models.figures import _new_figure
from postloan.operations.figures import *  # noqa: F403
from postloan.operations.figures import __all__ as _operations_figures


# --------------------------------------------------------------------------- portfolio
def vintage_figure(vintages: pd.DataFrame, title: str = "Vintage curves") -> Figure:
    """One line per origination cohort: cumulative share of its loans gone bad by MOB.

    Args:
        vintages: :func:`postloan.reporting.vintage_curves` output (cohorts as rows,
            months on book as columns, plus ``n_loans``).
        title: figure title.

    Returns:
        The figure; the y axis in percent, cohorts in the legend.
    """
    curves = vintages.drop(columns="n_loans", errors="ignore")
    fig, ax = _new_figure((9, 4.5))
    mob = np.asarray(curves.columns, dtype="float64")
    # Cohorts in order on one colour ramp (oldest dark): a dozen quarters would repeat
    # the default ten-colour cycle and make two cohorts look alike.
    ramp = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, max(len(curves), 1)))
    for (cohort, row), colour in zip(curves.iterrows(), ramp, strict=False):
        ax.plot(mob, row.to_numpy(dtype="float64"), lw=1.8, color=colour, label=str(cohort))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set(title=title, xlabel="Months on book", ylabel="Share of the cohort's loans",
           xlim=(0, max(float(mob.max()), 1.0)), ylim=(0, None))
    ax.legend(title="origination", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig


def dpd_distribution_figure(distribution: pd.DataFrame,
                            title: str = "Open loans past due, by bucket") -> Figure:
    """Stacked areas of the past-due buckets over statement months (``current`` left out).

    Args:
        distribution: :func:`postloan.reporting.dpd_distribution` output (statement dates
            as rows, buckets as columns, rows summing to 1).
        title: figure title.

    Returns:
        The figure; the y axis in percent of open loans (or balance).
    """
    past_due = distribution.drop(columns="current", errors="ignore")
    fig, ax = _new_figure((9, 4))
    ax.stackplot(past_due.index, past_due.to_numpy(dtype="float64").T,
                 labels=[str(c) for c in past_due.columns], alpha=0.85)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set(title=title, xlabel="Statement month", ylabel="Share past due", ylim=(0, None))
    ax.legend(title="days past due", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig


__all__ = [*_model_figures, *_operations_figures, "dpd_distribution_figure",
           "vintage_figure"]
