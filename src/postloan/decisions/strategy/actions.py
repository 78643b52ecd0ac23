"""The one decision: what to do with each customer, and the numbers that made it.

Every caller decides here (batch and both scale-out engines through
:func:`postloan.decisions.strategy.apply_strategy`, the HTTP service through
:func:`postloan.decisions.strategy.decide`, the policy replay and the monthly runs). For each
contact action the handbook's rules leave open to a customer (:func:`open_actions`),
the decision takes the estimated effect on each outcome (``default_12m``,
``churn_6m``, ``dissatisfied_3m``; negative = fewer), values it and subtracts the
contact's cost:

``net = EAD x LGD x (-d default) + value if kept x (-d churn)
        + service_value x (-d dissatisfied) - contact_cost``

The action with the highest positive net benefit is recommended; when no open action
has one the decision is ``none``. The outreach queue (:mod:`postloan.decisions.strategy.queue`)
only ranks these decisions, so the two can never disagree.

**Two bases, chosen per action.** An action's effects are *learned* (its uplift model,
:mod:`postloan.models.uplift`, with a 95% interval for the risk-based learner) when a model is
given and its decision gate (:func:`postloan.decisions.strategy.gate.decision_gate`, run at
training time on held-out randomised contacts) found that deciding with it is worth at
least as much as deciding with the constants; otherwise they are the *constants* of
``strategy.yaml``, written as effects so both bases are valued alike:

- payment reminder / restructuring offer: ``d default = -risk_avertable_share x PD``
  (the constants have one number for both risk contacts, so the level decides which:
  restructuring at ``restructure_levels``, else the reminder);
- retention offer: ``d churn = -retention_success_rate x P(churn)``;
- service-recovery call: ``d dissatisfied = -P(dissatisfied)`` and ``d churn =
  -recovery_effect x P(dissatisfied) x (1 - P(churn))`` (it keeps ``recovery_effect``
  of the unhappy customer's discounted value).

Handbook rules (tests/decisions/test_handbook_rules.py), the same whatever the basis: no
reminder to a customer who is paying, nor to one with a complaint open (service
recovery first); restructuring for customers behind or in difficulty (help before
collections); retention offers to customers who are current; service-recovery calls
to customers who are current (or have a complaint open) and told us of a service
failure (a complaint in the last 3 months or still open, or a survey score of 2 or
less: what the satisfaction label counts); no contact at 90+ days past due (that is the
work-out team's, the warning response escalates it); and the **pressure rule**: when a
risk contact would be best but the customer is likely dissatisfied and the risk is not
severe, the risk contacts are withheld and the service-recovery call is open instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from postloan.decisions.strategy.config import ACTIONS, StrategyConfig

LEARNED, CONSTANTS = "learned_uplift", "constants"
BASES = (LEARNED, CONSTANTS)
OUTCOMES = ("default_12m", "churn_6m", "dissatisfied_3m")
RISK_ACTIONS = ("payment_reminder", "restructuring_offer")
DEFAULT_DPD = 90  # 90+ days past due is default: work-out, not a contact
_MAIN_OUTCOME = {"payment_reminder": 0, "restructuring_offer": 0, "retention_offer": 1,
                 "service_recovery_call": 2}


def detail_columns(action: str) -> list[str]:
    """The per-action columns of the decisions table, in order (see :func:`choose`)."""
    cols = []
    for lab in OUTCOMES:
        cols += [f"effect_{action}_{lab}", f"effect_{action}_{lab}_lo",
                 f"effect_{action}_{lab}_hi"]
    cols += [f"value_{action}_{lab}" for lab in OUTCOMES]
    cols += [f"cost_{action}", f"net_{action}", f"basis_{action}"]
    return cols


DETAIL_COLUMNS = tuple(c for a in ACTIONS for c in detail_columns(a))
"""Per action: effect (and 95% interval) on each outcome, the money of each outcome,
the cost, the net benefit (NaN where the action is not open to the customer or its
basis gives no estimate) and the basis (``learned_uplift`` or ``constants``)."""


@dataclass(frozen=True)
class LearnedEffects:
    """What the uplift models estimate for a set of customers, and what may decide.

    Attributes:
        effects: ``effect_<action>_<outcome>`` (and ``..._lo`` / ``..._hi``, the 95%
            interval) -> one value per customer.
        deciding: actions whose learned effects decide (their decision gate passed).
        gates: action -> the model's decision-gate record (``decides``, ``reason``,
            ``value_difference``, ``se``...); explains a fallback to the constants.
        odds: action -> outcome -> (odds ratio, lo, hi) of the contact (risk learner).
    """

    effects: Mapping[str, np.ndarray]
    deciding: frozenset[str]
    gates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    odds: Mapping[str, Mapping[str, tuple[float, float, float]]] = field(default_factory=dict)

    def basis(self, action: str) -> str:
        return LEARNED if action in self.deciding else CONSTANTS


def open_actions(dpd: np.ndarray, open_complaint: np.ndarray, difficulty: np.ndarray,
                 service_failure: np.ndarray) -> np.ndarray:
    """(n, actions) bool: which actions the handbook's rules leave open, before the
    pressure rule (see the module doc)."""
    behind = (dpd > 0) & (dpd < DEFAULT_DPD)
    current = dpd <= 0
    return np.column_stack([
        behind & ~open_complaint,  # payment reminder
        behind | (difficulty & (dpd < DEFAULT_DPD)),  # restructuring: help before collections
        current,  # retention offer
        # Service recovery recovers from a service failure the customer told us about.
        service_failure & (current | (open_complaint & (dpd < DEFAULT_DPD))),
    ])


def service_failure(complaints_3m: np.ndarray, open_complaint: np.ndarray,
                    last_survey_score: np.ndarray) -> np.ndarray:
    """A service failure to recover from: a complaint in the last 3 months or still open,
    or a last survey score of 2 or less (the satisfaction label's own definition)."""
    # NaN compares False: no complaint, no survey = no failure reported.
    return (complaints_3m > 0) | open_complaint | (last_survey_score <= 2)


@dataclass
class Choice:
    """The decision's arrays (one row per customer; actions in :data:`ACTIONS` order).

    Attributes:
        effect, lo, hi: (n, actions, outcomes) estimated effects and 95% interval (NaN
            where the basis gives none).
        value: (n, actions, outcomes) money of each outcome's change.
        cost: (actions,) contact cost.
        net: (n, actions) net benefit; NaN where the action is not open or not estimated.
        basis: per action, ``learned_uplift`` or ``constants``.
        action: (n,) code into ``ACTIONS + (none,)``.
        net_benefit: (n,) the chosen action's net benefit (0 for none).
        decision_basis: (n,) code into :data:`BASES`.
        withheld, overridden: (n,) the pressure rule withheld a risk contact / did not
            apply because the risk is severe.
        best_open: (n,) the open action of highest net benefit (-1 when none is open).
        open_: (n, actions) the actions open after the pressure rule.
    """

    effect: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    value: np.ndarray
    cost: np.ndarray
    net: np.ndarray
    basis: tuple[str, ...]
    action: np.ndarray
    net_benefit: np.ndarray
    decision_basis: np.ndarray
    withheld: np.ndarray
    overridden: np.ndarray
    best_open: np.ndarray
    open_: np.ndarray

    def columns(self) -> dict[str, np.ndarray]:
        """The per-action numeric columns (:data:`DETAIL_COLUMNS` but ``basis_<action>``,
        which is :attr:`basis`)."""
        out: dict[str, np.ndarray] = {}
        for j, a in enumerate(ACTIONS):
            for k, lab in enumerate(OUTCOMES):
                out[f"effect_{a}_{lab}"] = self.effect[:, j, k]
                out[f"effect_{a}_{lab}_lo"] = self.lo[:, j, k]
                out[f"effect_{a}_{lab}_hi"] = self.hi[:, j, k]
            for k, lab in enumerate(OUTCOMES):
                out[f"value_{a}_{lab}"] = self.value[:, j, k]
            out[f"cost_{a}"] = np.full(len(self.action), self.cost[j])
            out[f"net_{a}"] = self.net[:, j]
        return out


def _constant_effects(cfg: StrategyConfig, restructure: np.ndarray, p_def: np.ndarray,
                      p_churn: np.ndarray, p_dis: np.ndarray) -> np.ndarray:
    """(n, actions, outcomes) effects the strategy.yaml constants assume."""
    oc = cfg.outreach
    n = len(p_def)
    eff = np.zeros((n, len(ACTIONS), len(OUTCOMES)))
    risk = -oc.risk_avertable_share * p_def
    eff[:, 0, 0] = np.where(restructure, np.nan, risk)  # one risk contact per level
    eff[:, 1, 0] = np.where(restructure, risk, np.nan)
    eff[:, 2, 1] = -oc.retention_success_rate * p_churn
    eff[:, 3, 2] = -p_dis  # NaN without a satisfaction model: no estimate
    eff[:, 3, 1] = -oc.recovery_effect * p_dis * (1.0 - p_churn)
    eff[:, 0:2, 1:] = np.where(np.isnan(eff[:, 0:2, :1]), np.nan, 0.0)
    eff[:, 2, [0, 2]] = np.where(np.isnan(eff[:, 2, 1:2]), np.nan, 0.0)
    eff[:, 3, 0] = np.where(np.isnan(eff[:, 3, 2]), np.nan, 0.0)
    return eff


def choose(cfg: StrategyConfig, *, p_def: np.ndarray, p_churn: np.ndarray,
           p_dis: np.ndarray, ead_lgd: np.ndarray, kept: np.ndarray, dpd: np.ndarray,
           open_complaint: np.ndarray, failure: np.ndarray, restructure: np.ndarray,
           severe: np.ndarray, learned: LearnedEffects | None = None) -> Choice:
    """The decision for every customer (see the module doc).

    Args:
        cfg: strategy config (constants, costs, service value, pressure rule).
        p_def, p_churn, p_dis: the three models' probabilities (``p_dis`` may be NaN:
            no satisfaction model).
        ead_lgd: exposure x LGD (money lost per default).
        kept: the customer's value if they stay (money lost per churn).
        dpd: days past due now.
        open_complaint: a complaint is open.
        failure: a service failure to recover from (:func:`service_failure`).
        restructure: the warning level is a ``restructure_levels`` level (difficulty).
        severe: the risk is severe (the pressure rule does not apply).
        learned: uplift estimates and which actions they decide (None: constants only).

    Returns:
        A :class:`Choice`.
    """
    n = len(p_def)
    uv = cfg.uplift
    eff = _constant_effects(cfg, restructure, p_def, p_churn, p_dis)
    lo = np.full_like(eff, np.nan)
    hi = np.full_like(eff, np.nan)
    basis = []
    for j, a in enumerate(ACTIONS):
        if learned is None or a not in learned.deciding:
            basis.append(CONSTANTS)
            continue
        basis.append(LEARNED)
        for k, lab in enumerate(OUTCOMES):
            key = f"effect_{a}_{lab}"
            eff[:, j, k] = _fill(np.asarray(learned.effects[key], float), 0.0)
            lo[:, j, k] = learned.effects.get(f"{key}_lo", np.full(n, np.nan))
            hi[:, j, k] = learned.effects.get(f"{key}_hi", np.full(n, np.nan))
    unit = np.column_stack([_fill(ead_lgd, 0.0), _fill(kept, 0.0),
                            np.full(n, uv.service_value)])
    value = -eff * unit[:, None, :]
    cost = np.array([uv.contact_cost.get(a, 0.0) for a in ACTIONS])
    estimated = ~np.isnan(eff).all(axis=2)
    gross = np.nansum(value, axis=2) - cost
    is_open = open_actions(dpd, open_complaint, restructure, failure)
    net = np.where(is_open & estimated, gross, np.nan)

    # Pressure rule: a risk contact that would be best for a likely-dissatisfied customer
    # is withheld unless the risk is severe; the service-recovery call is open instead.
    best0, best0_net = _best(net)
    risk_best = (best0 >= 0) & (best0 < len(RISK_ACTIONS)) & (best0_net > 0.0)
    pr = cfg.outreach.pressure_rule
    pressured = p_dis >= pr.p_dissatisfied_min  # NaN (no satisfaction model): never
    withheld = risk_best & pressured & ~severe
    overridden = risk_best & pressured & severe
    is_open[withheld, :len(RISK_ACTIONS)] = False
    is_open[withheld, ACTIONS.index("service_recovery_call")] = True
    net = np.where(is_open & estimated, gross, np.nan)

    best, best_net = _best(net)
    none = ~(best_net > 0.0)
    action = np.where(none, len(ACTIONS), best)
    learned_code = np.array([b == LEARNED for b in basis])
    any_learned_open = (is_open & learned_code[None, :]).any(axis=1)
    decision_basis = np.where(none, np.where(any_learned_open, 0, 1),
                              np.where(learned_code[np.maximum(best, 0)], 0, 1))
    return Choice(eff, lo, hi, value, cost, net, tuple(basis), action,
                  np.where(none, 0.0, best_net), decision_basis, withheld, overridden,
                  best, is_open)


def _fill(x: np.ndarray, value: float) -> np.ndarray:
    """`x` with NaN replaced by `value` (np.nan_to_num costs 10x more on a few rows)."""
    return np.where(np.isnan(x), value, x)


def _best(net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the action of highest net benefit (first on ties; -1 when none is open)
    and that net benefit (-inf when none is open)."""
    filled = _fill(net, -np.inf)
    best = filled.argmax(axis=1)
    best_net = filled[np.arange(len(net)), best]
    return np.where(np.isinf(best_net), -1, best), best_net


def _float(v: Any) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def action_numbers(columns: Mapping[str, Any], i: int) -> dict[str, dict]:
    """The per-action numbers of decision `i` as the nested record the service returns.

    Args:
        columns: decision columns (:func:`postloan.decisions.strategy.decide` output, or a
            decisions frame), holding :data:`DETAIL_COLUMNS` and ``basis_<action>``.
        i: the row.

    Returns:
        action -> ``{"considered", "basis", "effects": {outcome: {"estimate", "lo",
        "hi"} or null}, "value": {outcome: money}, "cost", "net_benefit"}``;
        ``considered`` is false where the handbook's rules close the action or its basis
        gives no estimate (``net_benefit`` is then null).
    """
    out = {}
    for a in ACTIONS:
        net = _float(columns[f"net_{a}"][i])
        effects = {}
        for lab in OUTCOMES:
            key = f"effect_{a}_{lab}"
            est = _float(columns[key][i])
            effects[lab] = None if est is None else {
                "estimate": est, "lo": _float(columns[f"{key}_lo"][i]),
                "hi": _float(columns[f"{key}_hi"][i])}
        out[a] = {"considered": net is not None, "basis": str(columns[f"basis_{a}"][i]),
                  "effects": effects,
                  "value": {lab: _float(columns[f"value_{a}_{lab}"][i]) for lab in OUTCOMES},
                  "cost": float(columns[f"cost_{a}"][i]), "net_benefit": net}
    return out


# --------------------------------------------------------------------------- texts
_OUTCOME_TEXT = {"default_12m": ("P(default 12 m)", "12个月违约概率"),
                 "churn_6m": ("P(churn 6 m)", "6个月流失概率"),
                 "dissatisfied_3m": ("P(dissatisfied 3 m)", "3个月不满意概率")}


def _pct(x: float) -> str:
    return f"{min(max(x, 0.0), 1.0):.1%}"


def _interval_words(lo: float, hi: float, en: bool) -> str:
    if lo <= 1.0 <= hi:
        return ", not distinguishable from no effect" if en else "，与无效果无法区分"
    return ""


def action_sentence(cfg: StrategyConfig, c: Choice, i: int, j: int, probs: tuple[float, ...],
                    ead: float, lgd: float, kept: float,
                    learned: LearnedEffects | None) -> tuple[str, str]:
    """The sentence (en, zh) that quotes what decided action `j` for customer `i`:
    each outcome's probability before -> after, with the odds ratio and its interval for
    learned effects, the money, the cost and the net benefit."""
    a = ACTIONS[j]
    name = cfg.actions[a]
    oc = cfg.outreach
    if c.basis[j] == LEARNED:
        head_en, head_zh = f"{name.en} (learned uplift)", f"{name.zh}（学习所得效应）"
    else:
        assumption = {
            "payment_reminder": (f"a contact averts {oc.risk_avertable_share:.0%} of the "
                                 "expected loss", f"一次联系可避免{oc.risk_avertable_share:.0%}"
                                 "的预期损失"),
            "restructuring_offer": (f"a contact averts {oc.risk_avertable_share:.0%} of the "
                                    "expected loss", f"一次联系可避免"
                                    f"{oc.risk_avertable_share:.0%}的预期损失"),
            "retention_offer": (f"an offer keeps {oc.retention_success_rate:.0%} of would-be "
                                "churners", f"挽留成功率{oc.retention_success_rate:.0%}"),
            "service_recovery_call": (f"a call resolves the dissatisfaction and keeps "
                                      f"{oc.recovery_effect:.0%} of the value at risk",
                                      f"回访可化解不满并保住{oc.recovery_effect:.0%}的风险价值"),
        }[a]
        head_en = f"{name.en} (constants: {assumption[0]})"
        head_zh = f"{name.zh}（策略常数：{assumption[1]}）"
    en, zh = [], []
    for k, lab in enumerate(OUTCOMES):
        e, v = c.effect[i, j, k], c.value[i, j, k]
        if np.isnan(e) or (k != _MAIN_OUTCOME[a] and abs(v) < 0.5):
            continue
        p = probs[k]
        t_en, t_zh = _OUTCOME_TEXT[lab]
        before = "?" if math.isnan(p) else _pct(p)
        after = "?" if math.isnan(p) else _pct(p + e)
        s_en, s_zh = f"{t_en} {before} → {after}", f"{t_zh}{before} → {after}"
        odds = (learned.odds.get(a, {}).get(lab) if learned is not None
                and c.basis[j] == LEARNED else None)
        if odds is not None:
            o, olo, ohi = odds
            s_en += f" (odds ratio {o:.2f} [{olo:.2f}, {ohi:.2f}]{_interval_words(olo, ohi, True)})"
            s_zh += f"（优势比{o:.2f} [{olo:.2f}, {ohi:.2f}]{_interval_words(olo, ohi, False)}）"
        if k == 0:
            s_en += f"; exposure {ead:,.0f} × LGD {lgd:.0%} → {v:,.0f} saved"
            s_zh += f"；敞口{ead:,.0f} × 违约损失率{lgd:.0%} → 减少损失{v:,.0f}"
        elif k == 1:
            s_en += f"; value if kept {kept:,.0f} → {v:,.0f} kept"
            s_zh += f"；留存价值{kept:,.0f} → 保住{v:,.0f}"
        else:
            sv = cfg.uplift.service_value
            s_en += f"; service value {sv:,.0f} → {v:,.0f}"
            s_zh += f"；服务价值{sv:,.0f} → {v:,.0f}"
        en.append(s_en)
        zh.append(s_zh)
    cost, net = c.cost[j], c.net[i, j]
    tail_en = f"cost {cost:,.0f}; net {net:,.0f}"
    tail_zh = f"成本{cost:,.0f}；净收益{net:,.0f}"
    gate = (learned.gates.get(a) if learned is not None and c.basis[j] == CONSTANTS else None)
    out_en = f"{head_en}: {'; '.join([*en, tail_en])}"
    out_zh = f"{head_zh}：{'；'.join([*zh, tail_zh])}"
    if gate and gate.get("reason"):
        out_en += f" (learned effects not used: {gate['reason']})"
        out_zh += f"（未采用学习所得效应：{gate.get('reason_zh', gate['reason'])}）"
    return out_en, out_zh


_CLOSED = {  # why an action is not open (en, zh), by rule
    "paying": ("paying on time: no reminder", "按时还款：不做还款提醒"),
    "defaulted": ("90+ days past due: the work-out team's, no contact",
                  "逾期90天以上：移交不良处置团队，不做联系"),
    "complaint": ("a complaint is open: service recovery first, no reminder",
                  "有未解决投诉：先服务补救，不做还款提醒"),
    "behind": ("behind on payments: no retention offer or service call",
               "存在逾期：不做挽留或服务回访"),
    "pressure": ("pressure rule: risk contacts withheld", "施压规则：暂缓风险类联系"),
}


def none_sentence(cfg: StrategyConfig, c: Choice, i: int, dpd: float, complaint: bool
                  ) -> tuple[str, str]:
    """Why customer `i` gets no contact (en, zh)."""
    b = c.best_open[i]
    if b >= 0:
        name = cfg.actions[ACTIONS[b]]
        return (f"no contact: no open action has a positive net benefit (best: {name.en}, "
                f"net {c.net[i, b]:,.0f})",
                f"不联系：没有净收益为正的可选行动（最佳：{name.zh}，净收益{c.net[i, b]:,.0f}）")
    if dpd >= DEFAULT_DPD:
        key = "defaulted"
    elif dpd > 0:
        key = "pressure" if c.withheld[i] else "complaint" if complaint else "behind"
    else:
        key = "paying"
    why_en, why_zh = _CLOSED[key]
    return (f"no contact: no action is open or estimated ({why_en})",
            f"不联系：没有可选或可估计的行动（{why_zh}）")


__all__ = ["BASES", "CONSTANTS", "DETAIL_COLUMNS", "LEARNED", "OUTCOMES", "Choice",
           "LearnedEffects", "action_numbers", "action_sentence", "choose", "detail_columns",
           "none_sentence", "open_actions", "service_failure"]
