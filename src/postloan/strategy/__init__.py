"""Early warning and customer prioritisation: from three scores to who to call, why, and what.

The domain's point is not the scores but the actions (domain.md, "Early warning" and
"Customer prioritization"). Given the scored frame (:func:`postloan.batch.score_snapshot`)
and the customer snapshot, this module derives per customer:

- a **risk grade** from calibrated PD bands (monotone in ``pd_12m``);
- the **expected loss** EL = PD x LGD x EAD, with EAD = outstanding balance and LGD by
  main product blended with the secured share of the balance;
- **early-warning signals**: declared rules on snapshot or score fields;
- a **warning level** (green / yellow / orange / red) with its response and every reason
  that put the customer there, ranked by severity x probability inside each level;
- a **segment** from customer value (expected margin over the remaining life) x risk;
- the **expected benefit** of one contact and the **recommended action**, which
  :func:`outreach_queue` ranks into a queue for a team of limited capacity.

Every threshold and rule lives in ``config/strategy.yaml`` (validated by
:class:`StrategyConfig`); the functions are pure: DataFrames in, DataFrames out.
Arithmetic is vectorised with numpy; Python loops only build the text lists.

One job per module, every public name re-exported here:

- :mod:`~postloan.strategy.config`: the vocabulary (levels, segments, actions) and the
  pydantic models of the YAML, :func:`load_strategy_config`;
- :mod:`~postloan.strategy.rules`: grades, expected loss, signals, customer value;
- :mod:`~postloan.strategy.decide`: :func:`apply_strategy` (frames), :func:`decide`
  (columns, for the service), :func:`rank_within_level`, :func:`early_warnings`;
- :mod:`~postloan.strategy.texts`: the English and Chinese reasons;
- :mod:`~postloan.strategy.queue`: :func:`outreach_queue` and :func:`summarise`.
"""

from postloan.strategy.config import (
    ACTIONS,
    CHURN_COL,
    DISSAT_COL,
    LEVELS,
    NO_ACTION,
    PD_COL,
    RULE_LEVELS,
    SEGMENTS,
    SIGNAL_FIELDS,
    SOURCES,
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
from postloan.strategy.decide import (
    OUTPUT_COLUMNS,
    apply_strategy,
    decide,
    early_warnings,
    rank_within_level,
)
from postloan.strategy.queue import QUEUE_COLUMNS, outreach_queue, summarise
from postloan.strategy.rules import customer_value, expected_loss, fire_signals, risk_grade
from postloan.strategy.uplift_queue import (
    learned_queue,
    merge_learned_queues,
    net_benefits,
    queue_with_fallback,
    uplift_effects,
)

__all__ = [
    "ACTIONS", "CHURN_COL", "DISSAT_COL", "LEVELS", "NO_ACTION", "OUTPUT_COLUMNS", "PD_COL",
    "QUEUE_COLUMNS", "RULE_LEVELS", "SEGMENTS", "SIGNAL_FIELDS", "SOURCES", "Escalation",
    "GradeBand", "LevelName", "LevelRule", "LgdPair", "Outreach", "PressureRule",
    "Segmentation", "Share", "Signal", "StrategyConfig", "Text", "ValueConfig",
    "apply_strategy", "customer_value", "decide", "early_warnings", "expected_loss",
    "fire_signals", "load_strategy_config", "outreach_queue", "rank_within_level",
    "learned_queue", "merge_learned_queues", "net_benefits", "queue_with_fallback", "risk_grade", "summarise",
    "uplift_effects",
]
