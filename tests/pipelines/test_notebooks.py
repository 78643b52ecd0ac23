"""The notebooks: committed without outputs, no logic of their own, and they run.

Each notebook runs top to bottom in a fresh Jupyter kernel (nbclient, as nbmake does) on
a small book, sharing one temporary work folder in order 01 -> 02 -> 03 (03 reuses the
champions 02 registered; run alone it trains them itself).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import nbformat
import pytest

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = ("01_portfolio.ipynb", "02_train_and_compare.ipynb",
             "03_explain_a_customer.ipynb", "04_monitoring_and_stress.ipynb")
N_CUSTOMERS = "3000"


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NB_DIR / name, as_version=4)


def _code(cell: nbformat.NotebookNode) -> str:
    # IPython magics (%matplotlib inline) are not Python: drop them before parsing.
    return "\n".join(line for line in cell.source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    nb = _read(name)
    nbformat.validate(nb)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {name[:2]} ")
    assert "What this notebook is for" in first.source
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [] and cell.execution_count is None, "outputs not stripped"
        tree = ast.parse(_code(cell))
        defined = [n for n in ast.walk(tree)
                   if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
                                 | ast.Lambda)]
        assert not defined, f"{name} defines logic; move it into the postloan library"
    assert "POSTLOAN_NB_CUSTOMERS" in "".join(c.source for c in nb.cells)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("notebooks")


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name, workdir, monkeypatch):
    if importlib.util.find_spec("ipykernel") is None:
        pytest.skip("ipykernel is not installed: pip install -e '.[notebooks]' to run the "
                    "notebooks")
    from nbclient import NotebookClient

    monkeypatch.setenv("POSTLOAN_NB_CUSTOMERS", N_CUSTOMERS)
    monkeypatch.setenv("POSTLOAN_NB_WORKDIR", str(workdir))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    nb = _read(name)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NB_DIR)}})
    client.execute()  # raises CellExecutionError with the failing cell and traceback
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    n_images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert n_images >= {"01": 2, "02": 2, "03": 3, "04": 2}[name[:2]], "figures did not display"
    # Nothing was written next to the notebooks or into the project's stores.
    assert not list(NB_DIR.glob("*.db")) and not (NB_DIR / "mlruns").exists()
    if name.startswith("02"):
        assert list(workdir.glob("runs_*/reports/default_risk.html"))
