"""Which raw files need ingesting: the manifest records every file version bronze took in.

A file is identified by its path relative to ``LAKE_RAW`` plus its content: the manifest's
newest row of a path holds the fingerprint seen when it was listed (S3 ETag, or local size and
mtime) and the checksum of what was read. A listed file whose path is unknown is *new*; one
whose fingerprint differs is *changed* (a corrected re-delivery, or a file still being written
when it was read): bronze checks its content and, under ``RAW_ON_CHANGE=replace``, replaces its
rows. Rows written before fingerprints existed compare by size. A path bronze holds that is no
longer listed is *gone* (``RAW_ON_DELETE``). A path whose newest row is
``lost`` (``python -m jobs doctor --repair`` removed what was left of its rows) is new again.
The statuses are those of ``schemas.MANIFEST``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import polars as pl

from jobs.raw.files import RawFile

# The path's lines are in bronze or quarantine (a deleted path's too, under RAW_ON_DELETE=keep).
HOLDING = frozenset({"ingested", "rejected", "deleted"})
# Nothing of the path is held any more: listed again, it is a new file (``lost``: doctor
# --repair removed what was left of its rows after bronze lost commits).
NOT_HELD = frozenset({"retracted", "lost"})
# The path was no longer listed (recorded once; it may come back).
GONE = frozenset({"deleted", "retracted"})
# A row that only re-records a fingerprint: the path holds what its row before said.
TOUCHED = "unchanged"


@dataclass(frozen=True)
class Known:
    """The version of a path bronze holds now (its newest manifest row)."""

    checksum: str
    size_bytes: int
    fingerprint: str | None
    status: str
    source: str = ""
    path: str = ""
    holds: str = ""  # the status of the newest row that is not a mere touch (TOUCHED)


@dataclass(frozen=True)
class Plan:
    new: list[RawFile]
    changed: list[RawFile]
    known: int
    current: dict[str, Known]  # rel_path → version held now, for the changed files
    gone: list[Known]  # held paths no longer listed (only when planned for one source)


def current_versions(manifest: pl.DataFrame) -> dict[str, Known]:
    """The newest manifest row of every path."""
    if manifest.is_empty():
        return {}
    columns = {"fingerprint": pl.String, "status": pl.String}
    missing = [pl.lit(None, dtype).alias(c) for c, dtype in columns.items() if c not in manifest.columns]
    ordered = (
        manifest.with_columns(missing)
        .with_columns(pl.col("status").fill_null("ingested"))
        .sort("ingested_at", maintain_order=True)
    )
    newest = ordered.unique("path", keep="last", maintain_order=True)
    holds = (
        ordered.filter(pl.col("status") != TOUCHED)
        .unique("path", keep="last", maintain_order=True)
        .select("path", pl.col("status").alias("holds"))
    )
    rows = newest.join(holds, on="path", how="left").select(
        "source", "path", "checksum", "size_bytes", "fingerprint", "status", "holds"
    )
    return {
        row["path"]: Known(
            row["checksum"],
            row["size_bytes"],
            row["fingerprint"],
            row["status"],
            row["source"],
            row["path"],
            row["holds"] or row["status"],
        )
        for row in rows.iter_rows(named=True)
    }


def held_content(versions: dict[str, Known]) -> dict[tuple[str, str], list[str]]:
    """(source, checksum) → the paths whose lines of that content bronze holds (duplicates)."""
    content: dict[tuple[str, str], list[str]] = {}
    for path, k in sorted(versions.items()):
        if k.holds in HOLDING and k.checksum:
            content.setdefault((k.source, k.checksum), []).append(path)
    return content


def plan_ingestion(
    listed: list[RawFile],
    manifest: pl.DataFrame,
    *,
    source: str | None = None,
    unreadable: Collection[str] = (),
) -> Plan:
    """Split listed files into new, changed and already-ingested ones; with ``source``, also the
    paths of that source bronze holds that are listed no more (``unreadable`` paths are listed)."""
    held = current_versions(manifest)
    content = held_content(held)
    new, changed = [], []
    for f in listed:
        known = held.get(f.rel_path)
        if (
            known is None
            or known.status in NOT_HELD
            or (known.holds == "duplicate" and (known.source, known.checksum) not in content)
        ):
            new.append(f)  # never held, retracted, or a duplicate of content held no more
        elif known.status in GONE or (
            known.fingerprint != f.fingerprint
            if known.fingerprint and f.fingerprint
            else known.size_bytes != f.size_bytes
        ):
            changed.append(f)  # a deleted path that came back is compared by content
    listed_paths = {f.rel_path for f in listed} | set(unreadable)
    gone = [
        k
        for path, k in sorted(held.items())
        if k.source == source and path not in listed_paths and k.status not in GONE and k.holds in HOLDING
    ]
    return Plan(
        new=new,
        changed=changed,
        known=len(listed) - len(new) - len(changed),
        current={f.rel_path: held[f.rel_path] for f in changed},
        gone=gone,
    )
