"""What a stage asks of its quality audit, and an audit that checks nothing.

Stages receive their audits (:class:`Audits`) from the caller instead of importing them: the
pipeline passes the quality gates of :mod:`jobs.quality` (``quality_audits()``), the
benchmark passes :data:`NO_AUDITS` to measure a stage's work alone. This module sits beneath
both the stages and ``jobs.quality``, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

import polars as pl

if TYPE_CHECKING:
    from jobs.raw.files import Chunk
    from jobs.run import RunContext
    from jobs.summary import StageResult


class BronzeAuditor(Protocol):
    """Sees every raw chunk and parsed chunk of a source; may refuse the source's commit. Which
    files are rejected whole is bronze's rule, with or without an audit."""

    def lines(self, source: str, path: str, chunks: Iterable[Chunk]) -> Iterator[Chunk]: ...

    def chunk(self, source: str, path: str, good: pl.DataFrame, bad: pl.DataFrame) -> None: ...

    def rejected(self, source: str, path: str) -> None:
        """After a file's last chunk: bronze rejected it whole for its quarantined lines (its
        rule, :func:`jobs.bronze.job.rejection`); the audit records it, it decides nothing."""
        ...

    def drop(self, source: str, path: str) -> None:
        """Forget a file that is not taken in by this run (unreadable, still being written)."""
        ...

    def gate(self, source: str, frames: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """The frames a source commits pass through; may raise DataError at their end."""
        ...

    def finish(self, result: StageResult) -> None: ...


class SilverAuditor(Protocol):
    """Sees every batch written to a silver table before the writer does."""

    def gate(
        self, source: str, expected_rows: int, batches: Iterable[pl.DataFrame]
    ) -> Iterator[pl.DataFrame]: ...

    def finish(self, result: StageResult) -> None: ...


class GoldAuditor(Protocol):
    """Sees each gold bucket before the single commit (write-audit-publish)."""

    # Whether bucket() needs the rows: an engine that computed them elsewhere reads them back.
    reads_frames: bool
    # Whether the gold plan should also compute the first-weeks audit columns (cheaper inside
    # it than re-derived afterwards), and the first silver day they count from.
    audit_columns: bool
    first_day: date | None

    def bucket(self, index: int, frame: pl.DataFrame, inputs: Mapping[str, pl.LazyFrame]) -> pl.DataFrame: ...

    def finish(self, result: StageResult) -> None: ...


@dataclass(frozen=True)
class Audits:
    """One audit factory per stage."""

    bronze: Callable[[RunContext], BronzeAuditor]
    silver: Callable[[RunContext], SilverAuditor]
    # (ctx, weeks, buckets, the silver prints of those weeks with their bucket: a LazyFrame)
    gold: Callable[[RunContext, list[date], int, pl.LazyFrame], GoldAuditor]


class _Unchecked:
    def finish(self, result: StageResult) -> None:
        return None


class NoBronzeAudit(_Unchecked):
    """Bronze without checks: chunks and frames pass through untouched."""

    def lines(self, source: str, path: str, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        return iter(chunks)

    def chunk(self, source: str, path: str, good: pl.DataFrame, bad: pl.DataFrame) -> None:
        return None

    def rejected(self, source: str, path: str) -> None:
        return None

    def drop(self, source: str, path: str) -> None:
        return None

    def gate(self, source: str, frames: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        return iter(frames)


class NoSilverAudit(_Unchecked):
    """Silver without checks."""

    def gate(
        self, source: str, expected_rows: int, batches: Iterable[pl.DataFrame]
    ) -> Iterator[pl.DataFrame]:
        return iter(batches)


class NoGoldAudit(_Unchecked):
    """Gold without checks (and without reading distributed buckets back)."""

    reads_frames = False
    audit_columns = False
    first_day: date | None = None

    def bucket(self, index: int, frame: pl.DataFrame, inputs: Mapping[str, pl.LazyFrame]) -> pl.DataFrame:
        return frame


NO_AUDITS = Audits(
    bronze=lambda ctx: NoBronzeAudit(),
    silver=lambda ctx: NoSilverAudit(),
    gold=lambda ctx, weeks, buckets, prints: NoGoldAudit(),
)
