"""Reading an exception chain the way every storage library reports: its text (ANSI colours
dropped), its first line, and whether it says nothing answered (refused, timed out, reset).

Shared by :mod:`jobs.storage.errors` (which store failure it is) and :mod:`jobs.storage.damage`
(whether a table is damaged): a parse error beside connection words is the store's.
"""

from __future__ import annotations

import re

UNREACHABLE_WORDS = (
    "connection refused",
    "error sending request",
    "connect",
    "dns",
    "timed out",
    "timeout",
    "could not connect",
    "failed to lookup address",
    "unreachable",
    "connection reset",
    "connection aborted",
    "broken pipe",
    "server disconnected",
    "connection closed",
    "remote end closed",
    "os error 111",
    "os error 104",
    "incompleteread",
    "incomplete read",
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def chain(exc: BaseException) -> list[BaseException]:
    out, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def unreachable(exc: BaseException, low: str) -> bool:
    """Nothing (or nothing in time) answered: a refused or timed-out connection."""
    names = {cls.__name__ for item in chain(exc) for cls in type(item).__mro__}
    if names & {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ClientConnectionError",
        "ConnectionError",
        "TimeoutError",
    }:
        return True
    return any(w in low for w in UNREACHABLE_WORDS)


def first_line(exc: BaseException) -> str:
    text = ANSI.sub("", str(exc)).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def chain_text(exc: BaseException) -> str:
    """The messages of an exception and its causes (s3fs hides the S3 error code in them)."""
    return ANSI.sub("", " | ".join(f"{type(e).__name__}: {e}" for e in chain(exc)))
