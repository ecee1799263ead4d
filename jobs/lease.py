"""One writer at a time: a lake-wide lease at ``<LAKE_BRONZE>/_lease.json``.

A run that writes to the lake holds the lease for its whole duration (:func:`hold_lease`) and
calls :meth:`Lease.ensure` right before each commit, so two runs never interleave their writes
and a run that lost its lease never commits. The lease is one small JSON object::

    {"version": 1, "owner": {"run_id", "host", "pid", "command"}, "token": "<uuid>",
     "acquired_at": ..., "heartbeat_at": ..., "expires_at": ..., "ttl_seconds": ...}

Every change is a compare-and-swap, so there is no check-then-act window:

* **Acquire** — a conditional create. S3: ``PutObject`` with ``If-None-Match: *``. Locally: the
  content is written to a temp file and fsynced, then ``os.link``-ed into place (fails if the
  lease exists), so a reader never sees a half-written lease.
* **Renew** (daemon thread every ``heartbeat`` seconds, and synchronously in :meth:`Lease.ensure`)
  — only if the lease is still ours. S3: ``PutObject`` with ``If-Match: <etag we last wrote>``.
  Locally: under an advisory ``flock`` on ``_lease.json.lock``, compare the token, then write a
  temp file and ``os.replace`` it into place.
* **Take over** an expired lease (its holder stopped renewing for ``ttl`` seconds: dead or
  stalled), at once a lease whose holder ran on this host and whose process is gone
  (:func:`holder_is_gone`), or any lease with ``force`` (``lease break``) — exactly one of
  several contenders wins, and the winner fences every table (:mod:`jobs.tables.fence`).
  S3: ``PutObject`` with ``If-Match: <etag of the expired lease we read>``; the first
  conditional overwrite changes the etag, so every other one gets 412. Locally: under the flock,
  ``os.rename`` the expired file to a unique tombstone (only one renamer can move it), check it
  is the expired lease we read, then the exclusive create (link) as on acquire; a plain acquirer
  racing in between wins instead, which is equally fine: there is still exactly one holder.
* **Release** — delete only if still ours. S3: ``DeleteObject`` with ``If-Match``. Locally: under
  the flock, compare the token, then unlink.

SeaweedFS (4.48, ``weed mini``) honours ``If-None-Match: *`` and ``If-Match`` on PUT and
``If-Match`` on DELETE (412 ``PreconditionFailed`` otherwise, also for ``If-Match`` on a missing
key), and with 12 concurrent conditional writers exactly one succeeds; measured, and re-checked by
``tests/integration/test_lease_s3.py``. AWS S3 also honours these. A store that ignored them would
silently lose the guarantee, which is why that test exists.

ETags are content hashes on SeaweedFS: each body carries the holder's unique token and a fresh
``heartbeat_at``, so no two holders' bodies share an etag (no ABA). When a request's response is
lost and the retry gets 412 because the first attempt did land, the object is read back: a lease
carrying our token can only have been written by us, so it is still ours.

Caveats (documented, inherent to leases): hosts' clocks must agree to well within ``ttl``
(expiry is judged on the reader's clock), and hosts need distinct names (a dead holder is
recognised by host name and PID). A holder that stalls longer than ``ttl`` between
:meth:`Lease.ensure` returning and its commit cannot commit after a takeover: the commit itself
is the fence (the taker's fence commits take the versions it planned against, see
:mod:`jobs.tables.lake`), so exactly-once never depends on a commit finishing in time. The
local flock works on local file systems (not reliably on NFS); where it is unavailable acquire
and takeover stay exclusive (link/rename) but renewal's compare-then-replace has a short window.
The flock is held for milliseconds and dropped by the kernel when a process dies; a process
*stopped* inside that section (SIGSTOP, hung disk) blocks lease changes until it resumes, so
others wait at most ``LOCK_WAIT`` and then fail with one line naming its PID (never hang, never guess).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import shlex
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from jobs.errors import LeaseHeld, LeaseLost, StorageError
from jobs.storage import is_remote, join

if TYPE_CHECKING:
    from jobs.settings import Settings
    from jobs.storage import Storage

log = logging.getLogger(__name__)

LEASE_NAME = "_lease.json"
FORMAT_VERSION = 1
# Inner compare-and-swap retries of one acquire attempt (the lease changed under us meanwhile).
_CAS_ATTEMPTS = 8
# Local lakes: how long a lease change waits for another process's (millisecond) critical section.
LOCK_WAIT = 10.0


def lease_uri(settings: Settings) -> str:
    """Where the lake's lease lives: ``<LAKE_BRONZE>/_lease.json``."""
    return join(settings.lake_bronze, LEASE_NAME)


def _now() -> datetime:
    return datetime.now(UTC)


def _shown(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


@dataclass(frozen=True)
class Owner:
    """Who holds (or wants) the lease."""

    run_id: str
    host: str
    pid: int
    command: str

    @classmethod
    def this_process(cls, run_id: str) -> Owner:
        """This process on this host, running the command it was started with."""
        argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
        command = shlex.join([os.path.basename(argv[0]), *argv[1:]])
        return cls(run_id=run_id, host=socket.gethostname(), pid=os.getpid(), command=command[:300])


@dataclass(frozen=True)
class Holder:
    """The content of a lease object: its owner, token and times (UTC)."""

    owner: Owner
    token: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    ttl_seconds: float

    def expired(self, now: datetime | None = None) -> bool:
        """Not renewed in time: the holder is dead or stalled and the lease may be taken over."""
        return (now or _now()) >= self.expires_at

    def describe(self) -> str:
        """One line naming the holder, for messages."""
        o = self.owner
        return (
            f"run {o.run_id} (pid {o.pid} on {o.host}, `{o.command}`) since "
            f"{_shown(self.acquired_at)}, last heartbeat {_shown(self.heartbeat_at)}, "
            f"expires {_shown(self.expires_at)}"
        )

    # -- JSON ---------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        o = self.owner
        doc = {
            "version": FORMAT_VERSION,
            "owner": {"run_id": o.run_id, "host": o.host, "pid": o.pid, "command": o.command},
            "token": self.token,
            "acquired_at": self.acquired_at.isoformat(timespec="microseconds"),
            "heartbeat_at": self.heartbeat_at.isoformat(timespec="microseconds"),
            "expires_at": self.expires_at.isoformat(timespec="microseconds"),
            "ttl_seconds": self.ttl_seconds,
        }
        return (json.dumps(doc, indent=1) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Holder:
        """Parse a lease object; ValueError if it is not one."""
        try:
            doc = json.loads(data)
            o = doc["owner"]

            def at(name: str) -> datetime:
                value = datetime.fromisoformat(doc[name])
                return value if value.tzinfo else value.replace(tzinfo=UTC)

            return cls(
                owner=Owner(
                    run_id=str(o["run_id"]),
                    host=str(o["host"]),
                    pid=int(o["pid"]),
                    command=str(o.get("command", "")),
                ),
                token=str(doc["token"]),
                acquired_at=at("acquired_at"),
                heartbeat_at=at("heartbeat_at"),
                expires_at=at("expires_at"),
                ttl_seconds=float(doc.get("ttl_seconds", 0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a lease object ({type(exc).__name__}: {exc})") from exc

    def renewed(self, ttl: float, now: datetime | None = None) -> Holder:
        now = now or _now()
        return replace(self, heartbeat_at=now, expires_at=now + timedelta(seconds=ttl), ttl_seconds=ttl)


# -- backends: compare-and-swap on one object ----------------------------------------------------
# ``version`` is what a conditional request compares: the S3 ETag, or the token locally (only a
# holder writes its own token, and every local change happens under the flock).


class _Backend:
    uri: str

    def read(self) -> tuple[bytes, str] | None:
        """The raw object and its version, None if absent."""
        raise NotImplementedError

    def create(self, body: bytes) -> str | None:
        """Create if absent; the new version, None if something exists."""
        raise NotImplementedError

    def replace(self, body: bytes, *, expected: str, takeover: bool) -> str | None:
        """Overwrite only if the current version is ``expected``; None otherwise."""
        raise NotImplementedError

    def delete(self, *, expected: str) -> bool:
        """Delete only if the current version is ``expected``."""
        raise NotImplementedError


class _S3Backend(_Backend):
    def __init__(self, storage: Storage, uri: str) -> None:
        self.storage, self.uri = storage, uri
        parsed = urlparse(uri)
        self.bucket, self.key = parsed.netloc, parsed.path.lstrip("/")
        self.client = storage.s3_client()

    @staticmethod
    def _status(exc: Exception) -> tuple[str, int]:
        response = getattr(exc, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code, status

    def _refused(self, exc: Exception) -> bool:
        """412 (precondition failed) or 409 (a concurrent conditional write, AWS): someone else
        changed the object; the caller re-reads."""
        code, status = self._status(exc)
        return status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict")

    def _absent(self, exc: Exception) -> bool:
        code, status = self._status(exc)
        return status == 404 or code in ("NoSuchKey", "404", "NotFound")

    def _fail(self, exc: Exception) -> StorageError:
        from jobs.tables import storage_error

        return storage_error(exc, uri=self.uri, storage=self.storage)

    def read(self) -> tuple[bytes, str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key)
            return response["Body"].read(), response["ETag"]
        except Exception as exc:
            if self._absent(exc):
                return None
            raise self._fail(exc) from exc

    def _put(self, body: bytes, **condition: str) -> str | None:
        try:
            response = self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", **condition
            )
            return str(response["ETag"])
        except Exception as exc:
            if self._refused(exc):
                return None
            raise self._fail(exc) from exc

    def create(self, body: bytes) -> str | None:
        return self._put(body, IfNoneMatch="*")

    def replace(self, body: bytes, *, expected: str, takeover: bool) -> str | None:
        return self._put(body, IfMatch=expected)

    def delete(self, *, expected: str) -> bool:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=expected)
            return True
        except Exception as exc:
            if self._refused(exc) or self._absent(exc):
                return False
            raise self._fail(exc) from exc


class _LocalBackend(_Backend):
    def __init__(self, storage: Storage, uri: str) -> None:
        self.storage, self.uri = storage, uri
        self.path = os.path.abspath(uri.removeprefix("file://"))
        self.directory = os.path.dirname(self.path)
        self._no_flock_logged = False

    def _fail(self, exc: Exception) -> StorageError:
        from jobs.tables import storage_error

        return storage_error(exc, uri=self.uri, storage=self.storage)

    def _sibling(self, kind: str) -> str:
        return f"{self.path}.{kind}-{uuid.uuid4().hex}"

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _temp(self, body: bytes) -> str:
        """A fully written, fsynced temp file next to the lease."""
        os.makedirs(self.directory, exist_ok=True)
        tmp = self._sibling("tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        return tmp

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-compare-write steps among processes. It is held for milliseconds and
        the kernel drops it when a process dies; a process *stopped* inside it (SIGSTOP, a hung
        disk) stays the holder until it resumes, so waiting for it is bounded (``LOCK_WAIT``)."""
        import fcntl

        os.makedirs(self.directory, exist_ok=True)
        lock = f"{self.path}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for messages
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StorageError(self._stuck(lock, fd)) from None
                    time.sleep(0.005)
                except OSError as exc:  # a file system without locks: link/rename still hold
                    if not self._no_flock_logged:
                        log.warning(
                            "no flock on %s (%s): lease renewal is compare-then-replace", self.directory, exc
                        )
                        self._no_flock_logged = True
                    break
            yield
        finally:
            os.close(fd)  # releases the flock

    def _stuck(self, lock: str, fd: int) -> str:
        try:
            pid = os.pread(fd, 32, 0).decode().strip() or "?"
        except OSError:
            pid = "?"
        return (
            f"the lease {self.uri} is being changed by process {pid}, which has held "
            f"{lock} for more than {LOCK_WAIT:g} s (stopped or hung?): let it continue "
            f"(kill -CONT {pid}) or end it, then try again"
        )

    def _read_path(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    @staticmethod
    def _version(body: bytes) -> str:
        try:
            return Holder.from_bytes(body).token
        except ValueError:
            return "unreadable:" + hashlib.sha256(body).hexdigest()

    def read(self) -> tuple[bytes, str] | None:
        try:
            body = self._read_path(self.path)
        except OSError as exc:
            raise self._fail(exc) from exc
        return None if body is None else (body, self._version(body))

    def _link(self, tmp: str) -> bool:
        try:
            os.link(tmp, self.path)  # atomic, and fails if the lease exists
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def create(self, body: bytes) -> str | None:
        try:
            created = self._link(self._temp(body))
            if created:
                self._sync_dir()
        except OSError as exc:
            raise self._fail(exc) from exc
        return self._version(body) if created else None

    def replace(self, body: bytes, *, expected: str, takeover: bool) -> str | None:
        try:
            with self._locked():
                current = self.read()
                if current is None or current[1] != expected:
                    return None
                if takeover:
                    return self._take_over(body, expected)
                tmp = self._temp(body)
                try:
                    os.replace(tmp, self.path)
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
                    raise
                self._sync_dir()
                return self._version(body)
        except OSError as exc:
            raise self._fail(exc) from exc

    def _take_over(self, body: bytes, expected: str) -> str | None:
        tomb = self._sibling("expired")
        try:
            os.rename(self.path, tomb)  # only one renamer can move the expired lease away
        except FileNotFoundError:
            return None
        moved = self._read_path(tomb)
        if moved is None or self._version(moved) != expected:
            # Only without a working flock: we moved someone else's fresh lease; put it back.
            with contextlib.suppress(FileExistsError):
                os.link(tomb, self.path)
            os.unlink(tomb)
            return None
        created = self._link(self._temp(body))
        os.unlink(tomb)
        self._sweep()
        self._sync_dir()
        return self._version(body) if created else None

    def _sweep(self, older_than: float = 600.0) -> None:
        """Remove temp files and tombstones that a process killed mid-change left behind."""
        prefix = os.path.basename(self.path) + "."
        cutoff = time.time() - older_than
        with os.scandir(self.directory) as entries:
            for entry in entries:
                rest = entry.name[len(prefix) :] if entry.name.startswith(prefix) else ""
                if rest.startswith(("tmp-", "expired-", "released-")):
                    with contextlib.suppress(OSError):
                        if entry.stat().st_mtime < cutoff:
                            os.unlink(entry.path)

    def delete(self, *, expected: str) -> bool:
        try:
            with self._locked():
                current = self.read()
                if current is None or current[1] != expected:
                    return False
                tomb = self._sibling("released")
                os.rename(self.path, tomb)
                os.unlink(tomb)
                self._sync_dir()
                return True
        except OSError as exc:
            raise self._fail(exc) from exc


def _backend(storage: Storage, uri: str) -> _Backend:
    return _S3Backend(storage, uri) if is_remote(uri) else _LocalBackend(storage, uri)


def _parse(backend: _Backend, body: bytes) -> Holder:
    try:
        return Holder.from_bytes(body)
    except ValueError as exc:
        raise StorageError(
            f"the lease {backend.uri} is unreadable ({exc}): if no run is writing, "
            "remove it with `python -m jobs lease break`"
        ) from exc


# -- the lease --------------------------------------------------------------------------------------


OnUnreachable = Callable[[str], None]
"""Called (once, from the heartbeat thread) when the store has not answered a renewal for so long
that the lease expired and a further request bound passed: see :func:`stop_process`."""


class Lease:
    """A lease this process holds (see :func:`hold_lease`). Thread-safe."""

    def __init__(
        self,
        backend: _Backend,
        holder: Holder,
        version: str,
        *,
        ttl: float,
        heartbeat: float,
        grace: float = 0.0,
        on_unreachable: OnUnreachable | None = None,
    ) -> None:
        self.uri = backend.uri
        self._backend = backend
        self._holder = holder
        self._version = version
        self.ttl, self.heartbeat = ttl, heartbeat
        self._grace = grace
        self._on_unreachable = on_unreachable
        # The run whose lease this one replaced without its release (expired, dead or broken):
        # the caller fences the lake against it (jobs.tables.fence). None: a clean acquire.
        self.took_over: str | None = None
        self._lock = threading.Lock()
        self._lost: str | None = None
        self._released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def holder(self) -> Holder:
        """The lease as this process last wrote it."""
        return self._holder

    @property
    def token(self) -> str:
        return self._holder.token

    @property
    def lost(self) -> str | None:
        """Why the lease is no longer ours, None while it is."""
        return self._lost

    def ensure(self) -> None:
        """Raise :class:`LeaseLost` unless the lease is still ours; call right before a commit.

        It renews the lease synchronously (a conditional write), so on return the lease is ours
        for another ``ttl`` seconds. A store that cannot be reached raises ``StorageError``: the
        run stops rather than commit unverified.
        """
        self._renew()

    def _renew(self) -> None:
        with self._lock:
            if self._lost:
                raise LeaseLost(self._lost)
            if self._released:
                raise LeaseLost(
                    f"run {self._holder.owner.run_id} released the lake lease "
                    f"{self.uri} already, so it may not commit any more"
                )
            fresh = self._holder.renewed(self.ttl)
            version = self._backend.replace(fresh.to_bytes(), expected=self._version, takeover=False)
            if version is None:  # changed since our last write: ours still (a retried write)?
                current = self._backend.read()
                if current is not None and _token_of(current[0]) == self.token:
                    version = self._backend.replace(fresh.to_bytes(), expected=current[1], takeover=False)
            if version is None:
                self._lost = self._lost_message()
                log.error("%s", self._lost)
                raise LeaseLost(self._lost)
            self._holder, self._version = fresh, version

    def _lost_message(self, happened: str | None = None) -> str:
        return (
            f"run {self._holder.owner.run_id} lost the lake lease {self.uri}: it "
            f"{happened or self._what_happened()}; "
            "this run stops before committing anything more: run it again once the lake is "
            "free"
        )

    def _what_happened(self) -> str:
        """What became of the lease this run held (it is no longer ours)."""
        current = self._backend.read()
        why = ""
        if current is None:
            how = "was removed (broken with `python -m jobs lease break`, or deleted by hand)"
        else:
            try:
                taker = Holder.from_bytes(current[0])
                how = f"was taken over by {taker.describe()}"
                why = (
                    " (broken by an operator)"
                    if "lease break" in taker.owner.command
                    else f" (this run had not renewed it within the lease TTL of {self.ttl:g} s: "
                    "stalled or cut off from the store?)"
                )
            except ValueError:
                how = "was overwritten by something that is not a lease"
        return how + why

    # -- heartbeat ------------------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self._renew()
            except LeaseLost:
                return  # recorded; ensure() raises it
            except StorageError as exc:  # transient: the next beat tries again
                log.warning(
                    "could not renew the lake lease %s (expires %s): %s",
                    self.uri,
                    _shown(self._holder.expires_at),
                    exc,
                )
                if self._unreachable_too_long(exc):
                    return
            except Exception:  # a bug must not kill the heartbeat silently
                log.exception("lease heartbeat failed")

    def _unreachable_too_long(self, exc: StorageError) -> bool:
        """The lease expired ``grace`` seconds ago and the store still does not answer: whatever
        the run is waiting on (a request some library does not bound, a stalled stream) cannot
        commit anyway, so hand over to ``on_unreachable`` rather than hang."""
        if self._on_unreachable is None:
            return False
        overdue = (_now() - self._holder.expires_at).total_seconds()
        if overdue < self._grace:
            return False
        self._on_unreachable(
            f"{exc} (the store has not answered for more than the lake lease TTL of "
            f"{self.ttl:g} s: this run stopped without committing anything more)"
        )
        return True

    def stop_heartbeat(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(5.0, self.heartbeat * 2))

    # -- release ----------------------------------------------------------------------------------
    def release(self) -> bool:
        """Stop renewing and delete the lease if it is still ours; True if it was deleted."""
        self.stop_heartbeat()
        with self._lock:
            if self._released or self._lost:
                return False
            self._released = True
            if self._backend.delete(expected=self._version):
                log.info("released the lake lease %s", self.uri)
                return True
            current = self._backend.read()  # a retried renewal may have changed the version
            if current is not None and _token_of(current[0]) == self.token:
                return self._backend.delete(expected=current[1])
            happened = self._what_happened()
            self._lost = self._lost_message(happened)
            log.warning(
                "the lake lease %s was no longer this run's when it finished: it %s; every commit "
                "this run reports landed before that, and the fence refuses any after it",
                self.uri,
                happened,
            )
            return False


def _token_of(body: bytes) -> str | None:
    try:
        return Holder.from_bytes(body).token
    except ValueError:
        return None


def _try_acquire(
    backend: _Backend,
    owner: Owner,
    token: str,
    *,
    ttl: float,
    heartbeat: float,
    force: bool = False,
    **watch: Any,
) -> tuple[Lease | None, Holder | None]:
    """One attempt: (lease, None) when acquired, (None, holder) when someone else holds it.
    An expired lease, or one whose process on this host is gone, is taken over; with ``force``
    any lease is. ``watch``: the ``grace`` and ``on_unreachable`` of the :class:`Lease`."""
    started = _now()
    holder: Holder | None = None
    for _ in range(_CAS_ATTEMPTS):
        now = _now()
        mine = Holder(
            owner=owner,
            token=token,
            acquired_at=started,
            heartbeat_at=now,
            expires_at=now + timedelta(seconds=ttl),
            ttl_seconds=ttl,
        )
        version = backend.create(mine.to_bytes())
        if version is not None:
            return Lease(backend, mine, version, ttl=ttl, heartbeat=heartbeat, **watch), None
        current = backend.read()
        if current is None:
            continue  # released in between: try the create again
        body, seen = current
        if _token_of(body) == token:  # our own create landed; its response was lost
            return Lease(backend, Holder.from_bytes(body), seen, ttl=ttl, heartbeat=heartbeat, **watch), None
        why: str | None = "broke the unreadable lake lease %s%s"
        if force and _token_of(body) is None:  # breaking an unreadable lease
            holder = None
        else:
            holder = _parse(backend, body)
            why = _takeover_reason(holder, force=force)
            if why is None:
                return None, holder
        version = backend.replace(mine.to_bytes(), expected=seen, takeover=True)
        if version is not None:
            log.warning(why, backend.uri, f" of {holder.describe()}" if holder else "")
            lease = Lease(backend, mine, version, ttl=ttl, heartbeat=heartbeat, **watch)
            lease.took_over = holder.owner.run_id if holder else "an unreadable lease"
            return lease, None
        # Someone else changed it first (another taker won, or the holder renewed): look again.
    return None, holder


def _takeover_reason(holder: Holder, *, force: bool) -> str | None:
    """The log line of taking ``holder``'s lease over (``%s``: uri, holder), None: it is held."""
    if force:
        return "broke the lake lease %s%s"
    if holder.expired():
        return "took over the expired lake lease %s%s"
    if holder_is_gone(holder):
        return "took over the lake lease %s at once: its process on this host is gone%s"
    return None


def holder_is_gone(holder: Holder) -> bool:
    """Whether the holder ran on this host and its process provably ended: no such PID (or a
    zombie), or the PID now belongs to a process started after the lease was taken. A holder
    on another host is never judged: its lease expires by TTL."""
    import psutil

    owner = holder.owner
    if owner.host != socket.gethostname() or owner.pid == os.getpid():
        return False
    try:
        process = psutil.Process(owner.pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        return process.create_time() > holder.acquired_at.timestamp() + 1.0  # the PID was reused
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # not ours to inspect: assume alive
        return False


def held_message(uri: str, holder: Holder) -> str:
    """The one-line LeaseHeld message: who holds the lease and what to do."""
    return (
        f"another run is writing to the lake: the lease {uri} is held by {holder.describe()}; "
        "wait for it to finish (or set LEASE_WAIT_SECONDS to wait), or, if that process is "
        f"dead, a run on {holder.owner.host} takes the lease over at once and any other run "
        f"after it expires at {_shown(holder.expires_at)}; `python -m jobs lease break` takes "
        "it now (the holder can commit nothing more)"
    )


def acquire(
    storage: Storage,
    *,
    uri: str | None = None,
    owner: Owner | None = None,
    ttl: float | None = None,
    heartbeat: float | None = None,
    wait: float | None = None,
    on_unreachable: OnUnreachable | None = None,
    force: bool = False,
) -> Lease:
    """Take the lease (waiting up to ``wait`` seconds for a holder) and start its heartbeat.

    Raises :class:`LeaseHeld` naming the holder when it is still held after ``wait``. Prefer
    :func:`hold_lease`, which also releases it. ``on_unreachable`` is called when the store has
    not answered a renewal for the TTL plus one request bound (S3 lakes only). ``force`` takes
    the lease from a live holder too (``lease break``). When the lease was taken over rather
    than free, :attr:`Lease.took_over` names the run it belonged to: fence the lake against it.
    """
    s = storage.settings
    uri = uri or lease_uri(s)
    owner = owner or Owner.this_process(run_id=f"pid-{os.getpid()}")
    ttl = s.lease_ttl_seconds if ttl is None else ttl
    heartbeat = s.lease_heartbeat_seconds if heartbeat is None else heartbeat
    wait = s.lease_wait_seconds if wait is None else wait
    if not 0 < heartbeat < ttl / 2:
        raise ValueError(f"lease heartbeat {heartbeat:g} s must be positive and below half the TTL {ttl:g} s")
    backend = _backend(storage, uri)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        lease, holder = _try_acquire(
            backend,
            owner,
            token,
            ttl=ttl,
            heartbeat=heartbeat,
            grace=storage.request_bound_seconds,
            on_unreachable=on_unreachable if is_remote(uri) else None,
            force=force,
        )
        if lease is not None:
            lease.start_heartbeat()
            log.info("holding the lake lease %s as run %s", uri, owner.run_id)
            return lease
        left = deadline - time.monotonic()
        if left <= 0:
            if holder is None:  # the lease kept changing under us; say so rather than spin
                raise LeaseHeld(
                    f"the lease {uri} kept changing while this run tried to take it: "
                    "another run is starting; try again"
                )
            raise LeaseHeld(held_message(uri, holder))
        if holder is not None:
            log.info(
                "waiting for the lake lease %s (up to %.0f s more): held by %s", uri, left, holder.describe()
            )
        # Poll about once a second (sooner if it expires sooner), with jitter against herds.
        until_expiry = (holder.expires_at - _now()).total_seconds() if holder else 0.0
        pause = min(1.0, max(0.05, until_expiry + 0.01)) * random.uniform(0.5, 1.0)  # noqa: S311 (jitter)
        time.sleep(min(pause, left))


@contextlib.contextmanager
def hold_lease(
    storage: Storage,
    *,
    uri: str | None = None,
    owner: Owner | None = None,
    ttl: float | None = None,
    heartbeat: float | None = None,
    wait: float | None = None,
    on_unreachable: OnUnreachable | None = None,
    force: bool = False,
) -> Iterator[Lease]:
    """Hold the lake lease for the ``with`` block: acquire (or raise :class:`LeaseHeld`), renew
    it in the background, release it on exit if still ours.

    Defaults: ``uri`` = ``<LAKE_BRONZE>/_lease.json``, ``ttl``/``heartbeat``/``wait`` =
    ``LEASE_TTL_SECONDS``/``LEASE_HEARTBEAT_SECONDS``/``LEASE_WAIT_SECONDS``. Call
    :meth:`Lease.ensure` right before each commit.
    """
    lease = acquire(
        storage,
        uri=uri,
        owner=owner,
        ttl=ttl,
        heartbeat=heartbeat,
        wait=wait,
        on_unreachable=on_unreachable,
        force=force,
    )
    try:
        yield lease
    finally:
        try:
            lease.release()
        except StorageError as exc:  # never hide the run's own outcome behind a cleanup failure
            log.warning(
                "could not release the lake lease %s (it expires at %s): %s",
                lease.uri,
                _shown(lease.holder.expires_at),
                exc,
            )


def stop_process(message: str) -> None:
    """An ``on_unreachable`` for commands: print ``error: <message>`` and end the process now
    with the storage exit code (3). Safe like a kill -9 is: nothing half-committed is visible
    (Delta commits are atomic, the next run settles or removes what this one left)."""
    from jobs.logs import flush_stderr

    logging.shutdown()
    flush_stderr()
    with contextlib.suppress(OSError):
        os.write(2, f"error: {message}\n".encode())
    os._exit(StorageError.exit_code)


def read_lease(storage: Storage, uri: str | None = None) -> Holder | None:
    """The current holder of the lease (possibly expired), None if nobody holds it."""
    backend = _backend(storage, uri or lease_uri(storage.settings))
    current = backend.read()
    return None if current is None else _parse(backend, current[0])


def describe_state(storage: Storage, uri: str | None = None) -> str:
    """One line for a ``lease status`` command: free, held or expired."""
    uri = uri or lease_uri(storage.settings)
    holder = read_lease(storage, uri)
    if holder is None:
        return f"the lake lease {uri} is free"
    state = "expired (its holder stopped renewing)" if holder.expired() else "held"
    return f"the lake lease {uri} is {state}: {holder.describe()}"


__all__ = [
    "Holder",
    "Lease",
    "Owner",
    "acquire",
    "describe_state",
    "held_message",
    "hold_lease",
    "lease_uri",
    "read_lease",
    "stop_process",
]
