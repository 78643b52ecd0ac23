"""Small HTML helpers of the self-contained reports: escaping, numbers, tables, images.

Pages built with them need no network: CSS inline, images as ``data:`` URIs, and
:data:`CSP` forbids any other resource.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

CSS = """
:root{--ink:#1d2733;--muted:#5b6675;--line:#d8dee6;--bg:#f7f9fb;--accent:#1f5f99}
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",
"PingFang SC","Microsoft YaHei",sans-serif;color:var(--ink);margin:0;background:#fff;
line-height:1.45;font-size:15px}
header{background:var(--accent);color:#fff;padding:18px 32px}
header h1{margin:0 0 6px;font-size:24px}
header p{margin:2px 0;opacity:.92;font-size:13px}
nav{padding:10px 32px;background:var(--bg);border-bottom:1px solid var(--line)}
nav ol{margin:0;padding-left:20px;columns:3;font-size:14px}
nav a{color:var(--accent);text-decoration:none}
main{padding:0 32px 32px;max-width:1280px}
section{border-bottom:1px solid var(--line);padding:8px 0 18px}
h2{color:var(--accent);margin:22px 0 10px;font-size:20px}
h3{margin:18px 0 8px;font-size:16px}
.wide{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--bg)}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.this td{background:#fff6d6;font-weight:600}
.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;border:1px solid var(--line);padding:6px;background:#fff}
figure img{display:block;max-width:100%;height:auto}
#performance figure img{max-width:520px}
figcaption{font-size:12px;color:var(--muted);margin-top:4px;max-width:620px}
.note{background:#fff3cd;border:1px solid #e6c65c;padding:8px 12px;margin:12px 0}
.muted{color:var(--muted);font-size:13px}
.status-stable{color:#2e7d32;font-weight:600}.status-watch{color:#b7791f;font-weight:600}
.status-shifted{color:#c0392b;font-weight:600}
details summary{cursor:pointer;color:var(--accent);margin:6px 0}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:14px}
dt{color:var(--muted)}dd{margin:0}
footer{padding:14px 32px;color:var(--muted);font-size:12px}
@media print{nav{display:none}section{page-break-inside:avoid}}
"""
# Chinese pages name the CJK families first (Debian's fonts-noto-cjk): left to the
# generic family, a browser may pick a font without the glyphs and draw boxes.
CJK_CSS = """
body{font-family:"Noto Sans CJK SC","Noto Sans SC","Source Han Sans SC","PingFang SC",
"Microsoft YaHei","WenQuanYi Zen Hei",sans-serif}
td.sign{height:34px;min-width:110px}
"""
# Forbids every resource that is not inline: the page cannot reach the network.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def esc(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt(v: object, kind: str = "auto") -> str:
    if is_missing(v):
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if kind == "pct":
            return f"{v:.1%}"
        if kind == "int" or (v.is_integer() and abs(v) >= 100):
            return f"{v:,.0f}"
        return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4f}"
    return str(v)


def table(df: pd.DataFrame, formats: Mapping[str, str] | None = None,
           highlight: Sequence[bool] | None = None, status_col: str | None = None) -> str:
    """A DataFrame as an escaped HTML table (numbers right-aligned, formatted)."""
    formats = formats or {}
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = []
    # Column-wise values keep each column's dtype (iterrows would turn ints into floats).
    columns = {c: df[c].tolist() for c in df.columns}
    for i in range(len(df)):
        cells = []
        for c in df.columns:
            v = columns[c][i]
            numeric = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
                v, (bool, np.bool_))
            cls = ' class="num"' if numeric else ""
            if status_col is not None and c == status_col:
                cls = f' class="status-{esc(v).replace("/", "")}"'
            cells.append(f"<td{cls}>{esc(fmt(v, formats.get(c, 'auto')))}</td>")
        tr = ' class="this"' if highlight is not None and highlight[i] else ""
        body.append(f"<tr{tr}>{''.join(cells)}</tr>")
    return (f'<div class="wide"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def dl(items: Sequence[tuple[str, object]]) -> str:
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"


def img(png: bytes | None, alt: str, caption: str = "") -> str:
    if not png:
        return f'<p class="note">Plot not available: {esc(alt)}.</p>'
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">{cap}</figure>'


__all__ = ["CJK_CSS", "CSP", "CSS", "dl", "esc", "fmt", "img", "is_missing", "table"]
