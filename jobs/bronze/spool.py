"""Frames held back until bronze knows what to do with them, with bounded memory.

A raw file's rows may only reach the bronze commit once the whole file has been read and
judged (it may be rejected, unreadable half-way, or still being written). A :class:`Spool`
keeps frames in memory up to a row budget and writes the rest to local Parquet files in a
temporary directory, so a multi-gigabyte file costs disk, not memory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl


class Spool:
    """An append-only list of frames, spilled to ``directory`` past ``budget_rows`` rows."""

    def __init__(self, directory: Path, *, budget_rows: int) -> None:
        self._dir = directory
        self._budget = budget_rows
        self._memory: list[pl.DataFrame] = []
        self._in_memory = 0
        self._files: list[Path] = []
        self.rows = 0

    def add(self, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        self.rows += frame.height
        if self._files or self._in_memory + frame.height > self._budget:
            fd, name = tempfile.mkstemp(dir=self._dir, suffix=".parquet")
            os.close(fd)
            frame.write_parquet(name, compression="lz4", statistics=False)
            self._files.append(Path(name))
            return
        self._memory.append(frame)
        self._in_memory += frame.height

    def frames(self) -> Iterator[pl.DataFrame]:
        """Every frame in the order added (spilled frames last), then the spool is empty."""
        memory, files = self._memory, self._files
        self._memory, self._files, self._in_memory = [], [], 0
        yield from memory
        for path in files:
            frame = pl.read_parquet(path)
            path.unlink(missing_ok=True)
            yield frame

    def clear(self) -> None:
        self._memory, self._in_memory, self.rows = [], 0, 0
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files = []
