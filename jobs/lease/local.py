"""The lease of a local lake: one ``flock`` on ``_lease.json``, held for the whole run.

The kernel drops a flock when its process dies, so a killed holder frees the lake at once, and a
stopped one (SIGSTOP, a hung disk) keeps it until it resumes or is killed: nobody can take the
lake from a live process, so no TTL, heartbeat, takeover or fence is needed. The holder writes
its record into the locked file so others can name it; the record of a dead holder stays there
but means nothing, since only the lock says whether the lease is held. The lock must not be
deleted by hand while held (:meth:`LocalLease.ensure` notices), and flock is not reliable on NFS.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import socket
import time
import uuid
from typing import TYPE_CHECKING

from jobs.errors import LeaseHeld, LeaseLost, StorageError
from jobs.lease.base import Lease
from jobs.lease.record import Holder, Owner, now

if TYPE_CHECKING:
    from jobs.storage import Storage

log = logging.getLogger(__name__)


# A status probe holds the lock for an instant: an acquirer retries this long before it reports
# the lease held.
_RETRY = 0.25


class LocalLease(Lease):
    """The flock this process holds on the lease file (its open descriptor)."""

    def __init__(self, uri: str, fd: int, holder: Holder) -> None:
        self.uri, self._fd, self._holder = uri, fd, holder
        self._lost: str | None = None

    @property
    def holder(self) -> Holder:
        return self._holder

    @property
    def lost(self) -> str | None:
        return self._lost

    def ensure(self) -> None:
        if self._fd < 0:
            raise LeaseLost(f"run {self._holder.owner.run_id} released the lake lease {self.uri} already")
        try:
            ours = os.fstat(self._fd)
            current = os.stat(_path(self.uri))
            same = (ours.st_dev, ours.st_ino) == (current.st_dev, current.st_ino)
        except FileNotFoundError:
            same = False
        if not same:  # removed or replaced by hand: another run could lock the new file
            self._lost = (
                f"run {self._holder.owner.run_id} lost the lake lease {self.uri}: the file was "
                "removed or replaced while held; this run stops before committing anything more"
            )
            raise LeaseLost(self._lost)

    def release(self) -> bool:
        if self._fd < 0:
            return False
        fd, self._fd = self._fd, -1
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # nobody is named any more
        os.close(fd)  # drops the flock
        return True


def _path(uri: str) -> str:
    return os.path.abspath(uri.removeprefix("file://"))


def _fail(storage: Storage, uri: str, exc: OSError) -> StorageError:
    from jobs.storage.errors import storage_error

    return storage_error(exc, uri=uri, storage=storage)


def try_lock(storage: Storage, uri: str, owner: Owner) -> LocalLease | None:
    """Take the flock without waiting and write our record into the file; None while held."""
    path = _path(uri)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _fail(storage, uri, exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:
        os.close(fd)
        raise _fail(storage, uri, exc) from exc
    holder = Holder(owner=owner, token=uuid.uuid4().hex, acquired_at=now())
    body = holder.to_bytes()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, body, 0)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        raise _fail(storage, uri, exc) from exc
    return LocalLease(uri, fd, holder)


def acquire(storage: Storage, uri: str, owner: Owner, *, wait: float, force: bool) -> LocalLease:
    """Lock, waiting up to ``wait`` seconds; :class:`LeaseHeld` naming the holder if still held
    (with ``force``, ``lease break``: at once, since a live holder's lock cannot be broken)."""
    started, logged = time.monotonic(), False
    while True:
        lease = try_lock(storage, uri, owner)
        if lease is not None:
            log.info("holding the lake lease %s as run %s", uri, owner.run_id)
            return lease
        held, holder = read_holder(storage, uri)
        if not held:
            continue  # released in between: lock again
        waited = time.monotonic() - started
        if waited >= (_RETRY if force else max(wait, _RETRY)):
            raise LeaseHeld((refuse_break if force else held_message)(uri, holder))
        if holder is not None and waited >= _RETRY and not force and not logged:
            log.info("waiting for the lake lease %s (up to %.0f s): held by %s", uri, wait, holder.describe())
            logged = True
        time.sleep(0.02 if waited < _RETRY else random.uniform(0.1, 0.25))  # noqa: S311 (jitter)


def read_holder(storage: Storage, uri: str) -> tuple[bool, Holder | None]:
    """Whether the lease is held and, if its record is readable yet, by whom. A shared lock
    taken for an instant tells whether anyone holds it (an acquirer racing this probe retries)."""
    path = _path(uri)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False, None
    except OSError as exc:
        raise _fail(storage, uri, exc) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False, None
        except BlockingIOError:
            pass
        try:
            holder = Holder.from_bytes(os.pread(fd, 1 << 16, 0))
        except (ValueError, OSError):
            return True, None  # locked, record not written yet
        if holder.owner.host == socket.gethostname() and not _alive(holder.owner.pid):
            return True, None  # a dead holder's record; the new one is about to write its own
        return True, holder
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def held_message(uri: str, holder: Holder | None) -> str:
    """The one-line LeaseHeld message of a local lake: who holds it and what to do."""
    if holder is None:
        return (
            f"another run is writing to the lake: the lease {uri} is held by a process starting up; try again"
        )
    pid = holder.owner.pid
    return (
        f"another run is writing to the lake: the lease {uri} is held by {holder.describe()}; "
        "wait for it to finish (or set LEASE_WAIT_SECONDS to wait); if that process is stuck, "
        f"stop it: `kill {pid}` (the lock frees when it dies)"
    )


def refuse_break(uri: str, holder: Holder | None) -> str:
    """The one line of ``lease break`` on a local lake whose lock a live process holds."""
    who = holder.describe() if holder else "a process starting up"
    pid = holder.owner.pid if holder else "<pid>"
    return (
        f"the lake lease {uri} is held by {who}, a live process: a local lease cannot be broken; "
        f"if that process is stuck, stop it (`kill {pid}`), and the lock frees when it dies"
    )
