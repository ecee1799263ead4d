"""Run history and metrics: what every run did, for ``jobs query`` and for monitoring.

**History.** Every run appends one row per stage it ran to ``<LAKE_GOLD>/_runs`` (schema
:data:`jobs.schemas.RUNS`; ``gold.runs`` in ``python -m jobs query``), beside the quality
history, in one commit at the end of the run (``python -m jobs run``) or of the stage (one stage
command, one Airflow task): status ``succeeded``, ``skipped`` (nothing new) or ``failed`` (a gate
held the commit, a storage failure…, with the error's one line). It holds counts, table versions
and check counts, never a data row, so whoever may read gold may read it.

The rule for a run with nothing new: **it records nothing** (every stage skipped, none failed):
"a run with nothing new writes no table version" holds for ``_runs`` too. Such a run still
updates the metrics file, with ``lakehouse_last_run_noop 1``.

**Metrics.** With ``--metrics-file PATH`` (or ``METRICS_FILE``) the run's figures are written in
the Prometheus text exposition format, for node_exporter's textfile collector
(``--collector.textfile.directory``; name the file ``*.prom`` in that directory). The file is
replaced atomically (a temporary file in the same directory, then a rename), so the collector
never reads half a file. :data:`METRICS` lists every metric; per-stage metrics carry the label
``stage`` (bronze, silver, gold, export).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.schemas import RUNS, RUNS_TABLE

if TYPE_CHECKING:
    import polars as pl

    from jobs.run import RunContext
    from jobs.summary import StageResult

log = logging.getLogger(__name__)

PREFIX = "lakehouse_"

# name (without the prefix) → (type, help); "stage" metrics have one sample per stage of the run.
METRICS: dict[str, tuple[str, str, bool]] = {
    "last_run_timestamp_seconds": ("gauge", "When the last run ended (Unix time).", False),
    "last_run_success": ("gauge", "1 if the last run's stages all succeeded (or skipped), else 0.", False),
    "last_run_noop": (
        "gauge",
        "1 if the last run had nothing new (no table version, no history row).",
        False,
    ),
    "last_run_duration_seconds": ("gauge", "Wall-clock seconds of the last run's stages.", False),
    "stage_success": ("gauge", "1 if the stage succeeded or was skipped, 0 if it failed.", True),
    "stage_skipped": ("gauge", "1 if the stage had nothing new (no table version).", True),
    "stage_duration_seconds": ("gauge", "Wall-clock seconds of the stage in the last run.", True),
    "stage_files": ("gauge", "Raw files the stage handled (bronze) or files it wrote (export).", True),
    "stage_rows_in": ("gauge", "Rows the stage read in the last run.", True),
    "stage_rows_out": ("gauge", "Rows the stage wrote in the last run.", True),
    "stage_rows_quarantined": ("gauge", "Lines the stage put in quarantine in the last run.", True),
    "stage_bytes_read": ("gauge", "Raw bytes the stage took in (bronze).", True),
    "quality_checks": ("gauge", "Quality checks the stage's gate ran in the last run.", True),
    "quality_checks_failed": ("gauge", "Quality checks that failed in the stage in the last run.", True),
    "quality_checks_warned": ("gauge", "Quality checks that warned in the stage in the last run.", True),
}


@dataclass
class StageRecord:
    """One stage of this run: its result, or the error that ended it."""

    stage: str
    started_at: datetime
    ended_at: datetime
    seconds: float
    result: StageResult | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        return "skipped" if self.result is not None and self.result.skipped else "succeeded"


@dataclass
class Recorder:
    """The stages of one run, recorded when the outermost :func:`recording` block ends."""

    ctx: RunContext
    stages: list[StageRecord] = field(default_factory=list)

    @property
    def noop(self) -> bool:
        return all(s.status == "skipped" for s in self.stages)

    @contextmanager
    def stage(self, stage: str) -> Iterator[list[StageResult]]:
        """Time the block; the caller appends the stage's result to the yielded list."""
        out: list[StageResult] = []
        started_at, started = datetime.now(UTC), time.perf_counter()
        error: str | None = None
        try:
            yield out
        except BaseException as exc:
            error = one_line(exc)
            raise
        finally:
            self.stages.append(
                StageRecord(
                    stage,
                    started_at,
                    datetime.now(UTC),
                    time.perf_counter() - started,
                    out[0] if out else None,
                    error,
                )
            )


_current: ContextVar[Recorder | None] = ContextVar("lakehouse_run_recorder", default=None)


@contextmanager
def recording(ctx: RunContext) -> Iterator[Recorder]:
    """The run's recorder: a block inside another (a stage of ``run``) shares the outer one;
    the outermost block appends the history rows and writes the metrics file when it ends,
    whether its stages succeeded or not (a failure to record is logged, never raised over the
    run's own outcome)."""
    outer = _current.get()
    if outer is not None and outer.ctx is ctx:
        yield outer
        return
    recorder = Recorder(ctx)
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)
        finish(recorder)


def finish(recorder: Recorder) -> None:
    """Append the history rows (unless the run was a no-op) and write the metrics file."""
    if not recorder.stages:
        return
    ctx = recorder.ctx
    checks = {}
    if not recorder.noop:
        try:
            checks = quality_counts(ctx)
            append(ctx, rows(recorder, checks))
        except Exception as exc:  # the run's outcome matters more than its record
            log.warning("run history not recorded: %s", one_line(exc))
    path = ctx.settings.metrics_file
    if path:
        try:
            write_metrics(Path(path), metrics_text(recorder, checks))
        except OSError as exc:
            log.warning("metrics file %s not written: %s", path, one_line(exc))


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def quality_counts(ctx: RunContext) -> dict[str, dict[str, int]]:
    """stage → {checks, failed, warned} of this run, from the quality history."""
    import polars as pl

    from jobs.quality.history import results_uri
    from jobs.schemas import QUALITY_RESULTS

    frame = (
        ctx.lake.scan_or_empty(results_uri(ctx), QUALITY_RESULTS)
        .filter(pl.col("run_id") == ctx.run_id)
        .group_by("layer")
        .agg(
            pl.len().alias("checks"),
            (pl.col("outcome") == "failed").sum().alias("failed"),
            (pl.col("outcome") == "warning").sum().alias("warned"),
        )
        .collect()
    )
    return {r["layer"]: {k: int(r[k]) for k in ("checks", "failed", "warned")} for r in frame.to_dicts()}


def _bytes_read(result: StageResult | None) -> int | None:
    if result is None or result.stage != "bronze":
        return None
    return sum(int(d.get("size_bytes") or 0) for d in result.details if d.get("status") == "ingested")


# a stage's figures as the history names them → the metric that carries each (METRICS)
FIGURE_METRICS = {
    "files": "stage_files",
    "rows_in": "stage_rows_in",
    "rows_out": "stage_rows_out",
    "quarantined": "stage_rows_quarantined",
    "bytes_read": "stage_bytes_read",
    "checks": "quality_checks",
    "checks_failed": "quality_checks_failed",
    "checks_warned": "quality_checks_warned",
}


def _figures(s: StageRecord, checks: dict[str, dict[str, int]]) -> dict[str, int | None]:
    """A stage's counts (None where a failed stage has no result), for the history and metrics."""
    r, c = s.result, checks.get(s.stage, {})
    return {
        "files": r.files if r else None,
        "rows_in": r.rows_in if r else None,
        "rows_out": r.rows_out if r else None,
        "quarantined": r.quarantined if r else None,
        "bytes_read": _bytes_read(r),
        "checks": c.get("checks", 0),
        "checks_failed": c.get("failed", 0),
        "checks_warned": c.get("warned", 0),
    }


def rows(recorder: Recorder, checks: dict[str, dict[str, int]]) -> pl.DataFrame:
    """The history rows of a run's stages (pure, given the quality counts)."""
    import polars as pl

    out: list[dict[str, Any]] = []
    for s in recorder.stages:
        r = s.result
        out.append(
            {
                "run_id": recorder.ctx.run_id,
                "stage": s.stage,
                "started_at": s.started_at,
                "ended_at": s.ended_at,
                "seconds": round(s.seconds, 3),
                "status": s.status,
                "error": s.error,
                **_figures(s, checks),
                "versions": json.dumps(r.versions, sort_keys=True) if r else "{}",
                "note": r.note if r else None,
            }
        )
    return pl.DataFrame(out, schema=RUNS)


def runs_uri(ctx: RunContext) -> str:
    return ctx.gold(RUNS_TABLE)


def append(ctx: RunContext, frame: pl.DataFrame) -> int | None:
    """One commit of the run's rows; the new version of ``_runs``."""
    if frame.is_empty():
        return None
    return ctx.lake.write(runs_uri(ctx), frame, schema=RUNS, metadata={"run_id": ctx.run_id, "stage": "runs"})


def history(ctx: RunContext, run_id: str | None = None) -> pl.DataFrame:
    """The recorded rows (of one run when given), oldest first."""
    import polars as pl

    frame = ctx.lake.scan_or_empty(runs_uri(ctx), RUNS)
    if run_id is not None:
        frame = frame.filter(pl.col("run_id") == run_id)
    return frame.collect().sort("started_at", maintain_order=True)


# -- Prometheus text exposition format ----------------------------------------------------------
def _value(value: float | None) -> str:
    if value is None:
        return "NaN"
    return repr(float(value)) if isinstance(value, float) and not value.is_integer() else str(int(value))


def metrics_text(recorder: Recorder, checks: dict[str, dict[str, int]], *, now: float | None = None) -> str:
    """The run's figures as Prometheus text (HELP and TYPE before each metric's samples)."""
    stages = recorder.stages
    run = {
        "last_run_timestamp_seconds": round(now if now is not None else time.time(), 3),
        "last_run_success": int(all(s.status != "failed" for s in stages)),
        "last_run_noop": int(recorder.noop),
        "last_run_duration_seconds": round(sum(s.seconds for s in stages), 3),
    }
    per_stage: dict[str, dict[str, float | None]] = {}
    for s in stages:
        per_stage[s.stage] = {
            "stage_success": int(s.status != "failed"),
            "stage_skipped": int(s.status == "skipped"),
            "stage_duration_seconds": round(s.seconds, 3),
            **{FIGURE_METRICS[k]: v for k, v in _figures(s, checks).items()},
        }
    lines: list[str] = []
    for name, (kind, text, staged) in METRICS.items():
        samples = (
            [(f'{{stage="{st}"}}', v[name]) for st, v in per_stage.items() if v[name] is not None]
            if staged
            else [("", run[name])]
        )
        if not samples:
            continue
        lines += [f"# HELP {PREFIX}{name} {text}", f"# TYPE {PREFIX}{name} {kind}"]
        lines += [f"{PREFIX}{name}{labels} {_value(v)}" for labels, v in samples]
    return "\n".join(lines) + "\n"


def write_metrics(path: Path, text: str) -> None:
    """Replace ``path`` atomically: a temporary file in its directory, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
