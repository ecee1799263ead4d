"""Raw-layer access: list the files of a source and read them in line-aligned chunks.

Any file under ``<LAKE_RAW>/<source>/`` at any depth is a raw file of that source, except names
that are never data: hidden files, ``_``-prefixed markers (``_SUCCESS``) and the temporary names
uploaders use while a file is incomplete (``*.tmp``, ``*._COPYING_``, ``*.part``). Works the same
on local disk and S3. A path that cannot be a readable file (a dangling symlink, a socket) is
listed apart as *unreadable*, with a reason, so one bad path never stops the others.

Local symbolic links are followed only to files inside ``LAKE_RAW`` (links to directories not
at all): a path whose real location lies outside it (``evil.json -> ~/.ssh/id_rsa``) is
*unreadable* ("symbolic link to ... outside LAKE_RAW"), never read, so nothing outside the raw
folder can reach bronze, the quarantine or the logs. A link inside ``LAKE_RAW`` is a raw file at
the link's own path: its bytes are those of the file it points to, so bronze sees a duplicate
delivery by content and ``RAW_ON_DUPLICATE`` decides (``skip``: manifest ``duplicate``).
Compressed files are read as the text they hold (:mod:`jobs.raw.compression`).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jobs.errors import StorageError
from jobs.raw.compression import CannotDecompress, Delivered, codec_of, decompressed_blocks
from jobs.schemas import SOURCES
from jobs.storage import Storage, is_remote, join
from jobs.storage.errors import storage_error

TEMPORARY_SUFFIXES = (".tmp", "._COPYING_", ".part", ".crdownload")


@dataclass(frozen=True)
class RawFile:
    """A raw file as listed: enough to decide whether it was ingested already."""

    source: str
    uri: str
    rel_path: str  # relative to LAKE_RAW, e.g. "prints/day=2020-11-01/part-0.json"
    size_bytes: int
    # Changes whenever the content may have: the S3 ETag, or size and mtime of a local file.
    fingerprint: str = ""
    mtime: float = 0.0  # seconds since the epoch (0 when unknown)


@dataclass(frozen=True)
class Unreadable:
    """A path under a source that is not a readable file, and why."""

    source: str
    rel_path: str
    reason: str


@dataclass(frozen=True)
class Listing:
    files: list[RawFile] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


def is_data_name(name: str) -> bool:
    """Whether a file name can hold raw data (not hidden, a marker or a temporary upload)."""
    return not name.startswith((".", "_")) and not name.endswith(TEMPORARY_SUFFIXES)


def list_raw(storage: Storage, raw_root: str, source: str) -> Listing:
    """All raw files of ``source`` sorted by path (deterministic ingestion order), and the
    paths that cannot be read as files."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    base = join(raw_root, source)
    fs = storage.filesystem(base)
    root = storage.strip_protocol(raw_root).rstrip("/")
    try:
        if not fs.exists(storage.strip_protocol(base)):
            return Listing()
        found = fs.find(storage.strip_protocol(base), detail=True)
    except StorageError:
        raise
    except Exception as exc:
        raise storage_error(exc, uri=base, storage=storage) from exc
    listing = Listing()
    inside = None if is_remote(raw_root) else os.path.realpath(root)
    for path, info in sorted(found.items()):
        name = posixpath.basename(path)
        kind = info.get("type")
        if kind == "directory" or not is_data_name(name):
            continue
        rel = path[len(root) :].lstrip("/")
        if inside is not None and (why := _outside(path, inside)):
            listing.unreadable.append(Unreadable(source, rel, why))
            continue
        if kind != "file" and info.get("islink"):
            info = _link_target(path, info)
            kind = info.get("type")
        if kind != "file":
            if not info.get("islink"):
                why = f"not a regular file ({kind})"
            elif os.path.exists(path):
                why = f"symbolic link to {info.get('destination')}, not a regular file (not followed)"
            else:
                why = f"dangling symbolic link to {info.get('destination')}"
            listing.unreadable.append(Unreadable(source, rel, why))
            continue
        size = int(info.get("size") or 0)
        mtime = float(info.get("mtime") or 0.0) if not is_remote(raw_root) else 0.0
        listing.files.append(
            RawFile(
                source,
                storage.to_uri(raw_root, path),
                rel,
                size,
                fingerprint=fingerprint(info, remote=is_remote(raw_root)),
                mtime=mtime,
            )
        )
    return listing


def _outside(path: str, inside: str) -> str:
    """Why a local path is not read: its real location (every link on the way followed) is not
    under ``inside`` (the real LAKE_RAW); "" when it is, or when it does not resolve at all
    (a dangling link, reported as such)."""
    real = os.path.realpath(path)
    if real == inside or real.startswith(inside.rstrip(os.sep) + os.sep) or not os.path.lexists(real):
        return ""
    return f"symbolic link to {real}, outside LAKE_RAW ({inside}): not read"


def _link_target(path: str, info: dict[str, Any]) -> dict[str, Any]:
    """A local symbolic link described by what it points to (type, size, mtime)."""
    try:
        target = os.stat(path)  # follows the link
    except OSError:
        return info
    kind = "file" if stat.S_ISREG(target.st_mode) else "other"
    return {**info, "type": kind, "size": target.st_size, "mtime": target.st_mtime}


def list_raw_files(storage: Storage, raw_root: str, source: str) -> list[RawFile]:
    """The readable raw files of ``source`` (see :func:`list_raw`)."""
    return list_raw(storage, raw_root, source).files


def fingerprint(info: dict[str, Any], *, remote: bool) -> str:
    """What changes when a listed file's content may have changed."""
    if remote:
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
        return f"etag:{etag}" if etag else f"size:{int(info.get('size') or 0)}"
    return f"local:{int(info.get('size') or 0)}:{float(info.get('mtime') or 0):.6f}"


def restat(storage: Storage, f: RawFile) -> RawFile:
    """The file as listed now (to notice a file that changed while it was read)."""
    fs = storage.filesystem(f.uri)
    try:
        info = fs.info(storage.strip_protocol(f.uri))
    except Exception as exc:
        raise storage_error(exc, uri=f.uri, storage=storage) from exc
    remote = is_remote(f.uri)
    if not remote and info.get("islink"):
        info = _link_target(storage.strip_protocol(f.uri), info)
    return RawFile(
        f.source,
        f.uri,
        f.rel_path,
        int(info.get("size") or 0),
        fingerprint=fingerprint(info, remote=remote),
        mtime=0.0 if remote else float(info.get("mtime") or 0.0),
    )


def content_checksum(storage: Storage, f: RawFile, *, chunk_bytes: int = 8 << 20) -> str:
    """MD5 of a file's bytes as delivered (compressed ones too: an identity for the delivery,
    not a security measure)."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with storage.filesystem(f.uri).open(storage.strip_protocol(f.uri), "rb") as handle:
            while block := handle.read(chunk_bytes):
                digest.update(block)
    except Exception as exc:
        raise storage_error(exc, uri=f.uri, storage=storage) from exc
    return digest.hexdigest()


@dataclass(frozen=True)
class Chunk:
    """Whole lines of a raw file: ``content`` starts at line ``first_line`` (1-based)."""

    first_line: int
    content: bytes


def iter_chunks(
    storage: Storage, uri: str, *, chunk_bytes: int = 16 << 20, digest: Any = None
) -> Iterator[Chunk]:
    """Read a raw file in chunks that end on a line break, so memory stays bounded however
    big the file is (a single-file source at scale 100 is several GB). A compressed file
    (:data:`CODECS`) is decompressed as it streams: its chunks and line numbers are those of
    its content. ``digest`` (a hashlib object) is updated with every byte read as delivered.
    Raises :class:`CannotDecompress` for a truncated or corrupt compressed file.
    """
    fs = storage.filesystem(uri)
    first_line, carry = 1, b""
    try:
        with fs.open(storage.strip_protocol(uri), "rb") as handle:
            delivered = Delivered(handle, digest)
            for block in decompressed_blocks(delivered, codec_of(uri), chunk_bytes):
                data = carry + block
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1 :]
                complete = data[: cut + 1]
                yield Chunk(first_line, complete)
                first_line += complete.count(b"\n")
    except CannotDecompress:
        raise
    except Exception as exc:
        raise storage_error(exc, uri=uri, storage=storage) from exc
    if carry:
        yield Chunk(first_line, carry)
