"""Count reconciliation and quarantine thresholds. Pure: counts in, result records out.

* bronze, per raw file: physical data lines of the file (counted from its bytes, independently
  of the parser) = bronze rows + quarantined lines; and the quarantined fraction of each file
  against ``QUALITY_MAX_QUARANTINE_FRACTION``.
* silver, per source: rows written for the rebuilt days = bronze rows of those days.
* gold, per user bucket: gold rows = silver prints of the rebuilt weeks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from jobs.bronze.pays import header_order
from jobs.quality.results import RECONCILIATION, THRESHOLD, CheckResult, Severity


def physical_lines(content: bytes) -> int:
    """Lines of a file as a person counts them: a trailing newline ends the last line."""
    if not content:
        return 0
    return content.count(b"\n") + (0 if content.endswith(b"\n") else 1)  # no copy of the chunk


def data_lines(source: str, content: bytes, *, first_line: int = 1) -> int:
    """Lines of ``content`` (whole lines of a file starting at line ``first_line``) that must
    each become a bronze row or a quarantined line.

    A pays file's line 1 is structure when it is a valid header (any column order); a file
    without a valid header has every line quarantined, the first included.
    """
    lines = physical_lines(content)
    if source == "pays" and lines and first_line == 1:
        end = content.find(b"\n")
        first = content[: end if end >= 0 else len(content)].decode("utf-8", errors="replace").rstrip("\r")
        if header_order(first.removeprefix("\ufeff")) is not None:
            return lines - 1
    return lines


@dataclass(frozen=True)
class FileCount:
    """What bronze did with one raw file."""

    source: str
    path: str
    lines: int
    bronze_rows: int
    quarantined: int
    reasons: Mapping[str, int] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.quarantined / self.lines if self.lines else 0.0

    @property
    def reconciles(self) -> bool:
        return self.lines == self.bronze_rows + self.quarantined

    def as_sample(self) -> dict[str, str]:
        top = Counter(self.reasons).most_common(1)
        row = {
            "file": self.path,
            "lines": f"{self.lines:,}",
            "bronze": f"{self.bronze_rows:,}",
            "quarantined": f"{self.quarantined:,}",
            "fraction": f"{self.fraction:.1%}",
        }
        if top:
            row["top reason"] = f"{top[0][0]} ({top[0][1]:,})"
        return row


def bronze_lines_reconcile(
    source: str, files: Sequence[FileCount], *, severity: Severity = "failure"
) -> CheckResult:
    lines = sum(f.lines for f in files)
    rows = sum(f.bronze_rows for f in files)
    bad = sum(f.quarantined for f in files)
    off = [f for f in files if not f.reconciles]
    observed = f"{lines:,} lines = {rows:,} bronze + {bad:,} quarantined over {len(files)} file(s)"
    if off:
        observed += f"; {len(off)} file(s) do not add up"
    return CheckResult(
        layer="bronze",
        table=source,
        check="raw_lines_reconcile",
        expectation_type=RECONCILIATION,
        description="per raw file: data lines = bronze rows + quarantined lines",
        severity=severity,
        success=not off,
        observed=observed,
        unexpected_count=len(off),
        evaluated_rows=lines,
        sample=tuple(f.as_sample() for f in off[:5]),
    )


def quarantine_thresholds(
    source: str,
    files: Sequence[FileCount],
    *,
    rejected: Collection[str],
    max_fraction: float,
    min_lines: int,
    small_severity: Severity = "warning",
) -> list[CheckResult]:
    """The quarantined fraction per file, recorded. Files of at least ``min_lines`` lines: those
    bronze ``rejected`` whole over the threshold (its rule, :func:`jobs.bronze.job.over_threshold`,
    not decided again here; a warning, since the rest of the run goes on). Smaller files: those
    over ``max_fraction`` (bronze takes them in), with ``small_severity``."""
    out = []
    kinds: tuple[tuple[str, bool, Severity], ...] = (
        ("quarantined_fraction_per_file", True, "warning"),
        ("quarantined_fraction_per_small_file", False, small_severity),
    )
    for check, big, sev in kinds:
        scope = [f for f in files if (f.lines >= min_lines) == big]
        if not scope:
            continue
        over = [f for f in scope if (f.path in rejected if big else f.fraction > max_fraction)]
        over.sort(key=lambda f: -f.fraction)
        worst = max(scope, key=lambda f: f.fraction)
        observed = f"max {worst.fraction:.2%} ({worst.path}) vs threshold {max_fraction:.2%}"
        if over:
            observed = f"{len(over)} of {len(scope)} file(s) over {max_fraction:.2%}: " + ", ".join(
                f"{f.path} {f.fraction:.1%}" for f in over[:5]
            )
        size = f"≥ {min_lines}" if big else f"< {min_lines}"
        out.append(
            CheckResult(
                layer="bronze",
                table=source,
                check=check,
                expectation_type=THRESHOLD,
                description=f"quarantined lines of each file with {size} lines ≤ "
                "QUALITY_MAX_QUARANTINE_FRACTION",
                severity=sev,
                success=not over,
                observed=observed,
                unexpected_count=len(over),
                evaluated_rows=sum(f.lines for f in scope),
                sample=tuple(f.as_sample() for f in over[:5]),
            )
        )
    return out


def silver_rows_reconcile(
    source: str, *, silver_rows: int, bronze_rows: int, severity: Severity = "failure"
) -> CheckResult:
    ok = silver_rows == bronze_rows
    return CheckResult(
        layer="silver",
        table=source,
        check="rows_reconcile_with_bronze",
        expectation_type=RECONCILIATION,
        description="rows written for the rebuilt days = bronze rows of those days",
        severity=severity,
        success=ok,
        observed=f"{silver_rows:,} silver rows {'=' if ok else '≠'} {bronze_rows:,} bronze rows "
        "of the rebuilt days",
        unexpected_count=abs(silver_rows - bronze_rows),
        evaluated_rows=silver_rows,
    )


def gold_rows_reconcile(
    *,
    gold_rows: int,
    silver_prints: int,
    weeks: Sequence[date],
    bucket: str = "",
    severity: Severity = "failure",
) -> CheckResult:
    ok = gold_rows == silver_prints
    where = f" ({bucket})" if bucket else ""
    return CheckResult(
        layer="gold",
        table="print_features",
        check="rows_reconcile_with_silver_prints",
        expectation_type=RECONCILIATION,
        description="exactly one gold row per silver print of each rebuilt week",
        severity=severity,
        success=ok,
        observed=f"{gold_rows:,} gold rows {'=' if ok else '≠'} {silver_prints:,} silver prints "
        f"of {len(weeks)} week(s){where}",
        unexpected_count=abs(gold_rows - silver_prints),
        evaluated_rows=gold_rows,
    )
