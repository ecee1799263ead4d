"""The lake lease on a local lake: one run-long flock, with real competing processes.

A holder frozen (SIGSTOP) keeps the lake; a killed one frees it at once; nobody takes it from a
live process (no TTL, heartbeat, takeover or fence locally: :mod:`jobs.lease.local`)."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest

from jobs.errors import LeaseHeld, LeaseLost, StorageError
from jobs.lease import Owner, acquire, describe_state, lease_uri, read_lease
from jobs.pipeline import break_lease
from jobs.run import RunContext
from jobs.settings import load_settings
from jobs.storage import Storage
from tests.integrity.invariants import cli, one_clean_error_line
from tests.integrity.lease_harness import (
    expired_lease,
    finish,
    race_rounds,
    spawn,
    stderr_of,
    stop,
    wait_for,
    write_json,
)


@pytest.fixture
def lake(tmp_path: Path) -> Storage:
    return Storage(
        load_settings(
            **{
                f"lake_{layer}": str(tmp_path / "lake" / layer)
                for layer in ("raw", "bronze", "silver", "gold")
            }
        )
    )


@pytest.fixture
def env(tmp_path: Path, lake: Storage) -> Path:
    s = lake.settings
    path = tmp_path / "lake.env"
    path.write_text(
        "".join(
            f"LAKE_{layer.upper()}={getattr(s, f'lake_{layer}')}\n"
            for layer in ("raw", "bronze", "silver", "gold")
        )
    )
    return path


@pytest.fixture
def control(tmp_path: Path) -> Path:
    path = tmp_path / "control"
    path.mkdir()
    return path


def uri_of(lake: Storage) -> str:
    return lease_uri(lake.settings)


def token(lake: Storage) -> str | None:
    holder = read_lease(lake)
    return holder.token if holder else None


def write_stale(lake: Storage, run_id: str = "crashed-run") -> None:
    """The record a killed holder left in the (unlocked) lease file."""
    path = Path(uri_of(lake))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(expired_lease(run_id))


def stopped(pid: int) -> bool:
    import psutil

    return psutil.Process(pid).status() == psutil.STATUS_STOPPED


def test_acquire_writes_a_record_naming_the_owner_and_release_frees_the_lock(lake: Storage) -> None:
    owner = Owner.this_process("run-1")
    with acquire(lake, owner=owner, wait=0) as lease:
        holder = read_lease(lake)
        assert holder is not None and holder.token == lease.token
        assert holder.owner == owner and owner.pid == os.getpid()
        assert owner.host == socket.gethostname()
        assert holder.heartbeat_at is None and holder.expires_at is None  # no TTL locally
        doc = json.loads(Path(uri_of(lake)).read_text())
        assert set(doc) >= {"owner", "token", "acquired_at"}
        assert set(doc["owner"]) == {"run_id", "host", "pid", "command"}
        lease.ensure()
    assert read_lease(lake) is None
    assert Path(uri_of(lake)).read_bytes() == b""  # released: nobody is named
    leftovers = sorted(p.name for p in Path(uri_of(lake)).parent.iterdir())
    assert leftovers == ["_lease.json"]  # the lock file only: no temp file or tombstone


def test_lease_lives_at_the_bronze_root(lake: Storage) -> None:
    assert uri_of(lake) == f"{lake.settings.lake_bronze}/_lease.json"


def test_heartbeat_must_be_below_half_the_ttl(lake: Storage) -> None:
    from jobs.errors import ConfigError

    with pytest.raises(ConfigError, match="LEASE_HEARTBEAT_SECONDS=30"):
        load_settings(lease_ttl_seconds=60, lease_heartbeat_seconds=30)
    with pytest.raises(ValueError, match="below half the TTL"):
        acquire(lake, ttl=2, heartbeat=1, wait=0)
    assert read_lease(lake) is None


def test_second_process_gets_lease_held_naming_the_holder_and_gives_up_at_once(
    env: Path, control: Path, lake: Storage
) -> None:
    holder = spawn("hold", env=env, control=control, run_id="first-run")
    try:
        wait_for(lambda: (control / "acquired-first-run.json").is_file(), "the first run")
        second = spawn("hold", env=env, control=control, run_id="second-run", wait=0)
        code, err = finish(second, limit=30)
        assert code == 5, err
        line = err.strip().splitlines()[-1]
        assert line.startswith("error: another run is writing to the lake")
        assert f"run first-run (pid {holder.pid} on {socket.gethostname()}" in line
        assert "since " in line and "expires" not in line  # no TTL locally
        assert f"kill {holder.pid}" in line and "LEASE_WAIT_SECONDS" in line
        assert not (control / "acquired-second-run.json").exists()
        write_json(control / "release-first-run", {})
        assert finish(holder)[0] == 0
    finally:
        stop([holder])
    assert read_lease(lake) is None


def test_waiting_process_gets_the_lease_once_the_holder_releases(
    env: Path, control: Path, lake: Storage
) -> None:
    first = spawn("hold", env=env, control=control, run_id="first-run")
    procs = [first]
    try:
        wait_for(lambda: (control / "acquired-first-run.json").is_file(), "the first run")
        first_token = token(lake)
        second = spawn("hold", env=env, control=control, run_id="second-run", wait=90)
        procs.append(second)
        # It waits, naming the holder, while the first run still holds the lease.
        wait_for(lambda: "waiting for the lake lease" in stderr_of(second), "the second to wait")
        assert "held by run first-run" in stderr_of(second)
        assert second.poll() is None and not (control / "acquired-second-run.json").exists()
        write_json(control / "release-first-run", {})
        assert finish(first)[0] == 0
        wait_for(lambda: (control / "acquired-second-run.json").is_file(), "the second run")
        assert token(lake) == json.loads((control / "acquired-second-run.json").read_text())["token"]
        assert token(lake) != first_token
        write_json(control / "release-second-run", {})
        code, err = finish(second)
        assert code == 0, err
    finally:
        stop(procs)
    assert read_lease(lake) is None


def test_a_record_left_by_a_dead_holder_does_not_block(
    lake: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    write_stale(lake, "crashed-run")
    assert read_lease(lake) is None  # the lock is free: the record means nothing
    with acquire(lake, owner=Owner.this_process("new-run"), wait=0) as lease:
        holder = read_lease(lake)
        assert holder is not None and holder.token == lease.token
        assert holder.owner.run_id == "new-run" and lease.took_over is None  # nothing to fence
    assert "took over" not in caplog.text
    assert read_lease(lake) is None


def test_eight_processes_racing_for_a_free_lease_exactly_one_wins_every_round(
    env: Path, control: Path, lake: Storage
) -> None:
    outcomes = race_rounds(
        env=env,
        control=control,
        processes=8,
        rounds=4,
        read_token=lambda: token(lake),
        before_round=lambda r: None,
    )
    assert len(outcomes) == 4


def test_eight_processes_racing_over_a_dead_holders_record_exactly_one_wins(
    env: Path, control: Path, lake: Storage
) -> None:
    outcomes = race_rounds(
        env=env,
        control=control,
        processes=8,
        rounds=3,
        read_token=lambda: token(lake),
        before_round=lambda r: write_stale(lake, f"crashed-{r}"),
    )
    assert len(outcomes) == 3
    leftovers = sorted(p.name for p in Path(uri_of(lake)).parent.iterdir())
    assert leftovers == ["_lease.json"]


def test_a_frozen_holder_keeps_the_lake_until_it_resumes_and_nobody_can_break_it(
    env: Path, control: Path, lake: Storage
) -> None:
    frozen = spawn("hold", env=env, control=control, run_id="frozen-run")
    try:
        wait_for(lambda: (control / "acquired-frozen-run.json").is_file(), "the frozen run")
        os.kill(frozen.pid, signal.SIGSTOP)  # a stall of any length (swap, GC, a frozen VM)
        wait_for(lambda: stopped(frozen.pid), "the freeze")
        with pytest.raises(LeaseHeld) as caught:
            acquire(lake, owner=Owner.this_process("next"), wait=0.5)
        assert f"run frozen-run (pid {frozen.pid} " in str(caught.value)
        assert f"kill {frozen.pid}" in str(caught.value)
        with pytest.raises(LeaseHeld) as refused:
            break_lease(RunContext(lake.settings))
        assert f"pid {frozen.pid} " in str(refused.value) and "cannot be broken" in str(refused.value)
        assert f"kill {frozen.pid}" in str(refused.value) and "\n" not in str(refused.value)
        os.kill(frozen.pid, signal.SIGCONT)
        # Resumed, it still holds the lease: its checks pass and it releases normally.
        write_json(control / "release-frozen-run", {})
        code, err = finish(frozen)
        assert code == 0, err
    finally:
        stop([frozen])
    assert read_lease(lake) is None


def test_release_is_once_and_never_touches_the_next_holders_lease(lake: Storage) -> None:
    first = acquire(lake, owner=Owner.this_process("first"), wait=0)
    assert first.release() is True
    with acquire(lake, owner=Owner.this_process("second"), wait=0) as second:
        assert first.release() is False
        assert token(lake) == second.token
        with pytest.raises(LeaseLost, match="released the lake lease"):
            first.ensure()
        second.ensure()
    assert read_lease(lake) is None


def test_a_lease_file_removed_by_hand_while_held_is_a_lost_lease(lake: Storage) -> None:
    with acquire(lake, owner=Owner.this_process("victim"), wait=0) as lease:
        Path(uri_of(lake)).unlink()
        with pytest.raises(LeaseLost, match=r"run victim lost the lake lease.*removed or replaced"):
            lease.ensure()
        assert lease.lost is not None


def test_sigkilled_holder_frees_the_lake_at_once(env: Path, control: Path, lake: Storage) -> None:
    killed = spawn("hold", env=env, control=control, run_id="killed-run")
    procs = [killed]
    try:
        wait_for(lambda: (control / "acquired-killed-run.json").is_file(), "the first run")
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        assert read_lease(lake) is None  # the kernel dropped its lock with the process
        nxt = spawn("hold", env=env, control=control, run_id="next-run", wait=0)  # no TTL wait
        procs.append(nxt)
        wait_for(lambda: (control / "acquired-next-run.json").is_file(), "the next run")
        holder = read_lease(lake)
        assert holder is not None and holder.owner.run_id == "next-run"
        write_json(control / "release-next-run", {})
        code, err = finish(nxt)
        assert code == 0, err
        assert "took over" not in err
    finally:
        stop(procs)
    assert read_lease(lake) is None


def test_lease_break_on_a_free_lake_says_so_and_fences_nothing(lake: Storage) -> None:
    from deltalake import DeltaTable

    ctx = RunContext(lake.settings)
    write_stale(lake, "crashed-run")
    assert break_lease(ctx) is None
    assert read_lease(lake) is None
    for table in ctx.tables():
        assert not DeltaTable.is_deltatable(table.uri), table.name  # no fence commit locally


def test_lease_status_and_break_commands_name_the_live_holder(lake: Storage) -> None:
    root = Path(lake.settings.lake_bronze).parent
    Path(lake.settings.lake_bronze).mkdir(parents=True, exist_ok=True)  # no lake: refused (exit 2)
    free = cli(root, "lease", "break")
    assert free.returncode == 0 and "nobody held the lease" in free.stdout, free.stderr
    with acquire(lake, owner=Owner.this_process("live-run"), wait=0):
        status = cli(root, "lease", "status")
        assert status.returncode == 0 and " is held by run live-run " in status.stdout, status.stderr
        refused = cli(root, "lease", "break")
        assert refused.returncode == 5, refused.stderr
        line = one_clean_error_line(refused.stderr)
        assert f"pid {os.getpid()} " in line and f"kill {os.getpid()}" in line, line
    assert cli(root, "lease", "status").stdout.strip().endswith("is free")


def test_lease_held_in_process_names_the_holder(lake: Storage) -> None:
    with acquire(lake, owner=Owner.this_process("holder-run"), wait=0):
        with pytest.raises(LeaseHeld) as caught:
            acquire(lake, owner=Owner.this_process("other"), wait=0.3)
        assert caught.value.exit_code == 5
        assert f"run holder-run (pid {os.getpid()} on {socket.gethostname()}" in str(caught.value)
        assert "\n" not in str(caught.value)


def test_an_unusable_lake_location_is_one_storage_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    storage = Storage(load_settings(lake_bronze=str(blocker / "bronze")))
    with pytest.raises(StorageError) as caught:
        acquire(storage, wait=0)
    assert str(caught.value).startswith(f"cannot access {blocker}/bronze/_lease.json")
    assert "\n" not in str(caught.value)


def test_describe_state_says_free_or_held(lake: Storage) -> None:
    assert describe_state(lake).endswith("is free")
    with acquire(lake, owner=Owner.this_process("shown"), wait=0):
        assert " is held by run shown " in describe_state(lake)
    assert describe_state(lake).endswith("is free")
    write_stale(lake, "crashed-run")
    assert describe_state(lake).endswith("is free")  # a dead holder's record holds nothing
