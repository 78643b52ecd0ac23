"""The model report: one self-contained HTML page per registered model version.

A reviewer (model validation, risk committee, audit) reads it in any browser without
Python or a network: inline CSS, every plot embedded as a base64 PNG data URI, no
script and no external resource (a Content-Security-Policy in the page forbids any).

Pure: :class:`ReportInputs` (DataFrames, dicts and PNG bytes) in, an HTML string out.
``pipelines/report.py`` fetches the inputs from MLflow and the book, calls
:func:`render_report` and writes the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata

import numpy as np
import pandas as pd

from postloan.data.features import CATEGORICAL_FEATURES, FEATURES
from postloan.models import evaluation as ev
from postloan.models import explain
from postloan.models.bundle import MODELS
from postloan.operations.monitoring import PSI_EPS, SCORE, default_monitoring_config
from postloan.reporting import html as H

SECTIONS = (
    ("intended-use", "Intended use and limits"),
    ("data", "Data"),
    ("features", "Features and monotone constraints"),
    ("performance", "Out-of-time performance"),
    ("segments", "Performance by segment"),
    ("explanations", "Global explanations"),
    ("reason-codes", "Reason-code catalogue"),
    ("stability", "Stability"),
    ("promotion", "Promotion history"),
)
"""(id, title) of every report section, in page order; the ids are HTML anchors."""
SECTION_IDS = tuple(s for s, _ in SECTIONS)

INTENDED_USE = {
    "default_risk": (
        "Estimates, for every customer with an open loan, the probability of becoming "
        "seriously delinquent (90+ days past due on any loan) within 12 months of the "
        "as-of date. It feeds the risk grade, expected loss (PD x LGD x EAD), the "
        "early-warning level and the outreach queue (payment reminders, restructuring "
        "offers)."),
    "churn": (
        "Estimates, for every customer with an open loan, the probability of leaving "
        "within 6 months: no open loan left (prepaid and closed, or not renewed) without "
        "a default in between. It feeds the retention offers of the outreach queue."),
    "satisfaction": (
        "Estimates, for every customer with an open loan, the probability of being "
        "dissatisfied within 3 months: a complaint or a survey score of 2 or less. It "
        "feeds service-recovery calls and the pressure rule that holds back risk "
        "contacts from customers likely to be unhappy with them."),
}
LABEL_DEFINITIONS = {
    "default_12m": (
        "1 if any of the customer's loans reaches 90+ days past due in the 12 months "
        "after the as-of date, else 0; missing (not used) if the customer is already "
        "90+ days past due at the as-of date or the 12 months run past the data."),
    "churn_6m": (
        "1 if the customer has no open loan 6 months after the as-of date (closed early "
        "or not renewed) with no 90+ days past due or charge-off in between and was not "
        "in default at the as-of date, else 0; missing where the 6 months run past the "
        "data."),
    "dissatisfied_3m": (
        "1 if the customer files a complaint or answers a survey with an overall score "
        "of 2 or less in the 3 months after the as-of date, else 0; missing where the 3 "
        "months run past the data."),
}
LIMITS = (
    "Post-loan use only: the model scores customers who already hold a loan. It was "
    "not built or validated for credit approval at origination.",
    "Probabilities are calibrated on held-out customers at the training and validation "
    "dates. When the portfolio or the economy moves (see the stability section), the "
    "ranking usually holds longer than the probability levels: re-check calibration "
    "before relying on levels, and re-validate when the score PSI exceeds 0.25.",
    "The out-of-time test covers the as-of dates listed in the data section only; the "
    "model has not been tested on later months or under a macro shock.",
    "Explanations (SHAP contributions, reason codes) describe how the model uses its "
    "inputs, not what causes the outcome. Reason codes are for conversations with "
    "customers; review them before using them in any formal notice.",
    "Age and region are model inputs. Where they are protected characteristics, local "
    "fair-lending rules apply: the segment section shows discrimination and calibration "
    "by age band and region.",
    "Monotone constraints hold only for the features listed with a direction; every "
    "other feature may act non-monotonically.",
    "Segments with fewer than 50 out-of-time rows or a single class have no AUC.",
)

_METRIC_ROWS = (
    ("auc", "AUC"), ("gini", "Gini"), ("ks", "KS"), ("brier", "Brier score"),
    ("log_loss", "Log loss"), ("ece", "Calibration error (ECE)"),
    ("top_decile_lift", "Top-decile lift"), ("top_decile_capture", "Top-decile capture"),
    ("base_rate", "Base rate"), ("mean_pred", "Mean prediction"), ("n", "Rows"),
    ("n_pos", "Positives"),
)
_HIGHER_IS_BETTER = {"auc", "gini", "ks", "top_decile_lift", "top_decile_capture"}


@dataclass
class ReportInputs:
    """Everything a model report shows, gathered by the caller (no I/O here).

    Attributes:
        model: ``default_risk``, ``churn`` or ``satisfaction``.
        version: registered version.
        metadata: the bundle's training metadata (splits, n_rows, monotone, metrics,
            top_features, label, params, calibration, best_iteration).
        run_id: MLflow run of the version.
        metrics: the run's metrics (``oot_*``, ``baseline_oot_*``, ``oracle_*``...).
        params: the run's params.
        tags: the run's tags (``git_commit``, ``data_content_hash``, ``data_seed``).
        tables: the run's evaluation tables by name (``calibration_oot``, ``lift_oot``,
            ``segments_oot``, ``shap_importance``, ``baseline_coefficients``).
        images: the run's PNG plots by file name (``roc.png``, ``ks.png``,
            ``calibration.png``, ``lift.png``, ``shap_summary.png``, ``shap_bar.png``).
        dependence: PNG dependence plots by feature, in display order.
        stability: :func:`postloan.operations.monitoring.stability_table` output, or None when not computed.
        stability_png: PNG of :func:`postloan.reporting.figures.psi_figure`, or None.
        stability_dates: as-of dates of the PSI reference and current samples.
        explained_rows: rows and as-of dates of the sample behind the dependence plots.
        reason_examples: feature -> an example value (the OOT median, the most frequent
            category) to show each reason text filled in.
        registered_name: the registry name.
        aliases: aliases pointing at this version.
        versions: every version of the registered model: ``version``, ``run_id``,
            ``aliases``, ``created`` and its tags.
        champion_history: the registered model's ``champion_history`` entries.
        manifest: the manifest of the book used for the stability and dependence
            computations (None if none was read).
        notes: warnings to show at the top of the report (e.g. book mismatch).
        generated_at: ISO timestamp (default: now, UTC).
    """

    model: str
    version: str
    metadata: dict
    run_id: str
    metrics: dict[str, float]
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    dependence: dict[str, bytes] = field(default_factory=dict)
    stability: pd.DataFrame | None = None
    stability_png: bytes | None = None
    stability_dates: dict[str, list[str]] = field(default_factory=dict)
    explained_rows: dict[str, object] = field(default_factory=dict)
    reason_examples: dict[str, float] = field(default_factory=dict)
    registered_name: str = ""
    aliases: list[str] = field(default_factory=list)
    versions: list[dict] = field(default_factory=list)
    champion_history: list[dict] = field(default_factory=list)
    manifest: dict | None = None
    notes: list[str] = field(default_factory=list)
    generated_at: str = ""

def _section(sid: str, body: str) -> str:
    n = SECTION_IDS.index(sid) + 1
    title = dict(SECTIONS)[sid]
    return f'<section id="{sid}"><h2>{n}. {H.esc(title)}</h2>\n{body}\n</section>'


def _dates(values: Iterable[str]) -> str:
    v = list(values)
    if not v:
        return "-"
    return v[0] if len(v) == 1 else f"{v[0]} .. {v[-1]} ({len(v)} month ends)"


def _intended_use(inp: ReportInputs) -> str:
    label = inp.metadata.get("label", MODELS.get(inp.model, ""))
    limits = "".join(f"<li>{H.esc(t)}</li>" for t in LIMITS)
    synthetic = ""
    if inp.manifest and str(inp.manifest.get("generator", "")).startswith("postloan.simulation"):
        synthetic = ('<p class="note">The book behind this model is synthetic '
                     "(postloan.simulation): the numbers show the method, not a real "
                     "portfolio.</p>")
    return (f"<p>{H.esc(INTENDED_USE.get(inp.model, ''))}</p>"
            f"<p><b>Predicts</b> <code>{H.esc(label)}</code>: {H.esc(LABEL_DEFINITIONS.get(label, ''))}"
            "</p><p><b>Users</b>: risk, retention and service teams through the batch "
            "scores, early warnings and the outreach queue; the HTTP scoring service for "
            "other systems; reviewers through this report.</p>"
            f"{synthetic}<h3>Limits</h3><ul>{limits}</ul>")


def _data(inp: ReportInputs) -> str:
    md = inp.metadata
    splits, n_rows = md.get("splits", {}), md.get("n_rows", {})
    label = md.get("label", "")
    rows = pd.DataFrame([{"split": k, "as-of dates": _dates(splits.get(k, [])),
                          "rows (labelled)": n_rows.get(k, np.nan)}
                         for k in ("train", "valid", "oot")])
    hold = ("Training uses 4 of 5 customers at the training dates; validation (early "
            "stopping and calibration) the fifth customer at the training and validation "
            "dates, so no customer's outcome is in both. The out-of-time split holds every "
            "customer at later dates.")
    m = inp.metrics
    facts = [("label", f"{label}: {LABEL_DEFINITIONS.get(label, '')}"),
             ("OOT base rate", H.fmt(m.get("oot_base_rate"), "pct")),
             ("training data hash (run tag)", inp.tags.get("data_content_hash", "-") or "-"),
             ("data seed (run tag)", inp.tags.get("data_seed", "-") or "-"),
             ("git commit (run tag)", inp.tags.get("git_commit", "-")),
             ("MLflow run", inp.run_id)]
    book = ""
    if inp.manifest:
        mf = inp.manifest
        facts.append(("book manifest hash", mf.get("content_hash", "-")))
        if mf.get("start") and mf.get("end"):
            facts.append(("book window", f"{mf['start']} .. {mf['end']}"))
        if mf.get("generator") or mf.get("seed") is not None:
            facts.append(("book generator", f"{mf.get('generator', 'unknown')} "
                          f"(seed {mf.get('seed', '-')})"))
        counts = pd.DataFrame([{"table": k, "rows": int(v.get("rows", 0))}
                               for k, v in sorted(mf.get("tables", {}).items())])
        if len(counts):
            book = "<h3>Book tables (manifest)</h3>" + H.table(counts)
    return (H.table(rows) + f'<p class="muted">{H.esc(hold)}</p>' + H.dl(facts) + book)


def _features(inp: ReportInputs) -> str:
    mono = {k: int(v) for k, v in (inp.metadata.get("monotone") or {}).items()}
    imp = inp.tables.get("shap_importance")
    rank = ({f: i + 1 for i, f in enumerate(imp["feature"])} if imp is not None else {})
    words = {1: "+1: never lowers the score as it rises", -1: "-1: never raises the score as "
             "it rises"}
    rows = pd.DataFrame([{"feature": f.name, "kind": f.kind, "description": f.description,
                          "monotone": words.get(mono.get(f.name, 0), ""),
                          "SHAP rank": rank.get(f.name, np.nan)} for f in FEATURES])
    constrained = rows[rows["monotone"] != ""]
    if len(constrained):
        head = ("<h3>Monotone constraints</h3>"
                + H.table(constrained[["feature", "monotone", "description"]]))
    else:
        head = "<p>No monotone constraint: every feature may act in either direction.</p>"
    p = inp.metadata.get("params", {})
    facts = [("features", f"{len(FEATURES)} ({len(CATEGORICAL_FEATURES)} categorical, fixed "
              "codes)"),
             ("learner", f"LightGBM, {inp.metadata.get('best_iteration', '?')} trees "
              f"(early stopping), {p.get('num_leaves', '?')} leaves, learning rate "
              f"{p.get('learning_rate', '?')}"
              if inp.metadata.get("family", "lightgbm") == "lightgbm" else
              "the logistic baseline ("
              f"{inp.metadata.get('family_reason', 'chosen over LightGBM')}); "
              "contributions are coefficient x (value - training mean)"),
             ("calibration", inp.metadata.get("calibration", "-")),
             ("baseline", "logistic regression on the same features (clipped, log money, "
              "imputed with missing flags, standardised; one-hot categories)"),
             ("personal data", "none: names, phones, ID numbers and addresses are stored "
              "apart and never features")]
    return (H.dl(facts) + head + "<details><summary>All features</summary>"
            + H.table(rows, {"SHAP rank": "int"}) + "</details>")


def _performance(inp: ReportInputs) -> str:
    m = inp.metrics
    rows = []
    for key, name in _METRIC_ROWS:
        lg, bl = m.get(f"oot_{key}"), m.get(f"baseline_oot_{key}")
        diff = (lg - bl) if lg is not None and bl is not None else None
        fmt = "pct" if key in ("base_rate", "mean_pred", "top_decile_capture") else (
            "int" if key in ("n", "n_pos") else "auto")
        better = ""
        if diff is not None and key not in ("base_rate", "mean_pred", "n", "n_pos"):
            better = "LightGBM" if (diff > 0) == (key in _HIGHER_IS_BETTER) else "baseline"
            if diff == 0:
                better = "equal"
        rows.append({"metric": name, "LightGBM": H.fmt(lg, fmt),
                     "logistic baseline": H.fmt(bl, fmt),
                     "difference": "-" if diff is None else f"{diff:+.4f}", "better": better})
    table = H.table(pd.DataFrame(rows))
    if "oracle_auc" in m:
        oracle = H.dl([("oracle AUC (true probabilities of the simulator)",
                       H.fmt(m.get("oracle_auc"))),
                      ("model AUC on the same rows", H.fmt(m.get("model_auc_on_oracle_rows"))),
                      ("oracle ratio (model / oracle)", H.fmt(m.get("oracle_ratio"), "pct"))])
        oracle = ("<h3>Against the oracle</h3><p>The simulator knows each customer's true "
                  "probability; no model can rank better than it on average.</p>" + oracle)
    else:
        oracle = ("<h3>Against the oracle</h3><p>No truth table: the oracle ratio exists "
                  "only for simulated books.</p>")
    figs = '<div class="figs">' + "".join([
        H.img(inp.images.get("roc.png"), "ROC curve",
             "ROC, LightGBM and baseline (OOT)"),
        H.img(inp.images.get("ks.png"), "KS plot", "KS: cumulative score distributions"),
        H.img(inp.images.get("lift.png"), "Lift chart", "Lift by score decile"),
        H.img(inp.images.get("calibration.png"), "Calibration plot",
             "Calibration: observed rate against mean prediction per decile"),
    ]) + "</div>"
    cal = inp.tables.get("calibration_oot")
    lift = inp.tables.get("lift_oot")
    cal_html = (H.table(cal, {"observed_rate": "pct", "mean_pred": "pct"}) if cal is not None
                else "<p>not logged</p>")
    lift_html = (H.table(lift, {"bad_rate": "pct", "cum_capture": "pct"}) if lift is not None
                 else "<p>not logged</p>")
    extra = H.dl([("validation AUC (picks the family)",
                   f"LightGBM {H.fmt(m.get('lightgbm_valid_auc', m.get('valid_auc')))}, "
                   f"logistic {H.fmt(m.get('baseline_valid_auc'))}"),
                  ("family", inp.metadata.get("family_reason", inp.metadata.get("family", "-"))),
                  ("trees", H.fmt(m.get("best_iteration"), "int"))])
    return (f"<p>Out-of-time as-of dates: {H.esc(_dates(inp.metadata.get('splits', {}).get('oot', [])))}."
            "</p>" + table + extra + oracle + "<h3>Plots</h3>" + figs
            + "<h3>Calibration table (OOT)</h3>" + cal_html
            + "<h3>Lift table (OOT)</h3>" + lift_html)


def _segments(inp: ReportInputs) -> str:
    seg = inp.tables.get("segments_oot")
    if seg is None or seg.empty:
        return "<p>Segment metrics were not logged for this run.</p>"
    parts, summary = [], []
    for dim, t in seg.groupby("dimension", sort=False):
        t = t.reset_index(drop=True)
        d = ev.disparity_summary(t)
        ok = t.dropna(subset=["auc"])
        worst = ok.loc[ok["auc"].idxmin(), "segment"] if len(ok) else "-"
        best = ok.loc[ok["auc"].idxmax(), "segment"] if len(ok) else "-"
        gap = (t["mean_pred"] - t["base_rate"]).abs()
        summary.append({"dimension": dim, "segments": len(t), "with AUC": len(ok),
                        "AUC spread": d["auc_spread"], "lowest AUC": worst,
                        "highest AUC": best,
                        "calibration gap spread": d["calibration_gap_spread"],
                        "largest |mean pred - rate|": float(gap.max()) if len(gap) else np.nan})
        parts.append(f"<h3>By {H.esc(dim.replace('_', ' '))}</h3>"
                     + H.table(t.drop(columns=["dimension"]).assign(
                         gap=t["mean_pred"] - t["base_rate"]),
                         {"base_rate": "pct", "mean_pred": "pct", "gap": "pct"}))
    return ("<p>Discrimination (AUC) and calibration (mean prediction against the observed "
            "rate) of the OOT sample by region, main product and age band. The spreads are "
            "max - min over segments; a large spread means the model serves some groups "
            "worse.</p><h3>Disparity summary</h3>" + H.table(pd.DataFrame(summary))
            + "".join(parts))


def _explanations(inp: ReportInputs) -> str:
    imp = inp.tables.get("shap_importance")
    imp_html = (H.table(imp.head(15).reset_index(drop=True)) if imp is not None
                else "<p>not logged</p>")
    deps = "".join(H.img(png, f"SHAP dependence plot of {f}", f"Dependence: {f}")
                   for f, png in inp.dependence.items())
    rows = inp.explained_rows
    where = (f"{H.fmt(rows.get('n'), 'int')} customers sampled at the OOT dates "
             f"{_dates(rows.get('dates', []))}") if rows else "an OOT sample"
    coef = inp.tables.get("baseline_coefficients")
    coef_html = ""
    if coef is not None and "coefficient" in coef.columns:
        c = coef.reindex(coef["coefficient"].abs().sort_values(ascending=False).index).head(20)
        coef_html = ("<details><summary>Baseline: largest logistic coefficients "
                     "(standardised scale)</summary>" + H.table(c.reset_index(drop=True))
                     + "</details>")
    return ("<p>Contributions are TreeSHAP values in log-odds: for each customer they add "
            "up, with the base value, to the model's raw score.</p>"
            '<div class="figs">'
            + H.img(inp.images.get("shap_summary.png"), "SHAP summary",
                   "SHAP summary (training run's OOT sample): one dot per customer, colour "
                   "= feature value rank")
            + H.img(inp.images.get("shap_bar.png"), "SHAP importance",
                   "Mean |SHAP| per feature") + "</div>"
            + "<h3>Mean |SHAP| (top 15)</h3>" + imp_html
            + f"<h3>Dependence plots of the top features</h3><p class=\"muted\">From {H.esc(where)}."
            "</p>" + (f'<div class="figs">{deps}</div>' if deps else
                      '<p class="note">Dependence plots were not computed.</p>')
            + coef_html)


def _reason_codes(inp: ReportInputs) -> str:
    table = explain.reason_table()
    imp = inp.tables.get("shap_importance")
    order = list(imp["feature"]) if imp is not None else []
    names = [*order, *[f.name for f in FEATURES if f.name not in order]]
    rows = []
    for f in names:
        own = table.get(inp.model, {}).get(f)
        entry = own or table["base"].get(f)
        if entry is None:
            continue
        ex_en = ex_zh = ""
        if f in inp.reason_examples:
            v = inp.reason_examples[f]
            try:
                ex_en = explain.reason_text(inp.model, f, v, "en")
                ex_zh = explain.reason_text(inp.model, f, v, "zh")
            except (ValueError, KeyError, IndexError):  # a value the template cannot show
                ex_en = ex_zh = ""
        rows.append({"feature": f, "wording": f"{inp.model} override" if own else "base",
                     "English": entry.get("en", ""), "中文": entry.get("zh", ""),
                     "when missing": " / ".join(x for x in (entry.get("missing_en"),
                                                            entry.get("missing_zh")) if x),
                     "example (typical OOT customer)": f"{ex_en} / {ex_zh}" if ex_en else ""})
    return ("<p>A customer's reason codes are the features with the largest SHAP "
            "contributions (up: raising the score; down: lowering it), each said with the "
            "customer's own value in English and Chinese. Placeholders: {value} is the "
            "number, {label} a category's name. Features are listed by importance.</p>"
            + H.table(pd.DataFrame(rows)))


def _stability(inp: ReportInputs) -> str:
    if inp.stability is None:
        return ('<p class="note">Stability was not computed (no book was given to the '
                "report).</p>")
    d = inp.stability_dates
    t = inp.stability.copy()
    score = t[t["variable"] == SCORE]
    verdict = ""
    if len(score):
        v = float(score["psi"].iloc[0])
        verdict = f"<p><b>Score PSI {v:.4f}: {H.esc(score['status'].iloc[0])}.</b></p>"
    cfg = default_monitoring_config()
    return (f"<p>Reference: the customers at the training as-of dates "
            f"({H.esc(_dates(d.get('reference', [])))}); current: the customers at the OOT "
            f"as-of dates ({H.esc(_dates(d.get('current', [])))}). PSI = sum over bins of "
            "(current share - reference share) x ln(current share / reference share), "
            "with 10 bins at the reference's quantiles (one per category for categorical "
            f"features, one for missing values) and {PSI_EPS} for an empty bin. Bands: "
            f"&lt; {cfg.psi_watch} stable, {cfg.psi_watch}-{cfg.psi_shifted} watch, "
            f"&gt; {cfg.psi_shifted} shifted.</p>" + verdict
            + H.table(t, {"ref_missing": "pct", "cur_missing": "pct", "n_bins": "int"},
                     status_col="status")
            + '<div class="figs">' + H.img(inp.stability_png, "PSI bar chart",
                                          "PSI of the score and the top features") + "</div>")


_GATE_COLUMNS = (("gate_promoted", "promoted"), ("gate_reason", "reason"),
                 ("gate_challenger_auc", "OOT AUC"), ("gate_champion_version", "champion then"),
                 ("gate_champion_auc", "champion OOT AUC"),
                 ("gate_challenger_ece", "OOT ECE"), ("gate_auc_tolerance", "AUC tolerance"),
                 ("gate_max_ece", "max ECE"), ("promoted_at", "promoted at"))


def _tag(value: object) -> str:
    """A gate tag (always text in MLflow) shown readably: numbers rounded, None as '-'."""
    if value is None or str(value) in ("", "None", "nan"):
        return "-"
    text = str(value)
    if text in ("True", "False"):
        return "yes" if text == "True" else "no"
    try:
        number = float(text)
    except ValueError:
        return text
    return text if number.is_integer() and "." not in text else f"{number:.4f}"


def _promotion(inp: ReportInputs) -> str:
    this = next((v for v in inp.versions if str(v.get("version")) == str(inp.version)), None)
    parts = []
    if this is not None:
        tags = this.get("tags", {})
        parts.append("<h3>This version's gate decision</h3>" + H.dl(
            [(label, _tag(tags.get(k))) for k, label in _GATE_COLUMNS]))
    else:
        parts.append("<p>This version has no gate decision recorded.</p>")
    if inp.versions:
        rows = []
        for v in sorted(inp.versions, key=lambda v: int(v["version"])):
            tags = v.get("tags", {})
            rows.append({"version": f"v{v['version']}", "aliases": ", ".join(v.get("aliases", [])),
                         "created": v.get("created", ""),
                         **{label: _tag(tags.get(k)) for k, label in _GATE_COLUMNS},
                         "run": v.get("run_id", "")})
        parts.append("<h3>Every version of the registered model</h3>" + H.table(
            pd.DataFrame(rows), highlight=[r["version"] == f"v{inp.version}" for r in rows]))
    if inp.champion_history:
        h = pd.DataFrame(inp.champion_history)
        cols = [c for c in ("at", "version", "previous", "reason") if c in h.columns]
        parts.append("<h3>Champion history</h3>" + H.table(h[cols]))
    else:
        parts.append("<p>No champion change recorded yet.</p>")
    gate = ("The promotion gate makes a new version champion only if its OOT AUC is not "
            "worse than the champion's by more than the tolerance and its calibration error "
            "is within bound; every decision and its numbers are kept as version tags.")
    return f"<p>{H.esc(gate)}</p>" + "".join(parts)


def render_report(inp: ReportInputs) -> str:
    """Render the model report as one self-contained HTML page.

    Args:
        inp: the report's content (see :class:`ReportInputs`).

    Returns:
        The HTML text: inline CSS, plots as ``data:image/png;base64`` URIs, no script and
        no external resource. Sections carry the ids of :data:`SECTION_IDS`.
    """
    when = inp.generated_at or datetime.now(UTC).isoformat(timespec="seconds")
    name = inp.registered_name or inp.model
    try:
        version = importlib_metadata.version("postloan")
    except importlib_metadata.PackageNotFoundError:
        version = "unknown"
    body = {
        "intended-use": _intended_use(inp), "data": _data(inp), "features": _features(inp),
        "performance": _performance(inp), "segments": _segments(inp),
        "explanations": _explanations(inp), "reason-codes": _reason_codes(inp),
        "stability": _stability(inp), "promotion": _promotion(inp),
    }
    notes = "".join(f'<p class="note">{H.esc(n)}</p>' for n in inp.notes)
    toc = "".join(f'<li><a href="#{sid}">{H.esc(title)}</a></li>' for sid, title in SECTIONS)
    aliases = ", ".join(inp.aliases) or "none"
    m = inp.metrics
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{H.CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model report: {H.esc(name)} v{H.esc(inp.version)}</title>
<style>{H.CSS}</style>
</head>
<body>
<header>
<h1>Model report: {H.esc(name)} v{H.esc(inp.version)}</h1>
<p>{H.esc(inp.model)} | aliases: {H.esc(aliases)} | OOT AUC {H.esc(H.fmt(m.get('oot_auc')))} (baseline
{H.esc(H.fmt(m.get('baseline_oot_auc')))}) | MLflow run {H.esc(inp.run_id)}</p>
<p>Generated {H.esc(when)} by postloan {H.esc(version)}; self-contained: readable offline.</p>
</header>
<nav id="contents"><ol>{toc}</ol></nav>
<main>
{notes}
{chr(10).join(_section(sid, body[sid]) for sid in SECTION_IDS)}
</main>
<footer>postloan model report. Figures are embedded PNG images; no network access is
needed or allowed by this page.</footer>
</body>
</html>
"""


__all__ = ["INTENDED_USE", "LABEL_DEFINITIONS", "LIMITS", "ReportInputs", "SECTIONS",
           "SECTION_IDS", "render_report"]
