"""The lake lease on S3 (SeaweedFS ``weed mini``): conditional requests make it one writer at a
time, with real competing processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jobs.errors import LeaseHeld, LeaseLost
from jobs.lease import Owner, UnreadableLease, acquire, lease_uri, read_lease
from jobs.pipeline import break_lease
from jobs.run import RunContext
from jobs.settings import Settings
from jobs.storage import Storage
from tests.integration.conftest import S3Stack
from tests.integrity.lease_harness import expired_lease, finish, race_rounds, spawn, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(s3: S3Stack) -> Settings:
    return s3.lake()


@pytest.fixture
def storage(settings: Settings) -> Storage:
    return Storage(settings)


@pytest.fixture
def env(s3: S3Stack, settings: Settings, tmp_path: Path) -> Path:
    return s3.env_file(settings, tmp_path / "lake.env")


@pytest.fixture
def control(tmp_path: Path) -> Path:
    path = tmp_path / "control"
    path.mkdir()
    return path


def where(storage: Storage) -> tuple[str, str]:
    bucket, key = lease_uri(storage.settings).removeprefix("s3://").split("/", 1)
    return bucket, key


def token(storage: Storage) -> str | None:
    holder = read_lease(storage)
    return holder.token if holder else None


def status(call: Any, **kwargs: Any) -> int:
    try:
        response = call(**kwargs)
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return int(response["ResponseMetadata"]["HTTPStatusCode"])


def test_seaweedfs_honours_the_conditional_requests_the_lease_relies_on(storage: Storage) -> None:
    client = storage.s3_client()
    bucket, key = where(storage)
    put, delete = client.put_object, client.delete_object
    base = {"Bucket": bucket, "Key": key}
    assert status(put, **base, Body=b"a", IfMatch='"0123"') == 412  # If-Match on a missing key
    assert status(put, **base, Body=b"a", IfNoneMatch="*") == 200  # create when absent
    assert status(put, **base, Body=b"b", IfNoneMatch="*") == 412  # ... but never overwrite
    first = client.head_object(**base)["ETag"]
    assert status(put, **base, Body=b"c", IfMatch=first) == 200  # compare-and-swap
    assert status(put, **base, Body=b"d", IfMatch=first) == 412  # stale etag refused
    assert client.get_object(**base)["Body"].read() == b"c"
    assert status(delete, **base, IfMatch=first) == 412  # conditional delete refused ...
    assert client.get_object(**base)["Body"].read() == b"c"  # ... and nothing deleted
    current = client.head_object(**base)["ETag"]
    assert status(delete, **base, IfMatch=current) == 204
    assert read_lease(storage) is None


def test_acquire_renew_and_release_on_s3(storage: Storage) -> None:
    client = storage.s3_client()
    bucket, key = where(storage)
    with acquire(storage, owner=Owner.this_process("s3-run"), ttl=30, heartbeat=5, wait=0) as lease:
        holder = read_lease(storage)
        assert holder is not None and holder.token == lease.token
        assert holder.owner.run_id == "s3-run" and holder.owner.pid == os.getpid()
        before = client.head_object(Bucket=bucket, Key=key)["ETag"]
        lease.ensure()  # a conditional renewal: new heartbeat, new etag
        after = read_lease(storage)
        assert after is not None and after.expires_at > holder.expires_at
        assert client.head_object(Bucket=bucket, Key=key)["ETag"] != before
    assert read_lease(storage) is None


def test_second_process_gets_lease_held_naming_the_holder_on_s3(
    storage: Storage, env: Path, control: Path
) -> None:
    with acquire(storage, owner=Owner.this_process("s3-holder"), ttl=30, heartbeat=5, wait=0):
        second = spawn("hold", env=env, control=control, run_id="s3-second", wait=0)
        code, err = finish(second, limit=60)
        assert code == 5, err
        line = err.strip().splitlines()[-1]
        assert line.startswith("error: another run is writing to the lake: the lease s3://bronze/")
        assert f"run s3-holder (pid {os.getpid()} on {socket.gethostname()}" in line
        assert "expires at " in line and "python -m jobs lease break" in line
    assert read_lease(storage) is None


def test_eight_processes_racing_for_a_free_lease_on_s3_exactly_one_wins_every_round(
    storage: Storage, env: Path, control: Path
) -> None:
    outcomes = race_rounds(
        env=env,
        control=control,
        processes=8,
        rounds=3,
        read_token=lambda: token(storage),
        before_round=lambda r: None,
    )
    assert len(outcomes) == 3


def test_eight_processes_racing_to_take_over_an_expired_lease_on_s3_exactly_one_wins(
    storage: Storage, env: Path, control: Path
) -> None:
    client = storage.s3_client()
    bucket, key = where(storage)

    def plant(r: int) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=expired_lease(f"crashed-{r}"))

    outcomes = race_rounds(
        env=env,
        control=control,
        processes=8,
        rounds=3,
        read_token=lambda: token(storage),
        before_round=plant,
    )
    assert len(outcomes) == 3


def test_renewal_after_a_takeover_raises_lease_lost_and_release_keeps_the_new_lease(storage: Storage) -> None:
    first = acquire(storage, owner=Owner.this_process("s3-stalled"), ttl=1, heartbeat=0.2, wait=0)
    first.stop_heartbeat()  # as if the process stalled
    wait_for(lambda: (h := read_lease(storage)) is not None and h.expired(), "the lease to expire")
    with acquire(storage, owner=Owner.this_process("s3-taker"), ttl=30, heartbeat=5, wait=0) as second:
        with pytest.raises(LeaseLost, match="taken over by run s3-taker"):
            first.ensure()
        assert first.release() is False
        assert token(storage) == second.token
        second.ensure()
    assert read_lease(storage) is None


def test_renewal_recognises_its_own_write_whose_answer_was_lost(storage: Storage) -> None:
    client = storage.s3_client()
    bucket, key = where(storage)
    with acquire(storage, owner=Owner.this_process("s3-retry"), ttl=30, heartbeat=5, wait=0) as lease:
        # As after a renewal that landed but whose response never came back: the etag we hold
        # is no longer current, yet the object still carries our token.
        ours = read_lease(storage)
        assert ours is not None
        client.put_object(Bucket=bucket, Key=key, Body=ours.renewed(30).to_bytes())
        lease.ensure()
        assert token(storage) == lease.token and lease.lost is None
    assert read_lease(storage) is None


def test_break_lease_on_s3_fences_the_lake_frees_it_and_the_holder_loses_it(storage: Storage) -> None:
    lease = acquire(storage, owner=Owner.this_process("s3-broken"), ttl=30, heartbeat=5, wait=0)
    try:
        ctx = RunContext(storage.settings)
        assert break_lease(ctx) == "s3-broken"
        assert read_lease(storage) is None
        gold = ctx.lake.history(ctx.gold("print_features"))  # every table got a fence naming the run
        assert gold[-1]["fenced_run"] == "s3-broken"
        with pytest.raises(LeaseLost, match="was removed"):
            lease.ensure()
        with acquire(storage, owner=Owner.this_process("s3-next"), ttl=30, heartbeat=5, wait=0) as nxt:
            assert lease.release() is False
            assert token(storage) == nxt.token
    finally:
        lease.stop_heartbeat()
    assert break_lease(RunContext(storage.settings)) is None


def test_an_unreadable_lease_object_is_one_line_and_lease_break_removes_it(storage: Storage) -> None:
    client = storage.s3_client()
    bucket, key = where(storage)
    client.put_object(Bucket=bucket, Key=key, Body=b"{not json")
    with pytest.raises(
        UnreadableLease, match=r"is unreadable \(not a lease object .*`python -m jobs lease break`"
    ):
        read_lease(storage)
    with pytest.raises(UnreadableLease) as caught:
        acquire(storage, owner=Owner.this_process("s3-blocked"), ttl=30, heartbeat=5, wait=0)
    assert "\n" not in str(caught.value)
    assert break_lease(RunContext(storage.settings)) == "an unreadable lease"
    assert read_lease(storage) is None


def test_waiting_for_a_held_lease_on_s3_gives_up_with_lease_held(storage: Storage) -> None:
    with (
        acquire(storage, owner=Owner.this_process("s3-long"), ttl=30, heartbeat=5, wait=0),
        pytest.raises(LeaseHeld, match="held by run s3-long"),
    ):
        acquire(storage, owner=Owner.this_process("s3-other"), ttl=30, heartbeat=5, wait=0.5)


def test_an_identity_that_may_not_write_bronze_gets_one_access_denied_line(
    s3: S3Stack, settings: Settings
) -> None:
    from jobs.errors import AccessDenied

    analyst = Storage(s3.as_identity(settings, "analyst"))
    with pytest.raises(AccessDenied, match="identity 'test-analyst' may not use s3://bronze/"):
        acquire(analyst, owner=Owner.this_process("analyst"), ttl=30, heartbeat=5, wait=0)
    assert read_lease(Storage(settings)) is None
