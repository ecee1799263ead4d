"""Which raw files need ingesting: the manifest records every file version bronze took in.

A file is identified by its path relative to ``LAKE_RAW`` plus its content: the manifest's
newest row of a path holds the fingerprint seen when it was listed (S3 ETag, or local size and
mtime) and the checksum of what was read. A listed file whose path is unknown is *new*; one
whose fingerprint differs is *changed* (a corrected re-delivery, or a file still being written
when it was read): bronze checks its content and, under ``RAW_ON_CHANGE=replace``, replaces its
rows. Rows written before fingerprints existed compare by size. A path whose newest row is
``lost`` (``python -m jobs doctor --repair`` removed what was left of its rows) is new again.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from jobs.raw.files import RawFile


@dataclass(frozen=True)
class Known:
    """The version of a path bronze holds now (its newest manifest row)."""

    checksum: str
    size_bytes: int
    fingerprint: str | None
    status: str


@dataclass(frozen=True)
class Plan:
    new: list[RawFile]
    changed: list[RawFile]
    known: int
    current: dict[str, Known]  # rel_path → version held now, for the changed files


def current_versions(manifest: pl.DataFrame) -> dict[str, Known]:
    """The newest manifest row of every path."""
    if manifest.is_empty():
        return {}
    columns = {"fingerprint": pl.String, "status": pl.String}
    missing = [pl.lit(None, dtype).alias(c) for c, dtype in columns.items() if c not in manifest.columns]
    newest = (
        manifest.with_columns(missing)
        .sort("ingested_at", maintain_order=True)
        .unique("path", keep="last", maintain_order=True)
    )
    return {
        row["path"]: Known(
            row["checksum"], row["size_bytes"], row["fingerprint"], row["status"] or "ingested"
        )
        for row in newest.select("path", "checksum", "size_bytes", "fingerprint", "status").iter_rows(
            named=True
        )
    }


def plan_ingestion(listed: list[RawFile], manifest: pl.DataFrame) -> Plan:
    """Split listed files into new, changed and already-ingested ones."""
    held = current_versions(manifest)
    new, changed = [], []
    for f in listed:
        known = held.get(f.rel_path)
        if known is None or known.status == "lost":
            new.append(f)
        elif (
            known.fingerprint != f.fingerprint
            if known.fingerprint and f.fingerprint
            else known.size_bytes != f.size_bytes
        ):
            changed.append(f)
    return Plan(
        new=new,
        changed=changed,
        known=len(listed) - len(new) - len(changed),
        current={f.rel_path: held[f.rel_path] for f in changed},
    )
