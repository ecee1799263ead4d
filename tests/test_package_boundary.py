"""``jobs/`` holds only the product: it never imports the development infrastructure ``infra``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Known debt: ``seed --generate`` imports infra.generator lazily until seeding moves to infra/.
ALLOWED = {"jobs/seed.py"}


def _imports_infra(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                 else [])
        if any(n == "infra" or n.startswith("infra.") for n in names):
            return True
    return False


def test_the_product_package_does_not_import_infra() -> None:
    offenders = {p.relative_to(ROOT).as_posix() for p in (ROOT / "jobs").rglob("*.py")
                 if _imports_infra(p)}
    assert offenders <= ALLOWED, sorted(offenders - ALLOWED)


def test_generator_and_benchmark_live_under_infra_not_jobs() -> None:
    assert not (ROOT / "jobs" / "raw" / "generator.py").exists()
    assert not list((ROOT / "jobs" / "benchmark").glob("*.py"))  # a stale __pycache__ may stay
    assert (ROOT / "infra" / "generator" / "__main__.py").is_file()
    assert (ROOT / "infra" / "bench" / "__main__.py").is_file()
