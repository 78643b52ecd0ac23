"""The sentences behind every decision, in English and Chinese.

Warning reasons (which criterion, which signal, which model reason put a customer at
a level) and action reasons (the numbers that decided the contact, or why none, and
when the pressure rule withheld a risk contact). The only Python loops of the strategy live here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from postloan.decisions.strategy.actions import (
    RISK_ACTIONS,
    Choice,
    LearnedEffects,
    action_sentence,
    none_sentence,
)
from postloan.decisions.strategy.config import ACTIONS, LEVELS, StrategyConfig
from postloan.decisions.strategy.rules import _Columns, _Tables

_LEVEL_ZH = {"green": "绿色", "yellow": "黄色", "orange": "橙色", "red": "红色"}


def _up_reasons(cell: Any, k: int) -> list[dict]:
    """The top-k "up" reasons of one reasons cell (dict, JSON text or missing)."""
    if k <= 0 or cell is None:
        return []
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            return []
    if not isinstance(cell, Mapping):
        return []
    up = cell.get("up")
    if up is None:
        return []
    return [r for r in list(up)[:k] if isinstance(r, Mapping)]


def _model_reasons(cell: Any, k: int, en: list[str], zh: list[str]) -> None:
    for r in _up_reasons(cell, k):
        en.append(f"model: {r.get('text_en', r.get('feature'))}")
        zh.append(f"模型：{r.get('text_zh', r.get('feature'))}")


def _warning_texts(cfg: StrategyConfig, t: _Tables, cols: _Columns,
                   met: dict[str, dict[str, np.ndarray]], level: np.ndarray,
                   fired: np.ndarray, p_def: np.ndarray, el: np.ndarray, max_sev: np.ndarray,
                   sev_sum: np.ndarray, n_sig: np.ndarray, dpd: np.ndarray,
                   escalate: np.ndarray) -> tuple[list[list[str]], ...]:
    """Fired signal ids, warning reasons (en, zh) and signal sentences (en, zh) per row."""
    n = cols.n
    signals_col: list[list[str]] = [[] for _ in range(n)]
    w_en: list[list[str]] = [[] for _ in range(n)]
    w_zh: list[list[str]] = [[] for _ in range(n)]
    sig_en: list[list[str]] = [[] for _ in range(n)]
    sig_zh: list[list[str]] = [[] for _ in range(n)]
    idx = np.flatnonzero((level > 0) | (n_sig > 0) | escalate)
    if not len(idx):
        return signals_col, w_en, w_zh, sig_en, sig_zh
    sigs = cfg.signals
    sig_order = t.sig_order  # by severity (highest first), then in declaration order
    values = (np.column_stack([cols.num(f)[idx] for f in t.sig_fields]).tolist() if sigs
              else [[] for _ in idx])
    fired_rows = fired[idx].tolist()
    met_rows = {lv: {c: m[idx].tolist() for c, m in crit.items()} for lv, crit in met.items()}
    reasons_def = (cols.values("reasons_default_risk")[idx]
                   if "reasons_default_risk" in cols else None)
    k = cfg.n_model_reasons
    cache: dict[tuple[int, float], tuple[str, str, str, str]] = {}
    cols = [a[idx].tolist() for a in (level, p_def, el, max_sev, sev_sum, n_sig, dpd, escalate)]
    esc_min = t.esc_min
    for r, (i, lvc, p, e, ms, ss, ns, d, esc) in enumerate(zip(idx.tolist(), *cols, strict=True)):
        lv = LEVELS[lvc]
        en: list[str] = []
        zh: list[str] = []
        for c, hold in met_rows.get(lv, {}).items():
            if hold[r]:
                te, tz = _criterion_text(c, lv, getattr(cfg.warning_levels[lv], c), p, e, ms,
                                         ss, ns)
                en.append(te)
                zh.append(tz)
        frow, vrow = fired_rows[r], values[r]
        for j in sig_order:
            if frow[j]:
                key = (j, vrow[j])
                texts = cache.get(key)
                if texts is None:
                    s = sigs[j]
                    te = s.text_en.format(value=vrow[j], threshold=s.threshold)
                    tz = s.text_zh.format(value=vrow[j], threshold=s.threshold)
                    texts = (te, tz, f"signal {s.id} (severity {s.severity}): {te}",
                             f"预警信号（严重度{s.severity}）：{tz}［{s.id}］")
                    cache[key] = texts
                signals_col[i].append(sigs[j].id)
                sig_en[i].append(texts[0])
                sig_zh[i].append(texts[1])
                en.append(texts[2])
                zh.append(texts[3])
        if lvc > 0 and reasons_def is not None:
            _model_reasons(reasons_def[r], k, en, zh)
        if esc:
            en.append(f"escalated: {d:.0f} days past due >= {esc_min}")
            zh.append(f"升级：逾期{d:.0f}天 >= {esc_min}天")
        w_en[i] = en
        w_zh[i] = zh
    return signals_col, w_en, w_zh, sig_en, sig_zh


def _action_texts(cfg: StrategyConfig, cols: _Columns, c: Choice,
                  learned: LearnedEffects | None, level: np.ndarray, p_def: np.ndarray,
                  p_churn: np.ndarray, p_dis: np.ndarray, ead: np.ndarray, lgd: np.ndarray,
                  kept: np.ndarray, dpd: np.ndarray, complaint: np.ndarray,
                  sig_en: list[list[str]], sig_zh: list[list[str]]
                  ) -> tuple[list[list[str]], list[list[str]]]:
    """Reasons (en, zh) for each row's decision: the pressure rule when it acted, the
    sentence quoting the numbers that decided (:func:`actions.action_sentence`), then
    what drove the outcome the action works on (signals and the default model's reasons
    for a risk contact, the churn or satisfaction model's otherwise)."""
    pr = cfg.outreach.pressure_rule
    k = cfg.n_model_reasons
    model_reasons = [cols.values(f"reasons_{m}") if f"reasons_{m}" in cols else None
                     for m in ("default_risk", "churn", "satisfaction")]
    thr_dis, sev_pd = pr.p_dissatisfied_min, pr.severe_pd_min
    a_en: list[list[str]] = []
    a_zh: list[list[str]] = []
    n_risk = len(RISK_ACTIONS)
    for i, (act, lvc, wh, ov) in enumerate(zip(c.action.tolist(), level.tolist(),
                                               c.withheld.tolist(), c.overridden.tolist(),
                                               strict=True)):
        lv = LEVELS[lvc]
        lz = _LEVEL_ZH[lv]
        p, pdis = float(p_def[i]), float(p_dis[i])
        en: list[str] = []
        zh: list[str] = []
        if wh:
            en.append(f"pressure rule: p_dissatisfied {pdis:.0%} >= {thr_dis:.0%} and risk not "
                      f"severe (level {lv}, PD {p:.1%} < {sev_pd:.0%}): risk contacts withheld, "
                      "service-recovery call open instead")
            zh.append(f"施压规则：不满意概率{pdis:.0%} >= {thr_dis:.0%}且风险不严重（{lz}预警，"
                      f"违约概率{p:.1%} < {sev_pd:.0%}）：暂缓风险类联系，改为可做服务补救回访")
        elif ov:
            en.append(f"pressure rule overridden: p_dissatisfied {pdis:.0%} >= {thr_dis:.0%} but "
                      f"the risk is severe (level {lv}, PD {p:.1%})")
            zh.append(f"施压规则不适用：不满意概率{pdis:.0%} >= {thr_dis:.0%}，但风险严重"
                      f"（{lz}预警，违约概率{p:.1%}）")
        if act >= len(ACTIONS):
            te, tz = none_sentence(cfg, c, i, float(dpd[i]), bool(complaint[i]))
            en.append(te)
            zh.append(tz)
        else:
            te, tz = action_sentence(cfg, c, i, act, (p, float(p_churn[i]), pdis),
                                     float(ead[i]), float(lgd[i]), float(kept[i]), learned)
            en.append(te)
            zh.append(tz)
            if act < n_risk:
                en.extend(sig_en[i])
                zh.extend(sig_zh[i])
                src = model_reasons[0]
            else:
                src = model_reasons[1 if act == n_risk else 2]
            if src is not None:
                _model_reasons(src[i], k, en, zh)
        a_en.append(en)
        a_zh.append(zh)
    return a_en, a_zh


def _criterion_text(c: str, lv: str, thr: float, p: float, el: float, max_sev: int,
                    sev_sum: int, n_sig: int) -> tuple[str, str]:
    """The sentence (en, zh) saying which criterion put a customer at level `lv`."""
    lz = f"{_LEVEL_ZH[lv]}预警"
    if c == "pd_min":
        return (f"{lv}: 12-month PD {p:.1%} >= {thr:.1%}",
                f"{lz}：12个月违约概率{p:.1%} >= {thr:.1%}")
    if c == "el_min":
        return (f"{lv}: expected loss {el:,.0f} >= {thr:,.0f}",
                f"{lz}：预期损失{el:,.0f} >= {thr:,.0f}")
    if c == "max_severity_min":
        return (f"{lv}: a severity-{max_sev} signal fired (>= {thr})",
                f"{lz}：触发严重度{max_sev}级信号（>= {thr}）")
    if c == "severity_sum_min":
        return (f"{lv}: signal severities sum to {sev_sum} (>= {thr})",
                f"{lz}：信号严重度合计{sev_sum}（>= {thr}）")
    return (f"{lv}: {n_sig} early-warning signal(s) fired (>= {thr})",
            f"{lz}：触发{n_sig}个预警信号（>= {thr}）")
