"""The reporting wing: what reviewers and the relationship team read.

- :mod:`postloan.reporting.model_report`: :class:`ReportInputs` and
  :func:`render_report`, the self-contained HTML model report;
- :mod:`postloan.reporting.drift_report`: :func:`render_drift_report`, the HTML page of
  ``postloan monitor``;
- :mod:`postloan.reporting.portfolio`: DPD buckets, vintage curves, roll rates, the DPD
  distribution;
- :mod:`postloan.reporting.pack`: the validation pack, one page per model and one for the
  decision layer, in English or Chinese (:func:`render_pack`, :func:`render_decision_pack`);
- :mod:`postloan.reporting.customer`: one page per customer (:func:`customer_content`,
  :func:`render_customer_page`);
- :mod:`postloan.reporting.i18n`: the pages' words in both languages;
- :mod:`postloan.reporting.render`: HTML to PDF with headless Chromium;
- :mod:`postloan.reporting.html`: the small HTML helpers the pages share;
- :mod:`postloan.reporting.figures`: the figures, one module per domain.

Imports: every other wing (it reads all of them) and the shared modules; nothing
imports reporting but the pipelines and the service.

Figures live in :mod:`postloan.reporting.figures`, PSI and the stability table in
:mod:`postloan.operations.monitoring`, the explanation sample in
:meth:`postloan.models.bundle.ModelBundle.explanation_sample`; the terms of the pages in
both languages in :mod:`postloan.glossary`.
"""

from postloan.reporting.drift_report import render_drift_report
from postloan.reporting.model_report import (
    INTENDED_USE,
    LABEL_DEFINITIONS,
    LIMITS,
    SECTION_IDS,
    SECTIONS,
    ReportInputs,
    render_report,
)
from postloan.reporting.pack import (
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
from postloan.reporting.portfolio import (
    DPD_BUCKETS,
    dpd_bucket,
    dpd_distribution,
    roll_rate_matrix,
    vintage_curves,
)
from postloan.reporting.render import html_to_pdf

__all__ = [
    "DECISION_SECTIONS", "MODEL_SECTIONS", "DecisionInputs", "PackInputs", "html_to_pdf",
    "monthly_performance", "render_decision_pack", "render_pack", "score_psi_by_month",
    "stress_sensitivity",
    "DPD_BUCKETS", "INTENDED_USE", "LABEL_DEFINITIONS", "LIMITS", "SECTIONS", "SECTION_IDS",
    "ReportInputs", "dpd_bucket", "dpd_distribution", "render_drift_report",
    "render_report", "roll_rate_matrix",
    "vintage_curves",
]
