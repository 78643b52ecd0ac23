"""The import direction of the rooms (docs: architecture.md, "Rooms").

The library imports none of pipelines/, serving/, tests/; nothing imports the CLI
module; the library's module-level imports form no cycle. Read from the source with
``ast`` (imports inside functions included where the rule is about any import), so a
lazy import cannot hide a wrong direction.
"""

from __future__ import annotations

import ast
from pathlib import Path

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
    assert "postloan.batch" in graph and "postloan.strategy.decide" in graph
