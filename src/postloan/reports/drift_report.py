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

from postloan.reports import html as H

_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}
.stable{background:#d5f5e3}.watch{background:#fdebd0}.re-validate,.shifted{background:#f5b7b1}
figure{display:inline-block;margin:8px;vertical-align:top}img{max-width:520px}
figcaption{font-size:12px;color:#555}"""


def render_drift_report(reference: date, current: date, results: Sequence[Mapping],
                        drift: pd.DataFrame, figures: Mapping[str, bytes]) -> str:
    """Render the drift report.

    Args:
        reference: the reference as-of date.
        current: the current as-of date.
        results: one entry per model: ``model``, ``verdict``, ``score_psi``, ``reasons``.
        drift: :func:`postloan.monitoring.feature_drift` output.
        figures: PNG bytes by caption, in display order.

    Returns:
        The HTML text (sections ``verdicts``, ``plots``, ``features``).
    """
    rows = "".join(
        f"<tr><td>{H.esc(r['model'])}</td><td class='{H.esc(r['verdict'])}'>"
        f"{H.esc(r['verdict'])}</td><td>{r['score_psi']:.3f}</td>"
        f"<td>{H.esc('; '.join(r['reasons']) or '-')}</td></tr>" for r in results)
    imgs = "".join(H.img(png, name, name) for name, png in figures.items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{H.CSP}">
<title>postloan drift report {reference:%Y-%m-%d} vs {current:%Y-%m-%d}</title>
<style>{_STYLE}</style></head><body>
<h1>Drift report: {reference:%Y-%m-%d} (reference) vs {current:%Y-%m-%d} (current)</h1>
<section id="verdicts"><h2>Verdict per model</h2><table><tr><th>model</th><th>verdict</th>
<th>score PSI</th><th>reasons</th></tr>{rows}</table></section>
<section id="plots"><h2>Plots</h2>
<p>Score panels: the share of customers in each score range, the ranges cut at the
reference's deciles (tied scores, such as a calibration plateau, can put more than a tenth
in one range); a stable score keeps the current bars level with the reference's.</p>{imgs}</section>
<section id="features"><h2>Feature stability (CSI; macro features by level change)</h2>
{drift.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")}</section>
</body></html>"""


__all__ = ["render_drift_report"]
