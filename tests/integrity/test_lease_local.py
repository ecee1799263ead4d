"""The lake lease on a local lake: one writer at a time, with real competing processes."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.errors import LeaseHeld, LeaseLost, StorageError
from jobs.lease import Owner, acquire, hold_lease, lease_uri, read_lease
from jobs.pipeline import break_lease
from jobs.run import RunContext
from jobs.settings import load_settings
from jobs.storage import Storage
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


def write_expired(lake: Storage, run_id: str = "crashed-run") -> None:
    path = Path(uri_of(lake))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(expired_lease(run_id))


@contextlib.contextmanager
def critical_section(lake: Storage, pid: int | None = None) -> Iterator[None]:
    """Hold the lock every local lease change takes (bounded wait), as process ``pid`` would."""
    fd = os.open(f"{uri_of(lake)}.lock", os.O_RDWR | os.O_CREAT)
    try:

        def locked() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        wait_for(locked, "the lease lock")
        os.ftruncate(fd, 0)
        os.write(fd, f"{pid or os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def test_acquire_writes_a_lease_naming_the_owner_and_release_removes_it(lake: Storage) -> None:
    owner = Owner.this_process("run-1")
    with hold_lease(lake, owner=owner, ttl=30, heartbeat=5, wait=0) as lease:
        holder = read_lease(lake)
        assert holder is not None and holder.token == lease.token
        assert holder.owner == owner and owner.pid == os.getpid()
        assert owner.host == socket.gethostname()
        assert holder.acquired_at <= holder.heartbeat_at < holder.expires_at
        doc = json.loads(Path(uri_of(lake)).read_text())
        assert set(doc) >= {"owner", "token", "acquired_at", "heartbeat_at", "expires_at"}
        assert set(doc["owner"]) == {"run_id", "host", "pid", "command"}
        lease.ensure()
    assert read_lease(lake) is None
    leftovers = sorted(p.name for p in Path(uri_of(lake)).parent.iterdir())
    assert leftovers == ["_lease.json.lock"]  # no temp file or tombstone left behind


def test_lease_lives_at_the_bronze_root(lake: Storage) -> None:
    assert uri_of(lake) == f"{lake.settings.lake_bronze}/_lease.json"


def test_heartbeat_must_be_below_half_the_ttl(lake: Storage) -> None:
    from jobs.errors import ConfigError

    with pytest.raises(ConfigError, match="LEASE_HEARTBEAT_SECONDS=30"):
        load_settings(lease_ttl_seconds=60, lease_heartbeat_seconds=30)
    with pytest.raises(ValueError, match="below half the TTL"):
        acquire(lake, ttl=2, heartbeat=1, wait=0)
    assert read_lease(lake) is None


def test_heartbeat_keeps_extending_the_expiry(lake: Storage) -> None:
    with hold_lease(lake, owner=Owner.this_process("beating"), ttl=2, heartbeat=0.2, wait=0) as lease:
        first = read_lease(lake)
        assert first is not None
        later = wait_for(
            lambda: (h := read_lease(lake)) and h.expires_at > first.expires_at and h, "a heartbeat"
        )
        assert later.token == lease.token and later.acquired_at == first.acquired_at


def test_second_process_gets_lease_held_naming_the_holder_and_gives_up_at_once(
    env: Path, control: Path, lake: Storage
) -> None:
    holder = spawn("hold", env=env, control=control, run_id="first-run", ttl=30, heartbeat=5)
    try:
        wait_for(lambda: (control / "acquired-first-run.json").is_file(), "the first run")
        second = spawn("hold", env=env, control=control, run_id="second-run", wait=0)
        code, err = finish(second, limit=30)
        assert code == 5, err
        line = err.strip().splitlines()[-1]
        assert line.startswith("error: another run is writing to the lake")
        assert f"run first-run (pid {holder.pid} on {socket.gethostname()}" in line
        assert "since " in line and "expires at " in line
        assert "python -m jobs lease break" in line and "LEASE_WAIT_SECONDS" in line
        assert not (control / "acquired-second-run.json").exists()
        write_json(control / "release-first-run", {})
        assert finish(holder)[0] == 0
    finally:
        stop([holder])
    assert read_lease(lake) is None


def test_waiting_process_gets_the_lease_once_the_holder_releases(
    env: Path, control: Path, lake: Storage
) -> None:
    first = spawn("hold", env=env, control=control, run_id="first-run", ttl=30, heartbeat=5)
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


def test_expired_lease_of_a_dead_process_is_taken_over(
    lake: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    write_expired(lake, "crashed-run")
    stale = read_lease(lake)
    assert stale is not None and stale.expired()
    with hold_lease(lake, owner=Owner.this_process("new-run"), ttl=30, heartbeat=5, wait=0) as lease:
        holder = read_lease(lake)
        assert holder is not None and holder.token == lease.token != stale.token
        assert holder.owner.run_id == "new-run"
    assert "took over the expired lake lease" in caplog.text and "crashed-run" in caplog.text
    assert read_lease(lake) is None


def test_eight_processes_racing_for_a_free_lease_exactly_one_wins_every_round(
    env: Path, control: Path, lake: Storage
) -> None:
    outcomes = race_rounds(
        env=env,
        control=control,
        uri=uri_of(lake),
        processes=8,
        rounds=4,
        read_token=lambda: token(lake),
        before_round=lambda r: None,
    )
    assert len(outcomes) == 4


def test_eight_processes_racing_to_take_over_an_expired_lease_exactly_one_wins(
    env: Path, control: Path, lake: Storage
) -> None:
    outcomes = race_rounds(
        env=env,
        control=control,
        uri=uri_of(lake),
        processes=8,
        rounds=3,
        read_token=lambda: token(lake),
        before_round=lambda r: write_expired(lake, f"crashed-{r}"),
    )
    assert len(outcomes) == 3
    leftovers = sorted(p.name for p in Path(uri_of(lake)).parent.iterdir())
    assert leftovers == ["_lease.json.lock"]


def test_holder_whose_lease_was_taken_over_gets_lease_lost_and_leaves_the_new_lease(
    env: Path, control: Path, lake: Storage
) -> None:
    stalled = spawn("hold", env=env, control=control, run_id="stalled-run", ttl=2, heartbeat=0.5)
    try:
        wait_for(lambda: (control / "acquired-stalled-run.json").is_file(), "the stalled run")
        with critical_section(lake):  # stop it between lease changes, not inside one
            os.kill(stalled.pid, signal.SIGSTOP)  # a stall longer than the TTL (swap, GC, ...)
        wait_for(lambda: (h := read_lease(lake)) is not None and h.expired(), "the lease to expire")
        with hold_lease(lake, owner=Owner.this_process("taker"), ttl=30, heartbeat=5, wait=0) as lease:
            os.kill(stalled.pid, signal.SIGCONT)
            code, err = finish(stalled)
            assert code == 6, err
            line = err.strip().splitlines()[-1]
            assert line.startswith("error: run stalled-run lost the lake lease")
            assert "taken over by run taker" in line
            # Its exit (release on the way out) left the new holder's lease alone.
            assert token(lake) == lease.token
            lease.ensure()
    finally:
        stop([stalled])
    assert read_lease(lake) is None


def test_release_never_deletes_someone_elses_lease(lake: Storage) -> None:
    first = acquire(lake, owner=Owner.this_process("first"), ttl=30, heartbeat=5, wait=0)
    first.stop_heartbeat()
    assert break_lease(RunContext(lake.settings)) == "first"
    with hold_lease(lake, owner=Owner.this_process("second"), ttl=30, heartbeat=5, wait=0) as second:
        assert first.release() is False
        assert token(lake) == second.token
        with pytest.raises(LeaseLost, match="taken over by run second"):
            first.ensure()
    assert read_lease(lake) is None


def test_heartbeat_records_a_lost_lease_and_ensure_raises(lake: Storage) -> None:
    with hold_lease(lake, owner=Owner.this_process("victim"), ttl=1, heartbeat=0.1, wait=0) as lease:
        operator = acquire(lake, owner=Owner.this_process("operator"), ttl=30, heartbeat=5, force=True)
        assert operator.took_over == "victim"
        reason = wait_for(lambda: lease.lost, "the heartbeat to notice")
        assert "taken over by run operator" in reason
        operator.release()
        with pytest.raises(LeaseLost, match="run victim lost the lake lease"):
            lease.ensure()
    assert read_lease(lake) is None


def test_sigkilled_holder_leaves_a_lease_that_the_next_run_takes_over_after_the_ttl(
    env: Path, control: Path, lake: Storage
) -> None:
    killed = spawn("hold", env=env, control=control, run_id="killed-run", ttl=2, heartbeat=0.5)
    procs = [killed]
    try:
        wait_for(lambda: (control / "acquired-killed-run.json").is_file(), "the first run")
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        left = read_lease(lake)
        assert left is not None and left.owner.run_id == "killed-run"
        nxt = spawn("hold", env=env, control=control, run_id="next-run", ttl=2, heartbeat=0.5, wait=90)
        procs.append(nxt)
        wait_for(lambda: (control / "acquired-next-run.json").is_file(), "the next run")
        holder = read_lease(lake)
        assert holder is not None and holder.owner.run_id == "next-run"
        assert holder.token != left.token
        write_json(control / "release-next-run", {})
        code, err = finish(nxt)
        assert code == 0, err
        # Its process is gone and it ran on this host: taken over at once, not after the TTL.
        assert "took over the lake lease" in err and "process on this host is gone" in err
        assert "killed-run" in err
    finally:
        stop(procs)
    assert read_lease(lake) is None


def test_break_lease_names_the_holder_fences_every_table_and_frees_the_lake(lake: Storage) -> None:
    from deltalake import DeltaTable

    ctx = RunContext(lake.settings)
    assert break_lease(ctx) is None
    write_expired(lake, "crashed-run")
    assert break_lease(RunContext(lake.settings)) == "crashed-run"
    assert read_lease(lake) is None
    for table in ctx.tables():  # each got a fence naming the run it was taken from
        assert DeltaTable(table.uri).history(1)[0]["fenced_run"] == "crashed-run", table.name


def test_unreadable_lease_is_reported_and_can_be_broken(lake: Storage) -> None:
    path = Path(uri_of(lake))
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(StorageError, match=r"unreadable.*lease break"):
        read_lease(lake)
    with pytest.raises(StorageError, match="unreadable"):
        acquire(lake, ttl=30, heartbeat=5, wait=0)
    assert break_lease(RunContext(lake.settings)) == "an unreadable lease"
    assert not path.exists()


def test_lease_held_in_process_names_the_holder(lake: Storage) -> None:
    with hold_lease(lake, owner=Owner.this_process("holder-run"), ttl=30, heartbeat=5, wait=0):
        with pytest.raises(LeaseHeld) as caught:
            acquire(lake, owner=Owner.this_process("other"), ttl=30, heartbeat=5, wait=0.3)
        assert caught.value.exit_code == 5
        assert f"run holder-run (pid {os.getpid()} on {socket.gethostname()}" in str(caught.value)
        assert "\n" not in str(caught.value)


def test_a_process_stopped_inside_a_lease_change_gets_a_clear_error_not_a_hang(
    lake: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs.lease

    monkeypatch.setattr(jobs.lease, "LOCK_WAIT", 0.3)
    write_expired(lake, "crashed-run")
    with (
        critical_section(lake, pid=4242),
        pytest.raises(StorageError, match=r"being changed by process 4242.*kill -CONT 4242"),
    ):
        acquire(lake, owner=Owner.this_process("blocked"), ttl=30, heartbeat=5, wait=0)
    with hold_lease(lake, owner=Owner.this_process("later"), ttl=30, heartbeat=5, wait=0) as lease:
        assert token(lake) == lease.token


def test_takeover_sweeps_leftovers_of_killed_processes(lake: Storage) -> None:
    write_expired(lake, "crashed-run")
    bronze = Path(uri_of(lake)).parent
    old = [bronze / "_lease.json.tmp-dead", bronze / "_lease.json.expired-dead"]
    fresh = bronze / "_lease.json.tmp-in-flight"
    for path in [*old, fresh]:
        path.write_text("{}")
    for path in old:
        os.utime(path, (1_000_000, 1_000_000))
    with hold_lease(lake, owner=Owner.this_process("sweeper"), ttl=30, heartbeat=5, wait=0):
        assert not any(p.exists() for p in old)
        assert fresh.exists()  # maybe another process's create in progress: left alone


def test_an_unusable_lake_location_is_one_storage_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    storage = Storage(load_settings(lake_bronze=str(blocker / "bronze")))
    with pytest.raises(StorageError) as caught:
        acquire(storage, ttl=30, heartbeat=5, wait=0)
    assert str(caught.value).startswith(f"cannot access {blocker}/bronze/_lease.json")
    assert "\n" not in str(caught.value)


def test_describe_state_says_free_held_or_expired(lake: Storage) -> None:
    from jobs.lease import describe_state

    assert describe_state(lake).endswith("is free")
    with hold_lease(lake, owner=Owner.this_process("shown"), ttl=30, heartbeat=5, wait=0):
        assert " is held: run shown " in describe_state(lake)
    write_expired(lake, "crashed-run")
    assert "is expired (its holder stopped renewing): run crashed-run" in describe_state(lake)
