"""Shared fixtures: a small simulated book, kept in memory and on disk per session.

The environment is set before anything else imports matplotlib, MLflow or BentoML
so tests never write to ~/.config or ~/.cache and never phone home.

Tests are marked by the fixtures they use (:func:`pytest_collection_modifyitems`), so
``make test-fast`` (``pytest -m "not slow and not integration"``) runs the unit tests
in about a minute and ``make test`` runs everything.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_TMP_HOME = Path(tempfile.mkdtemp(prefix="postloan-tests-"))
os.environ.setdefault("MPLCONFIGDIR", str(_TMP_HOME / "mpl"))
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ.setdefault("BENTOML_HOME", str(_TMP_HOME / "bentoml"))
os.environ.setdefault("XDG_CACHE_HOME", str(_TMP_HOME / "cache"))
os.environ.setdefault("XDG_CONFIG_HOME", str(_TMP_HOME / "config"))

import pytest  # noqa: E402

from postloan.data import io  # noqa: E402
from postloan.data import schema as S  # noqa: E402
from postloan.simulation import SimulationConfig, simulate  # noqa: E402

SMALL = SimulationConfig(n_customers=3_000, n_months=30, seed=7)

# A test using one of these fixtures, directly or through another fixture, is marked
# `integration`: it needs a trained model (`trained`: the session's champions in a real
# MLflow store here, models of their own in test_reports and test_explain_and_units),
# runs the installed `postloan` command in a project folder (`project`, test_cli),
# talks to a real service (`client`: the ASGI app with loaded champions in
# test_serving, a Dask cluster in test_engine; `server`: a real `bentoml serve`) or
# drives a real browser (`chromium`) or a real PostgreSQL server (`pg_server`). `slow`: the full demo book. Explicit marks in
# the test modules add to these (e.g. a long cross-validation).
INTEGRATION_FIXTURES = frozenset({"trained", "project", "client", "server", "chromium",
                                  "pg_server"})
SLOW_FIXTURES = frozenset({"demo_tables"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests `integration` / `slow` by the fixtures they use (see above)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))  # the closure: fixtures of fixtures too
        if used & INTEGRATION_FIXTURES:
            item.add_marker(pytest.mark.integration)
        if used & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)


def load_benchmark(name: str):
    """The module ``benchmarks/<name>.py`` (benchmarks are scripts, not a package).

    Imported by name with ``benchmarks/`` at the end of ``sys.path`` (its scripts
    ``serving.py``, ``training.py``... must not shadow the packages), so the process
    pools a benchmark starts (joblib's, in the German credit CV) import it too.
    """
    import importlib
    import sys

    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module(name)


def cli_env(root: Path, **extra: str) -> dict[str, str]:
    """Environment for a `postloan` subprocess working in `root`.

    Leaves out MLFLOW_TRACKING_URI: ``mlflow.set_tracking_uri`` (called in-process by
    the fixtures) exports it, which would point a child at another test's store.
    """
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, "POSTLOAN_ROOT": str(root), "COLUMNS": "120", **extra}


@pytest.fixture(scope="session")
def small_tables() -> dict:
    """A validated small book (3,000 customers, 30 months), shared read-only."""
    tables = simulate(SMALL)
    return {k: S.validate_table(k, v) for k, v in tables.items()}


@pytest.fixture(scope="session")
def small_book(small_tables, tmp_path_factory) -> Path:
    """The small book written to disk as parquet + manifest."""
    out = tmp_path_factory.mktemp("book") / "raw"
    io.write_tables(small_tables, out, meta={"seed": SMALL.seed,
                                              "simulation_config": SMALL.to_dict()})
    return out


@pytest.fixture()
def tables_copy(small_tables) -> dict:
    """A deep copy of the small book that a test may mutate."""
    return {k: v.copy(deep=True) for k, v in small_tables.items()}


@pytest.fixture(scope="session")
def trained(small_book, tmp_path_factory) -> dict:
    """The three models trained fast on the small book, in a real SQLite MLflow store.

    Returns ``{"uri", "root", "results"}``; bundles are exported to ``root / "models"``.
    """
    from pipelines.train import run_train
    from postloan.models.bundle import MODELS
    from postloan.models.training import Splits, TrainConfig

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # LightGBM for all three (not `auto`): the tree tests (TreeSHAP, reproducibility)
    # need boosters; the logistic family has its own tests (test_training_pipeline.py).
    cfg = TrainConfig(shap_sample=500, splits=Splits(n_train=6),
                      models={m: {"family": "lightgbm"} for m in MODELS})
    results = run_train(small_book, list(MODELS), cfg, uri, root / "mlartifacts",
                        root / "models", root)
    return {"uri": uri, "root": root, "results": {r["model"]: r for r in results}}


@pytest.fixture(scope="session")
def uplift_trained(small_book, trained, tmp_path_factory) -> dict:
    """The four uplift models trained on the small book's logged contacts (the shipped
    learner), registered in a copy of the ``trained`` store (its three champions value
    the decision gate) and exported to ``root / "models"``. Returns ``{"uri", "root",
    "results"}``."""
    import shutil

    from pipelines.train import run_train_uplift

    root = tmp_path_factory.mktemp("uplift")
    shutil.copy(trained["root"] / "mlflow.db", root / "mlflow.db")  # artifacts stay put
    uri = f"sqlite:///{root / 'mlflow.db'}"
    results = run_train_uplift(small_book, uri, root / "art", root / "models", root,
                               n_dates=6, n_test_dates=2)
    return {"uri": uri, "root": root, "results": results}


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server for the session (see tests/postgres.py for the API).

    Fails, never skips, when the server cannot start: ``make test`` installs Debian's
    ``postgresql`` when it is missing.
    """
    from postgres import PostgresServer

    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
