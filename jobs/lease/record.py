"""Who holds the lease: the record both backends write, so every message can name the holder."""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from jobs.errors import StorageError
from jobs.storage import join

if TYPE_CHECKING:
    from jobs.settings import Settings

LEASE_NAME = "_lease.json"
FORMAT_VERSION = 1


def lease_uri(settings: Settings) -> str:
    """Where the lake's lease lives: ``<LAKE_BRONZE>/_lease.json``."""
    return join(settings.lake_bronze, LEASE_NAME)


def now() -> datetime:
    return datetime.now(UTC)


def shown(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


class UnreadableLease(StorageError):
    """The lease object exists but is not a lease (S3): ``lease break`` removes it."""


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
    """A lease record: its owner, a token unique to this holding, and times (UTC). A local
    lease has no heartbeat or expiry (``None``): the kernel frees its flock when the holder dies."""

    owner: Owner
    token: str
    acquired_at: datetime
    heartbeat_at: datetime | None = None
    expires_at: datetime | None = None
    ttl_seconds: float = 0.0

    def expired(self, at: datetime | None = None) -> bool:
        """Not renewed in time (S3): the holder is dead or stalled and may be taken over."""
        return self.expires_at is not None and (at or now()) >= self.expires_at

    def describe(self) -> str:
        """One line naming the holder, for messages."""
        o = self.owner
        line = f"run {o.run_id} (pid {o.pid} on {o.host}, `{o.command}`) since {shown(self.acquired_at)}"
        if self.heartbeat_at is not None and self.expires_at is not None:
            line += f", last heartbeat {shown(self.heartbeat_at)}, expires {shown(self.expires_at)}"
        return line

    def renewed(self, ttl: float) -> Holder:
        at = now()
        return replace(self, heartbeat_at=at, expires_at=at + timedelta(seconds=ttl), ttl_seconds=ttl)

    def to_bytes(self) -> bytes:
        def at(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat(timespec="microseconds")

        o = self.owner
        doc = {
            "version": FORMAT_VERSION,
            "owner": {"run_id": o.run_id, "host": o.host, "pid": o.pid, "command": o.command},
            "token": self.token,
            "acquired_at": at(self.acquired_at),
            "heartbeat_at": at(self.heartbeat_at),
            "expires_at": at(self.expires_at),
            "ttl_seconds": self.ttl_seconds,
        }
        return (json.dumps(doc, indent=1) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Holder:
        """Parse a lease record; ValueError if it is not one."""
        try:
            doc = json.loads(data)
            o = doc["owner"]

            def at(name: str) -> datetime | None:
                if doc.get(name) is None:
                    return None
                value = datetime.fromisoformat(doc[name])
                return value if value.tzinfo else value.replace(tzinfo=UTC)

            acquired = at("acquired_at")
            if acquired is None:
                raise ValueError("no acquired_at")
            owner = Owner(str(o["run_id"]), str(o["host"]), int(o["pid"]), str(o.get("command", "")))
            return cls(
                owner=owner,
                token=str(doc["token"]),
                acquired_at=acquired,
                heartbeat_at=at("heartbeat_at"),
                expires_at=at("expires_at"),
                ttl_seconds=float(doc.get("ttl_seconds") or 0),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a lease object ({type(exc).__name__}: {exc})") from exc


def token_of(body: bytes) -> str | None:
    try:
        return Holder.from_bytes(body).token
    except ValueError:
        return None
