"""A writer frozen while it holds a local lake's lease keeps the lake; killed, it frees it at once.

A real ``python -m jobs run`` stops itself (SIGSTOP) right before its N-th Delta commit, at the
deltalake call (``freeze/sitecustomize.py``): its snapshot is read and its lease checked. Its
flock stays held, so a second run exits 5 at once naming its PID and the way forward (``kill``),
and ``lease break`` refuses the same way. After a SIGKILL of the frozen run the next run takes
the lease at once (no TTL) and the lake must be exact (``assert_exactly_once``). On S3, where a
frozen holder is taken over and fenced instead, see ``tests/integration/test_frozen_writer_s3.py``.
``SOAK_TRIALS`` adds trials at random commit points (``make soak``).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
from datetime import date
from pathlib import Path

import psutil
import pytest

from infra.generator import generate
from tests.integrity.invariants import assert_exactly_once, cli, one_clean_error_line, start
from tests.integrity.lease_harness import wait_for

HOOK = str(Path(__file__).parent / "freeze")
SOAK = int(os.environ.get("SOAK_TRIALS", "0"))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw files of 8 days (with bad lines), and a later day's files."""
    root = tmp_path_factory.mktemp("frozen")
    generate(out_dir=root / "raw", seed=11, scale=0.01, start=date(2020, 11, 2), days=8, bad_lines=20)
    generate(out_dir=root / "later", seed=12, scale=0.01, start=date(2020, 11, 10), days=1)
    return root


def first_delivery(template: Path, root: Path) -> Path:
    shutil.copytree(template / "raw", root / "raw")
    return root


def new_day(template: Path, root: Path) -> Path:
    """A lake built from the first delivery, then the files of a new day: the next run's
    silver and gold commits only add partitions its snapshot did not have (deltalake's own
    conflict check lets such a stale commit through)."""
    first_delivery(template, root)
    assert cli(root, "run").returncode == 0
    shutil.copytree(template / "later", root / "raw", dirs_exist_ok=True)
    return root


def old_week_and_correction(template: Path, root: Path) -> Path:
    """A lake built from the first delivery, then a print for an old week (its partitions
    exist in silver and gold) and a corrected taps file."""
    first_delivery(template, root)
    assert cli(root, "run").returncode == 0
    old = root / "raw" / "prints" / "late" / "old-week.json"
    old.parent.mkdir(parents=True)
    old.write_text(
        '{"day": "2020-11-03", "event_data": {"position": 2, "value_prop": "point"}, "user_id": 7}\n'
    )
    corrected = next((root / "raw" / "taps").rglob("*.json"))
    corrected.write_bytes(corrected.read_bytes().replace(b'"position": 1', b'"position": 3', 1))
    return root


SCENARIOS = {"first run": first_delivery, "new day": new_day, "old week": old_week_and_correction}


def commits_of_a_run(template: Path, root: Path, scenario: str) -> list[str]:
    """The deltalake commit calls an undisturbed run of the scenario makes, in order."""
    lake = SCENARIOS[scenario](template, root)
    calls = root / "calls.txt"
    done = cli(lake, "run", PYTHONPATH=HOOK, FREEZE_LOG=str(calls))
    assert done.returncode == 0, done.stderr
    return calls.read_text().split()


@pytest.fixture(scope="module")
def commit_counts(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    return {
        s: len(commits_of_a_run(template, tmp_path_factory.mktemp(s.replace(" ", "-")), s)) for s in SCENARIOS
    }


def freeze_block_kill_and_rerun(lake: Path, commit: int) -> None:
    """The trial: freeze a run before its ``commit``-th commit; another run and ``lease break``
    are refused naming its PID; kill it; the next run goes ahead at once; the lake is exact."""
    marker = lake / "frozen.txt"
    victim = start(lake, "run", PYTHONPATH=HOOK, FREEZE_AT_COMMIT=str(commit), FREEZE_MARKER=str(marker))
    try:
        wait_for(lambda: marker.is_file() or victim.poll() is not None, "the run to reach the commit")
        assert victim.poll() is None, victim.communicate()
        wait_for(lambda: psutil.Process(victim.pid).status() == psutil.STATUS_STOPPED, "the freeze")
        for blocked in (cli(lake, "run", LEASE_WAIT_SECONDS="0"), cli(lake, "lease", "break")):
            assert blocked.returncode == 5, blocked.stderr[-3000:]
            line = one_clean_error_line(blocked.stderr)
            assert f"pid {victim.pid} " in line and f"kill {victim.pid}" in line, line
    finally:
        victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    victim.communicate()
    rerun = cli(lake, "run", LEASE_WAIT_SECONDS="0")  # at once: the kernel freed the lock
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "took over" not in rerun.stderr and "fenced" not in rerun.stderr
    assert_exactly_once(lake)


@pytest.mark.parametrize("commit", range(1, 13))
def test_a_run_frozen_before_any_of_its_commits_for_a_new_day_blocks_until_killed(
    template: Path, tmp_path: Path, commit_counts: dict[str, int], commit: int
) -> None:
    if commit > commit_counts["new day"]:
        pytest.skip(f"a new day's run makes {commit_counts['new day']} commits")
    freeze_block_kill_and_rerun(new_day(template, tmp_path), commit)


@pytest.mark.parametrize("where", ["middle", "last"])
@pytest.mark.parametrize("scenario", ["first run", "old week"])
def test_a_first_run_or_an_old_week_frozen_before_a_commit_blocks_until_killed(
    template: Path, tmp_path: Path, commit_counts: dict[str, int], scenario: str, where: str
) -> None:
    count = commit_counts[scenario]
    commit = {"middle": (count + 1) // 2, "last": count}[where]
    freeze_block_kill_and_rerun(SCENARIOS[scenario](template, tmp_path), commit)


def test_the_parametrisation_reaches_the_last_commit_of_a_new_days_run(commit_counts: dict[str, int]) -> None:
    assert 3 <= commit_counts["new day"] <= 12, commit_counts  # else extend the range


@pytest.mark.parametrize("trial", range(SOAK))
def test_soak_a_run_frozen_at_a_random_commit_blocks_until_killed(
    template: Path, tmp_path: Path, commit_counts: dict[str, int], trial: int
) -> None:
    rng = random.Random(trial)
    scenario = rng.choice(sorted(SCENARIOS))
    commit = rng.randint(1, commit_counts[scenario])
    freeze_block_kill_and_rerun(SCENARIOS[scenario](template, tmp_path), commit)
