"""The decision gate: may an action's learned effects decide, or do the constants?

An uplift model can rank contacts better than random and still decide worse than the
strategy constants (its effects too small or too large in money, its sign noisy). The
gate therefore judges the *decision*, off-policy, on the held-out randomised contacts
of the action (the latest as-of dates, which the model did not see), each with the
propensity the contact policy logged:

- ``pi_L(x) = 1`` when the action's learned net benefit is positive (and the handbook
  rules leave it open), ``pi_C(x)`` the same with the constants
  (:mod:`postloan.decisions.strategy.actions`, everything else equal);
- each row's realised money ``R = -(EAD x LGD x defaulted + value if kept x churned +
  service_value x dissatisfied) - cost x contacted`` (an outcome not observed counts 0);
- the inverse-propensity value of a policy is ``mean(1{T = pi(x)} / P(T = pi(x)) x R)``
  (unbiased: the contact was randomised with the logged propensity), and the gate
  reads the per-row paired difference ``learned - constants``, whose mean and standard
  error it reports. Rows where both policies agree contribute exactly 0.

The learned effects decide the action only when the difference is at least
``min_z`` standard errors above zero: by default :data:`MIN_Z` = 2.241, the evidence
says (one-sided, 95% family-wise over the four contact actions, Bonferroni) that they
decide better. Each retraining asks the question of all four actions at once: at 1.645
per action (95% each), the chance that at least one action with no real edge gets
through is about 19%, and in the closed-loop year (docs/benchmarks.md) every action
admitted at 1.645 (z 1.76 to 2.21) lost money against the constants. A point estimate
alone is not enough:
on the demo book a restructuring model at +118 +- 1,242 per contact would have
decided, and the replay lost 212k at a capacity of 100 to it. Fewer than
:data:`MIN_ROWS` held-out contacts leave the constants in place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist

import numpy as np
import pandas as pd

from postloan.data import schema as S
from postloan.decisions.strategy.actions import OUTCOMES, LearnedEffects
from postloan.decisions.strategy.config import StrategyConfig, _cfg
from postloan.decisions.strategy.decide import apply_strategy
from postloan.models.bundle import SCORE_COLUMNS

MIN_ROWS = 50
# One-sided 5% family-wise over the contact actions: z of 1 - 0.05 / 4 (2.241).
MIN_Z = round(NormalDist().inv_cdf(1.0 - 0.05 / len(S.CONTACT_ACTIONS)), 3)
PROPENSITY_CLIP = (0.01, 0.99)


def decision_gate(held: pd.DataFrame, scores: pd.DataFrame, action: str,
                  effects: Mapping[str, np.ndarray], cfg: StrategyConfig | None = None,
                  min_z: float = MIN_Z) -> dict:
    """Off-policy value of deciding `action` with its learned effects against the constants.

    Args:
        held: held-out contacts of `action`: snapshot fields, labels (``default_12m``,
            ``churn_6m``, ``dissatisfied_3m``), ``as_of``, ``treated`` (0/1) and
            ``propensity``.
        scores: the three models' probabilities for the rows of `held` (same order).
        action: the contact action judged.
        effects: ``effect_<action>_<outcome>`` (and ``_lo``/``_hi``) per row of `held`
            (:meth:`postloan.models.uplift.UpliftBundle.effects_features` renamed).
        cfg: strategy config (valuation, costs, rules, constants).
        min_z: standard errors the difference must clear for learned effects to decide.

    Returns:
        JSON-able record: ``decides``, ``n``, ``n_differ`` (rows where the two policies
        decide differently), ``value_learned``, ``value_constants``,
        ``value_difference`` and ``se`` (money per held-out contact), ``min_z`` and the
        ``reason`` / ``reason_zh`` sentence.
    """
    cfg = _cfg(cfg)
    held = held.reset_index(drop=True)
    scores = scores.reset_index(drop=True)
    n = len(held)
    if n < MIN_ROWS:
        return _record(False, n, 0, math.nan, math.nan, math.nan, math.nan, min_z,
                       f"only {n} held-out contacts (< {MIN_ROWS}): the constants decide",
                       f"留出样本仅{n}个（< {MIN_ROWS}）：沿用策略常数")
    pi_l, pi_c = np.zeros(n, bool), np.zeros(n, bool)
    unit = np.zeros((n, len(OUTCOMES)))
    cost = cfg.uplift.contact_cost.get(action, 0.0)
    probs = scores[list(SCORE_COLUMNS.values())]
    for _, idx in held.groupby("as_of", sort=True).indices.items():
        snap = held.iloc[idx].reset_index(drop=True)
        sc = probs.iloc[idx].reset_index(drop=True).assign(
            customer_id=snap["customer_id"].to_numpy())
        learned = LearnedEffects({k: np.asarray(v)[idx] for k, v in effects.items()},
                                 frozenset([action]))
        dl = apply_strategy(sc, snap, cfg, learned)
        dc = apply_strategy(sc, snap, cfg, None)
        pi_l[idx] = np.nan_to_num(dl[f"net_{action}"].to_numpy(float), nan=0.0) > 0
        pi_c[idx] = np.nan_to_num(dc[f"net_{action}"].to_numpy(float), nan=0.0) > 0
        unit[idx] = np.column_stack([
            np.nan_to_num((dc["ead"] * dc["lgd"]).to_numpy(float), nan=0.0),
            np.nan_to_num(dc["value_if_kept"].to_numpy(float), nan=0.0),
            np.full(len(idx), cfg.uplift.service_value)])
    y = np.nan_to_num(held[list(OUTCOMES)].to_numpy(float), nan=0.0)
    t = held["treated"].to_numpy(float)
    e = np.clip(held["propensity"].to_numpy(float), *PROPENSITY_CLIP)
    reward = -(unit * y).sum(axis=1) - cost * t
    w_l = np.where(pi_l, t / e, (1 - t) / (1 - e))
    w_c = np.where(pi_c, t / e, (1 - t) / (1 - e))
    d = reward * (w_l - w_c)
    diff = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n))
    decides = bool(diff >= min_z * se)
    n_differ = int((pi_l != pi_c).sum())
    bar = "0" if min_z == 0 else f"{min_z:g} se"
    if decides:
        en = (f"deciding with learned effects is worth {diff:+,.1f} per held-out contact "
              f"against the constants (se {se:,.1f}, n {n:,}, {n_differ:,} decided "
              f"differently; bar {bar}): learned effects decide")
        zh = (f"按学习所得效应决策较策略常数每个留出样本{diff:+,.1f}（标准误{se:,.1f}，"
              f"样本{n:,}，其中{n_differ:,}个决策不同；门槛{bar}）：采用学习所得效应")
    elif diff < 0:
        en = (f"learned effects decide worse than the constants on held-out contacts: "
              f"{diff:+,.1f} per contact (se {se:,.1f}, n {n:,}; bar {bar})")
        zh = (f"留出样本上按学习所得效应决策不如策略常数：每个样本{diff:+,.1f}"
              f"（标准误{se:,.1f}，样本{n:,}；门槛{bar}）")
    else:
        en = (f"learned effects not shown to decide better than the constants: "
              f"{diff:+,.1f} per held-out contact (se {se:,.1f}, n {n:,}) is below the bar "
              f"of {bar}")
        zh = (f"未能证明按学习所得效应决策优于策略常数：每个留出样本{diff:+,.1f}"
              f"（标准误{se:,.1f}，样本{n:,}），低于门槛{bar}")
    return _record(decides, n, n_differ, float((reward * w_l).mean()),
                   float((reward * w_c).mean()), diff, se, min_z, en, zh)


def _record(decides: bool, n: int, n_differ: int, v_l: float, v_c: float, diff: float,
            se: float, min_z: float, en: str, zh: str) -> dict:
    return {"decides": decides, "n": int(n), "n_differ": int(n_differ),
            "value_learned": v_l, "value_constants": v_c, "value_difference": diff,
            "se": se, "min_z": float(min_z), "reason": en, "reason_zh": zh}


__all__ = ["MIN_ROWS", "MIN_Z", "decision_gate"]
