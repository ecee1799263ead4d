"""One writer at a time: the lake lease at ``<LAKE_BRONZE>/_lease.json``.

A run that writes holds the lease for its whole duration (``with acquire(storage) as lease``)
and calls :meth:`Lease.ensure` right before each commit, so two runs never interleave their
writes and a run that lost its lease commits nothing. A local lake's lease is a flock
(:mod:`jobs.lease.local`), an S3 lake's a record changed by conditional writes
(:mod:`jobs.lease.s3`); both keep the holder's record in the lease, so every message names it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from jobs.lease.base import Holder, Lease, OnUnreachable, Owner, UnreadableLease, lease_uri
from jobs.storage import is_remote

if TYPE_CHECKING:
    from jobs.storage import Storage

__all__ = [
    "Holder",
    "Lease",
    "OnUnreachable",
    "Owner",
    "UnreadableLease",
    "acquire",
    "describe_state",
    "lease_uri",
    "probe",
    "read_lease",
    "state",
]


def acquire(
    storage: Storage,
    *,
    owner: Owner | None = None,
    wait: float | None = None,
    force: bool = False,
    on_unreachable: OnUnreachable | None = None,
    ttl: float | None = None,
    heartbeat: float | None = None,
) -> Lease:
    """Take the lease, waiting up to ``wait`` seconds (``LEASE_WAIT_SECONDS``) for a holder;
    :class:`LeaseHeld` naming the holder if it is still held. ``force`` (``lease break``): take
    an S3 lease from a live holder too. ``ttl``, ``heartbeat`` (``LEASE_TTL_SECONDS``,
    ``LEASE_HEARTBEAT_SECONDS``) and ``on_unreachable`` matter on S3 only."""
    s = storage.settings
    uri = lease_uri(s)
    owner = owner or Owner.this_process(run_id=f"pid-{os.getpid()}")
    ttl = s.lease_ttl_seconds if ttl is None else ttl
    heartbeat = s.lease_heartbeat_seconds if heartbeat is None else heartbeat
    wait = max(0.0, s.lease_wait_seconds if wait is None else wait)
    if not 0 < heartbeat < ttl / 2:
        raise ValueError(f"lease heartbeat {heartbeat:g} s must be positive and below half the TTL {ttl:g} s")
    if not is_remote(uri):
        from jobs.lease import local

        return local.acquire(storage, uri, owner, wait=wait, force=force)
    from jobs.lease import s3

    return s3.acquire(storage, uri, owner, wait, force, ttl, heartbeat, on_unreachable)


def probe(storage: Storage) -> tuple[bool, Holder | None]:
    """Whether the lease is held (an expired S3 lease counts as held) and the holder's record,
    if readable. Raises :class:`UnreadableLease` for an S3 lease object that is not one."""
    from jobs.lease import local, s3

    uri = lease_uri(storage.settings)
    return (s3 if is_remote(uri) else local).read_holder(storage, uri)


def read_lease(storage: Storage) -> Holder | None:
    """The current holder of the lease (on S3 possibly expired), None if nobody holds it."""
    return probe(storage)[1]


def state(held: bool, holder: Holder | None) -> str:
    """Who has the lease, in the words ``lease status`` and ``doctor`` print: free, held or
    expired (by whom)."""
    if not held:
        return "free"
    if holder is None:
        return "held by a process starting up"
    if holder.expired():
        return f"expired (its holder stopped renewing; the next run takes it over): {holder.describe()}"
    return f"held by {holder.describe()}"


def describe_state(storage: Storage) -> str:
    """One line for ``lease status``: free, held or expired."""
    return f"the lake lease {lease_uri(storage.settings)} is {state(*probe(storage))}"
