"""The file-rejection rule of bronze: when a raw file read whole is rejected whole.

Bronze's own rule, with the quality gates on or off (``NO_AUDITS``): a file that is not text, a
file with too many quarantined lines, or one the operator rejects (``--reject``). A rejected
file's lines all go to quarantine with the reason (:meth:`jobs.bronze.job.Bronze.judge`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from jobs.bronze.read import FileRead
from jobs.bronze.text import not_text
from jobs.settings import Settings


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """Why a file is rejected whole, and whether the audit records it (over the threshold: a
    warning) or drops the file (accounted for in the manifest, not the reconciliation)."""

    reason: str
    audited: bool


def rejection(read: FileRead, path: str, settings: Settings) -> Rejection | None:
    """Why the file read at ``path`` is rejected whole (None: it is taken in)."""
    s = settings
    reason = not_text(
        nul_byte=read.nul_byte,
        invalid_utf8_lines=read.invalid_utf8_lines,
        lines=read.lines,
        max_fraction=s.quality_max_quarantine_fraction,
    )
    if reason is not None:
        return Rejection(reason=reason, audited=False)
    reason = over_threshold(
        read, max_fraction=s.quality_max_quarantine_fraction, min_lines=s.quality_quarantine_min_lines
    )
    if reason is not None:
        return Rejection(reason=reason, audited=True)
    if path in s.raw_reject:
        return Rejection(
            reason=f"rejected by the operator: {s.raw_reject[path] or 'no reason given'}", audited=False
        )
    return None


def over_threshold(read: FileRead, *, max_fraction: float, min_lines: int) -> str | None:
    """Why a file read is rejected whole for its quarantined lines (None: it is taken in).

    The rule of bronze, with or without a quality audit: a file of at least ``min_lines`` lines
    (``QUALITY_QUARANTINE_MIN_LINES``) with more than ``max_fraction`` of them quarantined
    (``QUALITY_MAX_QUARANTINE_FRACTION``). A smaller file goes in, its bad lines quarantined
    (the audit warns about it)."""
    lines, bad = read.lines, read.lines - read.good_rows
    if not lines or lines < min_lines or bad / lines <= max_fraction:
        return None
    reasons = Counter(reason for frame in read.bad for reason in frame["reason"].to_list())
    top = reasons.most_common(1)
    why = f"; most common: {top[0][0]}" if top else ""
    return (
        f"{bad / lines:.1%} of its {lines:,} lines quarantined, over "
        f"QUALITY_MAX_QUARANTINE_FRACTION={max_fraction:.1%}{why}"
    )
