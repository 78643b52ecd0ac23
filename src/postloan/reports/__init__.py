"""Reviewer-facing reports and the portfolio tables behind them.

- :mod:`postloan.reports.model_report`: :class:`ReportInputs` and
  :func:`render_report`, the self-contained HTML model report;
- :mod:`postloan.reports.drift_report`: :func:`render_drift_report`, the HTML page of
  ``postloan monitor``;
- :mod:`postloan.reports.portfolio`: DPD buckets, vintage curves, roll rates, the DPD
  distribution;
- :mod:`postloan.reports.pack`: the validation pack, one page per model and one for the
  decision layer, in English or Chinese (:func:`render_pack`, :func:`render_decision_pack`);
- :mod:`postloan.reports.customer`: one page per customer (:func:`customer_content`,
  :func:`render_customer_page`);
- :mod:`postloan.reports.i18n`: the pages' words in both languages;
- :mod:`postloan.reports.render`: HTML to PDF with headless Chromium;
- :mod:`postloan.reports.html`: the small HTML helpers the pages share.

Figures live in :mod:`postloan.plots`, PSI and the stability table in
:mod:`postloan.monitoring`, the explanation sample in :mod:`postloan.explain`.
"""

from postloan.reports.drift_report import render_drift_report
from postloan.reports.model_report import (
    INTENDED_USE,
    LABEL_DEFINITIONS,
    LIMITS,
    SECTION_IDS,
    SECTIONS,
    ReportInputs,
    render_report,
)
from postloan.reports.pack import (
    DECISION_SECTIONS,
    MODEL_SECTIONS,
    DecisionInputs,
    PackInputs,
    monthly_performance,
    render_decision_pack,
    render_pack,
    score_psi_by_month,
    stress_sensitivity,
)
from postloan.reports.portfolio import (
    DPD_BUCKETS,
    dpd_bucket,
    dpd_distribution,
    roll_rate_matrix,
    vintage_curves,
)
from postloan.reports.render import html_to_pdf

__all__ = [
    "DECISION_SECTIONS", "MODEL_SECTIONS", "DecisionInputs", "PackInputs", "html_to_pdf",
    "monthly_performance", "render_decision_pack", "render_pack", "score_psi_by_month",
    "stress_sensitivity",
    "DPD_BUCKETS", "INTENDED_USE", "LABEL_DEFINITIONS", "LIMITS", "SECTIONS", "SECTION_IDS",
    "ReportInputs", "dpd_bucket", "dpd_distribution", "render_drift_report",
    "render_report", "roll_rate_matrix",
    "vintage_curves",
]
