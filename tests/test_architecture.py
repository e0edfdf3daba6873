"""The floors of ``docs/architecture.md``, checked from the source: who may import whom.

The import graph is read with the standard library's :mod:`ast` (every ``import`` statement,
including those inside functions, which run just as surely, only later), so the checks need no
import of cnnlab and see lazy imports too. Imports under ``if TYPE_CHECKING:`` are annotations
only: they count for the floors (a type from a higher floor is still a dependency) but not for
import circles (they never run).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# docs/architecture.md's floors, lowest first: a module imports from its own floor or below.
FLOORS: dict[int, tuple[str, ...]] = {
    1: (
        "cnnlab.errors",
        "cnnlab.files",
        "cnnlab.table",
        "cnnlab.formats",
        "cnnlab.choices",
        "cnnlab.lazy",
    ),
    2: (
        "cnnlab",
        "cnnlab.registry",
        "cnnlab.data",
        "cnnlab.runmeta",
        "cnnlab.plotting",
        "cnnlab.geometry",
    ),
    3: ("cnnlab.models", "cnnlab.analysis", "cnnlab.scratch"),
    4: ("cnnlab.run", "cnnlab.predictor", "cnnlab.fastpath", "cnnlab.export"),
    5: ("cnnlab.train", "cnnlab.weights"),
    6: ("cnnlab.seeing", "cnnlab.experiments", "cnnlab.report"),
    7: ("cnnlab.cli", "cnnlab.studio", "cnnlab.__main__"),
    8: ("cnnlab.dev",),  # developer tools (generated files): may import anything
}
# The modules outside train/ that train: the `train` command, the experiments, the loggers
# (training callbacks) and the studio's job runner.
MAY_IMPORT_TRAIN = ("cnnlab.cli.train", "cnnlab.experiments", "cnnlab.report.loggers")
MAY_IMPORT_TRAIN += ("cnnlab.studio.jobs",)
# The core: none of it renders through the report package.
CORE = ("cnnlab.registry", "cnnlab.analysis", "cnnlab.models", "cnnlab.data", "cnnlab.train")
CORE += ("cnnlab.run",)


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@cache
def modules() -> dict[str, Path]:
    """Every module under src/cnnlab by dotted name (a package by its own name)."""
    found = {}
    for path in (SRC / "cnnlab").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The cnnlab modules an import statement names (``from pkg import mod`` names pkg.mod)."""
    known = modules()
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if known[module].name == "__init__.py" else module.rpartition(".")[0]
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for name in names:
        while name not in known and "." in name:
            name = name.rpartition(".")[0]
        if name in known and name != module:
            out.append(name)
    return out


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the import statements under ``if TYPE_CHECKING:``."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


@cache
def graph(runtime_only: bool) -> dict[str, frozenset[str]]:
    """module -> the cnnlab modules it imports (``runtime_only``: without TYPE_CHECKING ones)."""
    edges = {}
    for module, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree) if runtime_only else set()
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skip:
                found.update(_targets(module, node))
        edges[module] = frozenset(found)
    return edges


def floor_of(module: str) -> int | None:
    best: tuple[int, int] | None = None
    for floor, prefixes in FLOORS.items():
        for p in prefixes:
            if within(module, (p,)) and (best is None or len(p) > best[1]):
                best = (floor, len(p))
    return best[0] if best else None


def import_circles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return circles


def test_the_graph_is_read_from_the_source() -> None:
    """The checks below would pass vacuously on an empty graph."""
    edges = graph(runtime_only=False)
    assert len(edges) > 100
    assert "cnnlab.run.load" in edges["cnnlab.predictor"]
    assert "cnnlab.run.metrics" in edges["cnnlab.train.trainer"]


def test_the_circle_finder_finds_circles() -> None:
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset()}
    assert import_circles(edges) == [["a", "b", "c"]]


def test_no_import_circle() -> None:
    circles = import_circles(graph(runtime_only=True))
    assert circles == [], "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_only_training_code_imports_train() -> None:
    edges = graph(runtime_only=False)
    wrong = [
        f"{m} -> {d}"
        for m, deps in sorted(edges.items())
        for d in sorted(deps)
        if within(d, ("cnnlab.train",))
        and not within(m, ("cnnlab.train",))
        and not within(m, MAY_IMPORT_TRAIN)
        and not within(m, FLOORS[8])
    ]
    assert wrong == [], "only training code may import cnnlab.train: " + ", ".join(wrong)


def test_the_core_does_not_import_the_report_package() -> None:
    edges = graph(runtime_only=False)
    wrong = [
        f"{m} -> {d}"
        for m, deps in sorted(edges.items())
        if within(m, CORE)
        for d in sorted(deps)
        if within(d, ("cnnlab.report",))
    ]
    assert wrong == [], "core modules render through the report package: " + ", ".join(wrong)


@pytest.mark.parametrize("module", sorted(modules()))
def test_every_module_imports_only_its_floor_or_below(module: str) -> None:
    floor = floor_of(module)
    assert floor is not None, f"{module} is on no floor: add it to docs/architecture.md and here"
    above = sorted(d for d in graph(runtime_only=False)[module] if (floor_of(d) or 0) > floor)
    assert above == [], f"{module} (floor {floor}) imports a higher floor: {', '.join(above)}"
