"""What both lease backends share: the holder's record, the lease object and the wait loop
(the package docstring of :mod:`jobs.lease` says how the lease works)."""

from __future__ import annotations

import logging
import os
import random
import shlex
import socket
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from jobs.errors import LeaseHeld, StorageError
from jobs.storage import join

if TYPE_CHECKING:
    from jobs.settings import Settings

log = logging.getLogger(__name__)

OnUnreachable = Callable[[str], None]
"""Called (once, from the S3 heartbeat thread) when the store has not answered a renewal for the
TTL plus one request bound: see :func:`jobs.logs.stop_process`."""


def lease_uri(settings: Settings) -> str:
    return join(settings.lake_bronze, "_lease.json")


def now() -> datetime:
    return datetime.now(UTC)


def shown(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


class UnreadableLease(StorageError):
    """The S3 lease object exists but is not a lease: ``lease break`` removes it."""


class Owner(BaseModel, frozen=True):
    """Who holds (or wants) the lease."""

    run_id: str
    host: str
    pid: int
    command: str = ""

    @classmethod
    def this_process(cls, run_id: str) -> Owner:
        """This process on this host, running the command it was started with."""
        argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
        command = shlex.join([os.path.basename(argv[0]), *argv[1:]])
        return cls(run_id=run_id, host=socket.gethostname(), pid=os.getpid(), command=command[:300])


class Holder(BaseModel, frozen=True):
    """The lease record: its owner, a token unique to this holding, and times (UTC). A local
    lease has no heartbeat or expiry: the kernel frees its flock when the holder dies."""

    owner: Owner
    token: str = Field(default_factory=lambda: uuid.uuid4().hex)
    acquired_at: AwareDatetime = Field(default_factory=now)
    heartbeat_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None

    def expired(self) -> bool:
        """Not renewed in time (S3): the holder is dead or stalled and may be taken over."""
        return self.expires_at is not None and now() >= self.expires_at

    def gone(self) -> bool:
        """Whether the holder ran on this host and its process provably ended: no such PID (or a
        zombie), or the PID now belongs to a process started after the lease was taken. A
        holder on another host is never judged (an S3 lease expires by TTL)."""
        import psutil

        if self.owner.host != socket.gethostname() or self.owner.pid == os.getpid():
            return False
        try:
            process = psutil.Process(self.owner.pid)
            reused = process.create_time() > self.acquired_at.timestamp() + 1.0
            return reused or process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:  # not ours to inspect: assume alive
            return False

    def describe(self) -> str:
        """One line naming the holder, for messages."""
        o = self.owner
        line = f"run {o.run_id} (pid {o.pid} on {o.host}, `{o.command}`) since {shown(self.acquired_at)}"
        if self.heartbeat_at is not None and self.expires_at is not None:
            line += f", last heartbeat {shown(self.heartbeat_at)}, expires {shown(self.expires_at)}"
        return line

    def renewed(self, ttl: float) -> Holder:
        at = now()
        return self.model_copy(update={"heartbeat_at": at, "expires_at": at + timedelta(seconds=ttl)})

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(indent=1) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Holder:
        """Parse a lease record; a one-line ValueError if it is not one."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = f": {'.'.join(map(str, first['loc']))}" if first["loc"] else ""
            raise ValueError(f"not a lease object ({first['msg']}{where})") from None


class Lease:
    """A lease this process holds; a context manager that releases it on exit."""

    # The run whose lease this one replaced without its release (S3: expired, dead or broken):
    # the caller fences the lake against it (jobs.tables.fence). None: a clean acquire.
    took_over: str | None = None
    lost: str | None = None  # why the lease is no longer ours (released, taken over, removed)

    def __init__(self, uri: str, holder: Holder) -> None:
        self.uri, self.holder = uri, holder

    @property
    def token(self) -> str:
        return self.holder.token

    def _released(self) -> str:
        return (
            f"run {self.holder.owner.run_id} released the lake lease {self.uri} already, "
            "so it may not commit any more"
        )

    def ensure(self) -> None:
        """Raise :class:`~jobs.errors.LeaseLost` unless the lease is still ours; call right
        before a commit. A store that cannot be reached raises ``StorageError``."""
        raise NotImplementedError

    def release(self) -> bool:
        """Give the lease up if it is still ours; True if this call released it."""
        raise NotImplementedError

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.release()
        except StorageError as error:  # never hide the run's own outcome behind a cleanup failure
            expires = self.holder.expires_at
            note = f" (it expires at {shown(expires)})" if expires else ""
            log.warning("could not release the lake lease %s%s: %s", self.uri, note, error)


Attempt = Callable[[], tuple[Lease | None, Holder | None]]


def poll(
    uri: str, attempt: Attempt, refused: Callable[[Holder | None], str], wait: float, at_least: float = 0.0
) -> Lease:
    """Call ``attempt`` until it returns a lease or ``wait`` (at least ``at_least``) seconds
    passed, then raise :class:`LeaseHeld` with ``refused(holder)``. Polls about once a second
    (sooner if the holder's lease expires sooner), with jitter against herds."""
    deadline, logged = time.monotonic() + max(wait, at_least), False
    while True:
        lease, holder = attempt()
        if lease is not None:
            log.info("holding the lake lease %s as run %s", uri, lease.holder.owner.run_id)
            return lease
        left = deadline - time.monotonic()
        if left <= 0:
            raise LeaseHeld(refused(holder))
        if holder is not None and wait > 0 and not logged:
            log.info("waiting for the lake lease %s (up to %.0f s): held by %s", uri, left, holder.describe())
            logged = True
        expires = holder.expires_at if holder else None
        pause = min(1.0, max(0.05, (expires - now()).total_seconds() + 0.01)) if expires else 0.25
        time.sleep(min(pause * random.uniform(0.5, 1.0), left))  # noqa: S311 (jitter)


def held_by(uri: str, holder: Holder) -> str:
    """The start of the one-line :class:`LeaseHeld` message; each backend adds the way forward."""
    return (
        f"another run is writing to the lake: the lease {uri} is held by {holder.describe()}; "
        "wait for it to finish (or set LEASE_WAIT_SECONDS to wait)"
    )
