"""OpenLineage events: a START and a COMPLETE (or FAIL) event per stage of every run.

Sent through the standard client (``openlineage-python``), configured the standard way:
``OPENLINEAGE_URL`` (+ ``OPENLINEAGE_API_KEY``, ``OPENLINEAGE_ENDPOINT``), or an
``openlineage.yml`` (``OPENLINEAGE_CONFIG``, the working directory, ``~/.openlineage``) or
``OPENLINEAGE__TRANSPORT__*`` variables with any transport (http, file, console, kafka…);
``OPENLINEAGE_DISABLED=true`` turns it off. Nothing configured: nothing is sent and the client
is never imported (:func:`configured` looks at the environment and three paths only).

What an event says (the job named after the stage, datasets named by their lake locations):

* job ``lakehouse.stage.<stage>`` in ``OPENLINEAGE_NAMESPACE`` (default ``lakehouse``); its run id
  a UUID derived from the run id of the summary and the stage (uuid5), the summary's run id in
  the run facet ``lakehouse`` (with the stage's counts); the orchestrator's task run as the
  ``parent`` facet when one passed it (``RunContext.lineage_parent``, see ``dags/lakehouse.py``).
* inputs and outputs: raw prefixes → bronze tables (+ quarantine, manifest) → silver tables →
  gold ``print_features`` → the export files, namespace ``file`` or ``s3://<bucket>`` (the
  OpenLineage naming spec); facets ``schema`` (the contract), ``version`` (the Delta version the
  output got), ``outputStatistics`` (rows written) and ``dataQualityAssertions`` (the gate's
  checks of that table).

A backend that is down or slow never fails a run: events go out on one background thread; a
stage's end waits for them at most what is left of ``LINEAGE_TIMEOUT_SECONDS`` (default 2 s,
for the whole run); an HTTP transport's timeout is capped to it and does not retry. After the
first failure the run sends nothing more. What was not sent is counted in the stage's details
and the run summary says ``lineage: N event(s) could not be sent to <where>``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    import polars as pl

    from jobs.run import RunContext
    from jobs.summary import StageResult

log = logging.getLogger(__name__)

JOB_PREFIX = "lakehouse.stage."
DEFAULT_NAMESPACE = "lakehouse"
# uuid5 namespace of the stage runs' ids: uuid5(RUN_IDS, "<run id>/<stage>").
RUN_IDS = uuid.UUID("6f1c9a52-3b7e-4d8a-9c61-2f0e8b4d7a13")
FACET_SCHEMA = "https://openlineage.io/spec/facets/1-0-0/LakehouseRunFacet.json"
DETAIL = "lineage"  # the StageResult.details entry: {"lineage": {"unsent": N, "target": ...}}


def configured() -> bool:
    """Whether the OpenLineage client has a transport configured (without importing it)."""
    env = os.environ
    if env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OPENLINEAGE_URL") or any(k.startswith("OPENLINEAGE__TRANSPORT") for k in env):
        return True
    paths = (env.get("OPENLINEAGE_CONFIG", ""), "openlineage.yml", "~/.openlineage/openlineage.yml")
    return any(p and Path(p).expanduser().is_file() for p in paths)


def stage_run_id(run_id: str, stage: str) -> str:
    """The OpenLineage run id (a UUID) of one stage of the run ``run_id``: always the same."""
    return str(uuid.uuid5(RUN_IDS, f"{run_id}/{stage}"))


def dataset_name(uri: str) -> tuple[str, str]:
    """(namespace, name) of a lake location, as the OpenLineage naming spec has them:
    ``s3://bucket/a/b`` → (``s3://bucket``, ``a/b``); a local path → (``file``, ``/abs/path``)."""
    parsed = urlparse(uri)
    if parsed.scheme and parsed.scheme != "file" and len(parsed.scheme) > 1:
        return f"{parsed.scheme}://{parsed.netloc}", parsed.path.lstrip("/")
    return "file", parsed.path if parsed.scheme == "file" else uri


@dataclass(frozen=True)
class Location:
    """One dataset of a stage: its key in ``StageResult.versions``, URI and contract schema."""

    key: str
    uri: str
    schema: pl.Schema | None = None
    table: str = ""  # the quality checks' table name


def stage_datasets(ctx: RunContext, stage: str) -> tuple[list[Location], list[Location]]:
    """The inputs and outputs of ``stage``, by lake location."""
    from jobs.schemas import BRONZE, GOLD_TABLE, MANIFEST, QUARANTINE, SILVER, SOURCES, gold_schema
    from jobs.storage import join

    settings = ctx.settings
    raw = [Location(f"raw/{s}", join(settings.lake_raw, s)) for s in SOURCES]
    bronze = [Location(s, ctx.bronze(s), BRONZE[s], s) for s in SOURCES]
    silver = [Location(s, ctx.silver(s), SILVER[s], s) for s in SOURCES]
    gold_contract = gold_schema(windows=settings.lookback_weeks)
    gold = [Location(GOLD_TABLE, ctx.gold(GOLD_TABLE), gold_contract, GOLD_TABLE)]
    if stage == "bronze":
        extra = [
            Location("quarantine", ctx.quarantine_uri, QUARANTINE),
            Location("manifest", ctx.manifest_uri, MANIFEST),
        ]
        return raw, bronze + extra
    if stage == "silver":
        return bronze, silver
    if stage == "gold":
        return silver, gold
    export = [
        Location(f, join(settings.export_uri, f), gold_contract) for f in ("final.parquet", "final.csv")
    ]
    return gold, export


def _rows(result: StageResult) -> dict[str, int]:
    """Rows each output got, where the result tells them apart."""
    if result.stage == "bronze":
        rows: dict[str, int] = {}
        for d in result.details:
            if "source" in d and "bronze_rows" in d:
                rows[d["source"]] = rows.get(d["source"], 0) + int(d["bronze_rows"] or 0)
        rows["quarantine"] = result.quarantined
        return rows
    if result.stage == "gold":
        from jobs.schemas import GOLD_TABLE

        return {GOLD_TABLE: result.rows_out}
    if result.stage == "export":
        return {"final.parquet": result.rows_out, "final.csv": result.rows_out}
    return {}


def _assertions(result: StageResult) -> dict[str, list[dict[str, Any]]]:
    """The quality gate's checks per table (from its summary in ``result.details``)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for d in result.details:
        quality = d.get("quality") if isinstance(d, dict) else None
        for a in (quality or {}).get("assertions", []):
            found.setdefault(a["table"], []).append(a)
    return found


class Emitter:
    """Sends one run's events through the OpenLineage client on a background thread."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.namespace = os.environ.get("OPENLINEAGE_NAMESPACE") or DEFAULT_NAMESPACE
        self.budget = ctx.settings.lineage_timeout_seconds
        self.deadline: float | None = None  # set at the first wait: the run's budget
        self.unsent = 0
        self.down = False
        self.target = "the OpenLineage backend"
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending = 0
        self._lock = threading.Condition()
        self.client = self._client()
        self._thread = threading.Thread(target=self._work, name="openlineage", daemon=True)
        self._thread.start()

    def _client(self) -> Any:
        from openlineage.client import OpenLineageClient

        before = {k: v for k, v in os.environ.items() if k.startswith("OPENLINEAGE__")}
        try:
            client = OpenLineageClient()
        finally:  # the client aliases OPENLINEAGE_URL into OPENLINEAGE__… variables: undo that
            for k in [k for k in os.environ if k.startswith("OPENLINEAGE__") and k not in before]:
                del os.environ[k]
        self.target = self._bound(client.transport)
        return client

    def _bound(self, transport: Any) -> str:
        """Cap HTTP transports' timeout, no retries; where the events go (for the summary)."""
        from openlineage.client.transport.http import HttpTransport

        for inner in getattr(transport, "transports", None) or [transport]:
            if isinstance(inner, HttpTransport):
                inner.timeout = min(float(inner.timeout), self.budget)
                inner.config.retry = {**inner.config.retry, "total": 0, "connect": 0, "read": 0}
                return str(inner.url)
            if getattr(inner, "kind", "") == "file":
                return str(getattr(inner.config, "log_file_path", "") or "a file")
        return str(getattr(transport, "kind", "") or self.target)

    # -- the background thread ------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if not self.down:
                    self.client.emit(event)
                    with self._lock:
                        self._pending -= 1
                        self._lock.notify_all()
                    continue
            except Exception as exc:  # a lineage backend never fails a run
                log.warning("OpenLineage event not sent to %s: %s", self.target, exc)
                self.down = True
            with self._lock:
                self._pending -= 1
                self.unsent += 1
                self._lock.notify_all()

    def send(self, event: Any) -> None:
        with self._lock:
            if self.down:
                self.unsent += 1
                return
            self._pending += 1
        self._queue.put(event)

    def wait(self) -> None:
        """Wait for the events queued so far, at most what is left of the run's budget; past it,
        the backend counts as down (what is still queued is not sent)."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.budget
        with self._lock:
            while self._pending and (left := self.deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            if self._pending and not self.down:
                log.warning("OpenLineage backend %s did not answer within %.1fs", self.target, self.budget)
                self.down = True

    # -- events -----------------------------------------------------------------------------------
    def event(
        self, state: str, stage: str, *, result: StageResult | None = None, error: BaseException | None = None
    ) -> Any:
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import (
            data_quality_assertions_dataset,
            dataset_version_dataset,
            error_message_run,
            job_type_job,
            output_statistics_output_dataset,
            parent_run,
            schema_dataset,
        )

        ctx = self.ctx
        inputs, outputs = stage_datasets(ctx, stage)
        facets: dict[str, Any] = {
            "lakehouse": {
                "_producer": _producer(),
                "_schemaURL": FACET_SCHEMA,
                "runId": ctx.run_id,
                "stage": stage,
                **({k: v for k, v in result.as_dict().items() if k != "stage"} if result else {}),
            }
        }
        if parent := ctx.lineage_parent:
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent["run_id"]),
                job=parent_run.Job(namespace=parent["namespace"], name=parent["name"]),
            )
        if error is not None:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=str(error)[:4000], programmingLanguage="python"
            )

        def schema(loc: Location) -> dict[str, Any]:
            if loc.schema is None:
                return {}
            fields = [
                schema_dataset.SchemaDatasetFacetFields(name=n, type=str(t)) for n, t in loc.schema.items()
            ]
            return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}

        versions = result.versions if result else {}
        rows = _rows(result) if result and not result.skipped else {}
        checks = _assertions(result) if result else {}
        ins = [InputDataset(*dataset_name(loc.uri), facets=schema(loc)) for loc in inputs]
        outs = []
        for loc in outputs:
            ds_facets = schema(loc) if state == "START" else {}
            out_facets: dict[str, Any] = {}
            if loc.key in versions:
                ds_facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                    datasetVersion=str(versions[loc.key])
                )
            if loc.key in rows:
                out_facets["outputStatistics"] = (
                    output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                        rowCount=rows[loc.key]
                    )
                )
            if loc.table and checks.get(loc.table):
                ds_facets["dataQualityAssertions"] = (
                    data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                        assertions=[
                            data_quality_assertions_dataset.Assertion(
                                assertion=a["assertion"],
                                success=a["success"],
                                column=a.get("column"),
                                severity=a.get("severity"),
                            )
                            for a in checks[loc.table]
                        ]
                    )
                )
            outs.append(OutputDataset(*dataset_name(loc.uri), facets=ds_facets, outputFacets=out_facets))
        job_type = job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="LAKEHOUSE", jobType="STAGE"
        )
        return RunEvent(
            eventType=RunState[state],
            eventTime=datetime.now(UTC).isoformat(),
            run=Run(runId=stage_run_id(ctx.run_id, stage), facets=facets),
            job=Job(namespace=self.namespace, name=JOB_PREFIX + stage, facets={"jobType": job_type}),
            producer=_producer(),
            inputs=ins,
            outputs=outs,
        )


def _producer() -> str:
    from jobs import __version__

    return f"https://github.com/lakehouse/jobs/tree/{__version__}"


_EMITTERS: dict[str, Emitter | None] = {}


def emitter(ctx: RunContext) -> Emitter | None:
    """The run's emitter (one per run id); None when OpenLineage is not configured."""
    if ctx.run_id not in _EMITTERS:
        found: Emitter | None = None
        if configured():
            try:
                found = Emitter(ctx)
            except Exception as exc:  # a bad lineage config never fails a run
                log.warning("OpenLineage not configured correctly, no events sent: %s", exc)
        _EMITTERS[ctx.run_id] = found
    return _EMITTERS[ctx.run_id]


@dataclass
class StageLineage:
    """What :func:`stage` yields: hand it the stage's result before the block ends."""

    result: StageResult | None = None

    def done(self, result: StageResult) -> StageResult:
        self.result = result
        return result


@contextmanager
def stage(ctx: RunContext, name: str) -> Iterator[StageLineage]:
    """START when the block starts, COMPLETE (with the result given to ``done``) or FAIL when it
    ends; events that could not be sent are counted in the result's details."""
    out = emitter(ctx)
    track = StageLineage()
    if out is None:
        yield track
        return
    _send(out, "START", name)
    try:
        yield track
    except BaseException as exc:
        _send(out, "FAIL", name, error=exc)
        out.wait()
        if out.unsent:
            log.warning("lineage: %d event(s) could not be sent to %s", out.unsent, out.target)
        raise
    _send(out, "COMPLETE", name, result=track.result)
    out.wait()
    if out.unsent and track.result is not None:
        track.result.details.append({DETAIL: {"unsent": out.unsent, "target": out.target}})


def _send(out: Emitter, state: str, name: str, **kwargs: Any) -> None:
    try:
        out.send(out.event(state, name, **kwargs))
    except Exception as exc:  # building an event never fails a run
        log.warning("OpenLineage %s event of %s not built: %s", state, name, exc)
        out.unsent += 1


def summary_lines(results: list[StageResult]) -> list[str]:
    """``lineage: N event(s) could not be sent to <where>`` when some were not (the last count)."""
    last = None
    for r in results:
        for d in r.details:
            if isinstance(d, dict) and DETAIL in d:
                last = d[DETAIL]
    if not last:
        return []
    return [f"lineage: {last['unsent']} event(s) could not be sent to {last['target']}"]
