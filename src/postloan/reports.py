"""Reviewer-facing model reports, and the tables and figures behind them.

A model report is one self-contained HTML page per registered model version that a
reviewer (model validation, risk committee, audit) reads in any browser without
Python or a network: inline CSS, every plot embedded as a base64 PNG data URI, no
script and no external resource (a Content-Security-Policy in the page forbids any).

Everything here is pure: DataFrames, dicts and PNG bytes in, DataFrames, figures,
numbers or an HTML string out. ``pipelines/report.py`` fetches the inputs from MLflow
and the book, calls :func:`render_report` and writes the file.

Also here, because reviewers and data scientists look at the same things:

- :func:`psi` / :func:`psi_table` / :func:`stability_table`: population stability;
- :func:`dependence_figure`, :func:`waterfall_figure`, :func:`psi_figure`: SHAP
  dependence, one customer's SHAP waterfall, PSI bars;
- :func:`vintage_curves`, :func:`roll_rate_matrix`, :func:`dpd_distribution`: the
  portfolio tables of ``notebooks/01_portfolio.ipynb``.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from postloan import evaluation as ev
from postloan import explain
from postloan import schema as S
from postloan.bundle import MODELS, ModelBundle
from postloan.errors import DataValidationError
from postloan.features import CATEGORICAL_FEATURES, FEATURES

log = logging.getLogger(__name__)

# PSI lives in postloan.monitoring (one implementation for reports and monitoring).
from postloan.monitoring import (  # noqa: E402
    PSI_EPS,
    PSI_SHIFTED,
    PSI_STABLE,
    psi,
    psi_bins,
    psi_status,
    psi_table,
)

SCORE = "score"


def stability_table(bundle: ModelBundle, reference: pd.DataFrame, current: pd.DataFrame,
                    features: Sequence[str], n_bins: int = 10) -> pd.DataFrame:
    """PSI of a model's score and of some of its features between two snapshot sets.

    Args:
        bundle: the model.
        reference: snapshot rows at the reference dates (e.g. the training as-of dates).
        current: snapshot rows at the dates compared (e.g. the OOT as-of dates).
        features: feature names to compare besides the score (categorical features are
            binned by category).
        n_bins: quantile bins.

    Returns:
        :func:`psi_table` output whose first row is ``score`` (the calibrated
        probability), followed by `features`.
    """
    X_ref, X_cur = bundle.features(reference), bundle.features(current)
    ref = X_ref[list(features)].assign(**{SCORE: bundle.predict_features(X_ref)})
    cur = X_cur[list(features)].assign(**{SCORE: bundle.predict_features(X_cur)})
    return psi_table(ref, cur, [SCORE, *features],
                     categorical=[f for f in features if f in CATEGORICAL_FEATURES],
                     n_bins=n_bins)


def explanation_sample(bundle: ModelBundle, snapshot: pd.DataFrame, n: int = 2000,
                       seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and TreeSHAP contributions of a seeded sample of snapshot rows.

    Returns:
        ``(X, contrib)`` for ``min(n, len(snapshot))`` rows (contrib has a ``bias``
        column; rows sum to the raw margin).
    """
    if len(snapshot) == 0:
        raise DataValidationError("snapshot", "no rows to explain")
    idx = np.sort(np.random.default_rng(seed).choice(len(snapshot), min(n, len(snapshot)),
                                                     replace=False))
    X = bundle.features(snapshot.iloc[idx])
    return X, explain.contributions(bundle.booster, X)


# --------------------------------------------------------------------------- figures
def _num(x: float) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return f"{x:.4g}"


def _figure(figsize: tuple[float, float]) -> tuple[Figure, object]:
    # Object-oriented figures, as in postloan.plots: no pyplot state, no GUI backend.
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    return fig, ax


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A figure rendered as PNG bytes (nothing written to disk)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _category_label(feature: str, code: float) -> str:
    vocab = S.CATEGORY_VOCABULARIES.get(feature, ())
    i = int(code)
    return vocab[i] if 0 <= i < len(vocab) else str(code)


def dependence_figure(contrib: pd.DataFrame, X: pd.DataFrame, feature: str,
                      title: str | None = None) -> Figure:
    """SHAP dependence plot: each dot a customer, feature value against its contribution.

    Categorical features are drawn at their category positions (jittered) with the
    category names as ticks. Rows where the feature is missing are left out and
    counted in the title, because LightGBM routes them to one side of each split.

    Args:
        contrib: TreeSHAP contributions (log-odds) of the rows of `X`.
        X: feature values.
        feature: the feature to plot.
        title: figure title (default: the feature name).

    Returns:
        The figure.
    """
    if feature not in X.columns or feature not in contrib.columns:
        raise DataValidationError("explanations", "unknown feature", feature)
    x = X[feature].to_numpy(dtype="float64")
    c = contrib[feature].to_numpy(dtype="float64")
    ok = ~np.isnan(x)
    fig, ax = _figure((5.2, 3.8))
    if feature in CATEGORICAL_FEATURES:
        rng = np.random.default_rng(0)  # jitter only; fixed for a reproducible figure
        ax.scatter(x[ok] + rng.uniform(-0.25, 0.25, ok.sum()), c[ok], s=5, alpha=0.4)
        codes = sorted(set(x[ok].astype(int).tolist()))
        ax.set_xticks(codes, [_category_label(feature, k) for k in codes], rotation=30,
                      ha="right")
    else:
        ax.scatter(x[ok], c[ok], s=5, alpha=0.4)
    ax.axhline(0, c="grey", lw=1)
    n_missing = int((~ok).sum())
    head = title or feature
    if n_missing:
        head += f" ({n_missing} missing not shown)"
    ax.set(title=head, xlabel=f"{feature} (value)", ylabel="Contribution to log-odds")
    return fig


def waterfall_figure(contrib: pd.Series, values: pd.Series, title: str = "SHAP waterfall",
                     top: int = 10, probability: float | None = None) -> Figure:
    """One customer's SHAP waterfall: from the model's base value to its raw score.

    Bars run from the base value (``bias``, the average log-odds) through the `top`
    largest contributions (by absolute size; the rest summed in one bar) to the
    customer's raw margin. Red pushes the score up, blue down.

    Args:
        contrib: one row of :func:`postloan.explain.contributions` (with ``bias``).
        values: the customer's feature values (same feature names).
        title: figure title.
        top: contributions shown one by one.
        probability: the calibrated probability, added to the title when given.

    Returns:
        The figure.
    """
    bias = float(contrib[explain.BIAS])
    parts = contrib.drop(explain.BIAS).astype("float64")
    order = parts.abs().sort_values(ascending=False, kind="stable").index
    shown = list(order[:top])
    rest = float(parts.drop(shown).sum())
    labels, deltas = [], []
    for f in shown:
        v = values.get(f, np.nan)
        if pd.isna(v):
            text = "missing"
        elif f in CATEGORICAL_FEATURES:
            text = _category_label(f, v)
        else:
            text = f"{float(v):,.0f}" if abs(float(v)) >= 10_000 else f"{float(v):.4g}"
        labels.append(f"{f} = {text}")
        deltas.append(float(parts[f]))
    if len(order) > top:
        labels.append(f"{len(order) - top} other features")
        deltas.append(rest)
    n = len(deltas)
    fig, ax = _figure((7.5, 0.42 * n + 1.8))
    start = bias
    for i, d in enumerate(deltas):
        y = n - 1 - i
        ax.barh(y, d, left=start, color="#c0392b" if d > 0 else "#2e6fba", height=0.6)
        ax.text(start + d, y, f" {d:+.3f}", va="center", ha="left" if d > 0 else "right",
                fontsize=8)
        start += d
    margin = start
    ax.axvline(bias, c="grey", lw=1, ls="--")
    ax.axvline(margin, c="black", lw=1)
    ax.set_yticks(range(n), list(reversed(labels)))
    raw_p = 1.0 / (1.0 + math.exp(-margin))
    sub = f"base {bias:+.3f} -> raw score {margin:+.3f} (p={raw_p:.3f} before calibration)"
    if probability is not None:
        sub += f"; calibrated p={probability:.3f}"
    ax.set(title=f"{title}\n{sub}", xlabel="Log-odds")
    ax.title.set_fontsize(9)
    return fig


def psi_figure(table: pd.DataFrame, title: str = "Population stability (PSI)") -> Figure:
    """Horizontal PSI bars with the 0.1 and 0.25 bands."""
    t = table.iloc[::-1]
    colours = {"stable": "#2e8b57", "watch": "#e0a100", "shifted": "#c0392b", "n/a": "grey"}
    fig, ax = _figure((6.5, 0.32 * len(t) + 1.6))
    ax.barh(t["variable"], t["psi"], color=[colours[s] for s in t["status"]])
    ax.axvline(PSI_STABLE, c="#e0a100", ls="--", lw=1, label=f"watch ({PSI_STABLE})")
    ax.axvline(PSI_SHIFTED, c="#c0392b", ls="--", lw=1, label=f"shifted ({PSI_SHIFTED})")
    ax.set(title=title, xlabel="PSI", xlim=(0, max(0.3, float(t["psi"].max()) * 1.1)))
    ax.legend(loc="lower right")
    return fig


# --------------------------------------------------------------------------- portfolio
DPD_BUCKETS = ("current", "1-29", "30-59", "60-89", "90+")
"""Labels of :data:`postloan.schema.DPD_BUCKET_EDGES` (0, 1, 30, 60, 90)."""


def dpd_bucket(dpd: pd.Series | np.ndarray) -> pd.Categorical:
    """Days past due as an ordered bucket: current, 1-29, 30-59, 60-89, 90+."""
    codes = np.searchsorted(np.asarray(S.DPD_BUCKET_EDGES[1:]), np.asarray(dpd, dtype="float64"),
                            side="right")
    return pd.Categorical.from_codes(codes, categories=list(DPD_BUCKETS), ordered=True)


def _month_index(d: pd.Series) -> np.ndarray:
    d = pd.to_datetime(d)
    return (d.dt.year * 12 + d.dt.month).to_numpy(dtype="int64")


def vintage_curves(loans: pd.DataFrame, repayments: pd.DataFrame, dpd_min: int = 30,
                   freq: str = "Q") -> pd.DataFrame:
    """Cumulative share of each origination cohort's loans that reached `dpd_min`+ DPD.

    A loan's months on book (MOB) count from its origination month to the statement
    month. The share at MOB k is (loans first reaching `dpd_min`+ DPD at MOB <= k) /
    (all loans of the cohort): loans repaid early stay in the denominator as good.
    Only cohorts originated inside the repayment panel are shown (older loans were not
    observed from MOB 0), and a cohort's curve stops at the last MOB that every one of
    its loans could have reached by the last statement.

    Args:
        loans: the ``loans`` table.
        repayments: the ``repayments`` table.
        dpd_min: days past due that count as bad (30 or 90 are usual).
        freq: cohort period (``"Q"`` quarters, ``"M"`` months, ``"Y"`` years).

    Returns:
        Frame indexed by cohort (period as text), one column per MOB (0, 1, ...),
        NaN beyond what is observed; plus ``n_loans``.
    """
    first_stmt = pd.to_datetime(repayments["statement_date"]).min()
    last_month = int(_month_index(pd.Series([repayments["statement_date"].max()]))[0])
    ln = loans[pd.to_datetime(loans["origination_date"])
               >= first_stmt - pd.offsets.MonthEnd(1) + pd.Timedelta(days=1)]
    if ln.empty:
        raise DataValidationError("loans", "no loan originated inside the repayment panel")
    orig_m = pd.Series(_month_index(ln["origination_date"]), index=ln["loan_id"].to_numpy())
    rep = repayments[repayments["dpd"] >= dpd_min]
    rep = rep[rep["loan_id"].isin(orig_m.index)]
    mob_bad = _month_index(rep["statement_date"]) - orig_m.reindex(rep["loan_id"]).to_numpy()
    first_bad = pd.Series(mob_bad).groupby(rep["loan_id"].to_numpy()).min()
    cohort = pd.to_datetime(ln["origination_date"]).dt.to_period(freq).astype(str).to_numpy()
    frame = pd.DataFrame({"cohort": cohort, "orig_m": orig_m.to_numpy(),
                          "first_bad": first_bad.reindex(orig_m.index).to_numpy()})
    max_mob = int(last_month - frame["orig_m"].min())
    rows = {}
    for c, g in frame.groupby("cohort", sort=True):
        observable = last_month - int(g["orig_m"].max())
        fb = g["first_bad"].to_numpy(dtype="float64")
        curve = [float(np.mean(fb <= k)) if k <= observable else np.nan
                 for k in range(max_mob + 1)]
        rows[c] = [*curve, len(g)]
    out = pd.DataFrame.from_dict(rows, orient="index",
                                 columns=[*range(max_mob + 1), "n_loans"])
    out["n_loans"] = out["n_loans"].astype("int64")
    out.index.name = "cohort"
    return out


def roll_rate_matrix(loans: pd.DataFrame, repayments: pd.DataFrame) -> pd.DataFrame:
    """Month-to-month transitions of loans between DPD buckets, as row shares.

    A transition pairs a loan's statement with its next month's statement. A loan
    without a next statement that closed gives ``paid off`` (matured or prepaid) or
    ``charged off``; one still open at the last statement is left out (not yet seen).

    Returns:
        Rows: the bucket this month (:data:`DPD_BUCKETS`); columns: the buckets next
        month, ``paid off``, ``charged off`` (shares summing to 1 per row) and ``n``
        (transitions counted from that bucket).
    """
    rep = repayments[["loan_id", "statement_date", "dpd"]].sort_values(
        ["loan_id", "statement_date"])
    month = _month_index(rep["statement_date"])
    same_loan = rep["loan_id"].to_numpy()[1:] == rep["loan_id"].to_numpy()[:-1]
    nxt_month = np.r_[month[1:], -1]
    has_next = np.r_[same_loan, False] & (nxt_month == month + 1)
    frm = np.asarray(dpd_bucket(rep["dpd"]).astype(str), dtype=object)
    to = np.r_[frm[1:], None].astype(object)
    to = np.where(has_next, to, None)
    # Last statement of a loan: closed loans leave the book, open ones are censored.
    last = np.r_[~same_loan, True]
    reason = loans.set_index("loan_id")["close_reason"].reindex(rep["loan_id"]).to_numpy(
        dtype=object)
    closed = last & pd.notna(reason)
    to = np.where(closed & (reason == "charged_off"), "charged off", to)
    to = np.where(closed & (reason != "charged_off") & pd.notna(reason), "paid off", to)
    keep = pd.notna(to)
    cols = [*DPD_BUCKETS, "paid off", "charged off"]
    counts = pd.crosstab(pd.Categorical(frm[keep], categories=list(DPD_BUCKETS)),
                         pd.Categorical(to[keep].astype(str), categories=cols), dropna=False)
    counts = counts.reindex(index=list(DPD_BUCKETS), columns=cols, fill_value=0)
    n = counts.sum(axis=1)
    out = counts.div(n.replace(0, np.nan), axis=0)
    out["n"] = n.astype("int64")
    out.index.name, out.columns.name = "from", "to"
    return out


def dpd_distribution(repayments: pd.DataFrame, weight: str = "loans") -> pd.DataFrame:
    """Share of open loans (or of balance) per DPD bucket at each statement month.

    Args:
        repayments: the ``repayments`` table.
        weight: ``"loans"`` (count) or ``"balance"`` (outstanding balance).

    Returns:
        Rows: statement dates; columns: :data:`DPD_BUCKETS`; each row sums to 1.
    """
    if weight not in ("loans", "balance"):
        raise ValueError(f"weight must be 'loans' or 'balance', got {weight!r}")
    w = np.ones(len(repayments)) if weight == "loans" else repayments["balance"].to_numpy()
    t = pd.DataFrame({"date": pd.to_datetime(repayments["statement_date"]).to_numpy(),
                      "bucket": dpd_bucket(repayments["dpd"]), "w": w})
    out = t.pivot_table(index="date", columns="bucket", values="w", aggfunc="sum",
                        observed=False).fillna(0.0)
    out = out.reindex(columns=list(DPD_BUCKETS), fill_value=0.0)
    out = out.div(out.sum(axis=1), axis=0)
    out.columns = pd.Index(list(DPD_BUCKETS), name="dpd_bucket")
    return out


# --------------------------------------------------------------------------- report
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
        stability: :func:`stability_table` output, or None when not computed.
        stability_png: PNG of :func:`psi_figure`, or None.
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


_CSS = """
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
# Forbids every resource that is not inline: the page cannot reach the network.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt(v: object, kind: str = "auto") -> str:
    if _is_missing(v):
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


def _table(df: pd.DataFrame, formats: Mapping[str, str] | None = None,
           highlight: Sequence[bool] | None = None, status_col: str | None = None) -> str:
    """A DataFrame as an escaped HTML table (numbers right-aligned, formatted)."""
    formats = formats or {}
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
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
                cls = f' class="status-{_e(v).replace("/", "")}"'
            cells.append(f"<td{cls}>{_e(_fmt(v, formats.get(c, 'auto')))}</td>")
        tr = ' class="this"' if highlight is not None and highlight[i] else ""
        body.append(f"<tr{tr}>{''.join(cells)}</tr>")
    return (f'<div class="wide"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _dl(items: Sequence[tuple[str, object]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def _img(png: bytes | None, alt: str, caption: str = "") -> str:
    if not png:
        return f'<p class="note">Plot not available: {_e(alt)}.</p>'
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">{cap}</figure>'


def _section(sid: str, body: str) -> str:
    n = SECTION_IDS.index(sid) + 1
    title = dict(SECTIONS)[sid]
    return f'<section id="{sid}"><h2>{n}. {_e(title)}</h2>\n{body}\n</section>'


def _dates(values: Iterable[str]) -> str:
    v = list(values)
    if not v:
        return "-"
    return v[0] if len(v) == 1 else f"{v[0]} .. {v[-1]} ({len(v)} month ends)"


def _intended_use(inp: ReportInputs) -> str:
    label = inp.metadata.get("label", MODELS.get(inp.model, ""))
    limits = "".join(f"<li>{_e(t)}</li>" for t in LIMITS)
    synthetic = ""
    if inp.manifest and str(inp.manifest.get("generator", "")).startswith("postloan.synthetic"):
        synthetic = ('<p class="note">The book behind this model is synthetic '
                     "(postloan.synthetic): the numbers show the method, not a real "
                     "portfolio.</p>")
    return (f"<p>{_e(INTENDED_USE.get(inp.model, ''))}</p>"
            f"<p><b>Predicts</b> <code>{_e(label)}</code>: {_e(LABEL_DEFINITIONS.get(label, ''))}"
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
             ("OOT base rate", _fmt(m.get("oot_base_rate"), "pct")),
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
            book = "<h3>Book tables (manifest)</h3>" + _table(counts)
    return (_table(rows) + f'<p class="muted">{_e(hold)}</p>' + _dl(facts) + book)


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
                + _table(constrained[["feature", "monotone", "description"]]))
    else:
        head = "<p>No monotone constraint: every feature may act in either direction.</p>"
    p = inp.metadata.get("params", {})
    facts = [("features", f"{len(FEATURES)} ({len(CATEGORICAL_FEATURES)} categorical, fixed "
              "codes)"),
             ("learner", f"LightGBM, {inp.metadata.get('best_iteration', '?')} trees "
              f"(early stopping), {p.get('num_leaves', '?')} leaves, learning rate "
              f"{p.get('learning_rate', '?')}"),
             ("calibration", inp.metadata.get("calibration", "-")),
             ("baseline", "logistic regression on the same features (clipped, log money, "
              "imputed with missing flags, standardised; one-hot categories)"),
             ("personal data", "none: names, phones, ID numbers and addresses are stored "
              "apart and never features")]
    return (_dl(facts) + head + "<details><summary>All features</summary>"
            + _table(rows, {"SHAP rank": "int"}) + "</details>")


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
        rows.append({"metric": name, "LightGBM": _fmt(lg, fmt),
                     "logistic baseline": _fmt(bl, fmt),
                     "difference": "-" if diff is None else f"{diff:+.4f}", "better": better})
    table = _table(pd.DataFrame(rows))
    if "oracle_auc" in m:
        oracle = _dl([("oracle AUC (true probabilities of the simulator)",
                       _fmt(m.get("oracle_auc"))),
                      ("model AUC on the same rows", _fmt(m.get("model_auc_on_oracle_rows"))),
                      ("oracle ratio (model / oracle)", _fmt(m.get("oracle_ratio"), "pct"))])
        oracle = ("<h3>Against the oracle</h3><p>The simulator knows each customer's true "
                  "probability; no model can rank better than it on average.</p>" + oracle)
    else:
        oracle = ("<h3>Against the oracle</h3><p>No truth table: the oracle ratio exists "
                  "only for simulated books.</p>")
    figs = '<div class="figs">' + "".join([
        _img(inp.images.get("roc.png"), "ROC curve",
             "ROC, LightGBM and baseline (OOT)"),
        _img(inp.images.get("ks.png"), "KS plot", "KS: cumulative score distributions"),
        _img(inp.images.get("lift.png"), "Lift chart", "Lift by score decile"),
        _img(inp.images.get("calibration.png"), "Calibration plot",
             "Calibration: observed rate against mean prediction per decile"),
    ]) + "</div>"
    cal = inp.tables.get("calibration_oot")
    lift = inp.tables.get("lift_oot")
    cal_html = (_table(cal, {"observed_rate": "pct", "mean_pred": "pct"}) if cal is not None
                else "<p>not logged</p>")
    lift_html = (_table(lift, {"bad_rate": "pct", "cum_capture": "pct"}) if lift is not None
                 else "<p>not logged</p>")
    extra = _dl([("validation AUC (early stopping)", _fmt(m.get("valid_auc"))),
                 ("trees", _fmt(m.get("best_iteration"), "int"))])
    return (f"<p>Out-of-time as-of dates: {_e(_dates(inp.metadata.get('splits', {}).get('oot', [])))}."
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
        parts.append(f"<h3>By {_e(dim.replace('_', ' '))}</h3>"
                     + _table(t.drop(columns=["dimension"]).assign(
                         gap=t["mean_pred"] - t["base_rate"]),
                         {"base_rate": "pct", "mean_pred": "pct", "gap": "pct"}))
    return ("<p>Discrimination (AUC) and calibration (mean prediction against the observed "
            "rate) of the OOT sample by region, main product and age band. The spreads are "
            "max - min over segments; a large spread means the model serves some groups "
            "worse.</p><h3>Disparity summary</h3>" + _table(pd.DataFrame(summary))
            + "".join(parts))


def _explanations(inp: ReportInputs) -> str:
    imp = inp.tables.get("shap_importance")
    imp_html = (_table(imp.head(15).reset_index(drop=True)) if imp is not None
                else "<p>not logged</p>")
    deps = "".join(_img(png, f"SHAP dependence plot of {f}", f"Dependence: {f}")
                   for f, png in inp.dependence.items())
    rows = inp.explained_rows
    where = (f"{_fmt(rows.get('n'), 'int')} customers sampled at the OOT dates "
             f"{_dates(rows.get('dates', []))}") if rows else "an OOT sample"
    coef = inp.tables.get("baseline_coefficients")
    coef_html = ""
    if coef is not None and "coefficient" in coef.columns:
        c = coef.reindex(coef["coefficient"].abs().sort_values(ascending=False).index).head(20)
        coef_html = ("<details><summary>Baseline: largest logistic coefficients "
                     "(standardised scale)</summary>" + _table(c.reset_index(drop=True))
                     + "</details>")
    return ("<p>Contributions are TreeSHAP values in log-odds: for each customer they add "
            "up, with the base value, to the model's raw score.</p>"
            '<div class="figs">'
            + _img(inp.images.get("shap_summary.png"), "SHAP summary",
                   "SHAP summary (training run's OOT sample): one dot per customer, colour "
                   "= feature value rank")
            + _img(inp.images.get("shap_bar.png"), "SHAP importance",
                   "Mean |SHAP| per feature") + "</div>"
            + "<h3>Mean |SHAP| (top 15)</h3>" + imp_html
            + f"<h3>Dependence plots of the top features</h3><p class=\"muted\">From {_e(where)}."
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
            + _table(pd.DataFrame(rows)))


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
        verdict = (f"<p><b>Score PSI {v:.4f}: {_e(psi_status(v))}.</b></p>")
    return (f"<p>Reference: the customers at the training as-of dates "
            f"({_e(_dates(d.get('reference', [])))}); current: the customers at the OOT "
            f"as-of dates ({_e(_dates(d.get('current', [])))}). PSI = sum over bins of "
            "(current share - reference share) x ln(current share / reference share), "
            "with 10 bins at the reference's quantiles (one per category for categorical "
            f"features, one for missing values) and {PSI_EPS} for an empty bin. Bands: "
            "&lt; 0.1 stable, 0.1-0.25 watch, &gt; 0.25 shifted.</p>" + verdict
            + _table(t, {"ref_missing": "pct", "cur_missing": "pct", "n_bins": "int"},
                     status_col="status")
            + '<div class="figs">' + _img(inp.stability_png, "PSI bar chart",
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
        parts.append("<h3>This version's gate decision</h3>" + _dl(
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
        parts.append("<h3>Every version of the registered model</h3>" + _table(
            pd.DataFrame(rows), highlight=[r["version"] == f"v{inp.version}" for r in rows]))
    if inp.champion_history:
        h = pd.DataFrame(inp.champion_history)
        cols = [c for c in ("at", "version", "previous", "reason") if c in h.columns]
        parts.append("<h3>Champion history</h3>" + _table(h[cols]))
    else:
        parts.append("<p>No champion change recorded yet.</p>")
    gate = ("The promotion gate makes a new version champion only if its OOT AUC is not "
            "worse than the champion's by more than the tolerance and its calibration error "
            "is within bound; every decision and its numbers are kept as version tags.")
    return f"<p>{_e(gate)}</p>" + "".join(parts)


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
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in inp.notes)
    toc = "".join(f'<li><a href="#{sid}">{_e(title)}</a></li>' for sid, title in SECTIONS)
    aliases = ", ".join(inp.aliases) or "none"
    m = inp.metrics
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model report: {_e(name)} v{_e(inp.version)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>Model report: {_e(name)} v{_e(inp.version)}</h1>
<p>{_e(inp.model)} | aliases: {_e(aliases)} | OOT AUC {_e(_fmt(m.get('oot_auc')))} (baseline
{_e(_fmt(m.get('baseline_oot_auc')))}) | MLflow run {_e(inp.run_id)}</p>
<p>Generated {_e(when)} by postloan {_e(version)}; self-contained: readable offline.</p>
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


__all__ = [
    "DPD_BUCKETS", "INTENDED_USE", "LABEL_DEFINITIONS", "PSI_EPS", "ReportInputs", "SECTIONS",
    "SECTION_IDS", "dependence_figure", "dpd_bucket", "dpd_distribution",
    "explanation_sample", "figure_png", "psi", "psi_bins", "psi_figure", "psi_status",
    "psi_table", "render_report", "roll_rate_matrix", "stability_table", "vintage_curves",
    "waterfall_figure",
]
