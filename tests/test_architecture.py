"""The house's rules, checked on the source: no import cycles, no upward imports.

The imports of every module of ``monitor`` are read with :mod:`ast` (module
level and function level alike: a lazy import is still a dependency), so the
test needs no import side effects and fails on a cycle even if it is hidden
behind a function-level import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"

#: Algorithm modules that the consumers of results must never import.
ALGORITHMS = ("monitor.change", "monitor.depth", "monitor.registration", "monitor.photometry")
#: Consumers of results (store, report).
CONSUMERS = ("monitor.store", "monitor.report")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The project module an import of ``name`` loads (the longest known prefix)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        for t in targets:
            if not t.startswith("monitor"):
                continue
            r = _resolve(t, known)
            if r is not None and r != module:
                out.add(r)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports (any level of the file)."""
    known = _modules()
    return {m: _imports(m, p, known) for m, p in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules, or None."""
    # a package's __init__ is not counted as importing its own submodules'
    # importers: edges are kept as they are; a cycle is a cycle
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _within(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == r or module.startswith(r + ".") for r in roots)


def test_the_graph_sees_the_package() -> None:
    graph = import_graph()
    assert "monitor.photometry" in graph
    assert "monitor.photometry" in graph["monitor.change.methods"]


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_consumers_do_not_import_algorithms(consumer: str) -> None:
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in import_graph().items()
        if _within(m, (consumer,))
        for t in targets
        if _within(t, ALGORITHMS)
    )
    assert not bad, "results consumers import algorithms: " + "; ".join(bad)


def test_change_and_depth_share_physics_only_through_photometry() -> None:
    graph = import_graph()
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        for t in targets
        if (_within(m, ("monitor.depth",)) and _within(t, ("monitor.change",)))
        or (
            _within(m, ("monitor.change",))
            and _within(t, ("monitor.depth",))
            and t not in ("monitor.depth.base", "monitor.depth.tiling")
        )
    )
    assert not bad, "change/ and depth/ reach into each other: " + "; ".join(bad)
