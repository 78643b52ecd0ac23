"""The architecture, held (docs/architecture.md).

- Rooms: the library imports none of pipelines/, serving/, tests/; nothing imports
  the CLI module; the library's module-level imports form no cycle.
- Wings: import-linter's contracts in pyproject.toml (wings import downward only,
  shared modules import no wing); each wing's ``__init__`` says what it holds and what
  it may import.
- One owner: only :mod:`postloan.models.store` knows the bundle folder's pointer files.
- Short functions: none over 120 lines outside the compiled tree kernels.
- The CLI declares a shared option once.

Read from the source with ``ast`` (imports inside functions included where the rule is
about any import), so a lazy import cannot hide a wrong direction.
"""

from __future__ import annotations

import ast
import os
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "src" / "postloan"


def _module_name(path: Path, base: Path, package: str) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _imports(path: Path, module: str, top_level_only: bool = False) -> list[tuple[str, int]]:
    """(imported module, line) of every import in `path`; relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            out.append((base, node.lineno))
            # `from pkg import sub` imports the submodule pkg.sub when it is one
            out += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return out


def _roots(name: str) -> str:
    return name.split(".")[0]


def test_library_imports_no_pipelines_serving_or_tests():
    bad = []
    for path in sorted(LIB.rglob("*.py")):
        mod = _module_name(path, LIB, "postloan")
        for name, line in _imports(path, mod):
            if _roots(name) in {"pipelines", "serving", "tests", "conftest", "benchmarks"}:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_cli_module():
    bad = []
    for room in ("pipelines", "serving", "benchmarks"):
        for path in sorted((ROOT / room).rglob("*.py")):
            if path == ROOT / "pipelines" / "cli.py":
                continue
            mod = _module_name(path, ROOT / room, room)
            for name, line in _imports(path, mod):
                if name == "pipelines.cli" or name.startswith("pipelines.cli."):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_library_module_imports_have_no_cycle():
    """Module-level imports between library modules form a DAG (no import cycle)."""
    modules = {_module_name(p, LIB, "postloan"): p for p in LIB.rglob("*.py")}
    graph = {m: sorted({n for n, _ in _imports(p, m, top_level_only=True)
                        if n in modules and n != m}) for m, p in modules.items()}
    # A package's __init__ runs before its submodules; an edge submodule -> its own
    # package is how Python imports it, not a cycle of ours.
    graph = {m: [n for n in deps if not m.startswith(n + ".")] for m, deps in graph.items()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in graph[m]:
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(
                    [*stack[stack.index(n):], n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert "postloan.decisions.batch" in graph and "postloan.decisions.strategy.decide" in graph


WINGS = ("data", "models", "decisions", "operations", "simulation", "reporting", "scale")
MAX_LINES = 120


def test_import_linter_contracts_are_kept(monkeypatch, tmp_path):
    """pyproject.toml's import-linter contracts hold (the wings' direction among them)."""
    from importlinter import cli

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    assert cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True,
                            no_logo=True) == 0


def test_import_linter_layers_name_every_wing():
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    layers = next(c["layers"] for c in cfg["importlinter"]["contracts"]
                  if c["type"] == "layers")
    named = {w.strip().removeprefix("postloan.") for layer in layers for w in layer.split("|")}
    assert named == set(WINGS)
    on_disk = {p.name for p in LIB.iterdir() if (p / "__init__.py").is_file()}
    assert on_disk == set(WINGS), "a new wing must be placed in the layers contract"


@pytest.mark.parametrize("wing", WINGS)
def test_each_wing_says_what_it_holds_and_may_import(wing):
    doc = ast.get_docstring(ast.parse((LIB / wing / "__init__.py").read_text("utf-8")))
    assert doc and "import" in doc.lower(), f"postloan.{wing}: no docstring on its imports"


def test_only_the_store_knows_the_pointer_files():
    bad = []
    for room in ("src", "pipelines", "serving"):
        for path in sorted((ROOT / room).rglob("*.py")):
            if path == LIB / "models" / "store.py":
                continue
            text = path.read_text(encoding="utf-8")
            for name in ('"champion.json"', '"latest.json"'):
                if name in text:
                    bad.append(f"{path.relative_to(ROOT)} names {name}")
    assert not bad, "\n".join(bad)


def _compiled(fn: ast.FunctionDef) -> bool:
    return any("njit" in ast.unparse(d) or "numba" in ast.unparse(d) for d in fn.decorator_list)


def test_no_function_is_over_120_lines():
    long = []
    for room in ("src", "pipelines", "serving"):
        for path in sorted((ROOT / room).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not _compiled(node):
                    n = node.end_lineno - node.lineno + 1
                    if n > MAX_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} {n}")
    assert not long, "\n".join(long)


def test_cli_declares_a_shared_option_once():
    """An inline option declaration typed out twice (same name, type and help) should
    be one ``...Opt`` alias at the top of pipelines/cli.py."""
    tree = ast.parse((ROOT / "pipelines" / "cli.py").read_text(encoding="utf-8"))
    seen = Counter()
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef):
            for arg in fn.args.args + fn.args.kwonlyargs:
                if isinstance(arg.annotation, ast.Subscript):  # inline Annotated[...]
                    seen[(arg.arg, ast.unparse(arg.annotation))] += 1
    copies = [f"--{name.replace('_', '-')}" for (name, _), n in seen.items() if n > 1]
    assert not copies, f"declared inline more than once: {copies}"
