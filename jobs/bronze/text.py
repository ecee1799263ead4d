"""Whether a raw file is text at all: binary files are rejected whole, whatever their length.

Line by line, a binary file only looks like many bad lines, and one under
``QUALITY_QUARANTINE_MIN_LINES`` lines would pass with its garbage quarantined. Two signs say
it is not text: a NUL byte in its first 8000 bytes (git's test), or more than
``QUALITY_MAX_QUARANTINE_FRACTION`` of its lines not valid UTF-8. Both are counted on the
content (decompressed, for a compressed file) while the file is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import polars as pl

from jobs.bronze.lines import INVALID_UTF8
from jobs.raw.files import Chunk

PROBE_BYTES = 8000


class TextProbe:
    """Counts the signs of a binary file in the chunks and parsed lines that pass through."""

    def __init__(self) -> None:
        self.probed = 0  # bytes of the file's start looked at
        self.nul_byte = False
        self.invalid_utf8_lines = 0

    def chunks(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        for chunk in chunks:
            if self.probed < PROBE_BYTES:
                head = chunk.content[: PROBE_BYTES - self.probed]
                self.nul_byte = self.nul_byte or b"\0" in head
                self.probed += len(head)
            yield chunk

    def lines(self, checked: pl.DataFrame) -> None:
        """Count the lines of a parsed chunk that are not valid UTF-8 (such a line is never
        valid, so a chunk without quarantined lines has none: the usual case costs nothing)."""
        if checked["reason"].null_count() == checked.height:
            return
        self.invalid_utf8_lines += int(checked["raw_line"].str.contains(INVALID_UTF8, literal=True).sum())


def not_text(*, nul_byte: bool, invalid_utf8_lines: int, lines: int, max_fraction: float) -> str | None:
    """Why a file read is not a text file (None: it is text)."""
    if nul_byte:
        return f"not a text file: a NUL byte in its first {PROBE_BYTES} bytes"
    if lines and invalid_utf8_lines / lines > max_fraction:
        return (
            f"not a text file: {invalid_utf8_lines / lines:.0%} of its {lines:,} lines are not valid "
            f"UTF-8, over QUALITY_MAX_QUARANTINE_FRACTION={max_fraction:.0%}"
        )
    return None
