"""The lake's table maintenance DAG: compact, checkpoint and vacuum every table, on its own schedule.

One thin task calling :func:`jobs.orchestration.maintain_task` (``jobs/maintain.py`` does the
work). Parsing stays cheap: this module imports only ``airflow.sdk``, the standard library and
``jobs.settings`` (its scheduling settings and the task defaults every DAG shares); the jobs are
imported inside the task.

Configuration (environment of the Airflow processes):

- ``LAKEHOUSE_MAINTENANCE_SCHEDULE``: cron or preset (UTC), ``none`` = triggered only. Default
  ``30 2 * * *`` (02:30 UTC daily). Never at start-up: the DAG has no ``start_date`` and its
  ``CronTriggerTimetable`` has ``run_immediately=timedelta(0)``, so unpausing it (``make airflow-up``)
  schedules the *next* 02:30, not the past one. (Airflow 3 with a ``start_date`` and
  ``catchup=False`` runs the latest past tick at once on unpause, which is what made the first
  maintenance collide with the first ``lakehouse`` tick.)
- ``MAINTAIN_LEASE_WAIT_SECONDS`` (1800, the lake's settings): a maintenance run that finds a
  pipeline run holding the lake lease waits for it rather than failing.
- ``LAKEHOUSE_RETRIES`` (2), ``LAKEHOUSE_RETRY_DELAY_SECONDS`` (60, doubled per retry up to
  ``LAKEHOUSE_MAX_RETRY_DELAY_SECONDS``, 900), ``LAKEHOUSE_TASK_TIMEOUT_MINUTES`` (120), as for the
  ``lakehouse`` DAG.
- ``MAINTAIN_RETENTION_HOURS`` (168), ``MAINTAIN_TARGET_FILE_BYTES``, ``MAINTAIN_ZORDER_GOLD`` and
  the lake's settings as for ``python -m jobs maintain``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from jobs.settings.scheduling import schedule, task_defaults

if TYPE_CHECKING:
    from airflow.sdk import CronTriggerTimetable

log = logging.getLogger("lakehouse.maintenance_dag")

DAG_ID = "lakehouse_maintenance"


DEFAULT_SCHEDULE = "30 2 * * *"


def _schedule() -> CronTriggerTimetable | str | None:
    """The cron (UTC) as a timetable that waits for its next tick when first unpaused."""
    from airflow.sdk import CronTriggerTimetable

    expression = schedule("LAKEHOUSE_MAINTENANCE_SCHEDULE", DEFAULT_SCHEDULE)
    if expression is None or expression in ("@once", "@continuous"):
        return expression
    # timedelta(0), not False: Airflow 3.3 treats False like None (the past tick runs at once if it
    # is less than a tenth of the period, at least 5 minutes, old: 2.4 h for a daily cron).
    return CronTriggerTimetable(expression, timezone="UTC", run_immediately=timedelta(0))


DOC_MD = """
# Lakehouse maintenance: compact, checkpoint, vacuum

One task, `maintain`, over every pipeline table (bronze prints/taps/pays, quarantine,
`_manifest`; silver prints/taps/pays; gold `print_features`, `_quality_results`):

- **compaction** of small files (gold optionally Z-ordered by `user_id`: `MAINTAIN_ZORDER_GOLD`);
- **vacuum** of files superseded more than `MAINTAIN_RETENTION_HOURS` ago (default 168) and of
  orphan files no version references (failed runs), once older than the retention;
- a **checkpoint** of each table's log.

Time travel works back to the retention; older versions' files may be gone. The task holds the
lake lease like any writer: while a pipeline run holds it the task **waits** for it (up to
`MAINTAIN_LEASE_WAIT_SECONDS`, default 1800), then fails with the holder named and is retried
with backoff. A `lakehouse` tick that finds maintenance holding the lease fails its task with
the holder named and Airflow retries it (`LAKEHOUSE_RETRIES`, 60 s doubling); with
`LEASE_WAIT_SECONDS` in the lake's settings it waits that long first. Maintenance commits
(`OPTIMIZE`, `VACUUM START/END`) are not new data: the next `lakehouse` run writes nothing
because of them. The XCom `return_value` holds files before/after, files and bytes removed and
seconds per table.

**Schedule** from `LAKEHOUSE_MAINTENANCE_SCHEDULE` (default `30 2 * * *`, UTC); never at
start-up (no start date, so unpausing waits for the next tick); one run at a time.
"""


@dag(
    dag_id=DAG_ID,
    schedule=_schedule(),
    # No start_date: with one, Airflow 3 runs the latest past tick as soon as the DAG is unpaused.
    catchup=False,
    max_active_runs=1,
    tags=["lakehouse", "delta", "maintenance"],
    doc_md=DOC_MD,
    default_args=task_defaults(),
)
def lakehouse_maintenance() -> None:
    @task(task_id="maintain", multiple_outputs=False)
    def maintain() -> dict[str, Any]:
        """Compact, checkpoint and vacuum every table; the per-table summary as XCom."""
        from jobs.errors import PipelineError
        from jobs.orchestration import RunIdentity, is_transient, maintain_task

        dag_run = get_current_context()["dag_run"]
        identity = RunIdentity(orchestrator_run_id=dag_run.run_id, started_at=dag_run.start_date)
        try:
            return maintain_task(identity)
        except PipelineError as exc:
            log.error("maintain failed: %s", exc)
            if not is_transient(exc):
                raise AirflowFailException(f"maintain failed: {exc}") from exc
            raise

    maintain()


lakehouse_maintenance()
