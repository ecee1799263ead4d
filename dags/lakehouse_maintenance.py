"""The lake's table maintenance DAG: compact, checkpoint and vacuum every table, on its own schedule.

One thin task calling :func:`jobs.orchestration.maintain_task` (``jobs/maintain.py`` does the
work). Parsing stays cheap: this module imports only ``airflow.sdk``, the standard library and
``jobs.settings`` (its scheduling settings and the task defaults every DAG shares); the jobs are
imported inside the task.

Configuration (environment of the Airflow processes):

- ``LAKEHOUSE_MAINTENANCE_SCHEDULE``: cron or preset, ``none`` = triggered only. Default
  ``@daily``.
- ``LAKEHOUSE_RETRIES`` (2), ``LAKEHOUSE_RETRY_DELAY_SECONDS`` (60, doubled per retry up to
  ``LAKEHOUSE_MAX_RETRY_DELAY_SECONDS``, 900), ``LAKEHOUSE_TASK_TIMEOUT_MINUTES`` (120), as for the
  ``lakehouse`` DAG.
- ``MAINTAIN_RETENTION_HOURS`` (168), ``MAINTAIN_TARGET_FILE_BYTES``, ``MAINTAIN_ZORDER_GOLD`` and
  the lake's settings as for ``python -m jobs maintain``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from jobs.settings import schedule, task_defaults

log = logging.getLogger("lakehouse.maintenance_dag")

DAG_ID = "lakehouse_maintenance"


def _schedule() -> str | None:
    return schedule("LAKEHOUSE_MAINTENANCE_SCHEDULE")


DOC_MD = """
# Lakehouse maintenance: compact, checkpoint, vacuum

One task, `maintain`, over every pipeline table (bronze prints/taps/pays, quarantine,
`_manifest`; silver prints/taps/pays; gold `print_features`, `_quality_results`):

- **compaction** of small files (gold optionally Z-ordered by `user_id`: `MAINTAIN_ZORDER_GOLD`);
- **vacuum** of files superseded more than `MAINTAIN_RETENTION_HOURS` ago (default 168) and of
  orphan files no version references (failed runs), once older than the retention;
- a **checkpoint** of each table's log.

Time travel works back to the retention; older versions' files may be gone. The task holds the
lake lease like any writer: while a pipeline run holds it the task fails with the holder named
and is **retried** with backoff. Maintenance commits (`OPTIMIZE`, `VACUUM START/END`) are not
new data: the next `lakehouse` run writes nothing because of them. The XCom `return_value` holds
files before/after, files and bytes removed and seconds per table.

**Schedule** from `LAKEHOUSE_MAINTENANCE_SCHEDULE` (default `@daily`); catchup off; one run at
a time.
"""


@dag(
    dag_id=DAG_ID,
    schedule=_schedule(),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
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
