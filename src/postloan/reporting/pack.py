"""The validation pack: one self-contained HTML page per model, in English or Chinese.

Reviewers (model validation 模型验证, the risk committee, auditors) read it offline:
inline CSS, figures as embedded PNG, no script, a Content-Security-Policy forbidding any
other resource. Every heading, table and figure exists in both languages (words from
:mod:`postloan.reporting.i18n`, domain terms from the glossary).

Pure: :class:`PackInputs` (the model report's :class:`ReportInputs` plus the month-by-month
evaluation, stability by month, stress results and the scorecard) in, HTML out. The
computations the pack needs beyond a training run are here too, as functions of arrays
and frames (:func:`monthly_performance`, :func:`score_psi_by_month`,
:func:`stress_sensitivity`); ``pipelines/report.py`` reads the book and MLflow.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from postloan import glossary
from postloan.data.features import FEATURES
from postloan.operations.monitoring import default_monitoring_config, psi, status
from postloan.reporting import figures as plots
from postloan.reporting import html as H
from postloan.reporting.i18n import TEXTS, tr
from postloan.reporting.model_report import ReportInputs

log = logging.getLogger(__name__)

N_BOOT = 200
"""Bootstrap resamples behind each month's intervals."""

MODEL_SECTIONS = ("purpose", "data", "features", "performance", "calibration", "stability",
                  "challengers", "sensitivity", "segments", "drivers", "limitations",
                  "version", "signoff")
"""Section ids (HTML anchors) of a model's pack, in page order; titles are ``s_<id>``."""

AUC_DROP_FINDING = 0.03  # a month whose AUC falls this far below the whole sample's
SEGMENT_SPREAD_FINDING = 0.05


# ----------------------------------------------------------------------- computations
def weighted_auc_ks(y: np.ndarray, p: np.ndarray, weights: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """AUC and KS of `p` for each row of `weights` (counts per customer), vectorised.

    With the counts of a bootstrap resample as weights this is the resample's AUC and KS
    without re-sorting: sort once, sum the weights of positives and negatives per distinct
    score, and read AUC (ties count half) and KS off the cumulative sums.

    Args:
        y: labels 0/1.
        p: scores.
        weights: shape (B, n), or (n,) for one weighting.

    Returns:
        (auc, ks), each of shape (B,) (NaN where a weighting leaves one class empty).
    """
    w = np.atleast_2d(np.asarray(weights, dtype="float64"))
    order = np.argsort(p, kind="mergesort")
    ps, ys, w = p[order], y[order].astype(bool), w[:, order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    pos = np.add.reduceat(np.where(ys, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(ys, 0.0, w), starts, axis=1)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        below = np.cumsum(neg, axis=1) - neg  # negatives scoring strictly lower
        auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
        ks = np.abs(np.cumsum(pos, axis=1) / n_pos[:, None]
                    - np.cumsum(neg, axis=1) / n_neg[:, None]).max(axis=1)
    bad = (n_pos == 0) | (n_neg == 0)
    auc[bad], ks[bad] = np.nan, np.nan
    return auc, ks


def monthly_performance(y: object, p: object, as_of: object, oracle: object | None = None,
                        n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95
                        ) -> pd.DataFrame:
    """AUC, KS and Gini per as-of date with bootstrap confidence intervals.

    Args:
        y: labels (1 = the event), NaN rows are dropped.
        p: predicted probabilities.
        as_of: the as-of date of each row.
        oracle: the simulator's true probability of each row (NaN where unknown), or None.
        n_boot: customer resamples per date (seeded: the same data gives the same table).
        seed: bootstrap seed.
        level: interval coverage.

    Returns:
        One row per as-of date: ``as_of``, ``n``, ``n_pos``, ``base_rate``, ``mean_pred``,
        ``auc``, ``auc_lo``, ``auc_hi``, ``ks``, ``ks_lo``, ``ks_hi``, ``gini``,
        ``gini_lo``, ``gini_hi`` and ``oracle_auc`` (NaN without truth). A date with one
        class only has NaN metrics.
    """
    frame = pd.DataFrame({"y": np.asarray(y, dtype="float64"),
                          "p": np.asarray(p, dtype="float64"),
                          "as_of": pd.to_datetime(pd.Series(np.asarray(as_of)))})
    frame["oracle"] = np.nan if oracle is None else np.asarray(oracle, dtype="float64")
    frame = frame.dropna(subset=["y", "p"])
    rng = np.random.default_rng(seed)
    alpha = (1.0 - level) / 2.0
    rows = []
    for d, g in frame.groupby("as_of", sort=True):
        yy, pp = g["y"].to_numpy(), g["p"].to_numpy()
        row = {"as_of": f"{d:%Y-%m-%d}", "n": len(g), "n_pos": int(yy.sum()),
               "base_rate": float(yy.mean()), "mean_pred": float(pp.mean())}
        if 0 < yy.sum() < len(yy):
            auc1, ks1 = weighted_auc_ks(yy, pp, np.ones(len(yy)))
            auc, ks = float(auc1[0]), float(ks1[0])
            # Bootstrap resample counts per customer, one row per resample.
            idx = rng.integers(0, len(yy), size=(n_boot, len(yy)))
            counts = np.bincount((idx + len(yy) * np.arange(n_boot)[:, None]).ravel(),
                                 minlength=n_boot * len(yy)).reshape(n_boot, len(yy))
            aucs, kss = weighted_auc_ks(yy, pp, counts)
            lo, hi = np.nanquantile(aucs, [alpha, 1 - alpha])
            klo, khi = np.nanquantile(kss, [alpha, 1 - alpha])
            row.update(auc=auc, auc_lo=float(lo), auc_hi=float(hi), ks=ks, ks_lo=float(klo),
                       ks_hi=float(khi), gini=2 * auc - 1, gini_lo=2 * float(lo) - 1,
                       gini_hi=2 * float(hi) - 1)
            ok = g["oracle"].notna().to_numpy()
            if ok.any() and 0 < yy[ok].sum() < ok.sum():
                row["oracle_auc"] = float(roc_auc_score(yy[ok], g["oracle"].to_numpy()[ok]))
        rows.append(row)
    cols = ["as_of", "n", "n_pos", "base_rate", "mean_pred", "auc", "auc_lo", "auc_hi", "ks",
            "ks_lo", "ks_hi", "gini", "gini_lo", "gini_hi", "oracle_auc"]
    return pd.DataFrame(rows).reindex(columns=cols)


def score_psi_by_month(reference: object, current: pd.DataFrame, column: str = "score",
                       n_bins: int = 10) -> pd.DataFrame:
    """PSI of a column at each as-of date of `current` against the `reference` values.

    Args:
        reference: the reference values (e.g. scores at the training dates).
        current: rows with ``as_of`` and `column`.
        column: the column compared.
        n_bins: quantile bins of the reference.

    Returns:
        ``as_of``, ``psi``, ``status`` (the monitoring config's bands), one row per date.
    """
    cfg = default_monitoring_config()
    rows = []
    for d, g in current.groupby(pd.to_datetime(current["as_of"]), sort=True):
        v = psi(pd.Series(np.asarray(reference)), g[column], n_bins)
        rows.append({"as_of": f"{d:%Y-%m-%d}", "psi": v, "status": status(v, cfg)})
    return pd.DataFrame(rows, columns=["as_of", "psi", "status"])


def stress_sensitivity(predict: object, snapshot: pd.DataFrame,
                       scenarios: Sequence[object]) -> pd.DataFrame:
    """Mean score before and after each stress scenario on the same customers.

    Args:
        predict: ``snapshot -> probabilities`` (a bundle's ``predict``).
        snapshot: the customers (one as-of date).
        scenarios: :class:`postloan.operations.stress.Scenario` objects.

    Returns:
        ``scenario``, ``description``, ``mean_before``, ``mean_after``, ``change``
        (relative), ``p90_after``, ``share_up`` (customers whose score rose more than 50%).
    """
    from postloan.operations.stress import apply_scenario

    before = np.asarray(predict(snapshot), dtype="float64")
    rows = []
    for sc in scenarios:
        after = np.asarray(predict(apply_scenario(snapshot, sc)), dtype="float64")
        rows.append({"scenario": sc.name, "description": sc.description,
                     "mean_before": float(before.mean()), "mean_after": float(after.mean()),
                     "change": float(after.mean() / before.mean() - 1.0),
                     "p90_after": float(np.quantile(after, 0.9)),
                     "share_up": float(np.mean(after > 1.5 * before))})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------- inputs
@dataclass
class PackInputs:
    """What a model's validation pack shows beyond the training run's records.

    Attributes:
        report: the run, bundle and registry facts (:class:`ReportInputs`).
        monthly: :func:`monthly_performance` of the champion on the OOT dates.
        oot_y: OOT labels behind the figures (ROC, KS, calibration, lift).
        oot_p: OOT probabilities of the same rows.
        score_psi: :func:`score_psi_by_month` (validation and OOT dates vs training).
        csi: top features' PSI by as-of date: ``feature``, ``as_of``, ``psi``, ``status``.
        stress: :func:`stress_sensitivity` output and the as-of date it was run at.
        stress_as_of: that date.
        scorecard: ``postloan.models.scorecard.report_table`` output, or None (not trained).
        training_config: the training configuration as a flat mapping.
        reference_dates: the training as-of dates behind the PSI/CSI reference.
    """

    report: ReportInputs
    monthly: pd.DataFrame | None = None
    oot_y: np.ndarray | None = None
    oot_p: np.ndarray | None = None
    score_psi: pd.DataFrame | None = None
    csi: pd.DataFrame | None = None
    stress: pd.DataFrame | None = None
    stress_as_of: str = ""
    scorecard: tuple[pd.DataFrame, dict] | None = None
    training_config: dict[str, object] = field(default_factory=dict)
    reference_dates: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------- HTML pieces
_CODE_SPAN = re.compile(r"`([^`]+)`")


def para(text: str, cls: str = "") -> str:
    """A paragraph of escaped text; `backticks` become ``<code>`` (commands, names)."""
    body = _inline(text)
    return f'<p class="{cls}">{body}</p>' if cls else f"<p>{body}</p>"


def _inline(text: str) -> str:
    """Escaped text with `backtick` spans as ``<code>``."""
    return _CODE_SPAN.sub(lambda m: f"<code>{m.group(1)}</code>", H.esc(text))


def code(text: object) -> str:
    return f"<code>{H.esc(text)}</code>"


def table(df: pd.DataFrame, lang: str, headers: Mapping[str, str] | None = None,
          formats: Mapping[str, str] | None = None, code_cols: Sequence[str] = (),
          status_col: str | None = None) -> str:
    """:func:`H.table` with column names in `lang` (``headers`` maps column -> text key)
    and identifier columns (feature, segment, run) shown as ``<code>``."""
    formats = dict(formats or {})
    shown = df.copy()
    headers = headers or {}
    # A column named in `headers` by a text key is said in `lang`, by any other string
    # verbatim (AUC, KS); a column left out is an identifier and shown as code.
    heads = {c: (tr(headers[c], lang) if headers[c] in TEXTS else headers[c])
             if c in headers else f"\x00{c}\x01" for c in df.columns}
    for c in code_cols:
        if c in shown.columns:
            shown[c] = shown[c].map(lambda v: f"\x00{v}\x01")
    if status_col and status_col in shown.columns:
        shown[status_col] = shown[status_col].map(
            lambda s: tr(s, lang) if s in ("stable", "watch", "shifted") else s)
    out = H.table(shown.rename(columns=heads), {heads[k]: v for k, v in formats.items()
                                                 if k in heads})
    if status_col:  # colour by the English status even when the words are Chinese
        for s in ("stable", "watch", "shifted"):
            out = out.replace(f"<td>{H.esc(tr(s, lang))}</td>",
                              f'<td class="status-{s}">{H.esc(tr(s, lang))}</td>')
    return out.replace("\x00", "<code>").replace("\x01", "</code>")


def figure(png: bytes | None, caption: str, lang: str) -> str:
    if not png:
        return f'<p class="note">{H.esc(tr("figure_missing", lang, what=caption))}</p>'
    return H.img(png, caption, caption)


def _fig(build: object, lang: str) -> bytes | None:
    """Build and render a figure in `lang` (fonts resolve at draw time, inside the block)."""
    try:
        with plots.language(lang):
            return plots.figure_png(build())  # type: ignore[operator]
    except Exception:  # noqa: BLE001 - a figure that cannot be drawn must not lose the pack
        log.warning("a figure of the pack could not be drawn", exc_info=True)
        return None


def _ci(v: float, lo: float, hi: float) -> str:
    if H.is_missing(v):
        return "-"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]], lang: str,
         notes: Sequence[str] = ()) -> str:
    """A whole page: header, contents, numbered sections ``(id, title, body)``, footer."""
    try:
        version = importlib_metadata.version("postloan")
    except importlib_metadata.PackageNotFoundError:
        version = "unknown"
    when = datetime.now(UTC).isoformat(timespec="seconds")
    toc = "".join(f'<li><a href="#{sid}">{H.esc(t)}</a></li>' for sid, t, _ in sections)
    body = "\n".join(f'<section id="{sid}"><h2>{i}. {H.esc(t)}</h2>\n{b}\n</section>'
                     for i, (sid, t, b) in enumerate(sections, 1))
    note_html = "".join(f'<p class="note">{H.esc(n)}</p>' for n in notes)
    html_lang = "zh-CN" if lang == "zh" else "en"
    return f"""<!DOCTYPE html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{H.CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{H.esc(title)}</title>
<style>{H.CSS}{H.CJK_CSS if lang == "zh" else ""}</style>
</head>
<body>
<header>
<h1>{H.esc(title)}</h1>
<p>{subtitle}</p>
<p>{H.esc(tr("generated", lang, when=when, version=version))}</p>
</header>
<nav id="contents"><ol>{toc}</ol></nav>
<main>
{note_html}
{body}
</main>
<footer>{H.esc(tr("footer", lang))}</footer>
</body>
</html>
"""


# ----------------------------------------------------------------------- sections
def _purpose(p: PackInputs, lang: str) -> str:
    r = p.report
    label = r.metadata.get("label", "")
    out = para(tr(f"purpose_{r.model}", lang))
    out += (f"<p><b>{H.esc(tr('predicts', lang))}</b>: {code(label)} — "
            f"{H.esc(tr(f'label_{label}', lang)) if label else '-'}</p>")
    out += f"<p><b>{H.esc(tr('users', lang))}</b>: {H.esc(tr('users_text', lang))}</p>"
    if r.manifest and str(r.manifest.get("generator", "")).startswith("postloan.simulation"):
        out += para(tr("synthetic", lang), "note")
    return out


def _data(p: PackInputs, lang: str) -> str:
    r = p.report
    splits, n_rows = r.metadata.get("splits", {}), r.metadata.get("n_rows", {})
    rows = pd.DataFrame([{"split": tr(k, lang), "dates": _dates(splits.get(k, [])),
                          "rows": n_rows.get(k, np.nan)} for k in ("train", "valid", "oot")])
    out = table(rows, lang, {"split": "split", "dates": "as_of_dates", "rows": "rows_labelled"},
                {"rows": "int"})
    out += para(tr("holdout_text", lang), "muted")
    m = r.metrics
    facts = [(tr("label", lang), r.metadata.get("label", "-")),
             (tr("oot_base_rate", lang), H.fmt(m.get("oot_base_rate"), "pct")),
             (tr("train_hash", lang), r.tags.get("data_content_hash")
              or r.metadata.get("data_content_hash", "-"))]
    mf = r.manifest or {}
    if mf:
        facts.append((tr("book_hash", lang), mf.get("content_hash", "-")))
        if mf.get("start") and mf.get("end"):
            facts.append((tr("book_window", lang), f"{mf['start']} .. {mf['end']}"))
    out += H.dl(facts)
    counts = pd.DataFrame([{"table": k, "rows": int(v.get("rows", 0))}
                           for k, v in sorted(mf.get("tables", {}).items())])
    if len(counts):
        out += f"<h3>{H.esc(tr('table_rows', lang))}</h3>" + table(
            counts, lang, {"table": "table", "rows": "rows"}, code_cols=["table"])
    return out


def _dates(values: Sequence[str]) -> str:
    v = list(values)
    if not v:
        return "-"
    return ", ".join(v) if len(v) <= 3 else f"{v[0]} .. {v[-1]} ({len(v)})"


def _features(p: PackInputs, lang: str) -> str:
    mono = {k: int(v) for k, v in (p.report.metadata.get("monotone") or {}).items()}
    imp = p.report.tables.get("shap_importance")
    rank = {f: i + 1 for i, f in enumerate(imp["feature"])} if imp is not None else {}
    words = {1: "+1: " + tr("mono_up", lang), -1: "-1: " + tr("mono_down", lang)}
    rows = pd.DataFrame([{"feature": f.name, "kind": tr(f.kind, lang),
                          "definition": glossary.feature_definition(f.name, lang),
                          "monotone": words.get(mono.get(f.name, 0), ""),
                          "rank": rank.get(f.name, np.nan)} for f in FEATURES])
    return (para(tr("features_text", lang, n=len(FEATURES)))
            + table(rows, lang, {"feature": "feature", "kind": "kind",
                                 "definition": "definition", "monotone": "monotone",
                                 "rank": "shap_rank"}, {"rank": "int"}, code_cols=["feature"]))


def _performance(p: PackInputs, lang: str) -> str:
    m = p.report.metrics
    if p.monthly is None or p.monthly.empty:
        return para(tr("monthly_missing", lang), "note")
    t = p.monthly
    rows = pd.DataFrame({
        "as_of": t["as_of"], "n": t["n"], "n_pos": t["n_pos"], "base_rate": t["base_rate"],
        "auc": [_ci(a, lo, hi) for a, lo, hi in zip(t["auc"], t["auc_lo"], t["auc_hi"],
                                                     strict=True)],
        "ks": [_ci(a, lo, hi) for a, lo, hi in zip(t["ks"], t["ks_lo"], t["ks_hi"],
                                                    strict=True)],
        "gini": [_ci(a, lo, hi) for a, lo, hi in zip(t["gini"], t["gini_lo"], t["gini_hi"],
                                                      strict=True)],
        "oracle": t["oracle_auc"]})
    ci = tr("interval_95", lang)
    heads = {"as_of": "as_of", "n": "n", "n_pos": "n_pos", "base_rate": "base_rate",
             "oracle": "oracle_auc"}
    heads.update(auc=f"AUC [{ci}]", ks=f"KS [{ci}]", gini=f"Gini [{ci}]")
    out = para(tr("perf_text", lang, n_boot=N_BOOT))
    out += table(rows, lang, heads, {"base_rate": "pct"})
    out += para(tr("oracle_text", lang) if t["oracle_auc"].notna().any()
                else tr("no_oracle", lang), "muted")
    metrics = {"auc": "AUC", "ks": "KS", "gini": "Gini"}
    if t["oracle_auc"].notna().any():
        metrics["oracle_auc"] = tr("oracle_auc", lang)
    figs = [figure(_fig(lambda: plots.metrics_by_month_figure(
        t, metrics, tr("fig_monthly", lang)), lang), tr("fig_monthly", lang), lang)]
    if p.oot_y is not None and p.oot_p is not None:
        y, s = p.oot_y, p.oot_p
        figs += [figure(_fig(lambda: plots.roc_figure(y, s, tr("fig_roc", lang),
                                                      label="LightGBM"), lang),
                        tr("fig_roc", lang), lang),
                 figure(_fig(lambda: plots.ks_figure(y, s, tr("fig_ks", lang)), lang),
                        tr("fig_ks", lang), lang),
                 figure(_fig(lambda: plots.lift_figure(y, s, tr("fig_lift", lang),
                                                       label="LightGBM"), lang),
                        tr("fig_lift", lang), lang)]
    overall = H.dl([("AUC", H.fmt(m.get("oot_auc"))), ("KS", H.fmt(m.get("oot_ks"))),
                    ("Gini", H.fmt(m.get("oot_gini"))),
                    (tr("n", lang), H.fmt(m.get("oot_n"), "int"))])
    return (out + f'<div class="figs">{"".join(figs)}</div>'
            + f"<h3>{H.esc(tr('overall', lang))}</h3>" + overall)


def _calibration(p: PackInputs, lang: str) -> str:
    out = para(tr("cal_text", lang))
    if p.oot_y is not None and p.oot_p is not None:
        from postloan.models.evaluation import calibration_table, expected_calibration_error

        y, s = p.oot_y, p.oot_p
        out += H.dl([(tr("ece", lang), f"{expected_calibration_error(y, s):.4f}")])
        out += '<div class="figs">' + figure(_fig(lambda: plots.calibration_figure(
            y, s, tr("fig_cal", lang), label="LightGBM"), lang), tr("fig_cal", lang),
            lang) + "</div>"
        cal = calibration_table(y, s)
        cols = [c for c in ("bin", "n", "mean_pred", "observed_rate") if c in cal.columns]
        out += table(cal[cols], lang, {"bin": "decile", "n": "n", "mean_pred": "mean_pred",
                                       "observed_rate": "observed_rate"},
                     {"mean_pred": "pct", "observed_rate": "pct"})
    else:
        out += para(tr("monthly_missing", lang), "note")
    return out


def _stability(p: PackInputs, lang: str) -> str:
    if p.score_psi is None or p.score_psi.empty:
        return para(tr("stab_missing", lang), "note")
    cfg = default_monitoring_config()
    out = para(tr("stab_text", lang, watch=cfg.psi_watch, shifted=cfg.psi_shifted,
                  n_ref=len(p.reference_dates) or "-"))
    out += table(p.score_psi, lang, {"as_of": "as_of", "psi": "score_psi", "status": "status"},
                 status_col="status")
    sp = p.score_psi.assign(psi_lo=np.nan)
    out += '<div class="figs">' + figure(_fig(lambda: plots.metrics_by_month_figure(
        sp[["as_of", "psi"]], {"psi": tr("score_psi", lang)}, tr("fig_psi", lang), "PSI"),
        lang), tr("fig_psi", lang), lang) + "</div>"
    if p.csi is not None and not p.csi.empty:
        wide = p.csi.pivot(index="feature", columns="as_of", values="psi")
        wide = wide.reindex(list(dict.fromkeys(p.csi["feature"]))).reset_index()
        out += f"<h3>{H.esc(tr('csi_title', lang))}</h3>" + table(
            wide, lang, {"feature": "feature", **{c: c for c in wide.columns[1:]}},
            code_cols=["feature"])
    return out


def _challengers(p: PackInputs, lang: str) -> str:
    m = p.report.metrics
    rows = [{"model": tr("lightgbm", lang), "AUC": m.get("lightgbm_oot_auc", m.get("oot_auc")),
             "KS": m.get("lightgbm_oot_ks", m.get("oot_ks")),
             "Gini": m.get("lightgbm_oot_gini", m.get("oot_gini")),
             "ECE": m.get("lightgbm_oot_ece", m.get("oot_ece"))},
            {"model": tr("logreg", lang), "AUC": m.get("baseline_oot_auc"),
             "KS": m.get("baseline_oot_ks"), "Gini": m.get("baseline_oot_gini"),
             "ECE": m.get("baseline_oot_ece")}]
    extra = ""
    if p.scorecard is not None:
        points, sc_metrics = p.scorecard
        auc = sc_metrics.get("scorecard_auc")
        rows.append({"model": tr("scorecard", lang), "AUC": auc,
                     "KS": sc_metrics.get("scorecard_ks"),
                     "Gini": None if auc is None else 2 * auc - 1,
                     "ECE": sc_metrics.get("scorecard_ece")})
        cols = [c for c in ("feature", "bin", "woe", "points") if c in points.columns]
        extra = (f"<h3>{H.esc(tr('scorecard_points', lang))}</h3>"
                 + f"<details open><summary>{H.esc(tr('scorecard_points', lang))}</summary>"
                 + table(points[cols], lang, {"feature": "feature", "bin": "bin", "woe": "woe",
                                              "points": "points"}, code_cols=["feature"])
                 + "</details>")
    else:
        extra = para(tr("scorecard_missing", lang, model=p.report.model), "note")
    df = pd.DataFrame(rows)
    heads = {"model": "model_col", "AUC": "AUC", "KS": "KS", "Gini": "Gini", "ECE": "ECE"}
    return para(tr("challenger_text", lang)) + table(df, lang, heads) + extra


def _sensitivity(p: PackInputs, lang: str) -> str:
    if p.stress is None or p.stress.empty:
        return para(tr("sens_missing", lang), "note")
    t = p.stress.drop(columns=["description"])
    return (para(tr("sens_text", lang, as_of=p.stress_as_of))
            + table(t, lang, {"scenario": "scenario", "mean_before": "mean_before",
                              "mean_after": "mean_after", "change": "change",
                              "p90_after": "p90_after", "share_up": "share_up"},
                    {"mean_before": "pct", "mean_after": "pct", "change": "pct",
                     "p90_after": "pct", "share_up": "pct"}, code_cols=["scenario"]))


def _segments(p: PackInputs, lang: str) -> str:
    seg = p.report.tables.get("segments_oot")
    if seg is None or seg.empty:
        return para(tr("seg_missing", lang), "note")
    out = para(tr("seg_text", lang))
    for dim, t in seg.groupby("dimension", sort=False):
        t = t.drop(columns=["dimension"]).reset_index(drop=True)
        t = t.assign(gap=t["mean_pred"] - t["base_rate"])
        key = f"dim_{dim}"
        name = tr(key, lang) if key in TEXTS else str(dim)
        cols = [c for c in ("segment", "n", "n_pos", "auc", "base_rate", "mean_pred", "gap")
                if c in t.columns]
        out += f"<h3>{H.esc(name)}</h3>" + table(
            t[cols], lang, {"segment": "segment", "n": "n", "n_pos": "n_pos", "auc": "AUC",
                            "base_rate": "base_rate", "mean_pred": "mean_pred", "gap": "gap"},
            {"base_rate": "pct", "mean_pred": "pct", "gap": "pct"}, code_cols=["segment"])
    return out


def _drivers(p: PackInputs, lang: str) -> str:
    imp = p.report.tables.get("shap_importance")
    if imp is None or imp.empty:
        return para(tr("seg_missing", lang), "note")
    top = imp.head(15).reset_index(drop=True)
    top = top.assign(definition=[glossary.feature_definition(f, lang) for f in top["feature"]])
    png = _fig(lambda: plots.shap_bar_figure(top, 15, tr("fig_shap", lang)), lang)
    return (para(tr("drivers_text", lang))
            + '<div class="figs">' + figure(png, tr("fig_shap", lang), lang) + "</div>"
            + table(top[["feature", "definition", "mean_abs_shap"]], lang,
                    {"feature": "feature", "definition": "definition",
                     "mean_abs_shap": "mean_abs_shap"}, code_cols=["feature"]))


def findings(p: PackInputs, lang: str) -> list[str]:
    """Open findings computed from the pack's numbers (weak months, drift, challengers
    that match the champion, wide segment spreads, stress, missing scorecard)."""
    out = []
    m = p.report.metrics
    cfg = default_monitoring_config()
    overall = m.get("oot_auc")
    if p.monthly is not None and overall is not None:
        for r in p.monthly.itertuples():
            if not H.is_missing(r.auc) and overall - r.auc > AUC_DROP_FINDING:
                out.append(tr("f_auc_low", lang, as_of=r.as_of, auc=f"{r.auc:.3f}",
                              drop=f"{overall - r.auc:.3f}"))
    if p.score_psi is not None:
        for r in p.score_psi.itertuples():
            if r.psi >= cfg.psi_watch:
                out.append(tr("f_psi", lang, as_of=r.as_of, psi=f"{r.psi:.3f}",
                              status=tr(r.status, lang)))
    if p.csi is not None and not p.csi.empty:
        worst = p.csi.sort_values("psi", ascending=False).drop_duplicates("feature")
        for r in worst[worst["psi"] >= cfg.psi_watch].itertuples():
            out.append(tr("f_csi", lang, feature=r.feature, psi=f"{r.psi:.3f}", as_of=r.as_of,
                          status=tr(r.status, lang)))
    bound = p.training_config.get("gate.max_ece")
    if bound is not None and m.get("oot_ece") is not None and m["oot_ece"] > float(bound):
        out.append(tr("f_ece", lang, ece=f"{m['oot_ece']:.4f}", bound=bound))
    if overall is not None:
        for name, auc in ((tr("logreg", lang), m.get("baseline_oot_auc")),
                          (tr("scorecard", lang),
                           p.scorecard[1].get("scorecard_auc") if p.scorecard else None)):
            if auc is not None and auc >= overall:
                out.append(tr("f_challenger", lang, name=name, auc=f"{auc:.3f}",
                              champ=f"{overall:.3f}"))
    for dim in ("region", "main_product", "age_band"):
        spread = m.get(f"oot_auc_spread_{dim}")
        if spread is not None and spread > SEGMENT_SPREAD_FINDING:
            out.append(tr("f_segment", lang, dim=tr(f"dim_{dim}", lang), spread=f"{spread:.3f}"))
    if p.stress is not None:
        for r in p.stress.itertuples():
            if r.change > 0.25:
                out.append(tr("f_stress", lang, scenario=r.scenario, change=f"{r.change:.0%}"))
    if p.scorecard is None and p.report.model == "default_risk":
        out.append(tr("f_scorecard", lang))
    return out


def _limitations(p: PackInputs, lang: str) -> str:
    cfg = default_monitoring_config()
    limits = [tr("lim_postloan", lang), tr("lim_levels", lang, shifted=cfg.psi_shifted),
              tr("lim_window", lang), tr("lim_shap", lang), tr("lim_fair", lang)]
    found = findings(p, lang)
    items = "".join(f"<li>{H.esc(x)}</li>" for x in limits)
    open_ = ("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in found) + "</ul>" if found
             else para(tr("no_findings", lang)))
    return (f"<h3>{H.esc(tr('limits', lang))}</h3><ul>{items}</ul>"
            f"<h3>{H.esc(tr('findings', lang))}</h3>{open_}")


def _version(p: PackInputs, lang: str) -> str:
    r = p.report
    md = r.metadata
    facts = [(tr("registered", lang), r.registered_name or r.model),
             (tr("version", lang), r.version),
             (tr("aliases", lang), "`" + (", ".join(r.aliases) or "-") + "`"),
             (tr("run", lang), r.run_id),
             (tr("git_commit", lang), r.tags.get("git_commit") or md.get("git_commit", "-")),
             (tr("train_hash", lang), r.tags.get("data_content_hash")
              or md.get("data_content_hash", "-")),
             (tr("family", lang), md.get("family", "-")),
             (tr("calibration_method", lang), md.get("calibration", "-"))]
    params = md.get("params", {}) or r.params
    ptab = pd.DataFrame([{"param": k, "value": str(v)} for k, v in sorted(params.items())])
    # Values in `backticks` (aliases) are identifiers, shown as code.
    out = "<dl>" + "".join(f"<dt>{H.esc(k)}</dt><dd>{_inline(str(v))}</dd>"
                           for k, v in facts) + "</dl>"
    if len(ptab):
        out += (f"<h3>{H.esc(tr('params', lang))}</h3>"
                + table(ptab, lang, {"param": "param", "value": "value"}, code_cols=["param"]))
    if p.training_config:
        ctab = pd.DataFrame([{"param": k, "value": str(v)}
                             for k, v in p.training_config.items()])
        out += (f"<h3>{H.esc(tr('config', lang))}</h3>"
                + table(ctab, lang, {"param": "param", "value": "value"},
                        code_cols=["param", "value"]))
    return out


def signoff_table(lang: str, roles: Sequence[str] = ("r_developer", "r_validator", "r_owner",
                                                      "r_committee")) -> str:
    rows = pd.DataFrame([{"role": tr(r, lang), "name": "", "date": "", "decision": "",
                          "signature": ""} for r in roles])
    return para(tr("signoff_text", lang), "muted") + table(
        rows, lang, {"role": "role", "name": "name", "date": "date",
                     "decision": "decision_col", "signature": "signature"}).replace(
        "<td>-</td>", '<td class="sign">&nbsp;</td>')


def render_pack(p: PackInputs, lang: str = "en") -> str:
    """The validation pack of one model as one self-contained HTML page.

    Args:
        p: the content (:class:`PackInputs`).
        lang: ``en`` or ``zh``; every heading, table, figure and sentence follows it.

    Returns:
        HTML with sections :data:`MODEL_SECTIONS` (the ids are anchors).

    Raises:
        ConfigError: unknown language.
    """
    glossary.check_lang(lang)
    r = p.report
    builders = {"purpose": _purpose, "data": _data, "features": _features,
                "performance": _performance, "calibration": _calibration,
                "stability": _stability, "challengers": _challengers,
                "sensitivity": _sensitivity, "segments": _segments, "drivers": _drivers,
                "limitations": _limitations, "version": _version,
                "signoff": lambda _p, lg: signoff_table(lg)}
    sections = [(sid, tr(f"s_{sid}", lang), builders[sid](p, lang)) for sid in MODEL_SECTIONS]
    name = r.registered_name or r.model
    m = r.metrics
    sub = (f"{code(r.model)} | {H.esc(tr('aliases', lang))}: {code(', '.join(r.aliases) or '-')}"
           f" | AUC {H.esc(H.fmt(m.get('oot_auc')))} | {H.esc(tr('run', lang))} "
           f"{code(r.run_id)}")
    return page(tr("pack_title", lang, name=name, version=r.version), sub, sections, lang,
                r.notes)


__all__ = ["MODEL_SECTIONS", "N_BOOT", "PackInputs", "code", "figure", "findings",
           "monthly_performance", "page", "para", "render_pack", "score_psi_by_month",
           "signoff_table", "stress_sensitivity", "table"]


# ----------------------------------------------------------------------- decision layer
DECISION_SECTIONS = ("d_purpose", "d_uplift", "d_replay", "d_rules", "d_capacity",
                     "d_limits", "signoff")

HANDBOOK_RULES: tuple[tuple[str, str, str], ...] = (
    ("test_an_open_complaint_never_triggers_a_payment_reminder",
     "An open complaint never triggers a payment reminder.",
     "有未解决投诉的客户不发送还款提醒。"),
    ("test_regional_stress_and_a_maxed_card_watch_but_do_not_remind_payers",
     "Regional stress or a maxed-out card puts a customer on watch but sends no payment "
     "reminder to a customer who pays.",
     "地区经济压力或信用卡额度用满只加强监测，不向正常还款的客户发送还款提醒。"),
    ("test_pressure_rule_in_the_batch_and_early_warning_response",
     "Pressure rule: when the dissatisfaction probability is at least {p_dis} and the risk "
     "is not severe (probability of default below {pd_sev}), the risk contact is withheld "
     "and a service-recovery call is made instead.",
     "施压规则：不满意概率不低于{p_dis}且风险不严重（违约概率低于{pd_sev}）时，暂缓风险类"
     "联系，改为服务补救回访。"),
    ("test_customers_in_difficulty_are_offered_help_before_collections",
     "Customers in difficulty are offered restructuring or flexible repayment before any "
     "collection step.",
     "对遇到困难的客户，先提供重组或灵活还款方案，再考虑催收。"),
    ("test_learned_net_benefit_best_action_and_no_harmful_contact",
     "Each customer gets the action with the highest positive net benefit, or none: no "
     "contact whose estimated effect does harm.",
     "每位客户只采取净收益最高且为正的动作，否则不联系：不做估计效果有害的联系。"),
    ("test_learned_effects_offer_help_to_a_paying_customer_in_difficulty",
     "A customer who still pays but is in difficulty is offered help.",
     "仍在还款但遇到困难的客户会获得帮助方案。"),
    ("test_service_recovery_only_after_a_service_failure",
     "A service-recovery call only follows a service failure the customer reported (a "
     "complaint, or a survey score of 2 or less).",
     "仅在客户反馈服务问题（投诉或满意度评分不高于2分）后才做服务补救回访。"),
    ("test_no_contact_at_90_days_past_due",
     "No contact at 90 or more days past due: the work-out team takes over.",
     "逾期90天及以上不做联系，移交不良处置团队。"),
    ("test_gate_fallback_decides_on_the_constants_and_says_so",
     "Learned effects decide an action only where the decision gate admitted them; "
     "otherwise the strategy constants decide, and the decision says so.",
     "仅当决策闸门认可时才按学习所得效应决策，否则按策略常数决策，并在决策中注明。"),
    ("test_queue_is_a_view_of_the_decisions",
     "The outreach queue only ranks the decisions: it never changes an action.",
     "联系队列只对决策排序，不改变任何动作。"),
    ("test_capacity_per_action",
     "The queue respects the team's outreach capacity, in total and per action.",
     "联系队列遵守团队联系名额，包括总量和各动作的名额。"),
    ("escalation.dpd_min",
     "Escalation to the work-out team from {dpd} days past due.",
     "逾期{dpd}天起升级至不良处置团队。"),
)
"""(test or setting, English, Chinese) of each handbook rule the strategy enforces."""


@dataclass
class DecisionInputs:
    """What the decision layer's pack shows.

    Attributes:
        uplift: one row per action and outcome: ``action``, ``outcome``, ``version``,
            ``learner``, ``odds_ratio``, ``odds_ratio_lo``, ``odds_ratio_hi``, ``qini``,
            ``qini_se``, ``auuc`` (from the uplift bundles' metrics).
        replay: the policy replay summary (``summary.parquet``), or None.
        replay_as_of: its as-of date.
        strategy: the strategy configuration as a mapping (strategy.yaml).
        gates: one row per action: ``action``, ``decision_basis``, ``difference``,
            ``se``, ``reason``, ``reason_zh`` (each uplift champion's decision gate).
    """

    uplift: pd.DataFrame = field(default_factory=pd.DataFrame)
    replay: pd.DataFrame | None = None
    replay_as_of: str = ""
    strategy: dict = field(default_factory=dict)
    gates: pd.DataFrame = field(default_factory=pd.DataFrame)


def _action_name(action: str, strategy_cfg: dict, lang: str) -> str:
    a = (strategy_cfg.get("actions") or {}).get(action) or {}
    return a.get(lang) or action.replace("_", " ")


def uplift_findings(d: DecisionInputs, lang: str) -> list[str]:
    """Uplift models whose held-out Qini is not reliably above zero (1.645 se)."""
    out = []
    u = d.uplift
    if u.empty:
        return out
    for r in u.itertuples():
        if not H.is_missing(r.qini) and not H.is_missing(r.qini_se) and \
                r.qini < 1.645 * r.qini_se:
            out.append(tr("f_qini", lang, action=f"{_action_name(r.action, d.strategy, lang)}"
                          f" / {r.outcome}", qini=f"{r.qini:.4f} ± {r.qini_se:.4f}"))
    return out


def render_decision_pack(d: DecisionInputs, lang: str = "en") -> str:
    """The decision layer's validation pack (uplift effects, policy replay, the handbook's
    rules, capacities and costs) as one self-contained HTML page in `lang`."""
    glossary.check_lang(lang)
    cfg = d.strategy
    if d.uplift.empty:
        up = para(tr("uplift_missing", lang), "note")
    else:
        u = d.uplift
        rows = pd.DataFrame({
            "action": [_action_name(a, cfg, lang) for a in u["action"]],
            "outcome": u["outcome"], "version": u["version"], "learner": u["learner"],
            "odds_ratio": [_ci(v, lo, hi) for v, lo, hi in zip(
                u["odds_ratio"], u["odds_ratio_lo"], u["odds_ratio_hi"], strict=True)],
            "qini": u["qini"], "qini_se": u["qini_se"], "auuc": u["auuc"]})
        up = para(tr("uplift_text", lang)) + table(
            rows, lang, {"action": "action", "outcome": "outcome", "version": "version",
                         "learner": "learner", "odds_ratio": "odds_ratio", "qini": "qini",
                         "qini_se": "qini_se", "auuc": "auuc"},
            code_cols=["outcome", "learner"])
    if not d.gates.empty:
        g = d.gates
        gates = pd.DataFrame({
            "action": [_action_name(a, cfg, lang) for a in g["action"]],
            "decision_basis": g["decision_basis"], "difference": g["difference"],
            "se": g["se"], "reason": g["reason_zh" if lang == "zh" else "reason"]})
        up += para(tr("gate_text", lang)) + table(
            gates, lang, {"action": "action", "decision_basis": "decision_basis",
                          "difference": "gate_difference", "se": "gate_se",
                          "reason": "gate_reason"}, code_cols=["decision_basis"])
    if d.replay is None or d.replay.empty:
        rep = para(tr("replay_missing", lang), "note")
    else:
        rep = para(tr("replay_text", lang, as_of=d.replay_as_of)) + table(
            d.replay.reset_index(drop=True), lang, code_cols=["policy"])
    oc = cfg.get("outreach") or {}
    pr = oc.get("pressure_rule") or {}
    values = {"p_dis": f"{pr.get('p_dissatisfied_min', float('nan')):.0%}",
              "pd_sev": f"{pr.get('severe_pd_min', float('nan')):.0%}",
              "dpd": (cfg.get("escalation") or {}).get("dpd_min", "-")}
    rules = pd.DataFrame([{"rule": (zh if lang == "zh" else en).format(**values),
                           "test": t} for t, en, zh in HANDBOOK_RULES])
    rules_html = para(tr("rules_text", lang)) + table(rules, lang, {"rule": "rule",
                                                                    "test": "test"},
                                                      code_cols=["test"])
    costs = (cfg.get("uplift") or {}).get("contact_cost") or {}
    per_action = (cfg.get("uplift") or {}).get("capacity_per_action") or {}
    cap = pd.DataFrame([{"action": _action_name(a, cfg, lang), "cost": c,
                         "capacity": per_action.get(a, oc.get("capacity"))}
                        for a, c in costs.items()])
    cap_html = H.dl([(tr("capacity", lang), H.fmt(oc.get("capacity")))])
    if len(cap):
        cap_html += table(cap, lang, {"action": "action", "cost": "cost",
                                      "capacity": "capacity"})
    found = uplift_findings(d, lang)
    limits = para(tr("d_limits", lang)) + (
        "<h3>" + H.esc(tr("findings", lang)) + "</h3>"
        + ("<ul>" + "".join(f"<li>{H.esc(x)}</li>" for x in found) + "</ul>" if found
           else para(tr("no_findings", lang))))
    sections = [("d_purpose", tr("s_d_purpose", lang), para(tr("d_purpose_text", lang))),
                ("d_uplift", tr("s_d_uplift", lang), up),
                ("d_replay", tr("s_d_replay", lang), rep),
                ("d_rules", tr("s_d_rules", lang), rules_html),
                ("d_capacity", tr("s_d_capacity", lang), cap_html),
                ("d_limits", tr("s_d_limits", lang), limits),
                ("signoff", tr("s_signoff", lang), signoff_table(lang))]
    return page(tr("decision_title", lang), code("decisions"), sections, lang)


__all__ += ["DECISION_SECTIONS", "DecisionInputs", "HANDBOOK_RULES", "render_decision_pack",
            "uplift_findings"]
