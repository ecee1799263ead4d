"""The lease of an S3 lake: one JSON object changed only by conditional writes.

Processes on different hosts share no kernel, so the lease is a record with a TTL that the holder
renews (a heartbeat thread, and synchronously in :meth:`S3Lease.ensure` before every commit).
Every change is a compare-and-swap, so there is no check-then-act window:

* acquire: ``PutObject`` with ``If-None-Match: *``;
* renew and release: ``PutObject`` / ``DeleteObject`` with ``If-Match: <etag we last wrote>``;
* take over an expired lease, at once one whose holder ran on this host and is gone
  (:func:`holder_is_gone`), or any with ``force`` (``lease break``): ``PutObject`` with
  ``If-Match: <etag we read>``. The first overwrite changes the etag, so exactly one of several
  takers wins (412 for the others), and the winner fences every table (:mod:`jobs.tables.fence`):
  a holder that stalled past its TTL can then commit nothing (the commit itself is the fence).

SeaweedFS (4.48) and AWS honour these conditions; ``tests/integration/test_lease_s3.py`` re-checks
it, since a store that ignored them would silently lose the guarantee. Etags are content hashes and
every body carries the holder's token and a fresh ``heartbeat_at``, so there is no ABA; a retried
request that gets 412 because its first attempt landed reads the object back (our token: ours).
Caveats: hosts' clocks must agree to well within the TTL, and hosts need distinct names.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from jobs.errors import LeaseHeld, LeaseLost, StorageError
from jobs.lease.base import Lease, OnUnreachable
from jobs.lease.record import Holder, Owner, UnreadableLease, now, shown, token_of

if TYPE_CHECKING:
    from jobs.storage import Storage

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 8  # compare-and-swap retries of one acquire attempt (the lease changed meanwhile)


class S3Object:
    """The lease object; ``None`` answers mean a precondition failed (someone else changed it)."""

    def __init__(self, storage: Storage, uri: str) -> None:
        parsed = urlparse(uri)
        self.storage, self.uri = storage, uri
        self.bucket, self.key = parsed.netloc, parsed.path.lstrip("/")
        self.client = storage.s3_client()

    @staticmethod
    def _status(exc: Exception) -> tuple[str, int]:
        response = getattr(exc, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        return code, int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)

    def _refused(self, exc: Exception) -> bool:
        """412, or 409 (a concurrent conditional write on AWS): the caller re-reads."""
        code, status = self._status(exc)
        return status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict")

    def _absent(self, exc: Exception) -> bool:
        code, status = self._status(exc)
        return status == 404 or code in ("NoSuchKey", "404", "NotFound")

    def _fail(self, exc: Exception) -> StorageError:
        from jobs.storage.errors import storage_error

        return storage_error(exc, uri=self.uri, storage=self.storage)

    def read(self) -> tuple[bytes, str] | None:
        """The body and its etag, None if absent."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key)
            return response["Body"].read(), response["ETag"]
        except Exception as exc:
            if self._absent(exc):
                return None
            raise self._fail(exc) from exc

    def put(self, body: bytes, **condition: str) -> str | None:
        """``IfNoneMatch="*"`` or ``IfMatch=etag``; the new etag."""
        try:
            response = self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", **condition
            )
            return str(response["ETag"])
        except Exception as exc:
            if self._refused(exc):
                return None
            raise self._fail(exc) from exc

    def delete(self, etag: str) -> bool:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
            return True
        except Exception as exc:
            if self._refused(exc) or self._absent(exc):
                return False
            raise self._fail(exc) from exc

    def parse(self, body: bytes) -> Holder:
        try:
            return Holder.from_bytes(body)
        except ValueError as exc:
            raise UnreadableLease(
                f"the lease {self.uri} is unreadable ({exc}): if no run is writing, "
                "remove it with `python -m jobs lease break`"
            ) from exc


class S3Lease(Lease):
    """A lease this process holds on S3, renewed by a heartbeat thread. Thread-safe."""

    def __init__(
        self,
        obj: S3Object,
        holder: Holder,
        etag: str,
        *,
        heartbeat: float,
        grace: float,
        on_unreachable: OnUnreachable | None,
    ) -> None:
        self.uri, self._obj, self._holder, self._etag = obj.uri, obj, holder, etag
        self.ttl, self.heartbeat = holder.ttl_seconds, heartbeat
        self._grace, self._on_unreachable = grace, on_unreachable
        self._lock = threading.Lock()
        self._lost: str | None = None
        self._released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def holder(self) -> Holder:
        return self._holder

    @property
    def lost(self) -> str | None:
        return self._lost

    def ensure(self) -> None:
        """Renew synchronously (a conditional write): on return the lease is ours for ``ttl``."""
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
            etag = self._obj.put(fresh.to_bytes(), IfMatch=self._etag)
            if etag is None:  # changed since our last write: ours still (a retried write)?
                current = self._obj.read()
                if current is not None and token_of(current[0]) == self.token:
                    etag = self._obj.put(fresh.to_bytes(), IfMatch=current[1])
            if etag is None:
                self._lost = self._lost_message()
                log.error("%s", self._lost)
                raise LeaseLost(self._lost)
            self._holder, self._etag = fresh, etag

    def _lost_message(self, happened: str | None = None) -> str:
        return (
            f"run {self._holder.owner.run_id} lost the lake lease {self.uri}: it "
            f"{happened or self._what_happened()}; this run stops before committing anything "
            "more: run it again once the lake is free"
        )

    def _what_happened(self) -> str:
        """What became of the lease this run held (it is no longer ours)."""
        current = self._obj.read()
        if current is None:
            return "was removed (broken with `python -m jobs lease break`, or deleted by hand)"
        try:
            taker = Holder.from_bytes(current[0])
        except ValueError:
            return "was overwritten by something that is not a lease"
        why = (
            " (broken by an operator)"
            if "lease break" in taker.owner.command
            else f" (this run had not renewed it within the lease TTL of {self.ttl:g} s: "
            "stalled or cut off from the store?)"
        )
        return f"was taken over by {taker.describe()}{why}"

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
                expires = shown(self._holder.expires_at or now())
                log.warning("could not renew the lake lease %s (expires %s): %s", self.uri, expires, exc)
                if self._unreachable_too_long(exc):
                    return
            except Exception:  # a bug must not kill the heartbeat silently
                log.exception("lease heartbeat failed")

    def _unreachable_too_long(self, exc: StorageError) -> bool:
        """The lease expired ``grace`` seconds ago and the store still does not answer: whatever
        the run waits on (a request no library bounds) cannot commit anyway, so hand over to
        ``on_unreachable`` rather than hang."""
        expires = self._holder.expires_at
        if self._on_unreachable is None or expires is None:
            return False
        if (now() - expires).total_seconds() < self._grace:
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

    def release(self) -> bool:
        """Stop renewing and delete the lease if it is still ours; True if it was deleted."""
        self.stop_heartbeat()
        with self._lock:
            if self._released or self._lost:
                return False
            self._released = True
            if self._obj.delete(self._etag):
                log.info("released the lake lease %s", self.uri)
                return True
            current = self._obj.read()  # a retried renewal may have changed the etag
            if current is not None and token_of(current[0]) == self.token:
                return self._obj.delete(current[1])
            happened = self._what_happened()
            self._lost = self._lost_message(happened)
            log.warning(
                "the lake lease %s was no longer this run's when it finished: it %s; every commit "
                "this run reports landed before that, and the fence refuses any after it",
                self.uri,
                happened,
            )
            return False


def try_acquire(
    obj: S3Object,
    owner: Owner,
    token: str,
    *,
    ttl: float,
    heartbeat: float,
    on_unreachable: OnUnreachable | None,
    force: bool,
) -> tuple[S3Lease | None, Holder | None]:
    """One attempt: (lease, None) when acquired, (None, holder) when someone else holds it."""
    started = now()
    holder: Holder | None = None

    def lease(mine: Holder, etag: str) -> S3Lease:
        grace = obj.storage.request_bound_seconds
        return S3Lease(obj, mine, etag, heartbeat=heartbeat, grace=grace, on_unreachable=on_unreachable)

    for _ in range(_CAS_ATTEMPTS):
        mine = Holder(owner=owner, token=token, acquired_at=started).renewed(ttl)
        etag = obj.put(mine.to_bytes(), IfNoneMatch="*")
        if etag is not None:
            return lease(mine, etag), None
        current = obj.read()
        if current is None:
            continue  # released in between: try the create again
        body, seen = current
        if token_of(body) == token:  # our own create landed; its response was lost
            return lease(Holder.from_bytes(body), seen), None
        why: str | None = "broke the unreadable lake lease %s%s"
        if force and token_of(body) is None:  # breaking an unreadable lease
            holder = None
        else:
            holder = obj.parse(body)
            why = _takeover_reason(holder, force=force)
            if why is None:
                return None, holder
        etag = obj.put(mine.to_bytes(), IfMatch=seen)
        if etag is not None:
            log.warning(why, obj.uri, f" of {holder.describe()}" if holder else "")
            taken = lease(mine, etag)
            taken.took_over = holder.owner.run_id if holder else "an unreadable lease"
            return taken, None
        # Someone else changed it first (another taker won, or the holder renewed): look again.
    return None, holder


def acquire(
    storage: Storage,
    uri: str,
    owner: Owner,
    *,
    wait: float,
    force: bool,
    ttl: float,
    heartbeat: float,
    on_unreachable: OnUnreachable | None,
) -> S3Lease:
    """Take the lease (waiting up to ``wait`` seconds) and start its heartbeat; :class:`LeaseHeld`
    naming the holder if it is still held."""
    obj, token = S3Object(storage, uri), uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while True:
        lease, holder = try_acquire(
            obj, owner, token, ttl=ttl, heartbeat=heartbeat, on_unreachable=on_unreachable, force=force
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
        expiry = holder.expires_at if holder else None
        until_expiry = (expiry - now()).total_seconds() if expiry else 0.0
        pause = min(1.0, max(0.05, until_expiry + 0.01)) * random.uniform(0.5, 1.0)  # noqa: S311 (jitter)
        time.sleep(min(pause, left))


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
    """The one-line LeaseHeld message of an S3 lake: who holds the lease and what to do."""
    return (
        f"another run is writing to the lake: the lease {uri} is held by {holder.describe()}; "
        "wait for it to finish (or set LEASE_WAIT_SECONDS to wait), or, if that process is "
        f"dead, a run on {holder.owner.host} takes the lease over at once and any other run "
        f"after it expires at {shown(holder.expires_at or now())}; `python -m jobs lease break` "
        "takes it now (the holder can commit nothing more)"
    )
