"""The lease of a local lake: one ``flock`` on ``_lease.json``, held for the whole run.

The kernel drops a flock when its process dies, so a killed holder frees the lake at once, and a
stopped one (SIGSTOP, a hung disk) keeps it until it resumes or is killed: nobody can take the
lake from a live process, so no TTL, heartbeat, takeover or fence is needed. The holder writes
its record into the locked file so others can name it; the record of a dead holder stays there
but means nothing, since only the lock says whether the lease is held. The file must not be
deleted by hand while held (:meth:`LocalLease.ensure` notices), and flock is not reliable on NFS.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from functools import partial
from typing import TYPE_CHECKING

from jobs.errors import LeaseLost
from jobs.lease.base import Holder, Lease, Owner, held_by, poll
from jobs.storage.errors import storage_error

if TYPE_CHECKING:
    from jobs.storage import Storage

# A status probe (read_holder) holds the lock for an instant: an acquirer retries this long before
# it reports the lease held.
_RETRY = 0.25


class LocalLease(Lease):
    """The flock this process holds on the lease file (its open descriptor)."""

    def __init__(self, uri: str, fd: int, holder: Holder) -> None:
        super().__init__(uri, holder)
        self._fd = fd

    def ensure(self) -> None:
        if self.lost is None:
            with contextlib.suppress(FileNotFoundError):
                ours, current = os.fstat(self._fd), os.stat(_path(self.uri))
                if (ours.st_dev, ours.st_ino) == (current.st_dev, current.st_ino):
                    return
            # Removed or replaced by hand: another run could lock the new file.
            self.lost = (
                f"run {self.holder.owner.run_id} lost the lake lease {self.uri}: the file was "
                "removed or replaced while held; this run stops before committing anything more"
            )
        raise LeaseLost(self.lost)

    def release(self) -> bool:
        if self._fd < 0:
            return False
        fd, self._fd, self.lost = self._fd, -1, self.lost or self._released()
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # nobody is named any more
        os.close(fd)  # drops the flock
        return True


def _path(uri: str) -> str:
    return os.path.abspath(uri.removeprefix("file://"))


def _lock(storage: Storage, uri: str, owner: Owner) -> LocalLease | None:
    """Take the flock without waiting and write our record into the file; None while held."""
    path, fd = _path(uri), -1
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        holder = Holder(owner=owner)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.to_bytes(), 0)
        os.fsync(fd)
        return LocalLease(uri, fd, holder)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        raise storage_error(exc, uri=uri, storage=storage) from exc


def acquire(storage: Storage, uri: str, owner: Owner, *, wait: float, force: bool) -> Lease:
    def attempt() -> tuple[Lease | None, Holder | None]:
        while (lease := _lock(storage, uri, owner)) is None:
            held, holder = read_holder(storage, uri)
            if held:
                return None, holder
        return lease, None  # (not held: released in between, so lock again)

    refused = partial(refuse_break if force else held_message, uri)
    # lease break (force) gives up at once: a live holder's lock cannot be broken.
    return poll(uri, attempt, refused, wait=0 if force else wait, at_least=_RETRY)


def read_holder(storage: Storage, uri: str) -> tuple[bool, Holder | None]:
    """Whether the lease is held and, if its record is readable yet, by whom. A shared lock
    taken for an instant tells whether anyone holds it (an acquirer racing this probe retries)."""
    try:
        fd = os.open(_path(uri), os.O_RDONLY)
    except FileNotFoundError:
        return False, None
    except OSError as exc:
        raise storage_error(exc, uri=uri, storage=storage) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False, None
    except BlockingIOError:
        try:
            holder = Holder.from_bytes(os.pread(fd, 1 << 16, 0))
        except (ValueError, OSError):
            return True, None  # locked, record not written yet
        return True, None if holder.gone() else holder  # gone: the new holder writes its own next
    finally:
        os.close(fd)


def held_message(uri: str, holder: Holder | None) -> str:
    """The one-line LeaseHeld message of a local lake: who holds it and what to do."""
    if holder is None:
        return (
            f"another run is writing to the lake: the lease {uri} is held by a process starting up; try again"
        )
    return (
        f"{held_by(uri, holder)}; if that process is stuck, stop it: `kill {holder.owner.pid}` "
        "(the lock frees when it dies)"
    )


def refuse_break(uri: str, holder: Holder | None) -> str:
    """The one line of ``lease break`` on a local lake whose lock a live process holds."""
    who = holder.describe() if holder else "a process starting up"
    pid = holder.owner.pid if holder else "<pid>"
    return (
        f"the lake lease {uri} is held by {who}, a live process: a local lease cannot be broken; "
        f"if that process is stuck, stop it (`kill {pid}`), and the lock frees when it dies"
    )
