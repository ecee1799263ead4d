"""Exactly once under concurrency and crashes: the real CLI as processes on a real local lake.

After every trial and one normal rerun, every raw line is in bronze or quarantine exactly once,
silver is what bronze says and gold equals the brute-force reference (tests/integrity/invariants).
``SOAK_TRIALS`` raises the number of kill -9 trials (``make soak``).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from infra.generator import generate
from tests.integrity.invariants import (
    FAST_LEASE,
    assert_exactly_once,
    cli,
    one_clean_error_line,
    start,
    table,
    unreferenced_data_files,
)

TRIALS = int(os.environ.get("SOAK_TRIALS", "3"))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw files of 8 days with some bad lines (made once, copied per test)."""
    root = tmp_path_factory.mktemp("template")
    generate(out_dir=root / "raw", seed=7, scale=0.01, start=date(2020, 11, 2), days=8, bad_lines=20)
    return root


@pytest.fixture
def lake(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template / "raw", tmp_path / "raw")
    return tmp_path


@pytest.mark.parametrize("offset", [0.0, 0.7, 2.0])
def test_two_runs_at_once_one_runs_the_other_names_the_holder_and_nothing_is_duplicated(
    lake: Path, offset: float
) -> None:
    first = start(lake, "run")
    time.sleep(offset)
    second = start(lake, "run")
    outcomes = [(p.wait(timeout=600), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes in ([0, 0], [0, 5]), outcomes
    for code, _, err in outcomes:
        if code == 5:
            line = one_clean_error_line(err)
            assert "lease" in line and "held by run" in line and "pid" in line, line
    assert cli(lake, "run").returncode == 0
    assert_exactly_once(lake)


def test_two_runs_at_once_with_a_wait_both_complete_one_after_the_other(lake: Path) -> None:
    runs = [start(lake, "run", LEASE_WAIT_SECONDS="300") for _ in range(2)]
    assert [p.wait(timeout=600) for p in runs] == [0, 0], [p.communicate() for p in runs]
    manifest = table(lake, "bronze", "_manifest")
    assert manifest["path"].n_unique() == manifest.height  # every file taken in once
    assert_exactly_once(lake)


def test_two_silver_runs_at_once_never_duplicate_silver(lake: Path) -> None:
    assert cli(lake, "bronze").returncode == 0
    runs = [start(lake, "silver", LEASE_WAIT_SECONDS="300") for _ in range(2)]
    assert [p.wait(timeout=600) for p in runs] == [0, 0], [p.communicate() for p in runs]
    assert cli(lake, "run").returncode == 0
    assert_exactly_once(lake)


@pytest.mark.parametrize("seed", range(TRIALS))
def test_a_run_killed_at_a_random_point_is_repaired_by_the_next_run(lake: Path, seed: int) -> None:
    # How long an undisturbed run takes on this machine decides where the kill may land.
    probe = time.monotonic()
    victim = start(lake, "run", **FAST_LEASE)
    when = random.Random(seed).uniform(0.3, 12.0)
    try:
        victim.wait(timeout=when)
    except Exception:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
    killed_after = time.monotonic() - probe
    # The kernel dropped the killed run's lock with its process: the next run takes the lease at
    # once (a local lease has no TTL to wait for).
    rerun = cli(lake, "run", LEASE_WAIT_SECONDS="0")
    assert rerun.returncode == 0, (killed_after, rerun.stderr[-3000:])
    assert_exactly_once(lake)
    again = cli(lake, "run", **FAST_LEASE)  # and nothing is left to do, nor warned about again
    assert again.returncode == 0 and "interrupted run" not in again.stderr
    # Files the killed run wrote but never committed go with maintenance once past retention.
    old = time.time() - 3 * 24 * 3600
    for path in unreferenced_data_files(lake):
        os.utime(path, (old, old))
    maintained = cli(lake, "maintain", MAINTAIN_RETENTION_HOURS="24", **FAST_LEASE)
    assert maintained.returncode == 0, maintained.stderr
    assert unreferenced_data_files(lake) == []
    assert_exactly_once(lake)


def test_a_file_still_being_written_waits_and_is_later_taken_in_whole(lake: Path) -> None:
    growing = lake / "raw" / "prints" / "day=2020-11-09" / "part-0.json"
    growing.parent.mkdir(parents=True, exist_ok=True)
    line = b'{"day": "2020-11-09", "event_data": {"position": 1, "value_prop": "point"}, "user_id": 77}\n'
    growing.write_bytes(line)
    stop = threading.Event()

    def append() -> None:  # an upstream still uploading: a line every 0.2 s for 4 s
        for _ in range(20):
            if stop.wait(0.2):
                return
            with growing.open("ab") as handle:
                handle.write(line)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        first = cli(lake, "run", RAW_SETTLE_SECONDS="1.5")
    finally:
        stop.set()
        writer.join()
    assert first.returncode == 0, first.stderr
    manifest = table(lake, "bronze", "_manifest")
    assert "prints/day=2020-11-09/part-0.json" not in manifest["path"].to_list()
    second = cli(lake, "run", RAW_SETTLE_SECONDS="0")
    assert second.returncode == 0, second.stderr
    taken = table(lake, "bronze", "prints").filter(
        table(lake, "bronze", "prints")["source_file"] == "prints/day=2020-11-09/part-0.json"
    )
    assert taken.height == growing.read_bytes().count(b"\n")
    assert_exactly_once(lake)


def test_a_dangling_symlink_is_rejected_with_a_reason_and_the_rest_goes_on(lake: Path) -> None:
    os.symlink(lake / "nowhere.json", lake / "raw" / "prints" / "broken.json")
    first = cli(lake, "run")
    assert first.returncode == 7, first.stderr
    assert "completed with rejected input: 1 raw file(s)" in first.stderr
    assert "Traceback" not in first.stderr
    manifest = table(lake, "bronze", "_manifest")
    [reason] = manifest.filter(manifest["path"] == "prints/broken.json")["reason"].to_list()
    assert "dangling symbolic link" in reason
    (lake / "raw" / "prints" / "broken.json").unlink()
    assert cli(lake, "run").returncode == 0
    assert_exactly_once(lake)


def test_a_symlink_out_of_lake_raw_is_rejected_unread_and_one_inside_is_a_duplicate(lake: Path) -> None:
    """Observed: raw/prints/.../evil.json -> .stack/keys/admin.env put the admin secret into the
    quarantine and its Delta log. A link (of a file, or of a directory on the way) whose real
    location is outside LAKE_RAW is rejected with a reason and never read; the rest goes on."""
    secret = "ADMIN_SECRET_ACCESS_KEY=outside-secret-must-not-leak"
    (lake / "keys").mkdir()
    (lake / "keys" / "admin.env").write_text(secret + "\n")
    (lake / "elsewhere").mkdir()
    (lake / "elsewhere" / "part-0.json").write_text(secret + "\n")
    prints = lake / "raw" / "prints"
    os.symlink(lake / "keys" / "admin.env", prints / "evil.json")
    os.symlink(lake / "elsewhere", prints / "day=2099-01-01")  # a directory link on the way
    first = cli(lake, "run")
    assert first.returncode == 7, first.stderr
    assert "completed with rejected input: 2 raw file(s)" in first.stderr, first.stderr
    assert "Traceback" not in first.stderr
    manifest = table(lake, "bronze", "_manifest")
    for rel in ("prints/evil.json", "prints/day=2099-01-01"):
        [reason] = manifest.filter(manifest["path"] == rel)["reason"].to_list()
        assert "outside LAKE_RAW" in reason and "not read" in reason, reason
    leaked = [
        str(path)
        for layer in ("bronze", "silver", "gold")
        for path in (lake / layer).rglob("*")
        if path.is_file() and b"outside-secret" in path.read_bytes()
    ]
    assert not leaked and "outside-secret" not in first.stdout + first.stderr, leaked
    # inside LAKE_RAW a link is a delivery at its own path: the same bytes, so a duplicate
    (prints / "evil.json").unlink()
    (prints / "day=2099-01-01").unlink()
    [original] = sorted(prints.glob("day=*/part-0.json"))[:1]
    os.symlink(original, prints / "again.json")
    second = cli(lake, "run")
    assert second.returncode == 0, second.stderr
    manifest = table(lake, "bronze", "_manifest")
    assert manifest.filter(manifest["path"] == "prints/again.json")["status"].to_list() == ["duplicate"]
    (prints / "again.json").unlink()
    assert_exactly_once(lake)


def test_a_same_size_and_a_longer_correction_replace_their_rows_everywhere(lake: Path) -> None:
    assert cli(lake, "run").returncode == 0
    target = lake / "raw" / "taps" / "day=2020-11-03" / "part-0.json"
    text = target.read_bytes()
    same_size = text.replace(b'"position": 1', b'"position": 2', 1)
    assert len(same_size) == len(text) and same_size != text
    target.write_bytes(same_size)
    os.utime(target, (time.time() + 5, time.time() + 5))
    fixed = cli(lake, "run")
    assert fixed.returncode == 0 and "1 corrected file(s) replaced" in fixed.stdout, fixed.stdout
    assert_exactly_once(lake)
    target.write_bytes(same_size + same_size.splitlines(keepends=True)[0] * 3)
    longer = cli(lake, "run")
    assert longer.returncode == 0 and "1 corrected file(s) replaced" in longer.stdout
    assert_exactly_once(lake)
    history = table(lake, "bronze", "_manifest").filter(
        table(lake, "bronze", "_manifest")["path"] == "taps/day=2020-11-03/part-0.json"
    )
    assert history.height == 3 and history["replaces"].null_count() == 1
