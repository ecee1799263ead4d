"""The quality gates the stages receive: audit what is about to be committed, record, then pass
or raise. Each class implements one protocol of :mod:`jobs.audit`; :func:`quality_audits` bundles
them for the pipeline (:mod:`jobs.pipeline`), which hands them to the stages:

* :class:`BronzeAudit` — counts each raw file's data lines from its bytes (``lines()``) and its
  parsed chunks (``chunk()``); ``gate()`` validates a source's frames in batches and, at their
  end (before the commit), reconciles lines per file; a blocking failure raises.
* :class:`SilverAudit` — ``gate()`` validates the batches before the writer sees them and
  reconciles the row count with the bronze manifest.
* :class:`GoldAudit` — ``bucket()`` validates each gold bucket before the single commit
  (write-audit-publish): a blocking failure raises :class:`~jobs.errors.DataError`, so readers
  keep the previous gold version, byte for byte.

Results are recorded (history, HTML report) *before* a failure is raised ("record then raise");
on success, after the commit by ``finish()``, which also puts a summary in
``StageResult.details``. Suites are evaluated by :func:`jobs.quality.validate.validate_frame`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any, NoReturn

import polars as pl

from jobs.audit import Audits
from jobs.errors import DataError, PipelineError
from jobs.quality import history, report
from jobs.quality.derive import gold_audit_columns
from jobs.quality.reconcile import (
    FileCount,
    bronze_lines_reconcile,
    data_lines,
    gold_rows_reconcile,
    quarantine_thresholds,
    silver_rows_reconcile,
)
from jobs.quality.results import CheckResult, Severity, failure_message, merge_all
from jobs.quality.suites import (
    BRONZE_WORK_COLUMNS,
    Suite,
    bronze_suite,
    gold_suite,
    severity_of,
    silver_suite,
)
from jobs.quality.validate import validate_frame
from jobs.raw.files import Chunk
from jobs.run import RunContext
from jobs.schemas import GOLD_TABLE, SILVER_PARTITION, SOURCES, gold_audit_schema
from jobs.summary import StageResult
from jobs.tables.threads import run_on_fresh_thread
from jobs.weeks import Mode

log = logging.getLogger(__name__)


def quality_audits() -> Audits:
    """The gates the pipeline runs every stage with."""
    return Audits(
        bronze=BronzeAudit,
        silver=SilverAudit,
        gold=lambda ctx, weeks, buckets, prints: GoldAudit(ctx, weeks=weeks, buckets=buckets, prints=prints),
    )


class _Audit:
    layer = ""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self._results: list[CheckResult] = []
        self.validation_seconds = 0.0

    @property
    def results(self) -> list[CheckResult]:
        return merge_all(self._results, max_sample=self.settings.quality_sample_rows)

    @property
    def blocking(self) -> list[CheckResult]:
        return [r for r in self.results if r.blocking]

    def _severity(self, table: str, name: str, default: Severity = "failure") -> Severity:
        return severity_of(
            name, default, layer=self.layer, table=table, overrides=self.settings.quality_severity
        )

    def _validate(self, frames: list[pl.DataFrame], suite: Suite) -> None:
        """Validate a batch of frames as one (concatenated lazily: nothing is copied)."""
        if not any(f.height for f in frames):
            return
        started = time.perf_counter()
        batch = pl.concat([f.lazy() for f in frames], how="diagonal_relaxed")
        self._results += validate_frame(batch, suite, sample_rows=self.settings.quality_sample_rows)
        self.validation_seconds += time.perf_counter() - started

    def _record(self) -> str | None:
        results = self.results
        if not results:
            return None

        def record() -> str:
            history.append(self.ctx, results, stage=self.layer)
            return report.write_report(self.ctx)

        return run_on_fresh_thread(record)  # may run inside a write stream

    def _fail(self, headline: str) -> NoReturn:
        """Record the results and the report, then raise one readable DataError."""
        try:
            location = self._record()
        except PipelineError as exc:  # the gate's verdict matters more than its record
            location = f"not written: {exc}"
        raise DataError(failure_message(headline, self.results, report=location))

    def finish(self, result: StageResult) -> None:
        """After the commit: record the results and add the quality summary to ``result``."""
        results = self.results
        if not results:
            return
        location = self._record()
        result.details.append(
            report.stage_summary(self.layer, results, location, seconds=self.validation_seconds)
        )
        warnings = [r for r in results if r.outcome == "warning"]
        for r in warnings:
            log.warning("quality warning %s.%s: %s", r.suite, r.check, r.observed)
        log.info(
            "%s quality: %d check(s), %d warning(s), %.2fs validating; report %s",
            self.layer,
            len(results),
            len(warnings),
            self.validation_seconds,
            location,
        )


# -- bronze -------------------------------------------------------------------------------------
class BronzeAudit(_Audit):
    """Bronze: per-file reconciliation, the files bronze rejected over the quarantine threshold
    recorded (a warning), the bronze suite on the frames committed."""

    layer = "bronze"

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        # (source, path) → [data lines, bronze rows, quarantined lines, reasons]
        self._files: dict[tuple[str, str], list[Any]] = {}
        self._rejected: dict[tuple[str, str], FileCount] = {}  # counts before the rejection
        self._pending: dict[str, list[pl.DataFrame]] = {}

    def _tally(self, source: str, path: str) -> list[Any]:
        return self._files.setdefault((source, path), [0, 0, 0, Counter()])

    def lines(self, source: str, path: str, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        """Pass a raw file's chunks through, counting its data lines from the bytes (not from
        the parser's output, so the reconciliation is independent of it)."""
        tally = self._tally(source, path)
        for chunk in chunks:
            tally[0] += data_lines(source, chunk.content, first_line=chunk.first_line)
            yield chunk

    def chunk(self, source: str, path: str, good: pl.DataFrame, bad: pl.DataFrame) -> None:
        """Account for one parsed chunk of a raw file: ``good`` rows, ``bad`` quarantined."""
        tally = self._tally(source, path)
        tally[1] += good.height
        tally[2] += bad.height
        if bad.height:
            tally[3].update(bad["reason"].to_list())

    def rejected(self, source: str, path: str) -> None:
        """Bronze rejected the file whole (over the quarantine threshold): its counts before the
        rejection are what the threshold check reports (a warning), and every line of it is
        now quarantined."""
        lines, rows, bad, reasons = self._tally(source, path)
        self._rejected[(source, path)] = FileCount(source, path, lines, rows, bad, dict(reasons))
        self._files[(source, path)] = [lines, 0, lines, reasons]

    def drop(self, source: str, path: str) -> None:
        self._files.pop((source, path), None)
        self._rejected.pop((source, path), None)

    def files(self, source: str) -> list[FileCount]:
        return [
            FileCount(src, path, lines, rows, bad, dict(reasons))
            for (src, path), (lines, rows, bad, reasons) in self._files.items()
            if src == source
        ]

    def _flush(self, source: str) -> None:
        frames = self._pending.pop(source, [])
        if frames:
            self._validate(
                frames,
                bronze_suite(
                    source,
                    overrides=self.settings.quality_severity,
                    limits=self.settings.limits(self.ctx.started_at.date()),
                ),
            )

    def gate(self, source: str, frames: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """Validate the frames on their way to the writer (in batches of QUALITY_BATCH_ROWS);
        at their end, before the commit, reconcile every file and raise if a check blocks."""
        pending = self._pending.setdefault(source, [])
        for frame in frames:
            pending.append(frame.drop(BRONZE_WORK_COLUMNS, strict=False))
            if sum(f.height for f in pending) >= self.settings.quality_batch_rows:
                self._flush(source)
                pending = self._pending.setdefault(source, [])
            yield frame
        self._flush(source)
        files = self.files(source)
        if not files:
            return
        s = self.settings
        self._results.append(
            bronze_lines_reconcile(source, files, severity=self._severity(source, "raw_lines_reconcile"))
        )
        # Files bronze rejected over the threshold (its rule): recorded with their counts, a warning.
        self._results += quarantine_thresholds(
            source,
            [self._rejected.get((f.source, f.path), f) for f in files],
            rejected={path for src, path in self._rejected if src == source},
            max_fraction=s.quality_max_quarantine_fraction,
            min_lines=s.quality_quarantine_min_lines,
            small_severity=self._severity(source, "quarantined_fraction_per_small_file", "warning"),
        )
        if self.blocking:
            self._fail(
                f"bronze quality gate failed on {source}: no bronze row of this run was kept; "
                "the raw files stay pending and are retried by the next run"
            )


# -- silver -------------------------------------------------------------------------------------
class SilverAudit(_Audit):
    """Silver: suite on the rows written, count reconciled with bronze's rows of those days."""

    layer = "silver"

    def suite(self, source: str) -> Suite:
        s = self.settings
        return silver_suite(
            source,
            known_value_props=s.quality_known_value_props,
            min_day=s.quality_min_day,
            run_date=self.ctx.started_at.date(),
            max_future_days=s.quality_max_future_days,
            overrides=s.quality_severity,
        )

    def gate(
        self, source: str, expected_rows: int, batches: Iterable[pl.DataFrame]
    ) -> Iterator[pl.DataFrame]:
        """Validate the batches in groups of QUALITY_BATCH_ROWS rows as they pass to the writer
        (one validation per day costs more than the checks: each has a fixed price); reconcile
        the count at the end. Nothing is committed before the stream ends, so a failure found
        at any group still leaves silver unchanged."""
        suite, rows = self.suite(source), 0
        headline = (
            f"silver quality gate failed on {source}: silver {source} is unchanged (its "
            "new bronze rows stay pending and are retried by the next run)"
        )
        pending: list[pl.DataFrame] = []

        def flush() -> None:
            if pending:
                self._validate(pending, suite)
                pending.clear()
            if self.blocking:
                self._fail(headline)

        for batch in batches:
            pending.append(batch)
            rows += batch.height
            if sum(f.height for f in pending) >= self.settings.quality_batch_rows:
                flush()
            yield batch
        flush()
        self._results.append(
            silver_rows_reconcile(
                source,
                silver_rows=rows,
                bronze_rows=expected_rows,
                severity=self._severity(source, "rows_reconcile_with_bronze"),
            )
        )
        if self.blocking:
            self._fail(headline)


# -- gold ---------------------------------------------------------------------------------------
class GoldAudit(_Audit):
    """Gold write-audit-publish: each bucket frame is validated before it may be committed."""

    layer = "gold"
    reads_frames = True
    audit_columns = True  # the local engine computes them in the gold plan

    def __init__(self, ctx: RunContext, *, weeks: Iterable[date], buckets: int, prints: pl.LazyFrame) -> None:
        """``prints``: the silver prints of ``weeks`` with their ``bucket``, counted in one scan
        (10 buckets at scale 10: 0.05 s; a scan per bucket took 0.39 s, 2026-12-08)."""
        super().__init__(ctx)
        self.weeks = sorted(weeks)
        self.buckets = buckets
        self._gold_rows = self._silver_prints = 0
        # Read now: buckets are audited on deltalake's threads, where Delta reads can't run.
        counts = prints.group_by("bucket").len().collect()
        self._prints_in: dict[int, int] = dict(zip(counts["bucket"], counts["len"], strict=True))
        lake = ctx.lake
        days = [d for s in SOURCES for d in lake.partitions(ctx.silver(s), SILVER_PARTITION)]
        self.first_day = date.fromisoformat(min(days)[:10]) if days else None
        self.published_version = lake.version(ctx.gold(GOLD_TABLE))

    def _reconciliation(self, bucket: str = "") -> CheckResult:
        return gold_rows_reconcile(
            gold_rows=self._gold_rows,
            silver_prints=self._silver_prints,
            weeks=self.weeks,
            bucket=bucket,
            severity=self._severity("print_features", "rows_reconcile_with_silver_prints"),
        )

    def bucket(self, index: int, frame: pl.DataFrame, inputs: Mapping[str, pl.LazyFrame]) -> pl.DataFrame:
        """Audit one bucket's gold rows; returns them (without audit columns) or raises
        DataError."""
        started = time.perf_counter()
        s = self.settings
        results = audit_gold_bucket(
            frame,
            inputs,
            weeks=self.weeks,
            mode=s.lookback_mode,
            windows=s.lookback_weeks,
            first_day=self.first_day,
            severity=s.quality_severity,
            sample_rows=s.quality_sample_rows,
        )
        self.validation_seconds += time.perf_counter() - started
        self._results += results
        silver_prints = self._prints_in.get(index, 0)
        self._gold_rows += frame.height
        self._silver_prints += silver_prints
        where = f"user bucket {index + 1} of {self.buckets}"
        if frame.height != silver_prints:
            self._results.append(self._reconciliation(where))
        if self.blocking:
            self._fail(
                f"gold quality gate failed in {where} ({frame.height:,} rows of "
                f"{len(self.weeks)} rebuilt week(s) {self.weeks[0]}..{self.weeks[-1]}): nothing "
                f"was published — gold {GOLD_TABLE} stays at version {self.published_version}."
            )
        return frame.drop(gold_audit_schema().names(), strict=False)

    def finish(self, result: StageResult) -> None:
        if self._results or self._gold_rows:
            self._results.append(self._reconciliation())
        super().finish(result)


def audit_gold_bucket(
    frame: pl.DataFrame,
    inputs: Mapping[str, pl.LazyFrame],
    *,
    weeks: list[date],
    mode: Mode,
    windows: Sequence[int],
    first_day: date | None,
    severity: Mapping[str, str],
    sample_rows: int,
) -> list[CheckResult]:
    """Validate one bucket's gold rows against the silver it was built from (the row count is
    reconciled by :class:`GoldAudit` with the bucket's silver prints).

    Rows that carry the audit columns (computed in the gold plan) are validated as they are;
    others (read back from another engine) get them re-derived from silver
    (:func:`~jobs.quality.derive.gold_audit_columns`).
    """
    if not frame.height:
        return []
    if set(gold_audit_schema().names()) <= set(frame.columns):
        audited = frame.lazy()
    else:
        audited = gold_audit_columns(
            frame.lazy(),
            prints=inputs["prints"],
            taps=inputs["taps"],
            pays=inputs["pays"],
            mode=mode,
            windows=windows,
            first_day=first_day,
        )
    suite = gold_suite(weeks, first_day=first_day, mode=mode, overrides=severity, windows=windows)
    return validate_frame(audited, suite, sample_rows=sample_rows)
