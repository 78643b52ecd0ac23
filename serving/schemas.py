"""Request and response models of the HTTP service (strict pydantic).

A request body carries customer snapshots with exactly the fields of the snapshot
contract (:data:`postloan.data.snapshot.SNAPSHOT_FIELDS`): every field present, numbers as
JSON numbers (``null`` = not applicable, e.g. never surveyed), categories as text (a
value outside the models' categories is scored as missing and flagged in the answer's
``unknown_categories``), no other field. Anything else is refused with a 400 naming the
field path and the rule: strings for numbers, NaN/Infinity, values out of range,
extra or missing fields, an empty batch or one over the limit
(``POSTLOAN_MAX_BATCH``, default 1,000), the same customer twice in one batch.

Ranges are plausibility bounds (what a correct upstream extract can hold), not the
training data's range: a value outside them is a data error, not a rare customer.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from postloan.data import schema as S
from postloan.data.snapshot import CATEGORY_FIELDS, NUMERIC_FIELDS, SNAPSHOT_FIELDS
from postloan.decisions import strategy
from postloan.models.bundle import MODELS

DEFAULT_MAX_BATCH = 1000
MAX_BATCH_ENV = "POSTLOAN_MAX_BATCH"
HARD_MAX_BATCH = 100_000  # refuse a configuration that would accept absurd bodies

_MONEY = 1e10  # largest plausible amount of money in the book's currency
_COUNT = 1e5  # largest plausible count of events in a window
_MONTHS = 1200.0  # a century
_DAYS = 36_500.0

# field -> (min, max), both inclusive. Fields missing here (a newer snapshot contract)
# get _DEFAULT_BOUNDS, so the service keeps working; tests check the table is complete.
NUMERIC_BOUNDS: dict[str, tuple[float, float]] = {
    "age": (16.0, 120.0),
    "tenure_months": (0.0, _MONTHS),
    "declared_monthly_income": (0.0, _MONEY),
    "verified_monthly_income": (0.0, _MONEY),
    "income_change_6m": (-1.0, 1000.0),  # ratio - 1: income cannot fall below zero
    "bureau_score": (300.0, 850.0),
    "bureau_score_avg_12m": (300.0, 850.0),
    "bureau_score_change_6m": (-550.0, 550.0),
    "external_debt": (0.0, _MONEY),
    "n_open_loans": (0.0, 1000.0),
    "has_mortgage": (0.0, 1.0),
    "has_card": (0.0, 1.0),
    "has_sme": (0.0, 1.0),
    "total_principal": (0.0, _MONEY),
    "total_balance": (0.0, _MONEY),
    "total_instalment": (0.0, _MONEY),
    "card_utilisation": (0.0, 10.0),  # over-limit cards exceed 1
    "weighted_rate": (-10.0, 100.0),  # percent a year
    "market_rate": (-10.0, 100.0),
    "months_on_book": (0.0, _MONTHS),
    "min_remaining_months": (-_MONTHS, _MONTHS),  # negative: past maturity, still open
    "secured_share": (0.0, 1.0),
    "max_ltv": (0.0, 100.0),
    "dpd_current": (0.0, 3650.0),  # the repayment table's own bound
    "max_dpd_3m": (0.0, 3650.0),
    "max_dpd_6m": (0.0, 3650.0),
    "max_dpd_12m": (0.0, 3650.0),
    "n_missed_3m": (0.0, _COUNT),
    "n_missed_6m": (0.0, _COUNT),
    "n_missed_12m": (0.0, _COUNT),
    "paid_ratio_3m": (0.0, 5.0),  # the snapshot clips at 5
    "paid_ratio_6m": (0.0, 5.0),
    "paid_ratio_trend": (-5.0, 5.0),
    "months_since_delinquent": (0.0, _MONTHS),
    "ever_90dpd": (0.0, 1.0),
    "app_logins_1m": (0.0, _COUNT),
    "app_logins_3m": (0.0, _COUNT),
    "logins_trend": (0.0, _COUNT),
    "inbound_calls_3m": (0.0, _COUNT),
    "branch_visits_6m": (0.0, _COUNT),
    "service_requests_3m": (0.0, _COUNT),
    "complaints_3m": (0.0, _COUNT),
    "complaints_12m": (0.0, _COUNT),
    "open_complaints": (0.0, _COUNT),
    "max_open_complaint_days": (0.0, _DAYS),
    "open_service_requests": (0.0, _COUNT),
    "avg_resolution_days_6m": (0.0, _DAYS),
    "collection_contacts_3m": (0.0, _COUNT),
    "collection_refused_3m": (0.0, _COUNT),
    "promise_to_pay_3m": (0.0, _COUNT),
    "last_survey_score": (1.0, 5.0),  # survey scale 1..5
    "months_since_survey": (0.0, _MONTHS),
    "last_survey_min_dimension": (1.0, 5.0),
    "unemployment_rate": (0.0, 100.0),  # percent
    "unemployment_change_6m": (-100.0, 100.0),
    "policy_rate": (-5.0, 50.0),  # the macro table's own bound
}
_DEFAULT_BOUNDS = (-1e12, 1e12)
FLAG_FIELDS = ("has_mortgage", "has_card", "has_sme", "ever_90dpd")
NOT_NULL_FIELDS = ("total_balance",)


def max_batch(env: Mapping[str, str] | None = None) -> int:
    """Customers allowed in one request: ``POSTLOAN_MAX_BATCH`` (default 1,000).

    Read on each request (a dictionary look-up) so the request models and the
    service's start-up check can never disagree.

    Raises:
        ValueError: the variable is not an integer in 1..100,000 (the service checks it
            at start-up, so requests never see this).
    """
    raw = (os.environ if env is None else env).get(MAX_BATCH_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BATCH
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{MAX_BATCH_ENV}={raw!r} is not an integer") from None
    if not 1 <= n <= HARD_MAX_BATCH:
        raise ValueError(f"{MAX_BATCH_ENV}={n} must be between 1 and {HARD_MAX_BATCH}")
    return n


def _flag(v: float | None) -> float | None:
    if v is not None and v not in (0.0, 1.0):
        raise ValueError("must be 0 or 1")
    return v


class _Strict(BaseModel):
    # strict: no "3" for 3, no 1.0 for an integer id, no true for 1; allow_inf_nan=False
    # refuses NaN/Infinity (JSON has null for missing values).
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _snapshot_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {
        "customer_id": (int, Field(ge=0, le=2**53 - 1, description="the lender's customer "
                                   "id (a surrogate key, never a name or national id)")),
        "as_of": (date, Field(ge=S.MIN_DATE.date(), le=S.MAX_DATE.date(),
                              description="as-of date of the snapshot, YYYY-MM-DD")),
    }
    for c in CATEGORY_FIELDS:
        # Text, not a fixed list: the models may have been trained on a lender's own
        # vocabulary (GET /metadata, feature_spec.categories). A value outside the
        # model's categories is scored as missing and flagged in the answer.
        vocab = S.CATEGORY_VOCABULARIES[c]
        fields[c] = (str, Field(min_length=1, max_length=200, description=(
            f"one of the models' categories (default contract: {list(vocab)}); an "
            "unknown value is scored as missing and listed in unknown_categories")))
    for c in NUMERIC_FIELDS:
        lo, hi = NUMERIC_BOUNDS.get(c, _DEFAULT_BOUNDS)
        # EAD of the expected loss: the strategy needs it, so it may not be null.
        base: Any = float if c in NOT_NULL_FIELDS else float | None
        typ: Any = Annotated[base, Field(ge=lo, le=hi)]
        if c in FLAG_FIELDS:
            typ = Annotated[typ, AfterValidator(_flag)]
        desc = f"{c.replace('_', ' ')}; {lo:g}..{hi:g}" + (
            "" if c in NOT_NULL_FIELDS else ", null when not applicable")
        # Required (no default): a forgotten field is an error, not a silent null.
        fields[c] = (typ, Field(description=desc))
    return fields


CustomerSnapshot = create_model(
    "CustomerSnapshot", __base__=_Strict, __doc__="One customer's snapshot (the contract).",
    **_snapshot_fields())
assert tuple(CustomerSnapshot.model_fields) == SNAPSHOT_FIELDS

Level = Literal[strategy.LEVELS]
ModelName = Literal[tuple(MODELS)]


CustomerId = Annotated[int, Field(ge=0, le=2**53 - 1)]
_EITHER = ("send either `customers` (full snapshots) or `customer_ids` (looked up in the "
           "online snapshot store), not both")


def _check_batch(ids: list[int]) -> None:
    limit = max_batch()
    if len(ids) > limit:
        raise ValueError(f"{len(ids)} customers is over the limit of {limit} per request "
                         f"({MAX_BATCH_ENV}); split the batch")
    seen: dict[int, int] = {}
    for i, c in enumerate(ids):
        j = seen.setdefault(c, i)
        if j != i:
            raise ValueError(f"customer_id {c} appears twice (customers {j} and {i}); send "
                             "each customer once")


class _Batch(_Strict):
    # The JSON schema says what the validator enforces: one of the two (schemathesis and
    # OpenAPI clients read it).
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["customers"]},
                                                           {"required": ["customer_ids"]}]})

    customers: list[CustomerSnapshot] | None = Field(  # type: ignore[valid-type]
        None, min_length=1, description=f"1 to {MAX_BATCH_ENV} (default {DEFAULT_MAX_BATCH}) "
                                        "customer snapshots, each customer once")
    customer_ids: list[CustomerId] | None = Field(
        None, min_length=1, description="instead of `customers`: ids whose latest snapshot "
        "the service looks up in its online store (`postloan materialize`)")

    @field_validator("customers")
    @classmethod
    def _limit_and_unique(cls, v: list | None) -> list | None:
        if v is not None:
            _check_batch([c.customer_id for c in v])
        return v

    @field_validator("customer_ids")
    @classmethod
    def _ids_limit_and_unique(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            _check_batch(v)
        return v

    @model_validator(mode="after")
    def _one_of(self) -> _Batch:
        if (self.customers is None) == (self.customer_ids is None):
            raise ValueError(_EITHER)
        return self


class ScoreRequest(_Batch):
    """Score customers: probabilities, grade, EL, warning level, segment, reasons."""

    k_reasons: int = Field(3, ge=1, le=10, description="reasons per direction and model")


class EarlyWarningRequest(_Batch):
    """Customers at or above a warning level, with their signals and reasons."""

    min_level: Level = Field("yellow", description=f"lowest level returned, one of "
                                                   f"{list(strategy.LEVELS)}")


class PrioritizeRequest(_Batch):
    """The ranked outreach queue of these customers for a team of `capacity` contacts."""

    capacity: int = Field(ge=1, le=HARD_MAX_BATCH, description="contacts available")


class PredictRequest(_Batch):
    """Probabilities only: no reasons, no strategy (the lightest call)."""

    models: list[ModelName] | None = Field(  # type: ignore[valid-type]
        None, min_length=1, description="models to run (default: all three)")


class ExplainRequest(_Strict):
    """Full contributions of every feature for one customer."""

    customer: CustomerSnapshot | None = None  # type: ignore[valid-type]
    customer_id: CustomerId | None = Field(None, description="instead of `customer`: look "
                                           "the snapshot up in the online store")
    models: list[ModelName] | None = Field(  # type: ignore[valid-type]
        None, min_length=1, description="models to explain (default: all three)")

    @model_validator(mode="after")
    def _one_of(self) -> ExplainRequest:
        if (self.customer is None) == (self.customer_id is None):
            raise ValueError("send either `customer` (a full snapshot) or `customer_id` "
                             "(looked up in the online snapshot store), not both")
        return self


# ---------------------------------------------------------------------------- responses
class SnapshotUsed(BaseModel):
    """The online store's snapshot a by-id request was answered from."""

    as_of: date = Field(description="as-of date of the stored snapshots")
    age_days: int = Field(description="days between that date and the service's clock")
    max_age_days: int = Field(description="freshness limit (POSTLOAN_SNAPSHOT_MAX_AGE_DAYS)")
    stale: bool = Field(description="true when age_days is over the freshness limit: "
                                    "materialise a newer date")
    book_hash: str = Field(description="content hash of the book the snapshots came from")


class _ById(BaseModel):
    snapshot: SnapshotUsed | None = Field(None, description="requests by `customer_ids` "
                                          "only: the stored snapshot used")
    unknown_customer_ids: list[int] = Field(
        default_factory=list, description="ids the store does not hold (not an active "
        "customer at its as-of date); the others are answered")


class Reason(BaseModel):
    feature: str
    value: float | None = Field(description="the feature's value (null when missing)")
    contribution: float = Field(description="TreeSHAP contribution in log-odds")
    text_en: str
    text_zh: str


class Reasons(BaseModel):
    up: list[Reason] = Field(description="largest contributions raising the score")
    down: list[Reason] = Field(description="largest contributions lowering the score")


class Effect(BaseModel):
    estimate: float = Field(description="change in the outcome's probability (negative = "
                                        "fewer)")
    lo: float | None = Field(description="95% interval, lower end (learned effects of the "
                                         "risk-based learner; null otherwise)")
    hi: float | None


class ActionNumbers(BaseModel):
    considered: bool = Field(description="the handbook's rules leave the action open and its "
                                         "basis estimates it")
    basis: Literal["learned_uplift", "constants"]
    effects: dict[str, Effect | None] = Field(description="outcome (default_12m, churn_6m, "
                                                          "dissatisfied_3m) -> effect")
    value: dict[str, float | None] = Field(description="outcome -> money of its change")
    cost: float
    net_benefit: float | None


class Decision(BaseModel):
    """The one decision, the same fields as the decisions table (docs/decisions.md)."""

    recommended_action: str = Field(description="the action of highest positive net "
                                                "benefit, or 'none'")
    net_benefit: float = Field(description="its net benefit (0 for 'none')")
    decision_basis: Literal["learned_uplift", "constants"]
    pressure_rule: str = Field(description="'withheld', 'overridden' or ''")
    action_reasons: list[str]
    action_reasons_zh: list[str]
    actions: dict[str, ActionNumbers] = Field(description="per action, the numbers that "
                                                          "decided")


class CustomerScore(Decision):
    customer_id: int
    as_of: date
    pd_12m: float = Field(description="calibrated probability of 90+ DPD within 12 months")
    p_churn_6m: float = Field(description="calibrated probability of churn within 6 months")
    p_dissatisfied_3m: float | None = Field(
        description="calibrated probability of a complaint or a low survey score within 3 "
                    "months; null when no satisfaction model is served (a book without "
                    "surveys and complaints)")
    risk_grade: str
    ead: float
    lgd: float
    expected_loss: float
    warning_level: Level
    response: str
    response_zh: str
    signals: list[str]
    warning_reasons: list[str]
    warning_reasons_zh: list[str]
    customer_value: float
    segment: str
    reasons: dict[str, Reasons] = Field(description="top reasons per model")
    unknown_categories: list[str] = Field(
        default_factory=list, description="field=value pairs outside the models' "
                                          "categories, scored as missing")
    data_flags: list[str] = Field(
        default_factory=list,
        description="soft data-quality findings on this customer's record: stale_bureau "
        "(no bureau pull within 12 months), missing_bureau, missing_macro (a feed family "
        "missing), as_of_old (older than the configured age; still scored)")


class ScoreResponse(_ById):
    model_versions: dict[str, str]
    results: list[CustomerScore]


class Prediction(BaseModel):
    customer_id: int
    as_of: date
    probabilities: dict[str, float] = Field(description="score column -> calibrated "
                                                        "probability (pd_12m, ...)")
    unknown_categories: list[str] = Field(
        default_factory=list, description="field=value pairs outside the models' "
                                          "categories, scored as missing")


class PredictResponse(_ById):
    model_versions: dict[str, str]
    results: list[Prediction]


class CustomerDecision(Decision):
    """A customer's warning and decision (as ``/score`` gives them)."""

    warning_level: Level
    response: str
    response_zh: str
    signals: list[str]
    warning_reasons: list[str]
    warning_reasons_zh: list[str]
    risk_grade: str
    pd_12m: float
    expected_loss: float


class Warning(CustomerDecision):
    customer_id: int
    as_of: date
    warning_rank: int = Field(description="1 = most urgent inside its level")
    reasons: Reasons = Field(description="top reasons of the default-risk model")


class EarlyWarningResponse(_ById):
    model_versions: dict[str, str]
    min_level: Level
    n_customers: int = Field(description="customers in the request")
    warnings: list[Warning] = Field(description="highest level first, then warning_rank")


class QueueEntry(Decision):
    queue_rank: int
    customer_id: int
    warning_level: Level
    segment: str
    pd_12m: float
    p_churn_6m: float
    p_dissatisfied_3m: float | None
    expected_loss: float
    customer_value: float


class PrioritizeResponse(_ById):
    model_versions: dict[str, str]
    capacity: int
    n_customers: int
    queue: list[QueueEntry]


class Contribution(BaseModel):
    feature: str
    value: float | None
    contribution: float


class ModelExplanation(BaseModel):
    version: str
    probability: float = Field(description="calibrated probability")
    raw_margin: float = Field(description="booster log-odds = bias + sum of contributions")
    bias: float
    contributions: list[Contribution] = Field(description="every feature, largest |c| first")
    reasons: Reasons


class ExplainResponse(_ById):
    customer_id: int
    as_of: date
    explanations: dict[str, ModelExplanation]
    decision: CustomerDecision = Field(description="the warning and the one decision with "
                                                   "its numbers and reasons")


# ---------------------------------------------------------------------------- audit
def input_hash(record: dict[str, Any]) -> str:
    """SHA-256 of a snapshot record's canonical JSON (sorted keys, no spaces, ISO dates).

    The audit trail stores this instead of the record, so a reviewer holding the
    snapshot can prove which input a decision was made on without the log holding it.
    """
    def norm(v: Any) -> Any:
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, float) and math.isnan(v):
            return None
        return v

    canon = json.dumps({k: norm(record[k]) for k in SNAPSHOT_FIELDS}, sort_keys=True,
                       separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()
