"""The lease of an S3 lake: one JSON object changed only by conditional writes.

Processes on different hosts share no kernel, so the lease is a record with a TTL that the holder
renews (a heartbeat thread, and synchronously in :meth:`S3Lease.ensure` before every commit).
Every change is a compare-and-swap, so there is no check-then-act window:

* acquire: ``PutObject`` with ``If-None-Match: *``;
* renew and release: ``PutObject`` / ``DeleteObject`` with ``If-Match: <etag we last wrote>``;
* take over an expired lease, at once one whose holder ran on this host and is gone
  (:meth:`Holder.gone`), or any with ``force`` (``lease break``): ``PutObject`` with
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
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from jobs.errors import LeaseLost, StorageError
from jobs.lease.base import Holder, Lease, OnUnreachable, Owner, UnreadableLease, held_by, now, poll, shown
from jobs.storage.errors import storage_error

if TYPE_CHECKING:
    from jobs.storage import Storage

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 8  # compare-and-swap retries of one acquire attempt (the lease changed meanwhile)
T = TypeVar("T")


class S3Object:
    """The lease object. A request the store refuses with one of the statuses it is told to expect
    (404 absent; 409 or 412: someone else changed it first) answers None or False."""

    def __init__(self, storage: Storage, uri: str) -> None:
        parsed = urlparse(uri)
        self.storage, self.uri, self.client = storage, uri, storage.s3_client()
        self.where = {"Bucket": parsed.netloc, "Key": parsed.path.lstrip("/")}

    def _request(self, method: str, expected: tuple[int, ...], **kwargs: Any) -> Any:
        try:
            response = getattr(self.client, method)(**self.where, **kwargs)
            if "Body" in response:  # a GET: read the body here, where a failure is mapped too
                response["Body"] = response["Body"].read()
            return response
        except Exception as exc:
            answer = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {})
            if answer.get("HTTPStatusCode") in expected:
                return None
            raise storage_error(exc, uri=self.uri, storage=self.storage) from exc

    def read(self) -> tuple[bytes, str] | None:
        """The body and its etag, None if absent."""
        response = self._request("get_object", (404,))
        return None if response is None else (response["Body"], response["ETag"])

    def put(self, body: bytes, **condition: str) -> str | None:
        """``IfNoneMatch="*"`` or ``IfMatch=etag``; the new etag."""
        response = self._request(
            "put_object", (409, 412), Body=body, ContentType="application/json", **condition
        )
        return None if response is None else str(response["ETag"])

    def delete(self, etag: str) -> bool:
        return self._request("delete_object", (404, 409, 412), IfMatch=etag) is not None

    def parse(self, body: bytes) -> Holder:
        try:
            return Holder.from_bytes(body)
        except ValueError as exc:
            raise UnreadableLease(
                f"the lease {self.uri} is unreadable ({exc}): if no run is writing, "
                "remove it with `python -m jobs lease break`"
            ) from exc


def token_of(body: bytes) -> str | None:
    try:
        return Holder.from_bytes(body).token
    except ValueError:
        return None


def read_holder(storage: Storage, uri: str) -> tuple[bool, Holder | None]:
    obj = S3Object(storage, uri)
    current = obj.read()
    return (False, None) if current is None else (True, obj.parse(current[0]))


class S3Lease(Lease):
    """A lease this process holds on S3, renewed by a heartbeat thread. Thread-safe."""

    def __init__(
        self,
        obj: S3Object,
        holder: Holder,
        etag: str,
        ttl: float,
        heartbeat: float,
        on_unreachable: OnUnreachable | None,
    ) -> None:
        super().__init__(obj.uri, holder)
        self._obj, self._etag, self.ttl, self.heartbeat = obj, etag, ttl, heartbeat
        self._on_unreachable = on_unreachable
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def _ours(self, request: Callable[[str], T]) -> T:
        """``request`` on the etag we last wrote; if refused but the object still carries our
        token (a retried request of ours landed twice), once more on its current etag."""
        result = request(self._etag)
        if not result and (current := self._obj.read()) and token_of(current[0]) == self.token:
            result = request(current[1])
        return result

    def ensure(self) -> None:
        """Renew synchronously (a conditional write): on return the lease is ours for ``ttl``."""
        with self._lock:
            if self.lost is None:
                fresh = self.holder.renewed(self.ttl)
                etag = self._ours(lambda etag: self._obj.put(fresh.to_bytes(), IfMatch=etag))
                if etag is not None:
                    self.holder, self._etag = fresh, etag
                    return
                self._lose()
                log.error("%s", self.lost)
            raise LeaseLost(self.lost)

    def _lose(self) -> str:
        """Record in :attr:`lost` what became of the lease (no longer ours); that, in a phrase."""
        current = self._obj.read()
        if current is None:
            happened = "was removed (broken with `python -m jobs lease break`, or deleted by hand)"
        else:
            try:
                taker = Holder.from_bytes(current[0])
            except ValueError:
                happened = "was overwritten by something that is not a lease"
            else:
                why = (
                    " (broken by an operator)"
                    if "lease break" in taker.owner.command
                    else f" (this run had not renewed it within the lease TTL of {self.ttl:g} s: "
                    "stalled or cut off from the store?)"
                )
                happened = f"was taken over by {taker.describe()}{why}"
        self.lost = (
            f"run {self.holder.owner.run_id} lost the lake lease {self.uri}: it {happened}; this run "
            "stops before committing anything more: run it again once the lake is free"
        )
        return happened

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self.ensure()
            except LeaseLost:
                return  # recorded; the run's next ensure() raises it
            except StorageError as exc:  # transient: the next beat tries again
                expires = self.holder.expires_at or now()
                log.warning(
                    "could not renew the lake lease %s (expires %s): %s", self.uri, shown(expires), exc
                )
                # Expired a request bound ago and the store still does not answer: whatever the
                # run waits on (a request no library bounds) cannot commit anyway, so stop it.
                if (
                    self._on_unreachable
                    and (now() - expires).total_seconds() >= self._obj.storage.request_bound_seconds
                ):
                    self._on_unreachable(
                        f"{exc} (the store has not answered for more than the lake lease TTL of "
                        f"{self.ttl:g} s: this run stopped without committing anything more)"
                    )
                    return
            except Exception:  # a bug must not kill the heartbeat silently
                log.exception("lease heartbeat failed")

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, self.heartbeat * 2))

    def release(self) -> bool:
        """Stop renewing and delete the lease if it is still ours; True if it was deleted."""
        self.stop_heartbeat()
        with self._lock:
            if self.lost is not None:
                return False
            self.lost = self._released()
            if self._ours(self._obj.delete):
                log.info("released the lake lease %s", self.uri)
                return True
            log.warning(
                "the lake lease %s was no longer this run's when it finished: it %s; every commit "
                "this run reports landed before that, and the fence refuses any after it",
                self.uri,
                self._lose(),
            )
            return False


def acquire(
    storage: Storage,
    uri: str,
    owner: Owner,
    wait: float,
    force: bool,
    ttl: float,
    heartbeat: float,
    on_unreachable: OnUnreachable | None,
) -> Lease:
    obj, token = S3Object(storage, uri), uuid.uuid4().hex

    def lease(mine: Holder, etag: str) -> S3Lease:
        return S3Lease(obj, mine, etag, ttl, heartbeat, on_unreachable)

    def attempt() -> tuple[Lease | None, Holder | None]:
        holder: Holder | None = None
        for _ in range(_CAS_ATTEMPTS):
            mine = Holder(owner=owner, token=token).renewed(ttl)
            if (etag := obj.put(mine.to_bytes(), IfNoneMatch="*")) is not None:
                return lease(mine, etag), None
            if (current := obj.read()) is None:
                continue  # released in between: try the create again
            body, seen = current
            if token_of(body) == token:  # our own create landed; its response was lost
                return lease(Holder.from_bytes(body), seen), None
            holder = None if force and token_of(body) is None else obj.parse(body)
            why = _takeover_reason(holder, force=force)
            if why is None:
                return None, holder
            if (etag := obj.put(mine.to_bytes(), IfMatch=seen)) is not None:
                log.warning(why, uri, f" of {holder.describe()}" if holder else "")
                taken = lease(mine, etag)
                taken.took_over = holder.owner.run_id if holder else "an unreadable lease"
                return taken, None
            # Someone else changed it first (another taker won, or the holder renewed): look again.
        return None, holder

    def refused(holder: Holder | None) -> str:
        if holder is None:  # the lease kept changing under us; say so rather than spin
            return (
                f"the lease {uri} kept changing while this run tried to take it: "
                "another run is starting; try again"
            )
        return held_message(uri, holder)

    return poll(uri, attempt, refused, wait)


def _takeover_reason(holder: Holder | None, *, force: bool) -> str | None:
    """The log line of taking ``holder``'s lease over (``%s``: uri, holder), None: it is held."""
    if holder is None:
        return "broke the unreadable lake lease %s%s"
    if force:
        return "broke the lake lease %s%s"
    if holder.expired():
        return "took over the expired lake lease %s%s"
    if holder.gone():
        return "took over the lake lease %s at once: its process on this host is gone%s"
    return None


def held_message(uri: str, holder: Holder) -> str:
    """The one-line LeaseHeld message of an S3 lake: who holds the lease and what to do."""
    return (
        f"{held_by(uri, holder)}, or, if that process is "
        f"dead, a run on {holder.owner.host} takes the lease over at once and any other run "
        f"after it expires at {shown(holder.expires_at or now())}; `python -m jobs lease break` "
        "takes it now (the holder can commit nothing more)"
    )
