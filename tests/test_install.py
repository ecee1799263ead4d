"""An install that just works (issue 19).

Offline: ``pyproject.toml`` declares every distribution ``jobs/`` and ``dags/`` import (and
nothing else but aiobotocore, for its stated reason), each with a bounded range that holds the
locked version; boto3/botocore take aiobotocore's botocore range; every path that installs the
hashed lock installs the pinned pip first; the console script's name and target.

Online (``install``): ``pip install .`` into a throw-away virtualenv resolves at once (pip
never considers two versions of one distribution) and the ``lakehouse`` console script answers
from another directory. It needs the package index and skips, saying so, when that is out of
reach.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.lock import pins

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
# Declared although nothing imports it: s3fs's S3 client, which pins botocore; declaring it keeps
# boto3 and s3fs on one botocore without pip trying their releases one by one.
DECLARED_NOT_IMPORTED = {"aiobotocore": "s3fs's S3 client; boto3 and botocore follow its botocore range"}
# A module whose top-level name several distributions share: the one to declare.
SHARED_NAMESPACE = {"airflow": "apache-airflow"}  # airflow.sdk: apache-airflow-task-sdk, core, providers


def _lock() -> dict[str, str]:
    return {canonicalize_name(n): v for n, v in pins((ROOT / "requirements.txt").read_text()).items()}


def _declared() -> dict[str, list[Requirement]]:
    """Group ("" = the base dependencies, else the extra's name) → its requirements."""
    groups = {"": [Requirement(r) for r in PROJECT["dependencies"]]}
    for extra, reqs in PROJECT.get("optional-dependencies", {}).items():
        groups[extra] = [Requirement(r) for r in reqs]
    return groups


def _imports(folder: str) -> set[str]:
    """Top-level third-party modules imported anywhere under ``folder`` (lazy imports included)."""
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in {"__future__", "jobs"}}


def _distribution(module: str) -> str:
    if module in SHARED_NAMESPACE:
        return SHARED_NAMESPACE[module]
    dists = importlib.metadata.packages_distributions().get(module, [])
    assert len(dists) == 1, f"module {module}: installed by {dists or 'no distribution'}"
    return canonicalize_name(dists[0])


def test_declared_ranges_hold_the_lock_and_are_bounded() -> None:
    lock = _lock()
    for group, reqs in _declared().items():
        for req in reqs:
            where = f"{req} ({'extra ' + group if group else 'dependencies'})"
            name = canonicalize_name(req.name)
            assert name in lock, f"{where}: not in requirements.txt"
            assert req.specifier.contains(lock[name], prereleases=True), (
                f"{where}: the locked {lock[name]} is outside the declared range"
            )
            # An upper bound, so a new minor release cannot pull in an untested set.
            assert any(s.operator in {"<", "<=", "==", "~="} for s in req.specifier), (
                f"{where}: no upper bound"
            )


def test_every_imported_distribution_is_declared_and_nothing_else() -> None:
    from jobs.query import EXTENSIONS  # importlib.import_module(f"duckdb_extension_{name}")

    imported: dict[str, set[str]] = defaultdict(set)
    for module in _imports("jobs") | {f"duckdb_extension_{name}" for name in EXTENSIONS}:
        imported[_distribution(module)].add(f"jobs/ imports {module}")
    for module in _imports("dags"):
        imported[_distribution(module)].add(f"dags/ import {module}")
    declared = {canonicalize_name(r.name) for reqs in _declared().values() for r in reqs}
    missing = {d: sorted(why) for d, why in imported.items() if d not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    unused = declared - set(imported) - set(DECLARED_NOT_IMPORTED)
    assert not unused, f"declared in pyproject.toml but imported by nothing: {sorted(unused)}"


def test_only_the_airflow_extra_serves_the_dags_and_jobs_needs_no_extra_at_import() -> None:
    extras = {g: {canonicalize_name(r.name) for r in reqs} for g, reqs in _declared().items() if g}
    assert extras == {"dask": {"distributed"}, "airflow": {"apache-airflow"}}
    # jobs/ imports distributed only inside functions (the product imports without Dask).
    tree = ast.parse((ROOT / "jobs/cluster.py").read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert not any("distributed" in ast.unparse(n) for n in top_level)


def test_boto3_and_botocore_follow_aiobotocores_botocore_range() -> None:
    """boto3 X.Y.Z needs botocore >= X.Y.Z and aiobotocore caps botocore: a boto3 range wider than
    aiobotocore's cap sends pip back through boto3 and aiobotocore releases (issue 19: 23 and 33
    versions tried, 4.5 to 13 minutes)."""
    lock = _lock()
    assert importlib.metadata.version("aiobotocore") == lock["aiobotocore"]
    wanted = next(
        Requirement(r).specifier
        for r in importlib.metadata.requires("aiobotocore") or []
        if canonicalize_name(Requirement(r).name) == "botocore" and Requirement(r).marker is None
    )
    base = {canonicalize_name(r.name): r.specifier for r in _declared()[""]}
    assert base["botocore"] == wanted, f"botocore {base['botocore']} != aiobotocore's botocore {wanted}"
    assert base["boto3"] == wanted, f"boto3 {base['boto3']} != aiobotocore's botocore {wanted}"


def _pip_pin(name: str) -> tuple[str, list[str]]:
    text = (ROOT / name).read_text()
    block = re.search(r"^pip==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.M)
    assert block, f"{name}: no hashed pip pin"
    return block.group(1), re.findall(r"sha256:([0-9a-f]{64})", block.group(2))


def test_pip_is_pinned_with_hashes_and_matches_the_dev_lock() -> None:
    version, hashes = _pip_pin("infra/requirements-pip.txt")
    assert pins((ROOT / "infra/requirements-pip.txt").read_text()) == {"pip": version}
    assert (version, hashes) == _pip_pin("requirements-dev.txt")


def _installs(text: str) -> list[str]:
    """The pip install commands of a Makefile recipe, shell script or Dockerfile, in order."""
    joined = text.replace("\\\n", " ")
    return [m.group(0) for m in re.finditer(r"pip install[^\n&;]*", joined)]


@pytest.mark.parametrize("path", ["Makefile", "infra/Dockerfile", "infra/airflow.Dockerfile"])
def test_every_path_that_installs_the_lock_upgrades_pip_first(path: str) -> None:
    installs = _installs((ROOT / path).read_text())
    lock_at = [i for i, c in enumerate(installs) if re.search(r"-r \S*requirements(-dev)?\.txt", c)]
    assert lock_at, f"{path}: installs no lock"
    first = installs[0]
    assert "--require-hashes -r" in first and "requirements-pip.txt" in first, f"{path}: {first!r}"
    for i in lock_at:
        assert "--require-hashes" in installs[i], f"{path}: {installs[i]!r} is not hash-checked"
    if path.endswith("Dockerfile"):
        ignore = (ROOT / f"{path}.dockerignore").read_text().splitlines()
        assert "!infra/requirements-pip.txt" in ignore, f"{path}.dockerignore keeps the pip pin out"


def test_ci_installs_only_through_make_venv() -> None:
    run = (ROOT / ".ci/run").read_text()
    assert "make venv" in run
    assert not _installs(run), "a pip install in .ci/run bypasses make venv's pinned pip"


def test_console_script_is_lakehouse_and_names_itself(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobs import __version__
    from jobs.cli import main

    assert PROJECT["scripts"] == {"lakehouse": "jobs.cli:main"}
    monkeypatch.setattr(sys, "argv", ["/somewhere/bin/lakehouse", "--version"])
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"lakehouse {__version__}"


# -- online: pip install . in a throw-away virtualenv --------------------------------------------

# What pip prints when it backtracks (pip 23 to 26).
BACKTRACKING = ("pip is looking at multiple versions", "This is taking longer than usual", "backtracking")
# A distribution file pip considered: name-version(-tags.whl|.tar.gz|.zip), wherever it came from.
CANDIDATE = re.compile(
    r"([A-Za-z0-9][A-Za-z0-9._]*?)-(\d[0-9A-Za-z.+!]*?)(?:-[^\s/-]+-[^\s/-]+-[^\s/]+\.whl|\.tar\.gz|\.zip)"
)


def _index_url() -> str:
    return os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple/"


def _index_reachable(url: str) -> str | None:
    """None if the index answers a HEAD within 5 s, else why not."""
    if not url.startswith(("https://", "http://")):
        return f"index {url} is not an http(s) URL"
    request = urllib.request.Request(f"{url.rstrip('/')}/pip/", method="HEAD")  # noqa: S310 (http(s) only)
    try:
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 (http(s) only, checked above)
            return None
    except (urllib.error.URLError, OSError) as exc:
        return f"package index {url} unreachable ({exc})"


def considered_versions(pip_output: str) -> dict[str, set[str]]:
    """Distribution → the versions whose files pip downloaded, took from its cache or inspected."""
    seen: dict[str, set[str]] = defaultdict(set)
    for m in CANDIDATE.finditer(pip_output):
        seen[canonicalize_name(m.group(1))].add(m.group(2))
    return seen


def backtracked(pip_output: str) -> list[str]:
    """Why pip's output shows backtracking (empty: it resolved at once)."""
    why = [f"pip printed {s!r}" for s in BACKTRACKING if s.lower() in pip_output.lower()]
    why += [f"{n}: {sorted(v)}" for n, v in considered_versions(pip_output).items() if len(v) > 1]
    return why


def test_backtracking_is_recognised() -> None:
    quiet = "Collecting boto3<1.43.118\n  Downloading boto3-1.43.117-py3-none-any.whl.metadata (6.7 kB)\n"
    assert backtracked(quiet) == []
    noisy = quiet + (
        "INFO: pip is looking at multiple versions of aiobotocore to determine which version is compatible\n"
        "  Using cached boto3-1.43.116-py3-none-any.whl.metadata (6.7 kB)\n"
        "  Downloading s3fs-2026.9.0.tar.gz (80 kB)\n"
    )
    assert backtracked(noisy) == [
        "pip printed 'pip is looking at multiple versions'",
        "boto3: ['1.43.116', '1.43.117']",
    ]


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PIP_REQUIRE_HASHES"}
    }
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.install
@pytest.mark.integration
@pytest.mark.slow
def test_pip_install_resolves_at_once_and_the_console_script_works_anywhere(tmp_path: Path) -> None:
    if why := _index_reachable(_index_url()):
        pytest.skip(f"pip install smoke test needs the package index: {why}")
    venv, elsewhere, source = tmp_path / "venv", tmp_path / "elsewhere", tmp_path / "source"
    elsewhere.mkdir()
    # A copy of what the package is built from (setuptools leaves build/ in the tree it builds).
    shutil.copytree(ROOT / "jobs", source / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin/python"), "-m", "pip", "--disable-pip-version-check"]
    # As make venv: the pinned pip first (what a new user gets with make venv or a current pip).
    upgraded = _run(
        [*pip, "install", "--require-hashes", "-r", str(ROOT / "infra/requirements-pip.txt")], ROOT, 300
    )
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr

    started = time.monotonic()
    # pip names every file it takes (downloaded or cached): two versions of one name = backtracking.
    # Wheels only: a source build would be slow and hide a missing wheel.
    installed = _run([*pip, "install", "--only-binary=:all:", str(source)], elsewhere, 840)
    seconds = time.monotonic() - started
    output = installed.stdout + installed.stderr
    (tmp_path / "pip-install.log").write_text(output)
    assert installed.returncode == 0, output[-4000:]
    assert backtracked(output) == [], f"pip backtracked in {seconds:.0f} s: {backtracked(output)}"
    print(f"pip install . resolved at once and installed in {seconds:.0f} s")
    assert _run([*pip, "check"], elsewhere, 120).returncode == 0

    lakehouse = str(venv / "bin/lakehouse")
    from jobs import __version__

    version = _run([lakehouse, "--version"], elsewhere, 60)
    assert (version.returncode, version.stdout.strip()) == (0, f"lakehouse {__version__}"), version.stderr
    helped = _run([lakehouse, "--help"], elsewhere, 60)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: lakehouse"), helped.stderr
    # Every module of the package imports with the declared dependencies alone (no extra).
    imports = _run(
        [
            str(venv / "bin/python"),
            "-c",
            "import importlib, pkgutil, jobs\n"
            "for m in pkgutil.walk_packages(jobs.__path__, 'jobs.'):\n"
            "    if m.name != 'jobs.__main__': importlib.import_module(m.name)",
        ],
        elsewhere,
        120,
    )
    assert imports.returncode == 0, imports.stderr[-4000:]
