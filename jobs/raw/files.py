"""Raw-layer access: list the files of a source and read them in line-aligned chunks.

Any file under ``<LAKE_RAW>/<source>/`` at any depth is a raw file of that source; hidden files
and ``_``-prefixed markers (``_SUCCESS``) are ignored. Works the same on local disk and S3.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jobs.errors import StorageError
from jobs.schemas import SOURCES
from jobs.storage import Storage, join
from jobs.storage_errors import storage_error


@dataclass(frozen=True)
class RawFile:
    """A raw file as listed: enough to decide whether it was ingested already."""

    source: str
    uri: str
    rel_path: str  # relative to LAKE_RAW, e.g. "prints/day=2020-11-01/part-0.json"
    size_bytes: int


def list_raw_files(storage: Storage, raw_root: str, source: str) -> list[RawFile]:
    """All raw files of ``source``, sorted by path (deterministic ingestion order)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    base = join(raw_root, source)
    fs = storage.filesystem(base)
    root = storage.strip_protocol(raw_root).rstrip("/")
    try:
        if not fs.exists(storage.strip_protocol(base)):
            return []
        found = fs.find(storage.strip_protocol(base), detail=True)
    except StorageError:
        raise
    except Exception as exc:
        raise storage_error(exc, uri=base, storage=storage) from exc
    files = []
    for path, info in sorted(found.items()):
        name = posixpath.basename(path)
        if info.get("type") == "directory" or name.startswith((".", "_")):
            continue
        rel = path[len(root):].lstrip("/")
        size = int(info.get("size") or 0)
        files.append(RawFile(source, storage.to_uri(raw_root, path), rel, size))
    return files


@dataclass(frozen=True)
class Chunk:
    """Whole lines of a raw file: ``content`` starts at line ``first_line`` (1-based)."""

    first_line: int
    content: bytes


def iter_chunks(storage: Storage, uri: str, *, chunk_bytes: int = 64 << 20,
                digest: Any = None) -> Iterator[Chunk]:
    """Read a raw file in chunks that end on a line break, so memory stays bounded however
    big the file is (a single-file source at scale 100 is several GB). ``digest`` (a hashlib
    object) is updated with every byte read.
    """
    fs = storage.filesystem(uri)
    first_line, carry = 1, b""
    try:
        with fs.open(storage.strip_protocol(uri), "rb") as handle:
            while True:
                block = handle.read(chunk_bytes)
                if digest is not None and block:
                    digest.update(block)
                if not block:
                    break
                data = carry + block
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1:]
                complete = data[: cut + 1]
                yield Chunk(first_line, complete)
                first_line += complete.count(b"\n")
    except Exception as exc:
        raise storage_error(exc, uri=uri, storage=storage) from exc
    if carry:
        yield Chunk(first_line, carry)
