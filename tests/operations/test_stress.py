"""Stress scenarios: validation, arithmetic, and a real re-scoring under the severe one."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.stress import run_stress
from postloan.data.snapshot import build_snapshot
from postloan.errors import ConfigError
from postloan.models.store import load_bundles_from_dir
from postloan.operations.stress import Scenario, apply_scenario, builtin_scenarios, load_scenario


def test_builtin_scenarios_load():
    assert {"mild", "severe"} <= set(builtin_scenarios())
    assert load_scenario("severe").rate_points > load_scenario("mild").rate_points


@pytest.mark.parametrize("text,field", [
    ("name: x\nunemployment_points: {north: high}\n", "unemployment_points"),
    ("name: x\nincome_shock: {gig_worker: 1.5}\n", "income_shock"),
    ("name: x\nrate_points: high\n", "rate_points"),
    ("name: x\nsurprise: 1\n", "surprise"),
])
def test_bad_scenarios_are_named(tmp_path, text, field):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=field):
        load_scenario(p)
    with pytest.raises(ConfigError, match="built-in scenarios"):
        load_scenario(tmp_path / "missing.yaml")


def test_scenario_names_are_checked_against_the_books_vocabularies():
    from postloan.data import schema as S
    from postloan.operations.stress import check_vocabularies

    default = S.resolve_vocabularies(None)
    check_vocabularies(load_scenario("severe"), default)  # the simulator's names: fine
    zh = {**default, "region": ("华东", "华北")}
    # A shock keyed by a region the book does not have would silently not apply.
    with pytest.raises(ConfigError, match=r"unemployment_points .*\['north', 'northeast'\]"):
        check_vocabularies(load_scenario("severe"), zh)
    check_vocabularies(Scenario(name="z", unemployment_points={"华东": 2.0, "all": 1.0}), zh)
    with pytest.raises(ConfigError, match=r"income_shock .*\['atlantis'\]"):
        check_vocabularies(Scenario(name="x", income_shock={"atlantis": 0.1}), default)


def test_apply_scenario_arithmetic(small_tables):
    snap = build_snapshot(small_tables, "2024-03-31", with_labels=False)
    sc = Scenario(name="t", unemployment_points={"all": 1.0, "north": 3.0}, rate_points=0.5,
                  income_shock={"gig_worker": 0.2})
    out = apply_scenario(snap, sc)
    north = (snap["region"] == "north").to_numpy()
    du = (out["unemployment_rate"] - snap["unemployment_rate"]).to_numpy()
    assert np.allclose(du[north], 3.0) and np.allclose(du[~north], 1.0)
    assert np.allclose(out["policy_rate"] - snap["policy_rate"], 0.5)
    gig = (snap["employment_type"] == "gig_worker").to_numpy()
    ratio = (out["verified_monthly_income"] / snap["verified_monthly_income"]).to_numpy()
    assert np.allclose(ratio[gig], 0.8) and np.allclose(ratio[~gig], 1.0)
    assert snap["unemployment_rate"].iloc[0] != out["unemployment_rate"].iloc[0]  # a copy


@pytest.mark.integration
def test_severe_scenario_raises_risk(trained, small_book, tmp_path):
    bundles = load_bundles_from_dir(trained["root"] / "models")
    t = run_stress(small_book, "2024-06-30", load_scenario("severe"), bundles, tmp_path / "s")
    total = t[t["group"] == "all"].set_index("when")
    assert total.loc["after", "mean_pd"] >= total.loc["before", "mean_pd"]
    assert total.loc["after", "expected_loss"] >= total.loc["before", "expected_loss"]
    assert total.loc["after", "orange_or_red"] > total.loc["before", "orange_or_red"]
    assert {"stress.parquet", "stress.csv", "stress.png"} <= {p.name for p in
                                                            (tmp_path / "s").iterdir()}
