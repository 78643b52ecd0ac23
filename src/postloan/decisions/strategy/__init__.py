"""Early warning and customer prioritisation: from three scores to who to call, why, and what.

The domain's point is not the scores but the actions (domain.md, "Early warning" and
"Customer prioritization"). Given the scored frame (:func:`postloan.decisions.batch.score_snapshot`)
and the customer snapshot, this module derives per customer:

- a **risk grade** from calibrated PD bands (monotone in ``pd_12m``);
- the **expected loss** EL = PD x LGD x EAD, with EAD = outstanding balance and LGD by
  main product blended with the secured share of the balance;
- **early-warning signals**: declared rules on snapshot or score fields;
- a **warning level** (green / yellow / orange / red) with its response and every reason
  that put the customer there, ranked by severity x probability inside each level;
- a **segment** from customer value (expected margin over the remaining life) x risk;
- the **decision** (:mod:`~postloan.decisions.strategy.actions`): each open action's effects,
  value, cost and net benefit, and the **recommended action** (the best positive, else
  ``none``), which :func:`outreach_queue` only ranks for a team of limited capacity.

Every threshold and rule lives in ``config/strategy.yaml`` (validated by
:class:`StrategyConfig`); the functions are pure: DataFrames in, DataFrames out.
Arithmetic is vectorised with numpy; Python loops only build the text lists.

One job per module, every public name re-exported here:

- :mod:`~postloan.decisions.strategy.config`: the vocabulary (levels, segments, actions) and the
  pydantic models of the YAML, :func:`load_strategy_config`;
- :mod:`~postloan.decisions.strategy.rules`: grades, expected loss, signals, customer value;
- :mod:`~postloan.decisions.strategy.decide`: :func:`apply_strategy` (frames), :func:`decide`
  (columns, for the service), :func:`rank_within_level`, :func:`early_warnings`;
- :mod:`~postloan.decisions.strategy.texts`: the English and Chinese reasons;
- :mod:`~postloan.decisions.strategy.actions`: the one decision and its sentences;
- :mod:`~postloan.decisions.strategy.learned`: uplift models' effects and whether they decide;
- :mod:`~postloan.decisions.strategy.gate`: the decision gate (learned against constants);
- :mod:`~postloan.decisions.strategy.queue`: :func:`outreach_queue` (a view), :func:`summarise`,
  and the replay's baseline queues (:func:`constants_queue`, :func:`pd_only_queue`,
  :func:`random_queue`).

The warning level says how worried to be (scores and rule signals); the recommended
action says what to do, and why, in money.
"""

from postloan.decisions.strategy.actions import (
    BASES,
    CONSTANTS,
    DETAIL_COLUMNS,
    LEARNED,
    OUTCOMES,
    LearnedEffects,
    action_numbers,
    open_actions,
)
from postloan.decisions.strategy.config import (
    ACTIONS,
    CHURN_COL,
    DISSAT_COL,
    LEVELS,
    NO_ACTION,
    PD_COL,
    RULE_LEVELS,
    SEGMENTS,
    SIGNAL_FIELDS,
    Escalation,
    GradeBand,
    LevelName,
    LevelRule,
    LgdPair,
    Outreach,
    PressureRule,
    Segmentation,
    Share,
    Signal,
    StrategyConfig,
    Text,
    ValueConfig,
    load_strategy_config,
)
from postloan.decisions.strategy.decide import (
    OUTPUT_COLUMNS,
    apply_strategy,
    decide,
    early_warnings,
    rank_within_level,
)
from postloan.decisions.strategy.gate import decision_gate
from postloan.decisions.strategy.learned import decision_bases, learned_effects, uplift_features
from postloan.decisions.strategy.queue import (
    QUEUE_COLUMNS,
    constants_queue,
    merge_queues,
    outreach_queue,
    pd_only_queue,
    random_queue,
    summarise,
)
from postloan.decisions.strategy.rules import (
    customer_value,
    expected_loss,
    fire_signals,
    risk_grade,
)

__all__ = [
    "ACTIONS", "CHURN_COL", "DISSAT_COL", "LEVELS", "NO_ACTION", "OUTPUT_COLUMNS", "PD_COL",
    "QUEUE_COLUMNS", "RULE_LEVELS", "SEGMENTS", "SIGNAL_FIELDS", "Escalation",
    "GradeBand", "LevelName", "LevelRule", "LgdPair", "Outreach", "PressureRule",
    "Segmentation", "Share", "Signal", "StrategyConfig", "Text", "ValueConfig",
    "apply_strategy", "customer_value", "decide", "early_warnings", "expected_loss",
    "constants_queue", "fire_signals", "load_strategy_config", "outreach_queue",
    "pd_only_queue", "random_queue", "rank_within_level",
    "BASES", "CONSTANTS", "action_numbers", "decision_bases", "decision_gate", "DETAIL_COLUMNS", "LEARNED", "OUTCOMES", "LearnedEffects",
    "learned_effects", "merge_queues", "open_actions", "risk_grade", "summarise",
    "uplift_features",
]
