"""The package boundary: ``jobs`` is the product and never imports ``infra`` (development
infrastructure, which may use the product); no module of either imports itself in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def modules() -> dict[str, Path]:
    """Every module of ``jobs`` and ``infra`` (packages by their name) → its file."""
    found = {}
    for top in ("jobs", "infra"):
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in the file (inside functions too: lazy imports count)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".")[: None if path.name == "__init__.py" else -1]
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return {m for m in out if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports."""
    found = modules()
    return {name: _imports(name, path, found) for name, path in found.items()}


def test_the_product_never_imports_infra() -> None:
    graph = import_graph()
    assert "infra.stack.seed" in graph and "jobs.cli" in graph  # the scan sees both packages
    leaks = {
        m: sorted(d for d in deps if d.split(".")[0] == "infra")
        for m, deps in graph.items()
        if m.split(".")[0] == "jobs"
    }
    assert not {m: d for m, d in leaks.items() if d}


def test_no_import_cycle_among_jobs_and_infra_modules() -> None:
    graph = import_graph()
    assert graph["infra.stack.__main__"] >= {"infra.stack.weed", "infra.stack.seed"}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path back to its start), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for dep in sorted(graph.get(name, ())):
            if found := visit(dep, [*path, name]):
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        if found := visit(name, []):
            return found
    return None


def packages_graph(graph: dict[str, set[str]], depth: int, top: str) -> dict[str, set[str]]:
    """The import graph of ``top``'s modules seen ``depth`` names deep: ``infra.stack.weed``
    at depth 2 is ``infra.stack``; a module's imports within its own package do not count."""

    def cut(name: str) -> str:
        return ".".join(name.split(".")[:depth])

    out: dict[str, set[str]] = {}
    for name, deps in graph.items():
        if name.split(".")[0] != top:
            continue
        edges = out.setdefault(cut(name), set())
        edges.update(cut(d) for d in deps if d.split(".")[0] == top and cut(d) != cut(name))
    return out


def test_no_import_cycle_among_the_packages_of_jobs_or_infra_at_any_depth() -> None:
    graph = import_graph()
    deepest = max(len(name.split(".")) for name in graph)
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # the check finds one
    assert packages_graph(
        {"infra.x.m": {"infra.y.n"}, "infra.y.n": {"infra.x.k"}, "infra.x.k": set()}, 2, "infra"
    ) == {
        "infra.x": {"infra.y"},
        "infra.y": {"infra.x"},
    }
    for top in ("jobs", "infra"):
        for depth in range(1, deepest + 1):
            cycle = _cycle(packages_graph(graph, depth, top))
            assert cycle is None, f"import cycle in {top} at depth {depth}: " + " -> ".join(cycle or [])
