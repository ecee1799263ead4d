"""The hooks the stages call: audit what is about to be committed, record, then pass or raise.

Each stage creates one audit object and routes the data it is about to commit through it:

* :class:`BronzeAudit` — ``file()`` per raw file (line reconciliation, quarantined fraction),
  ``gate()`` around a source's stream of frames (bronze suite; at the end of the stream, i.e.
  before the commit, raises if a blocking check failed).
* :class:`SilverAudit` — ``gate()`` around the batches appended to a silver table (silver suite,
  row count reconciled with the bronze manifest).
* :class:`GoldAudit` — ``bucket()`` on each gold frame before it is yielded to ``Lake.write``
  (gold suite + reconciliation): write-audit-publish. A blocking failure raises
  :class:`~jobs.errors.DataError` inside the stream, so the single Delta commit never happens and
  readers keep the previous gold version, byte for byte. An engine that builds buckets on
  workers runs :func:`audit_gold_bucket` there (plain, picklable results) and hands each result
  to ``GoldAudit.accept()`` on the driver before its single commit.

Results are appended to the quality history and the run's HTML report is rewritten *before* a
failure is raised ("record then raise"); on success they are recorded after the commit by
``finish()``, which also puts a summary in ``StageResult.details``. Nothing here imports Great
Expectations: :func:`jobs.quality.validate.validate_frame` does, on the first non-empty frame.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn, TypeVar

import polars as pl

from jobs.errors import DataError, PipelineError
from jobs.gold.windows import week_start
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
from jobs.quality.results import CheckResult, failure_message, merge_all
from jobs.quality.suites import (
    BRONZE_WORK_COLUMNS,
    Suite,
    bronze_suite,
    gold_suite,
    severity_of,
    silver_suite,
)
from jobs.raw.files import Chunk
from jobs.run import RunContext
from jobs.schemas import GOLD_TABLE, MANIFEST, SILVER_PARTITION, SOURCES
from jobs.summary import StageResult

log = logging.getLogger(__name__)
T = TypeVar("T")


def outside_stream(fn: Callable[[], T]) -> T:
    """Run ``fn`` on a fresh thread and wait for it.

    A gate fails *inside* the stream ``Lake.write`` hands to deltalake, i.e. on one of
    deltalake's (tokio) worker threads, where another deltalake call cannot block ("cannot start
    a runtime from within a runtime"). Recording the results and rolling back are Delta
    operations, so they run on a thread of their own.
    """
    context = contextvars.copy_context()  # keeps run id / stage on log records
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="quality") as pool:
        return pool.submit(context.run, fn).result()


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

    def _severity(self, table: str, name: str, default: str = "failure") -> str:
        return severity_of(name, default, layer=self.layer, table=table,  # type: ignore[arg-type]
                           overrides=self.settings.quality_severity)

    def _validate(self, frame: pl.DataFrame | pl.LazyFrame, suite: Suite) -> None:
        frame = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        if frame.is_empty():
            return
        from jobs.quality.validate import validate_frame  # imports Great Expectations

        started = time.perf_counter()
        self._results += validate_frame(frame, suite, sample_rows=self.settings.quality_sample_rows)
        self.validation_seconds += time.perf_counter() - started

    def _record(self) -> str | None:
        results = self.results
        if not results:
            return None

        def record() -> str:
            history.append(self.ctx, results, stage=self.layer)
            return report.write_report(self.ctx)

        return outside_stream(record)

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
        result.details.append(report.stage_summary(self.layer, results, location,
                                                   seconds=self.validation_seconds))
        warnings = [r for r in results if r.outcome == "warning"]
        for r in warnings:
            log.warning("quality warning %s.%s: %s", r.suite, r.check, r.observed)
        log.info("%s quality: %d check(s), %d warning(s), %.2fs validating; report %s",
                 self.layer, len(results), len(warnings), self.validation_seconds, location)


# -- bronze -------------------------------------------------------------------------------------
class BronzeAudit(_Audit):
    """Bronze: per-file reconciliation and quarantine threshold, suite on the frames written."""

    layer = "bronze"

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        # (source, path) → [data lines, bronze rows, quarantined lines, reasons]
        self._files: dict[tuple[str, str], list[Any]] = {}
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
        """Account for one parsed chunk of a raw file: ``good`` is written, ``bad`` quarantined."""
        tally = self._tally(source, path)
        tally[1] += good.height
        tally[2] += bad.height
        if bad.height:
            tally[3].update(bad["reason"].to_list())
        pending = self._pending.setdefault(source, [])
        pending.append(good.drop(BRONZE_WORK_COLUMNS, strict=False))
        if sum(f.height for f in pending) >= self.settings.quality_batch_rows:
            self._flush(source)

    def files(self, source: str) -> list[FileCount]:
        return [FileCount(src, path, lines, rows, bad, dict(reasons))
                for (src, path), (lines, rows, bad, reasons) in self._files.items()
                if src == source]

    def _flush(self, source: str) -> None:
        frames = self._pending.pop(source, [])
        if frames:
            self._validate(pl.concat(frames, how="diagonal_relaxed"), bronze_suite(
                source, overrides=self.settings.quality_severity,
                limits=self.settings.limits(self.ctx.started_at.date())))

    def gate(self, source: str, frames: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """Pass ``frames`` through to the writer; at their end (before the commit) judge them."""
        yield from frames
        self._flush(source)
        files = self.files(source)
        if not files:
            return
        s = self.settings
        self._results.append(bronze_lines_reconcile(
            source, files, severity=self._severity(source, "raw_lines_reconcile")))
        self._results += quarantine_thresholds(
            source, files, max_fraction=s.quality_max_quarantine_fraction,
            min_lines=s.quality_quarantine_min_lines,
            severity=self._severity(source, "quarantined_fraction_per_file"),
            small_severity=self._severity(source, "quarantined_fraction_per_small_file",
                                          "warning"))
        if self.blocking:
            rolled_back = outside_stream(lambda: self._rollback(source))
            kept = f" ({', '.join(rolled_back)} rows of this run rolled back)" if rolled_back else ""
            self._fail(
                f"bronze quality gate failed on {source}: no bronze row of this run was kept"
                f"{kept}; the raw files stay pending and are retried by the next run — fix or "
                "remove them, or raise QUALITY_MAX_QUARANTINE_FRACTION.")

    def _rollback(self, failing: str) -> list[str]:
        """Delete this run's rows from the sources committed before ``failing`` (no manifest
        row exists for them, so no later stage may consume them)."""
        lake, rolled = self.ctx.lake, []
        for source in SOURCES:
            uri = self.ctx.bronze(source)
            if source == failing or not lake.exists(uri):
                continue
            before = lake.version(uri)
            lake.delete(uri, f"run_id = '{self.ctx.run_id}'")
            if lake.version(uri) != before:
                rolled.append(source)
        return rolled


# -- silver -------------------------------------------------------------------------------------
class SilverAudit(_Audit):
    """Silver: suite on the rows appended, count reconciled with the bronze manifest."""

    layer = "silver"

    def suite(self, source: str) -> Suite:
        s = self.settings
        return silver_suite(source, known_value_props=s.quality_known_value_props,
                            min_day=s.quality_min_day, run_date=self.ctx.started_at.date(),
                            max_future_days=s.quality_max_future_days,
                            overrides=s.quality_severity)

    def bronze_rows(self, source: str, runs: list[str]) -> int:
        manifest = self.ctx.lake.scan_or_empty(self.ctx.manifest_uri, MANIFEST)
        total = manifest.filter((pl.col("source") == source) & pl.col("run_id").is_in(runs)).select(
            pl.col("bronze_rows").sum()).collect().item()
        return int(total or 0)

    def gate(self, source: str, runs: list[str],
             batches: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """Validate each batch before the writer sees it; reconcile the count at the end."""
        # Read now: the stream is consumed on deltalake's threads, where Delta reads can't run.
        expected = self.bronze_rows(source, runs)
        return self._gate(source, runs, batches, expected)

    def _gate(self, source: str, runs: list[str], batches: Iterable[pl.DataFrame],
              expected: int) -> Iterator[pl.DataFrame]:
        suite, rows = self.suite(source), 0
        headline = (f"silver quality gate failed on {source}: nothing was appended to silver "
                    f"{source} (its bronze runs stay pending and are retried by the next run)")
        for batch in batches:
            self._validate(batch, suite)
            if self.blocking:
                self._fail(headline)
            rows += batch.height
            yield batch
        self._results.append(silver_rows_reconcile(
            source, silver_rows=rows, bronze_rows=expected, runs=runs,
            severity=self._severity(source, "rows_reconcile_with_bronze")))
        if self.blocking:
            self._fail(headline)


# -- gold ---------------------------------------------------------------------------------------
class GoldAudit(_Audit):
    """Gold write-audit-publish: each bucket frame is validated before it may be committed."""

    layer = "gold"

    def __init__(self, ctx: RunContext, *, weeks: Iterable[date], buckets: int) -> None:
        super().__init__(ctx)
        self.weeks = sorted(weeks)
        self.buckets = buckets
        self._gold_rows = self._silver_prints = 0
        # Read now: buckets are audited on deltalake's threads, where Delta reads can't run.
        lake = ctx.lake
        days = [d for s in SOURCES for d in lake.partitions(ctx.silver(s), SILVER_PARTITION)]
        self.first_day = date.fromisoformat(min(days)[:10]) if days else None
        self.published_version = lake.version(ctx.gold(GOLD_TABLE))

    def _reconciliation(self, bucket: str = "") -> CheckResult:
        return gold_rows_reconcile(
            gold_rows=self._gold_rows, silver_prints=self._silver_prints, weeks=self.weeks,
            bucket=bucket, severity=self._severity("print_features",
                                                   "rows_reconcile_with_silver_prints"))

    def plan(self) -> GoldBucketPlan:
        """What a worker needs to audit a bucket on its own (plain, picklable data)."""
        s = self.settings
        return GoldBucketPlan(weeks=tuple(self.weeks), mode=s.lookback_mode,
                              n_weeks=s.lookback_weeks, first_day=self.first_day,
                              severity=dict(s.quality_severity), sample_rows=s.quality_sample_rows)

    def bucket(self, index: int, frame: pl.DataFrame,
               inputs: Mapping[str, pl.LazyFrame]) -> pl.DataFrame:
        """Audit one bucket's gold rows here; returns them unchanged or raises DataError."""
        started = time.perf_counter()
        self.accept(index, audit_gold_bucket(self.plan(), frame, inputs))
        self.validation_seconds += time.perf_counter() - started
        return frame

    def accept(self, index: int, audit: GoldBucketAudit) -> None:
        """Take one bucket's audit (made here or on a worker); raise DataError if it blocks.

        A distributed engine calls this on the driver for every bucket before its single commit.
        """
        self._results += audit.results
        self._gold_rows += audit.gold_rows
        self._silver_prints += audit.silver_prints
        where = f"user bucket {index + 1} of {self.buckets}"
        if audit.gold_rows != audit.silver_prints:
            self._results.append(self._reconciliation(where))
        if self.blocking:
            self._fail(
                f"gold quality gate failed in {where} ({audit.gold_rows:,} rows of "
                f"{len(self.weeks)} rebuilt week(s) {self.weeks[0]}..{self.weeks[-1]}): nothing "
                f"was published — gold {GOLD_TABLE} stays at version {self.published_version}.")

    def finish(self, result: StageResult) -> None:
        if self._results or self._gold_rows:
            self._results.append(self._reconciliation())
        super().finish(result)


@dataclass(frozen=True)
class GoldBucketPlan:
    weeks: tuple[date, ...]
    mode: str
    n_weeks: int
    first_day: date | None
    severity: Mapping[str, str]
    sample_rows: int


@dataclass(frozen=True)
class GoldBucketAudit:
    """The audit of one bucket's gold rows: check results and the reconciliation counts."""

    results: tuple[CheckResult, ...]
    gold_rows: int
    silver_prints: int


def audit_gold_bucket(plan: GoldBucketPlan, frame: pl.DataFrame,
                      inputs: Mapping[str, pl.LazyFrame]) -> GoldBucketAudit:
    """Validate one bucket's gold rows against the silver it was built from (no lake I/O
    besides reading ``inputs``: runs in the driver or in a worker next to the bucket)."""
    results: tuple[CheckResult, ...] = ()
    if frame.height:
        from jobs.quality.validate import validate_frame  # imports Great Expectations

        audited = gold_audit_columns(
            frame.lazy(), prints=inputs["prints"], taps=inputs["taps"], pays=inputs["pays"],
            mode=plan.mode, n_weeks=plan.n_weeks, first_day=plan.first_day)  # type: ignore[arg-type]
        suite = gold_suite(plan.weeks, overrides=plan.severity)
        results = tuple(validate_frame(audited, suite, sample_rows=plan.sample_rows))
    weeks = pl.Series(plan.weeks, dtype=pl.Date).implode()
    prints = inputs["prints"].filter(week_start(pl.col("day")).is_in(weeks)).select(
        pl.len()).collect().item()
    return GoldBucketAudit(results, frame.height, int(prints))
