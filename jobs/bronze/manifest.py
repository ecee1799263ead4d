"""Which raw files are new: the manifest records every ingested file exactly once.

A file is identified by its path relative to ``LAKE_RAW``. A path already ingested with a
different size is reported as *changed* and not re-ingested (raw files are immutable; ingesting
it again would double-count its lines).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from jobs.raw.files import RawFile


@dataclass(frozen=True)
class Plan:
    new: list[RawFile]
    changed: list[RawFile]
    known: int


def plan_ingestion(listed: list[RawFile], manifest: pl.DataFrame) -> Plan:
    """Split listed files into new, changed and already-ingested ones."""
    seen = dict(zip(manifest["path"].to_list(), manifest["size_bytes"].to_list(), strict=True))
    new, changed = [], []
    for f in listed:
        if f.rel_path not in seen:
            new.append(f)
        elif seen[f.rel_path] != f.size_bytes:
            changed.append(f)
    return Plan(new=new, changed=changed, known=len(listed) - len(new) - len(changed))
