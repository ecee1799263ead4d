"""Compressed raw files (``*.gz``, ``*.bz2``, ``*.zst``) read as the text they hold, streaming.

Upstreams often deliver ``part-0.jsonl.gz``. Read as bytes, every line of it would be binary
garbage, so a file whose name ends in a known suffix is decompressed block by block (pyarrow's
native codecs: no whole file in memory, no extra dependency). Whatever is counted or judged
downstream (lines, line numbers, reasons) is the decompressed content; the delivery's identity
(its MD5) stays that of the bytes as delivered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

# file name suffix → pyarrow codec
CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


class CannotDecompress(Exception):
    """A compressed file that is truncated or corrupt: it is rejected whole, with this reason."""


def codec_of(path: str) -> str | None:
    """The codec a file's name says it is compressed with (None: plain)."""
    return next((codec for suffix, codec in CODECS.items() if path.endswith(suffix)), None)


class Delivered:
    """A file handle as delivered: every byte read goes into ``digest``; a failure of the store
    itself is remembered, so it is not mistaken for a corrupt file."""

    def __init__(self, handle: Any, digest: Any = None) -> None:
        self.handle, self.digest = handle, digest
        self.failure: BaseException | None = None
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        try:
            block: bytes = self.handle.read(size)
        except Exception as exc:
            self.failure = exc
            raise
        if self.digest is not None:
            self.digest.update(block)
        return block

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True  # the caller owns the handle


def decompressed_blocks(delivered: Delivered, codec: str | None, size: int) -> Iterator[bytes]:
    """The file's content in blocks of at most ``size`` bytes, decompressed when ``codec`` says
    so; every delivered byte is read (and digested) even if the stream ends early."""
    if codec is None:
        while block := delivered.read(size):
            yield block
        return
    stream = pa.CompressedInputStream(pa.PythonFile(delivered, mode="r"), codec)
    while True:
        try:
            block = stream.read(size)
        except OSError as exc:
            if delivered.failure is not None:
                raise delivered.failure from None
            raise CannotDecompress(f"cannot decompress: {exc} (as {codec})") from None
        if not block:
            break
        yield block
    while delivered.read(size):  # the checksum covers every delivered byte, however the codec reads
        pass
