"""What a commit of the lake is: its metadata keys, which commits change rows, and how a commit
is made (from the snapshot read, never rebased: see :mod:`jobs.tables.lake`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FENCED_BY = "fenced_by"
"""Commit-metadata key of a fence commit: the run that took the lake over (see the docstring)."""


DOCUMENTED = "documented"
"""Commit-metadata key of a commit that only set a table's descriptions (:meth:`Lake.document`):
the dictionary table it documents. Like a fence, it changes no rows."""


MAINTENANCE_OPERATIONS = ("OPTIMIZE", "VACUUM START", "VACUUM END", "CHECKPOINT", "SET TBLPROPERTIES")
"""Delta operations that change the file layout or the table's properties, never the rows (what
maintenance commits, and the one-time property change of :meth:`Lake.write`)."""


def is_fence(commit: Mapping[str, Any]) -> bool:
    """Whether a commit (a ``history()`` entry) is a takeover's fence: it changes no rows."""
    return FENCED_BY in commit


def changes_rows(commit: Mapping[str, Any]) -> bool:
    """Whether a commit may have changed rows: neither maintenance, a fence nor descriptions."""
    return (
        commit.get("operation") not in MAINTENANCE_OPERATIONS
        and not is_fence(commit)
        and DOCUMENTED not in commit
    )


def watermark_broken(history: list[dict[str, Any]], version: int, stamp: Any, current: int) -> str | None:
    """Why the commit ``version`` (committed at ``stamp``) that a watermark names is no longer
    what it was, None if it still is (or its log entry was cleaned up, which can't be judged).
    ``history`` holds the table's commits from ``version`` on; ``current`` is its version."""
    if version > current:
        return f"is gone (the table went back to version {current})"
    found = next((c for c in history if c.get("version") == version), None)
    if found is not None and stamp is not None and str(found.get("timestamp")) != str(stamp):
        return "was rewritten (its commit time changed)"
    return None


def commit_properties(metadata: Mapping[str, str] | None) -> Any:
    """Commit exactly the snapshot that was read: a newer version makes the commit fail instead
    of being rebased onto it (deltalake lets a stale partition overwrite through otherwise)."""
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata=dict(metadata or {}), max_commit_retries=0)
