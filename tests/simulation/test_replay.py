"""Policy replay: forks the simulated book and judges queues on simulated outcomes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import cli_env
from postloan.data import schema as S
from postloan.decisions import strategy
from postloan.errors import ConfigError, DataValidationError
from postloan.simulation import ContactPolicy, SimulationConfig, fork, simulate
from postloan.simulation import replay as P

CFG = SimulationConfig(n_customers=2_500, n_months=20, seed=21)
AS_OF = CFG.month_ends()[6]
SHORT = P.Valuation(horizon_months=8)


@pytest.fixture(scope="module")
def state():
    return fork(CFG, 6)


@pytest.fixture(scope="module")
def harmful(state):
    """Reminders to paying, service-sensitive customers: the annoyed, never helped."""
    w, s = state
    open_c = np.bincount(s.slot_owner, weights=s.l_open, minlength=w.n) > 0
    pick = np.flatnonzero(open_c & (s.missed == 0) & (w.s_sens > 0.7) & (w.engage < 0.3))[:250]
    return pd.DataFrame({"customer_id": w.cid[pick], "action": "payment_reminder"})


@pytest.fixture(scope="module")
def runs(harmful):
    queues = {("harm", 250): harmful,
              ("nobody", 250): pd.DataFrame({"customer_id": [], "action": []})}
    return P.replay_policies(CFG, AS_OF, queues, seeds=range(6), valuation=SHORT)


def test_replay_without_contacts_reproduces_the_books_outcomes():
    quiet = SimulationConfig(2_000, 16, 4, contacts=ContactPolicy(holdout=1.0))
    book = simulate(quiet)
    as_of = quiet.month_ends()[5]
    runs = P.replay_policies(quiet, as_of, {}, seeds=[0], valuation=SHORT)
    rep = book["repayments"]
    at = rep[rep["statement_date"] == as_of]
    in_default = at.loc[at["dpd"] >= S.DEFAULT_DPD, "customer_id"].unique()
    w, _ = fork(quiet, 5)
    funding = float(w.policy[5]) + SHORT.funding_spread_pct
    got = P.realised_outcomes(book, as_of, SHORT, funding, in_default)
    row = runs.iloc[0]
    assert row["policy"] == P.NO_CONTACT_POLICY
    assert row["n_defaults"] == got["defaulted"].sum() > 0
    assert row["credit_loss"] == pytest.approx(got["credit_loss"].sum())
    assert row["n_churned"] == got["churned"].sum() > 0
    assert row["churned_value"] == pytest.approx(got["churned_value"].sum())
    assert row["complaints"] == got["complaints"].sum() > 0


def test_contacting_nobody_costs_nothing_and_changes_nothing(runs):
    nobody = runs[runs["policy"] == "nobody"].set_index("seed")
    none = runs[runs["policy"] == P.NO_CONTACT_POLICY].set_index("seed")
    assert (nobody["contact_cost"] == 0).all() and (nobody["n_contacts"] == 0).all()
    assert (nobody["net_benefit"] == 0).all()
    for m in ("credit_loss", "churned_value", "complaints"):
        pd.testing.assert_series_equal(nobody[m], none[m])


def test_harmful_contacts_lower_net_benefit(runs, harmful):
    harm = runs[runs["policy"] == "harm"]
    none = runs[runs["policy"] == P.NO_CONTACT_POLICY]
    assert len(harmful) > 100
    assert (harm["contact_cost"] == len(harmful) * CFG.contacts.payment_reminder.cost).all()
    assert harm["complaints"].sum() > none["complaints"].sum()
    assert (harm["net_benefit"] < 0).mean() >= 5 / 6
    assert harm["net_benefit"].mean() < 0


def test_seeds_are_different_futures_with_common_numbers_across_policies(runs):
    none = runs[runs["policy"] == P.NO_CONTACT_POLICY]
    assert none["credit_loss"].nunique() > 1  # other seeds, other futures


def test_intervals_shrink_with_more_seeds(runs):
    few = P.summarise_replay(runs[runs["seed"] < 2]).set_index("policy")
    many = P.summarise_replay(runs).set_index("policy")
    w_few = few.loc["harm", "net_benefit_hi"] - few.loc["harm", "net_benefit_lo"]
    w_many = many.loc["harm", "net_benefit_hi"] - many.loc["harm", "net_benefit_lo"]
    assert w_many < w_few
    # The interval is the mean +- t(0.95, n - 1) x standard error over seeds.
    from scipy import stats

    v = runs.loc[runs["policy"] == "harm", "complaints"].to_numpy(float)
    half = stats.t.ppf(0.95, 5) * v.std(ddof=1) / np.sqrt(6)
    assert many.loc["harm", "complaints_hi"] == pytest.approx(v.mean() + half)
    one = P.summarise_replay(runs[runs["seed"] == 0])
    assert one["net_benefit_lo"].isna().all()
    assert (many["n_seeds"] == 6).all()


def test_paired_difference_is_per_seed_and_tighter_than_the_arms(runs):
    d = P.paired_difference(runs, "harm", "nobody")
    assert len(d) == 1 and d["n_seeds"].iloc[0] == 6
    arms = runs.pivot_table(index="seed", columns="policy", values="net_benefit")
    diff = arms["harm"] - arms["nobody"]
    assert d["difference"].iloc[0] == pytest.approx(diff.mean())
    assert d["wins"].iloc[0] == int((diff > 0).sum())
    from scipy import stats

    half = stats.t.ppf(0.95, 5) * diff.std(ddof=1) / np.sqrt(6)
    assert d["difference_hi"].iloc[0] == pytest.approx(diff.mean() + half)
    # Harmful contacts lose to contacting nobody in every shared future.
    assert d["difference_hi"].iloc[0] < 0 and d["wins"].iloc[0] == 0
    assert P.paired_difference(runs, "harm", "no-such-policy").empty


def test_baseline_queues():
    d = pd.DataFrame({"customer_id": [5, 3, 9, 1, 7], "pd_12m": [0.2, 0.5, 0.5, 0.01, 0.3],
                      "dpd_current": [0, 45, 0, 0, 10],
                      "recommended_action": ["payment_reminder", "restructuring_offer",
                                             "none", "retention_offer", "payment_reminder"]})
    q = strategy.pd_only_queue(d, 3)
    assert q["customer_id"].tolist() == [3, 9, 7]
    assert q["action"].tolist() == ["restructuring_offer", "payment_reminder",
                                    "payment_reminder"]
    r = strategy.random_queue(d, 10, seed=1)
    assert set(r["customer_id"]) == {5, 3, 1, 7}  # only the strategy's candidates
    assert (r.set_index("customer_id")["action"]
            == d.set_index("customer_id").loc[r["customer_id"], "recommended_action"]).all()
    assert len(strategy.random_queue(d, 2, seed=1)) == 2
    assert strategy.random_queue(d, 2, seed=1).equals(strategy.random_queue(d, 2, seed=1))
    with pytest.raises(ConfigError, match="capacity"):
        strategy.pd_only_queue(d, -1)


def test_constants_queue_is_todays_outreach_queue(small_tables):
    from postloan.data.snapshot import build_snapshot

    snap = build_snapshot(small_tables, "2024-03-31", with_labels=False)
    rng = np.random.default_rng(0)
    scored = pd.DataFrame({"customer_id": snap["customer_id"],
                           "pd_12m": rng.uniform(0, 0.4, len(snap)),
                           "p_churn_6m": rng.uniform(0, 0.5, len(snap)),
                           "p_dissatisfied_3m": rng.uniform(0, 0.6, len(snap))})
    dec = strategy.apply_strategy(scored, snap)
    q = strategy.constants_queue(dec, 40)
    ref = strategy.outreach_queue(dec, 40)
    assert q["customer_id"].tolist() == ref["customer_id"].tolist()
    assert q["action"].tolist() == ref["recommended_action"].astype(str).tolist()


def test_bad_queues_and_dates_are_clear_errors(state):
    w, _ = state
    ids = w.cid
    with pytest.raises(DataValidationError, match="unknown action"):
        P.queue_codes(pd.DataFrame({"customer_id": [ids[0]], "action": ["flowers"]}), ids)
    with pytest.raises(DataValidationError, match="not in the book"):
        P.queue_codes(pd.DataFrame({"customer_id": [1], "action": ["payment_reminder"]}), ids)
    with pytest.raises(DataValidationError, match="twice"):
        P.queue_codes(pd.DataFrame({"customer_id": [ids[0]] * 2,
                                    "action": ["payment_reminder"] * 2}), ids)
    with pytest.raises(DataValidationError, match="missing column"):
        P.queue_codes(pd.DataFrame({"customer_id": [ids[0]]}), ids)
    codes = P.queue_codes(pd.DataFrame({"customer_id": [ids[3], ids[1]],
                                        "action": ["retention_offer", "none"]}), ids)
    assert codes[3] == S.CONTACT_ACTIONS.index("retention_offer") and (codes >= 0).sum() == 1
    with pytest.raises(ConfigError, match="not a month end"):
        P.as_of_month(CFG, "2023-03-15", 12)
    with pytest.raises(ConfigError, match="needs 12"):
        P.as_of_month(CFG, CFG.month_ends()[10], 12)
    with pytest.raises(ConfigError, match="contact policy"):
        P.replay_policies(SimulationConfig(500, 16, 1, contacts=None), "2023-03-31", {})
    with pytest.raises(ConfigError, match="horizon"):
        P.Valuation(horizon_months=0)


BIN = Path(sys.executable).parent / "postloan"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], cwd=cwd, env=cli_env(cwd), capture_output=True,
                          text=True, timeout=600)


@pytest.mark.integration  # trains, runs the CLI in a process or a cluster
def test_evaluate_policy_command(tmp_path):
    r = _run("generate", "--customers", "1500", "--months", "20", "--seed", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run("evaluate-policy", "--as-of", "2023-06-30", "--capacity", "50", "--seeds", "2",
             "--scores", "truth", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "data" / "processed" / "policy" / "2023-06-30"
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["policy"]) == {"none", "constants", "pd_only", "random"}
    assert (summary.loc[summary["policy"] != "none", "n_contacts"] == 50).all()
    assert "net benefit" in r.stdout
    r = _run("evaluate-policy", "--as-of", "2024-06-30", "--capacity", "50", "--scores",
             "truth", cwd=tmp_path)
    assert r.returncode == 2 and "needs 12" in r.stderr and "Traceback" not in r.stderr
    r = _run("evaluate-policy", "--as-of", "2023-06-30", "--capacity", "50", "--scores",
             "guess", cwd=tmp_path)
    assert r.returncode == 2 and "--scores" in r.stderr


@pytest.mark.integration
def test_queues_from_the_champions_replay_on_the_small_book(trained, small_book):
    from pipelines.replay import run_evaluate_policy
    from postloan.models.store import load_bundles_from_dir

    bundles = load_bundles_from_dir(trained["root"] / "models")
    out = run_evaluate_policy(small_book, "2024-03-31", [30], n_seeds=2, scores="models",
                              bundles=bundles,
                              extra_queues={"first_ids": lambda d, k: pd.DataFrame(
                                  {"customer_id": np.sort(d["customer_id"].to_numpy())[:k],
                                   "action": "service_recovery_call"})})
    s = out["summary"].set_index("policy")
    assert set(s.index) == {"none", "constants", "pd_only", "random", "first_ids"}
    assert s.loc["first_ids", "contact_cost"] == 30 * 15.0
    q = out["queues"]
    assert (q.groupby("policy").size() == 30).all()


@pytest.mark.integration
def test_the_decision_arm_replays_the_one_decisions_queue(trained, uplift_trained, small_book):
    """`decision` replays exactly the queue postloan would send: the one decision with the
    uplift models (where their gate admits them) ranked by net benefit; `learned_all`
    lets every model decide."""
    from pipelines.replay import decision_queue_builder, run_evaluate_policy
    from postloan.data import io
    from postloan.data.snapshot import build_snapshot
    from postloan.decisions.batch import score_and_decide
    from postloan.models.store import load_bundles_from_dir
    from postloan.models.uplift import UpliftBundle

    bundles = load_bundles_from_dir(trained["root"] / "models")
    uplift = {r["action"]: UpliftBundle.load(Path(r["bundle"]))
              for r in uplift_trained["results"]}
    out = run_evaluate_policy(small_book, "2024-03-31", [30], n_seeds=1, scores="models",
                              bundles=bundles, extra_queues={
                                  "decision": decision_queue_builder(uplift),
                                  "learned_all": decision_queue_builder(uplift,
                                                                        respect_gate=False)})
    q = out["queues"].set_index("policy")
    snap = build_snapshot(io.read_tables(small_book), "2024-03-31", with_labels=False)
    want = score_and_decide(snap, bundles, capacity=30, with_reasons=False,
                            uplift=uplift)["queue"]
    got = q.loc["decision"]
    assert got["customer_id"].tolist() == want["customer_id"].tolist()
    assert got["action"].tolist() == want["recommended_action"].astype(str).tolist()
    for b in uplift.values():  # every model decides: what `learned_all` replays
        b.metadata["decision_gate"] = {**b.decision_gate, "decides": True}
    all_q = score_and_decide(snap, bundles, capacity=30, with_reasons=False,
                             uplift=uplift)["queue"]
    assert q.loc["learned_all"]["customer_id"].tolist() == all_q["customer_id"].tolist()
    assert set(all_q["decision_basis"].astype(str)) == {strategy.LEARNED}
