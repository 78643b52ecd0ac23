"""Macro stress scenarios applied to customer snapshots (the handbook's sudden shock).

A scenario moves regional unemployment and the policy rate (and with it every
product's market rate) and cuts income by employment type; the stressed snapshot
goes through the same feature function, models and strategy as the real one.
Limits: the models respond only as far as their training data let them learn the
macro and income effects; a shock far outside the history is extrapolated flat by
the trees, so read stressed PDs as a lower bound and pair them with judgement.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from postloan.config_files import read_mapping, read_text, shipped_text, validate
from postloan.decisions.batch import score_and_decide
from postloan.decisions.strategy import StrategyConfig
from postloan.errors import ConfigError
from postloan.models.bundle import ModelBundle


class Scenario(BaseModel):
    """One stress scenario (validated YAML)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    unemployment_points: dict[str, float] = Field(default_factory=dict)
    rate_points: float = Field(0.0, ge=-10, le=20)
    income_shock: dict[str, float] = Field(default_factory=dict)

    # Region and employment-type names are checked against the scored book's own
    # vocabularies (check_vocabularies), not here: a lender's regions are its own.

    @field_validator("income_shock")
    @classmethod
    def _shocks(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if not 0.0 <= x < 1.0}
        if bad:
            raise ValueError(f"income shocks are fractions lost, in [0, 1): {bad}")
        return v


def check_vocabularies(scenario: Scenario, vocabularies: dict[str, Sequence[str]]) -> None:
    """Refuse a scenario naming a region or employment type the book does not have.

    A shock keyed by a name the book does not use would silently not apply (the
    customers would get the ``all`` shock instead), so it is an error.

    Args:
        scenario: the scenario.
        vocabularies: the book's vocabularies (:func:`postloan.data.io.book_vocabularies`).

    Raises:
        ConfigError: naming the field, the unknown names and the book's own.
    """
    for field, vocab in (("unemployment_points", "region"),
                         ("income_shock", "employment_type")):
        known = list(vocabularies[vocab])
        unknown = sorted(set(getattr(scenario, field)) - set(known) - {"all"})
        if unknown:
            raise ConfigError(f"scenario '{scenario.name}': {field} names {vocab} value(s) "
                              f"{unknown} that this book does not have; use 'all' or the "
                              f"book's own: {known}")


def builtin_scenarios() -> list[str]:
    """Names of the scenarios that ship with postloan."""
    folder = resources.files("postloan").joinpath("config/scenarios")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_scenario(path_or_name: str | Path) -> Scenario:
    """A scenario from a YAML file, or a built-in one by name (``mild``, ``severe``)."""
    p = Path(path_or_name)
    if p.suffix not in (".yaml", ".yml") and str(path_or_name) in builtin_scenarios():
        text = shipped_text(f"config/scenarios/{path_or_name}.yaml")
        src = f"'{path_or_name}' (built in)"
    else:
        text = read_text(p, "scenario", f"; built-in scenarios: {builtin_scenarios()}")
        src = str(p)
    return validate(Scenario, read_mapping(text, "scenario", src), "scenario", src)


def apply_scenario(snapshot: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """The stressed copy of customer snapshots.

    Unemployment moves by region (``all`` as the default), its 6-month change by the
    same points; the policy rate, the market rate and the customer's own rate by
    ``rate_points`` (loans reprice with the market); verified
    and declared income fall by the shock of the customer's employment type.
    """
    out = snapshot.copy()
    region = out["region"].astype(object)
    base = scenario.unemployment_points.get("all", 0.0)
    du = region.map(lambda r: scenario.unemployment_points.get(r, base)).astype("float64")
    out["unemployment_rate"] = out["unemployment_rate"] + du.to_numpy()
    out["unemployment_change_6m"] = out["unemployment_change_6m"] + du.to_numpy()
    out["policy_rate"] = out["policy_rate"] + scenario.rate_points
    out["market_rate"] = out["market_rate"] + scenario.rate_points
    # Loans reprice with the market (a floating-rate book, as most mortgages and SME loans
    # are): the customer's rate moves by the same points, so the rate gap the models read
    # (customer's rate minus the market's) is unchanged. Moving only the market would
    # make every borrower look cheaper than the market, i.e. safer, under a rate shock.
    out["weighted_rate"] = out["weighted_rate"] + scenario.rate_points
    default_cut = scenario.income_shock.get("all", 0.0)
    cut = out["employment_type"].astype(object).map(
        lambda e: scenario.income_shock.get(e, default_cut)).astype("float64").to_numpy()
    for col in ("verified_monthly_income", "declared_monthly_income"):
        out[col] = out[col] * (1.0 - cut)
    # The 6-month change compounds with the cut; no history (NaN) stays unknown.
    out["income_change_6m"] = (1.0 + out["income_change_6m"]) * (1.0 - cut) - 1.0
    return out


def stress_decisions(snapshot: pd.DataFrame, scenario: Scenario,
                     bundles: dict[str, ModelBundle],
                     cfg: StrategyConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decisions for the book as it is and under `scenario`, by the one batch step.

    Both go through :func:`postloan.decisions.batch.score_and_decide` (without reason codes, which
    the comparison does not read), so the *before* decisions are the numbers ``postloan
    score`` gives for the same snapshot and champions.

    Returns:
        (before, after) decision frames, one row per customer in the snapshot's order.
    """
    before = score_and_decide(snapshot, bundles, cfg, with_reasons=False)["decisions"]
    stressed = apply_scenario(snapshot, scenario)
    after = score_and_decide(stressed, bundles, cfg, with_reasons=False)["decisions"]
    return before, after


def compare(before: pd.DataFrame, after: pd.DataFrame, by: str = "segment") -> pd.DataFrame:
    """Portfolio PD, EL, warning levels and risk contacts, before and after, by `by`.

    `before`/`after` are strategy decisions (``postloan.decisions.strategy.apply_strategy``);
    rows are aligned by customer and grouped by the *before* segment, so a customer
    stays in its group when the scenario moves it.
    """
    key = before[["customer_id", by]].rename(columns={by: "group"})
    rows = []
    for label, dec in (("before", before), ("after", after)):
        d = dec.drop(columns=[by], errors="ignore").merge(key, on="customer_id")
        lvl = d["warning_level"].astype(str)
        grouped = d.assign(orange_red=lvl.isin(["orange", "red"]), red=lvl == "red")
        for group, g in [("all", grouped), *grouped.groupby("group", observed=True)]:
            rows.append({"group": str(group), "when": label, "customers": len(g),
                         "mean_pd": g["pd_12m"].mean(),
                         "expected_loss": g["expected_loss"].sum(),
                         "red": int(g["red"].sum()), "orange_or_red": int(g["orange_red"].sum()),
                         "risk_contacts": int(g["recommended_action"].isin(
                             ["payment_reminder", "restructuring_offer"]).sum())})
    return pd.DataFrame(rows)
