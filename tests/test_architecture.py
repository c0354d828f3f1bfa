"""The shape of the code: layers that import only downwards, no import cycles, and small
functions. Each check is also run on a graph or a source with a planted fault, so a check
that could never fail would fail here."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parent.parent

# Top to bottom. A module may import from its own package and from the layers below it;
# the packages sharing a layer are independent of each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("bench.cli",),
    ("bench.report",),
    ("bench.run",),
    ("bench.suite",),
    ("bench.env", "agents", "bench.stats"),
    ("bench.core",),
)
OUTSIDE_LAYERS = {"bench", "bench.__main__", "bench.data"}  # the root package and its entry
MAX_LINES = 60
MAX_POSITIONAL = 6


def _home(module: str) -> tuple[int, str] | None:
    """(layer index, package) of a module; None for the root modules outside the layers."""
    for i, packages in enumerate(LAYERS):
        for pkg in packages:
            if module == pkg or module.startswith(pkg + "."):
                return i, pkg
    return None


def layer_violations(graph: grimp.ImportGraph) -> list[str]:
    """Every direct import that goes up a layer or sideways into a sibling package."""
    bad = []
    for importer in sorted(graph.modules):
        src = _home(importer)
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            dst = _home(imported)
            if src is None or dst is None:
                if src is not None and imported != "bench":  # only `bench.__version__`
                    bad.append(f"{importer} -> {imported} (outside the layers)")
                continue
            if dst[0] < src[0] or (dst[0] == src[0] and dst[1] != src[1]):
                bad.append(f"{importer} -> {imported} ({src[1]} may not import {dst[1]})")
    return bad


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("bench", "agents", include_external_packages=False)


def test_every_module_has_a_layer(graph: grimp.ImportGraph) -> None:
    homeless = sorted(m for m in graph.modules if _home(m) is None and m not in OUTSIDE_LAYERS)
    assert homeless == [], f"modules outside the layers: {homeless}"


def test_imports_only_go_down(graph: grimp.ImportGraph) -> None:
    assert layer_violations(graph) == []


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    assert import_cycles(graph) == []


def test_the_checks_catch_a_planted_upward_import_and_cycle() -> None:
    graph = grimp.build_graph("bench", "agents", include_external_packages=False)
    graph.add_import(importer="bench.core.errors", imported="bench.run.ledger")
    graph.add_import(importer="agents.registry", imported="bench.env.games")
    bad = layer_violations(graph)
    assert "bench.core.errors -> bench.run.ledger (bench.core may not import bench.run)" in bad
    assert "agents.registry -> bench.env.games (agents may not import bench.env)" in bad
    cycles = import_cycles(graph)
    assert any({"bench.core.errors", "bench.run.ledger"} <= set(c) for c in cycles)


def function_offenders(source: str, name: str) -> list[str]:
    """Functions over MAX_LINES lines or with more than MAX_POSITIONAL positional
    parameters (``self`` and ``cls`` not counted)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        params = [a.arg for a in node.args.posonlyargs + node.args.args]
        positional = len([p for p in params if p not in ("self", "cls")])
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if lines > MAX_LINES:
            out.append(f"{name}:{node.lineno} {node.name}: {lines} lines")
        if positional > MAX_POSITIONAL:
            out.append(f"{name}:{node.lineno} {node.name}: {positional} positional parameters")
    return out


def test_functions_are_small() -> None:
    offenders = []
    for pkg in ("bench", "agents"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            offenders += function_offenders(path.read_text(), str(path.relative_to(REPO)))
    assert offenders == []


def test_the_size_check_catches_a_long_function_and_many_positionals() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    source = f"def long():\n{body}\n\ndef wide(self, a, b, c, d, e, f, g):\n    pass\n"
    assert function_offenders(source, "m.py") == [
        f"m.py:1 long: {MAX_LINES + 1} lines",
        f"m.py:{MAX_LINES + 3} wide: 7 positional parameters",
    ]
