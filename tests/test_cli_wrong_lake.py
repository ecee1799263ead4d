"""A command line that cannot silently run against the wrong lake (issue 19), as a person runs
it: real subprocesses, from the repository and from another working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("raw", "bronze", "silver", "gold")


def jobs(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m jobs ARGS`` from ``cwd``, this checkout's package, no lake settings inherited."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "LAKEHOUSE_", "AWS_"))}
    full = {**base, "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=300,
        cwd=cwd,
    )


def env_file(project: Path, name: str = "lake.env") -> Path:
    """An env file in ``<project>/envs/`` with relative lake locations, as envs/local.env."""
    (project / "envs").mkdir(parents=True, exist_ok=True)
    path = project / "envs" / name
    path.write_text("".join(f"LAKE_{layer.upper()}=../lake/{layer}\n" for layer in LAYERS))
    return path


def files_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory with no lake in it."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with envs/lake.env and a lake built by one run (tiny data)."""
    root = tmp_path_factory.mktemp("project")
    env = env_file(root)
    gen = subprocess.run(
        [sys.executable, "-m", "infra.generator", "--scale", "0.01", "--days", "8"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "LAKEHOUSE_ENV_FILE": str(env)},
        cwd=REPO,
        timeout=300,
    )
    assert gen.returncode == 0, gen.stderr
    assert (root / "lake" / "raw").is_dir()
    return root


def test_env_file_before_the_command_is_used_not_ignored(project: Path, elsewhere: Path) -> None:
    lease = project / "lake" / "bronze" / "_lease.json"
    env = str(project / "envs" / "lake.env")
    # Issue 19: `python -m jobs --env-file envs/stack.env run` ran against the default lake.
    before = jobs("--env-file", env, "run", cwd=elsewhere)
    assert before.returncode == 0, before.stderr
    assert (project / "lake" / "gold").is_dir() and lease.exists()
    assert files_under(elsewhere) == []
    after = jobs("run", "--env-file", env, "--format", "json", cwd=elsewhere)  # the same, after it
    assert after.returncode == 0, after.stderr
    assert all(s["skipped"] for s in json.loads(after.stdout)["stages"][:3])  # same lake: nothing new
    status = jobs("--env-file", env, "lease", "status", cwd=elsewhere)
    assert status.returncode == 0 and str(lease) in status.stdout, status.stderr


def test_log_json_before_the_command_is_used(project: Path, elsewhere: Path) -> None:
    env = str(project / "envs" / "lake.env")
    for argv in (["--log-json", "lease", "break"], ["lease", "break", "--log-json"]):
        res = jobs(*argv, cwd=elsewhere, LAKEHOUSE_ENV_FILE=env)
        assert res.returncode == 0, res.stderr
        records = [json.loads(line) for line in res.stderr.splitlines() if line.strip()]
        assert records and all("run_id" in r for r in records), argv


def test_debug_before_the_command_is_used(elsewhere: Path) -> None:
    missing = elsewhere / "nope.env"
    plain = jobs("maintain", "--env-file", str(missing), cwd=elsewhere)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    for argv in (
        ["--debug", "maintain", "--env-file", str(missing)],
        ["maintain", "--debug", "--env-file", str(missing)],
    ):
        debug = jobs(*argv, cwd=elsewhere)
        assert "Traceback" in debug.stderr and "nope.env not found" in debug.stderr, argv


def test_the_same_env_file_twice_is_fine_two_different_ones_one_line_exit_2(
    project: Path, elsewhere: Path
) -> None:
    env = project / "envs" / "lake.env"
    other = env_file(project, "other.env")
    same = jobs("--env-file", str(env), "lease", "status", "--env-file", str(env), cwd=elsewhere)
    assert same.returncode == 0, same.stderr
    res = jobs("--env-file", str(env), "run", "--env-file", str(other), cwd=elsewhere)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: --env-file given twice with different files ({env} before the command, "
        f"{other} after it): give it once"
    ]
    assert res.stdout == ""


def test_relative_locations_in_an_env_file_are_its_folders_not_the_working_directorys(
    project: Path, elsewhere: Path
) -> None:
    env = str(project / "envs" / "lake.env")
    maintained = jobs("maintain", "--env-file", env, "--format", "json", cwd=elsewhere)
    assert maintained.returncode == 0, maintained.stderr
    uris = [t["uri"] for t in json.loads(maintained.stdout)["tables"]]
    assert uris and all(u.startswith(str(project / "lake")) for u in uris), uris
    assert files_under(elsewhere) == []  # issue 19: maintain created <cwd>/lake/bronze/_lease.json.lock


def test_the_default_env_file_is_the_projects_from_any_directory(elsewhere: Path) -> None:
    """No env file named: the checkout's envs/local.env, whose lake is <checkout>/lake."""
    status = jobs("lease", "status", cwd=elsewhere)
    bronze = REPO / "lake" / "bronze"
    assert str(bronze) in status.stdout + status.stderr, status.stderr
    if not bronze.is_dir():  # a fresh checkout: no lake yet, so one line naming it
        assert status.returncode == 2
    assert files_under(elsewhere) == []


@pytest.mark.parametrize(
    ("argv", "layer"),
    [
        (["maintain"], "bronze"),
        (["doctor"], "bronze"),
        (["doctor", "--repair"], "bronze"),
        (["lease", "status"], "bronze"),
        (["lease", "break"], "bronze"),
        (["silver"], "bronze"),
        (["export"], "bronze"),
        (["bronze"], "raw"),
        (["run"], "raw"),
    ],
)
def test_a_location_with_no_lake_is_one_line_naming_it_and_creates_nothing(
    elsewhere: Path, argv: list[str], layer: str
) -> None:
    env = env_file(elsewhere / "proj")
    res = jobs(*argv, "--env-file", str(env), cwd=elsewhere)
    where = elsewhere / "proj" / "lake" / layer
    assert res.returncode == 2, res.stderr
    [line] = res.stderr.strip().splitlines()
    assert line.startswith(f"error: no lake at {where} (LAKE_{layer.upper()} does not exist): "), line
    assert "resolved against the env file's folder" in line
    assert files_under(elsewhere) == [elsewhere / "proj", elsewhere / "proj" / "envs", env]


def test_make_names_the_commands_own_exit_code(elsewhere: Path) -> None:
    """GNU make exits 2 for any failed recipe; the target's line names python -m jobs's code."""
    env = env_file(elsewhere / "proj")
    res = subprocess.run(
        # -o: the virtualenv stamp counts as made; PY: this interpreter (no .venv needed).
        [
            "make",
            "-s",
            "-o",
            ".venv/.installed",
            f"PY={sys.executable}",
            "maintain",
            f"LAKEHOUSE_ENV_FILE={env}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert res.returncode == 2
    assert "make: maintain failed (python -m jobs exit 2: usage or settings)" in res.stderr.splitlines()
    held = subprocess.run(
        [sys.executable, "-m", "jobs.cli.exits", "5"], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert held.stdout.strip() == "another run holds the lake lease"
