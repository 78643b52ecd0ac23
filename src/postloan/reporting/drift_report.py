"""The drift report of ``postloan monitor``: one self-contained HTML page.

Pure: the verdicts, the feature-drift table and PNG figures in, an HTML string out;
``pipelines/monitor.py`` computes them and writes the file. Like the model report,
the page needs no network (inline CSS, images as ``data:`` URIs, a
Content-Security-Policy forbidding anything else).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import pandas as pd

from postloan.reporting import html as H

_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}
.stable{background:#d5f5e3}.watch,.population-shift{background:#fdebd0}
.re-validate,.shifted,.data-fault,.performance-decay,.hard{background:#f5b7b1}
figure{display:inline-block;margin:8px;vertical-align:top}img{max-width:520px}
figcaption{font-size:12px;color:#555}"""


def _quality_section(quality: Mapping | None) -> str:
    """The feed checks (a :meth:`postloan.data.quality.QualityReport.to_dict`), shown first."""
    if quality is None:
        return ("<section id='data-quality'><h2>Feed checks</h2><p>not checked: the "
                "champions carry no data expectations</p></section>")
    rows = "".join(
        f"<tr><td class='{H.esc(f['severity'])}'>{H.esc(f['severity'])}</td>"
        f"<td>{H.esc(f['rule'])}</td><td>{H.esc(f['feed'])}</td>"
        f"<td>{H.esc(f['column'] or '-')}</td><td>{f['share']:.1%}</td>"
        f"<td>{H.esc(f['message'])}</td></tr>" for f in quality["findings"])
    body = (f"<table><tr><th>severity</th><th>rule</th><th>feed</th><th>column</th>"
            f"<th>customers</th><th>finding</th></tr>{rows}</table>" if rows
            else "<p class='stable'>every feed as expected</p>")
    return (f"<section id='data-quality'><h2>Feed checks (as of {H.esc(quality['as_of'])})"
            f"</h2>{body}</section>")


def _auc(est: Mapping, realised: float | None) -> str:
    text = f"{est['auc']:.3f} [{est['auc_low']:.3f}, {est['auc_high']:.3f}]"
    return text + (f" / {realised:.3f}" if realised is not None else " / not matured")


def render_drift_report(reference: date, current: date, results: Sequence[Mapping],
                        drift: pd.DataFrame, figures: Mapping[str, bytes],
                        quality: Mapping | None = None) -> str:
    """Render the drift report, the feed checks first.

    Args:
        reference: the reference as-of date.
        current: the current as-of date.
        results: one entry per model: ``model``, ``diagnosis``, ``action``, ``verdict``
            (drift), ``score_psi``, ``estimate`` (CBPE), ``realised_auc``, ``reasons``,
            ``diagnosis_reasons``.
        drift: :func:`postloan.operations.monitoring.feature_drift` output.
        figures: PNG bytes by caption, in display order.
        quality: the current date's data-quality report as a dict (None: not checked).

    Returns:
        The HTML text (sections ``data-quality``, ``verdicts``, ``plots``, ``features``).
    """
    rows = "".join(
        f"<tr><td>{H.esc(r['model'])}</td>"
        f"<td class='{H.esc(r['diagnosis'].replace(' ', '-'))}'>{H.esc(r['diagnosis'])}</td>"
        f"<td>{H.esc(r['action'])}</td><td class='{H.esc(r['verdict'])}'>"
        f"{H.esc(r['verdict'])}</td><td>{r['score_psi']:.3f}</td>"
        f"<td>{_auc(r['estimate'], r['realised_auc'])}</td>"
        f"<td>{H.esc('; '.join(r['diagnosis_reasons'] or r['reasons']) or '-')}</td></tr>"
        for r in results)
    imgs = "".join(H.img(png, name, name) for name, png in figures.items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{H.CSP}">
<title>postloan drift report {reference:%Y-%m-%d} vs {current:%Y-%m-%d}</title>
<style>{_STYLE}</style></head><body>
<h1>Drift report: {reference:%Y-%m-%d} (reference) vs {current:%Y-%m-%d} (current)</h1>
{_quality_section(quality)}
<section id="verdicts"><h2>Verdict per model</h2><table><tr><th>model</th><th>verdict</th>
<th>action</th><th>drift</th><th>score PSI</th><th>AUC estimated [95%] / realised</th>
<th>reasons</th></tr>{rows}</table>
<p>AUC estimated from the calibrated probabilities (confidence-based performance
estimation, recalibrated on the reference date when its labels have matured); realised
once the current date's labels have matured.</p></section>
<section id="plots"><h2>Plots</h2>
<p>Score panels: the share of customers in each score range, the ranges cut at the
reference's deciles (tied scores, such as a calibration plateau, can put more than a tenth
in one range); a stable score keeps the current bars level with the reference's.</p>{imgs}</section>
<section id="features"><h2>Feature stability (CSI; macro features by level change)</h2>
{drift.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")}</section>
</body></html>"""


__all__ = ["render_drift_report"]
