"""The package boundaries: ``jobs`` is the product and never imports ``infra`` (development
infrastructure, which may use the product) or ``dags`` (Airflow's, which use the product); nothing
imports ``dags``. No import cycle at any depth: not between modules, and not between the packages
(folders) of ``jobs``, ``dags`` and ``infra`` seen at any depth, from the three top-level ones
down. Lazy imports inside functions count. The repository's top level holds only the fixed
entries, and no module of ``jobs`` or ``dags`` is over 400 lines."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOPS = ("jobs", "dags", "infra")


def modules() -> dict[str, Path]:
    """Every module of ``jobs``, ``dags`` and ``infra`` (packages by their name) → its file."""
    found = {}
    for top in TOPS:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in the file (inside functions too: lazy imports count)."""
    out: set[str] = set()
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


# which top-level package may import which (its own modules aside)
MAY_IMPORT = {"jobs": set(), "dags": {"jobs"}, "infra": {"jobs"}}


def test_the_product_never_imports_infra_or_dags_and_nothing_imports_dags() -> None:
    graph = import_graph()
    assert {"infra.stack.seed", "jobs.cli", "dags.lakehouse"} <= set(graph)  # the scan sees all three
    assert "jobs.settings.scheduling" in graph["dags.lakehouse"]  # and a DAG's imports
    wrong = {}
    for name, deps in graph.items():
        top = name.split(".")[0]
        if bad := sorted(d for d in deps if d.split(".")[0] not in {top, *MAY_IMPORT[top]}):
            wrong[name] = bad
    assert not wrong


def test_no_import_cycle_among_modules() -> None:
    graph = import_graph()
    assert graph["infra.stack.__main__"] >= {"infra.stack.weed", "infra.stack.seed"}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


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


def packages_graph(graph: dict[str, set[str]], depth: int) -> dict[str, set[str]]:
    """The import graph seen ``depth`` names deep: ``infra.stack.weed`` at depth 2 is
    ``infra.stack``, at depth 1 ``infra``; imports within one such package do not count."""

    def cut(name: str) -> str:
        return ".".join(name.split(".")[:depth])

    out: dict[str, set[str]] = {}
    for name, deps in graph.items():
        edges = out.setdefault(cut(name), set())
        edges.update(cut(d) for d in deps if cut(d) != cut(name))
    return out


def test_no_import_cycle_among_packages_at_any_depth() -> None:
    graph = import_graph()
    deepest = max(len(name.split(".")) for name in graph)
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # the check finds one
    assert packages_graph(
        {"infra.x.m": {"infra.y.n"}, "infra.y.n": {"infra.x.k"}, "infra.x.k": set()}, 2
    ) == {
        "infra.x": {"infra.y"},
        "infra.y": {"infra.x"},
    }
    assert packages_graph({"jobs.a": set(), "infra.b": {"jobs.a"}, "dags.c": {"jobs.a"}}, 1) == {
        "jobs": set(),
        "infra": {"jobs"},
        "dags": {"jobs"},
    }
    for depth in range(1, deepest + 1):
        cycle = _cycle(packages_graph(graph, depth))
        assert cycle is None, f"import cycle at depth {depth}: " + " -> ".join(cycle or [])


# The repository's top level is fixed: the product, its DAGs, everything else (infra), the lake,
# the suite, env files, the two locks, the Makefile and the README; plus CI and tool config files.
TOP_LEVEL = {"jobs", "dags", "infra", "lake", "tests", "envs", "requirements.txt", "requirements-dev.txt"}
TOP_LEVEL |= {"Makefile", "README.md", ".ci", ".gitignore", ".pre-commit-config.yaml", "pyproject.toml"}


def test_the_repository_top_level_is_the_fixed_layout() -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout (or no git): the tracked files are unknown")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    tops = {path.split("/")[0] for path in tracked.split("\0") if path}
    assert tops <= TOP_LEVEL, f"tracked outside the fixed top level: {sorted(tops - TOP_LEVEL)}"


MAX_MODULE_LINES = 400


def test_no_module_of_jobs_or_dags_is_over_400_lines() -> None:
    """Small modules with one concern: a module past the limit is split, not grown."""
    sizes = {
        path: len(path.read_text().splitlines())
        for top in ("jobs", "dags")
        for path in (ROOT / top).rglob("*.py")
    }
    over = {str(p.relative_to(ROOT)): n for p, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not over, f"modules over {MAX_MODULE_LINES} lines: {over}"
