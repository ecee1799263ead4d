"""One writer at a time: the lake lease at ``<LAKE_BRONZE>/_lease.json``.

A run that writes holds the lease for its whole duration (``with acquire(storage) as lease``)
and calls :meth:`Lease.ensure` right before each commit, so two runs never interleave their
writes and a run that lost its lease never commits. Two backends, because the guarantee they
can get differs:

* a local lake (:mod:`jobs.lease.local`): one ``flock`` held for the whole run. The kernel drops
  it when the process dies, so a killed holder frees the lake at once, and nobody can take the
  lake from a live (even stopped) holder: no TTL, heartbeat, takeover or fence.
* an S3 lake (:mod:`jobs.lease.s3`): conditional writes of a record with a TTL and a heartbeat;
  an expired (or provably dead) holder is taken over, and the taker fences every table.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from jobs.lease import local, s3
from jobs.lease.base import Lease, OnUnreachable
from jobs.lease.record import Holder, Owner, UnreadableLease, lease_uri
from jobs.lease.s3 import holder_is_gone
from jobs.storage import is_remote

if TYPE_CHECKING:
    from jobs.storage import Storage


def acquire(
    storage: Storage,
    *,
    owner: Owner | None = None,
    uri: str | None = None,
    wait: float | None = None,
    force: bool = False,
    on_unreachable: OnUnreachable | None = None,
    ttl: float | None = None,
    heartbeat: float | None = None,
) -> Lease:
    """Take the lease, waiting up to ``wait`` seconds (``LEASE_WAIT_SECONDS``) for a holder;
    raise :class:`LeaseHeld` naming the holder if it is still held. The lease is a context
    manager that releases it.

    ``force`` (``lease break``) takes an S3 lease from a live holder too (then
    :attr:`Lease.took_over` names it: fence the lake against it); a local one is refused while
    a process holds it. S3 only: ``ttl``/``heartbeat`` (``LEASE_TTL_SECONDS``/
    ``LEASE_HEARTBEAT_SECONDS``), and ``on_unreachable``, called when the store has not answered
    a renewal for the TTL plus one request bound.
    """
    s = storage.settings
    uri = uri or lease_uri(s)
    owner = owner or Owner.this_process(run_id=f"pid-{os.getpid()}")
    ttl = s.lease_ttl_seconds if ttl is None else ttl
    heartbeat = s.lease_heartbeat_seconds if heartbeat is None else heartbeat
    wait = max(0.0, s.lease_wait_seconds if wait is None else wait)
    if not 0 < heartbeat < ttl / 2:
        raise ValueError(f"lease heartbeat {heartbeat:g} s must be positive and below half the TTL {ttl:g} s")
    if not is_remote(uri):
        return local.acquire(storage, uri, owner, wait=wait, force=force)
    return s3.acquire(
        storage,
        uri,
        owner,
        wait=wait,
        force=force,
        ttl=ttl,
        heartbeat=heartbeat,
        on_unreachable=on_unreachable,
    )


def probe(storage: Storage, uri: str | None = None) -> tuple[bool, Holder | None]:
    """Whether the lease is held (an expired S3 lease counts as held) and the holder's record,
    if readable. Raises :class:`UnreadableLease` for an S3 lease object that is not one."""
    uri = uri or lease_uri(storage.settings)
    if not is_remote(uri):
        return local.read_holder(storage, uri)
    obj = s3.S3Object(storage, uri)
    current = obj.read()
    return (False, None) if current is None else (True, obj.parse(current[0]))


def read_lease(storage: Storage, uri: str | None = None) -> Holder | None:
    """The current holder of the lease (on S3 possibly expired), None if nobody holds it."""
    return probe(storage, uri)[1]


def describe_state(storage: Storage, uri: str | None = None) -> str:
    """One line for ``lease status``: free, held or expired."""
    uri = uri or lease_uri(storage.settings)
    held, holder = probe(storage, uri)
    if not held:
        return f"the lake lease {uri} is free"
    if holder is None:
        return f"the lake lease {uri} is held: by a process starting up"
    state = "expired (its holder stopped renewing)" if holder.expired() else "held"
    return f"the lake lease {uri} is {state}: {holder.describe()}"


__all__ = [
    "Holder",
    "Lease",
    "OnUnreachable",
    "Owner",
    "UnreadableLease",
    "acquire",
    "describe_state",
    "holder_is_gone",
    "lease_uri",
    "probe",
    "read_lease",
]
