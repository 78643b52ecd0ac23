"""One page per customer: why did customer X get action Y.

:func:`customer_content` gathers, for one customer at one as-of date, the three scores
with their reason codes and SHAP contributions, the warning signals, the decision with
its numbers and the scores over the last 12 as-of dates, as a JSON-able dict (the same
content the service's ``/explain`` by id can return). :func:`render_customer_page` turns
it into one self-contained HTML page in English or Chinese.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import yaml

from postloan import glossary
from postloan.data.snapshot import build_snapshot, parse_as_of
from postloan.errors import DataValidationError
from postloan.models import explain
from postloan.models.bundle import MODELS, ModelBundle
from postloan.reporting import figures as plots
from postloan.reporting import html as H
from postloan.reporting.i18n import TEXTS, tr
from postloan.reporting.pack import code, figure, page, para, table

log = logging.getLogger(__name__)

N_HISTORY = 12
"""As-of dates on the score-history chart (the as-of date and the 11 month ends before)."""
N_WATERFALL = 10
SCORE_KEYS = {"default_risk": "pd_12m", "churn": "p_churn_6m",
              "satisfaction": "p_dissatisfied_3m"}
DECISION_FIELDS = ("warning_level", "risk_grade", "expected_loss", "customer_value",
                   "segment", "recommended_action", "net_benefit", "decision_basis",
                   "pressure_rule")
"""Decision columns shown (the one decision, docs/decisions.md); each action's numbers
(``net_<action>``, and the nested ``actions`` record) come with them."""


def _json(v: Any) -> Any:
    """A value as JSON: numpy scalars as Python, NaN as None, arrays as lists."""
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_json(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, (pd.Timestamp,)):
        return f"{v:%Y-%m-%d}"
    if v is pd.NA or v is pd.NaT:
        return None
    return v


def customer_tables(tables: Mapping[str, pd.DataFrame], customer_id: int
                    ) -> dict[str, pd.DataFrame]:
    """The book cut to one customer (tables without ``customer_id``, e.g. macro, whole):
    snapshots of one customer then cost milliseconds, not a pass over the book."""
    return {k: (t[t["customer_id"] == customer_id] if "customer_id" in t.columns else t)
            for k, t in tables.items()}


def _snapshot(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.DataFrame | None:
    try:
        snap = build_snapshot(dict(tables), as_of, with_labels=False)
    except DataValidationError:
        return None  # not active at that date (no open loan), or before the data
    return snap if len(snap) else None


def _month_ends_before(as_of: pd.Timestamp, n: int) -> list[pd.Timestamp]:
    end = as_of + pd.offsets.MonthEnd(0)
    dates = [end - pd.offsets.MonthEnd(k) for k in range(n)]
    dates[0] = as_of
    return sorted(set(dates))


def customer_content(tables: Mapping[str, pd.DataFrame], customer_id: int,
                     as_of: str | pd.Timestamp, bundles: Mapping[str, ModelBundle],
                     uplift: Mapping[str, Any] | None = None, strategy_cfg: Any = None,
                     k: int = 3, n_history: int = N_HISTORY) -> dict[str, Any]:
    """Everything the customer page shows, as a JSON-able dict.

    Args:
        tables: the book (or the customer's part of it).
        customer_id: the customer.
        as_of: the as-of date.
        bundles: model -> bundle (the three champions).
        uplift: action -> uplift bundle (the decision then uses learned effects).
        strategy_cfg: strategy config (the shipped one when None).
        k: reasons per direction and model.
        n_history: as-of dates on the score history.

    Returns:
        ``customer_id``, ``as_of``, ``scores`` (model -> ``probability``, ``version``,
        ``reasons`` {up, down}, ``base_value``, ``raw_score`` and every feature's
        ``contributions`` and ``values``; the page's waterfall shows the top
        :data:`N_WATERFALL`), ``signals`` (en/zh sentences), ``decision`` (the decision
        columns present, with ``action_reasons``/``_zh``; ``{"missing_models": [...]}``
        when a champion is missing), ``history`` (as_of and the probabilities per date).

    Raises:
        DataValidationError: the customer is not active at `as_of` (names the customer).
    """
    at = parse_as_of(as_of)
    mine = customer_tables(tables, int(customer_id))
    snap = _snapshot(mine, at)
    if snap is None:
        raise DataValidationError("customers", f"customer {customer_id} has no open loan at "
                                  f"{at:%Y-%m-%d} (or is not in the book)", "customer_id")
    out: dict[str, Any] = {"customer_id": int(customer_id), "as_of": f"{at:%Y-%m-%d}",
                           "scores": {}, "signals": {"en": [], "zh": []}, "decision": {},
                           "history": []}
    for model in MODELS:
        if model not in bundles:
            continue
        b = bundles[model]
        contrib, reasons = b.explain(snap, k=k)
        row = contrib.iloc[0]
        parts = row.drop(explain.BIAS)
        X = b.features(snap).iloc[0]
        out["scores"][model] = {
            "probability": float(b.predict(snap)[0]),
            "version": str(b.metadata.get("registered_version", "local")),
            "reasons": reasons[0], "base_value": float(row[explain.BIAS]),
            "raw_score": float(row.sum()),
            "contributions": {f: float(v) for f, v in parts.items()},
            "values": {f: X.get(f) for f in parts.index}}
    missing = [m for m in MODELS if m not in bundles]
    if missing:  # the decision weighs all three scores: without one there is none
        out["decision"] = {"missing_models": missing}
        log.warning("no decision for customer %s: no champion for %s", customer_id, missing)
    else:
        _decide(out, snap, bundles, uplift, strategy_cfg)
    for date in _month_ends_before(at, n_history):
        s = snap if date == at else _snapshot(mine, date)
        if s is None:
            continue
        out["history"].append({"as_of": f"{date:%Y-%m-%d}", **{
            SCORE_KEYS[m]: float(bundles[m].predict(s)[0]) for m in MODELS if m in bundles}})
    return _json(out)


def _decide(out: dict[str, Any], snap: pd.DataFrame, bundles: Mapping[str, ModelBundle],
            uplift: Mapping[str, Any] | None, strategy_cfg: Any) -> None:
    """The decision columns and warning signals of the one scoring core, into `out`."""
    from postloan.decisions import batch, strategy

    res = batch.score_and_decide(snap, dict(bundles), strategy_cfg, capacity=1,
                                 with_reasons=True, uplift=uplift)
    d = res["decisions"].iloc[0]
    dec = {c: d[c] for c in DECISION_FIELDS if c in d.index}
    dec.update({f"net_{a}": d[f"net_{a}"] for a in strategy.ACTIONS})
    dec["actions"] = strategy.action_numbers(res["decisions"], 0)
    for c in ("action_reasons", "action_reasons_zh", "response", "response_zh",
              "segment_strategy", "segment_strategy_zh"):
        if c in d.index:
            dec[c] = d[c]
    out["decision"] = dec
    out["signals"] = {"en": list(d.get("warning_reasons", []) or []),
                      "zh": list(d.get("warning_reasons_zh", []) or []),
                      "ids": list(d.get("signals", []) or [])}


# ----------------------------------------------------------------------- page
@lru_cache(maxsize=1)
def _action_names() -> dict[str, dict[str, str]]:
    """Action -> {en, zh} from the shipped strategy configuration."""
    from postloan.config_files import shipped_text

    return yaml.safe_load(shipped_text("config/strategy.yaml")).get("actions", {}) or {}


def _label(value: Any, lang: str) -> str:
    """A decision value in `lang` (warning levels, actions); numbers formatted."""
    if isinstance(value, float) and abs(value) >= 1:
        return f"{value:,.2f}"  # money: two decimals, thousands separated
    if not isinstance(value, str):
        return H.fmt(value)
    if f"level_{value}" in TEXTS:
        return tr(f"level_{value}", lang)
    if value == "none":
        return tr("action_none", lang)
    return (_action_names().get(value) or {}).get(lang, value)


def _waterfall_png(model: str, s: Mapping[str, Any], lang: str) -> bytes | None:
    contrib = pd.Series({explain.BIAS: s["base_value"], **s["contributions"]})
    values = pd.Series({f: (np.nan if v is None else v) for f, v in s["values"].items()})
    title = tr("waterfall", lang, model=tr(f"m_{model}", lang))
    try:
        with plots.language(lang):
            return plots.figure_png(plots.waterfall_figure(
                contrib, values, title, top=N_WATERFALL, probability=s["probability"]))
    except Exception:  # noqa: BLE001 - a figure must not lose the page
        log.warning("waterfall of %s failed", model, exc_info=True)
        return None


def render_customer_page(content: Mapping[str, Any], lang: str = "en") -> str:
    """The customer page (HTML, self-contained) from :func:`customer_content`'s dict."""
    glossary.check_lang(lang)
    c = content
    sfx = "_zh" if lang == "zh" else ""
    text_key = "text_zh" if lang == "zh" else "text_en"
    # 1. scores and reasons
    rows, blocks = [], []
    for model, s in c["scores"].items():
        rows.append({"model": tr(f"m_{model}", lang), "probability": s["probability"],
                     "version": s["version"]})
        reasons = []
        for key in ("up", "down"):
            for r in s["reasons"].get(key, []):
                reasons.append({"direction": tr(f"reason_{key}", lang),
                                "feature": r.get("feature", ""),
                                "reason": r.get(text_key, ""),
                                "contribution": r.get("contribution")})
        png = _waterfall_png(model, s, lang)
        blocks.append(f"<h3>{H.esc(tr(f'm_{model}', lang))}: {s['probability']:.1%}</h3>"
                      + '<div class="figs">' + figure(png, tr("waterfall", lang,
                                                                       model=tr(f"m_{model}", lang)),
                                                      lang) + "</div>"
                      + table(pd.DataFrame(reasons), lang,
                              {"direction": "reason", "feature": "feature",
                               "reason": "reasons", "contribution": "contribution"},
                              code_cols=["feature"]))
    scores = table(pd.DataFrame(rows), lang, {"model": "model_col",
                                              "probability": "probability",
                                              "version": "version"}, {"probability": "pct"})
    # 2. signals
    sig = c["signals"].get("zh" if lang == "zh" else "en") or []
    signals = ("<ul>" + "".join(f"<li>{H.esc(x)}</li>" for x in sig) + "</ul>" if sig
               else para(tr("no_signals", lang)))
    # 3. decision
    d = dict(c["decision"])
    missing = d.pop("missing_models", None)
    actions = d.pop("actions", None)
    items = []
    for k, v in d.items():
        if k.startswith(("action_reasons", "response", "segment_strategy")) or (
                k.startswith("net_") and k != "net_benefit"):
            continue  # each action's numbers are in the table below
        if k == "segment" and d.get(f"segment_strategy{sfx}"):
            v = f"{v}: {d[f'segment_strategy{sfx}']}"
        # A column the page has no words for is shown by its name.
        name = H.esc(tr(k, lang)) if k in TEXTS else code(k)
        items.append(f"<dt>{name}</dt><dd>{H.esc(_label(v, lang))}</dd>")
    reasons = d.get(f"action_reasons{sfx}") or []
    response = d.get(f"response{sfx}")
    decision = "<dl>" + "".join(items) + "</dl>"
    if actions:
        head = "".join(f"<th>{H.esc(tr(k, lang))}</th>"
                       for k in ("recommended_action", "decision_basis", "net_benefit"))
        rows = "".join(
            f"<tr><td>{H.esc(_label(a, lang))}</td><td>{H.esc(_label(v['basis'], lang))}</td>"
            f"<td>{'-' if v['net_benefit'] is None else H.esc(_label(float(v['net_benefit']), lang))}"
            "</td></tr>" for a, v in actions.items())
        decision += f"<table><tr>{head}</tr>{rows}</table>"
    if missing:
        decision += para(tr("decision_missing", lang, models=", ".join(
            tr(f"m_{m}", lang) for m in missing)), "note")
    if response:
        decision += f"<p><b>{H.esc(tr('response', lang))}</b>: {H.esc(response)}</p>"
    if reasons:
        decision += (f"<h3>{H.esc(tr('reasons', lang))}</h3><ul>"
                     + "".join(f"<li>{H.esc(x)}</li>" for x in reasons) + "</ul>")
    # 4. history
    hist = pd.DataFrame(c["history"])
    if len(hist) > 1:
        series = {SCORE_KEYS[m]: tr(f"m_{m}", lang) for m in MODELS
                  if SCORE_KEYS[m] in hist.columns}
        try:
            with plots.language(lang):
                png = plots.figure_png(plots.score_history_figure(
                    hist, series, tr("c_history", lang)))
        except Exception:  # noqa: BLE001
            png = None
        history = ('<div class="figs">' + figure(png, tr("c_history", lang), lang) + "</div>"
                   + table(hist, lang, {"as_of": "as_of", **{k: v for k, v in series.items()}},
                           {k: "pct" for k in series}))
    else:
        history = para(tr("history_missing", lang), "muted")
    sections = [("scores", tr("c_scores", lang), scores + "".join(blocks)),
                ("signals", tr("c_signals", lang), signals),
                ("decision", tr("c_decision", lang), decision),
                ("history", tr("c_history", lang), history)]
    title = tr("customer_title", lang, customer=c["customer_id"], as_of=c["as_of"])
    return page(title, code(f"customer_id={c['customer_id']}"), sections, lang)


__all__ = ["DECISION_FIELDS", "N_HISTORY", "customer_content", "customer_tables",
           "render_customer_page"]
