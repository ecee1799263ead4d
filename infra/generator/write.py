"""Writing the generated days as files (layout daily or single) and accounting for every line.

Memory stays bounded by one day's data: days are generated, written and dropped one at a time;
the "single" layout appends day by day to one file per source. Files are written to a hidden
``.<name>.tmp`` and renamed, so a half-written file is neither ingested nor skipped later.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Literal

import polars as pl

from infra.generator.bad_lines import file_lines
from infra.generator.model import SOURCES, day_frames, user_cdf, users_for_scale
from infra.generator.render import PAYS_HEADER


@dataclass(frozen=True)
class GeneratedFile:
    """One written (or, with ``skip_existing``, kept) file and its exact line counts.

    The counts let downstream tests check ``lines == bronze rows + quarantined rows``.
    """

    source: str  # "prints" | "taps" | "pays"
    path: Path  # absolute path of the written file
    day: date | None  # day of a daily file, None for the single-file layout
    lines: int  # data lines written (excluding the CSV header), bad lines included
    bad_lines: int  # how many of those are deliberately bad


@dataclass(frozen=True)
class GenerateResult:
    """All files of one ``generate`` call, with per-source totals for quick assertions."""

    files: list[GeneratedFile]

    def total(self, source: str) -> int:
        """Data lines of ``source`` over all files (bad lines included)."""
        return sum(f.lines for f in self._of(source))

    def bad(self, source: str) -> int:
        """Deliberately bad lines of ``source`` over all files."""
        return sum(f.bad_lines for f in self._of(source))

    def _of(self, source: str) -> list[GeneratedFile]:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
        return [f for f in self.files if f.source == source]


_EXT = {"prints": "json", "taps": "json", "pays": "csv"}


def _write_lines(fh: BinaryIO, lines: pl.Series) -> None:
    # A one-column CSV without quoting is exactly "line\n" per line, written by polars in one go.
    if len(lines):
        lines.to_frame("line").write_csv(fh, include_header=False, quote_style="never")


def _header(source: str) -> bytes:
    return (PAYS_HEADER + "\n").encode() if source == "pays" else b""


def _daily_path(out_dir: Path, source: str, day: date) -> Path:
    return out_dir / source / f"day={day.isoformat()}" / f"part-0.{_EXT[source]}"


def _single_path(out_dir: Path, source: str) -> Path:
    return out_dir / source / f"{source}.{_EXT[source]}"


def _tmp(path: Path) -> Path:
    # Hidden name: raw-file listings skip dot-files, so a half-written file is never ingested.
    return path.with_name(f".{path.name}.tmp")


def _spread(total: int, parts: int) -> list[int]:
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


def _fraction_count(fraction: float, good: int) -> int:
    # ``fraction`` of the file's lines are bad: bad / (good + bad) ~= fraction.
    return round(fraction * good / (1.0 - fraction)) if fraction else 0


def _days(start: date, days: int) -> Iterator[date]:
    return (start + timedelta(days=i) for i in range(days))


def check_arguments(
    *, seed: int, scale: float, days: int, layout: str, bad_fraction: float, bad_lines: int
) -> None:
    """Raise ``ValueError`` naming the first invalid argument (the CLI shows it as one line)."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days!r}")
    if layout not in ("daily", "single"):
        raise ValueError(f"layout must be 'daily' or 'single', got {layout!r}")
    if not 0.0 <= bad_fraction < 1.0:
        raise ValueError(f"bad_fraction must be in [0, 1), got {bad_fraction!r}")
    if bad_lines < 0:
        raise ValueError(f"bad_lines must be >= 0, got {bad_lines!r}")


def generate(
    *,
    out_dir: str | Path,
    seed: int = 42,
    scale: float = 1.0,
    start: date = date(2020, 11, 1),
    days: int = 30,
    layout: Literal["daily", "single"] = "daily",
    bad_fraction: float = 0.0,
    bad_lines: int = 0,
    skip_existing: bool = False,
) -> GenerateResult:
    """Write the synthetic prints, taps and pays under ``out_dir`` and return exact line counts.

    ``bad_lines`` (per source, spread evenly over the files, earlier files first) and
    ``bad_fraction`` (share of each file's lines) insert deliberately broken lines, cycling through
    ``BAD_LINE_KINDS``. With ``skip_existing`` a file that already exists is left untouched; its
    counts are those this call would have written (recomputed in memory, cheap), which is right
    when the file came from a run with the same arguments.
    """
    if isinstance(start, datetime):
        start = start.date()
    check_arguments(
        seed=seed, scale=scale, days=days, layout=layout, bad_fraction=bad_fraction, bad_lines=bad_lines
    )

    out = Path(out_dir).resolve()
    n_users = users_for_scale(scale)
    cdf = user_cdf(seed, n_users)
    per_file_bad = _spread(bad_lines, days)
    bad_so_far = dict.fromkeys(SOURCES, 0)
    files: list[GeneratedFile] = []
    single_counts = {s: [0, 0] for s in SOURCES}

    with ExitStack() as stack:
        single_fh: dict[str, BinaryIO] = {}
        if layout == "single":
            for source in SOURCES:
                path = _single_path(out, source)
                if skip_existing and path.exists():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                fh = stack.enter_context(open(_tmp(path), "wb"))
                fh.write(_header(source))
                single_fh[source] = fh

        for i, day in enumerate(_days(start, days)):
            for source, good in day_frames(seed, day, scale, cdf).items():
                n_bad = per_file_bad[i] + _fraction_count(bad_fraction, good.height)
                first_bad = bad_so_far[source]
                bad_so_far[source] += n_bad
                n_lines = good.height + n_bad
                if layout == "single":
                    single_counts[source][0] += n_lines
                    single_counts[source][1] += n_bad
                    if source in single_fh:
                        _write_lines(
                            single_fh[source],
                            file_lines(source, good, day, n_bad, first_bad, seed, n_users),
                        )
                    continue
                path = _daily_path(out, source, day)
                if not (skip_existing and path.exists()):
                    lines = file_lines(source, good, day, n_bad, first_bad, seed, n_users)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with open(_tmp(path), "wb") as fh:
                        fh.write(_header(source))
                        _write_lines(fh, lines)
                    os.replace(_tmp(path), path)
                files.append(GeneratedFile(source, path, day, n_lines, n_bad))

    if layout == "single":
        for source in SOURCES:
            path = _single_path(out, source)
            if source in single_fh:
                os.replace(_tmp(path), path)
            lines_total, bad_total = single_counts[source]
            files.append(GeneratedFile(source, path, None, lines_total, bad_total))
    return GenerateResult(files)
