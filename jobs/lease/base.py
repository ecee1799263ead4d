"""What a held lease offers the pipeline, whichever backend holds it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

from jobs.errors import StorageError
from jobs.lease.record import Holder, shown

log = logging.getLogger(__name__)

OnUnreachable = Callable[[str], None]
"""Called (once, from the S3 heartbeat thread) when the store has not answered a renewal for so
long that the lease expired and a further request bound passed: see :func:`jobs.logs.stop_process`."""


class Lease:
    """A lease this process holds; a context manager that releases it on exit."""

    uri: str
    # The run whose lease this one replaced without its release (S3: expired, dead or broken):
    # the caller fences the lake against it (jobs.tables.fence). None: a clean acquire.
    took_over: str | None = None

    @property
    def holder(self) -> Holder:
        """The record as this process last wrote it."""
        raise NotImplementedError

    @property
    def token(self) -> str:
        return self.holder.token

    @property
    def lost(self) -> str | None:
        """Why the lease is no longer ours, None while it is."""
        raise NotImplementedError

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
