"""The lakehouse DAG: detect new raw files → bronze → silver → gold → export.

Every task is a thin call into ``jobs.orchestration`` (the Polars jobs); nothing here transforms
data. Parsing stays cheap: this module imports only ``airflow.sdk``, the standard library,
``jobs.stages`` (the stage names), ``jobs.options`` (the run parameters, validated there) and
``jobs.notify`` (the failure and deadline callbacks, standard library only) and
``jobs.settings`` (pydantic, which ``airflow.sdk`` loads anyway; the scheduling settings and the
task defaults every DAG shares); the jobs (polars, deltalake, Great Expectations) are imported
inside the tasks.

Configuration comes from the environment of the Airflow processes:

- ``LAKEHOUSE_SCHEDULE``: cron or preset (``*/5 * * * *`` in the dev env files, ``@weekly`` …;
  ``none`` = triggered runs only). Default ``@daily``.
- ``LAKEHOUSE_RETRIES`` (2), ``LAKEHOUSE_RETRY_DELAY_SECONDS`` (60, doubled on every retry up to
  ``LAKEHOUSE_MAX_RETRY_DELAY_SECONDS``, 900), ``LAKEHOUSE_TASK_TIMEOUT_MINUTES`` (120).
- The pipeline's own settings (``LAKE_*``, ``AWS_*``, lookback) as for ``python -m jobs``:
  environment variables or the env file named by ``LAKEHOUSE_ENV_FILE``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from jobs.notify import run_failed, task_failed
from jobs.options import PARAMS
from jobs.settings.scheduling import env_int, schedule, task_defaults
from jobs.stages import STAGES

log = logging.getLogger("lakehouse.dag")

DAG_ID = "lakehouse"
# What a downstream DAG (model training, say) schedules on: `schedule=[GOLD_ASSET]` runs it
# after every gold commit of this DAG.
GOLD_ASSET = Asset(name="lakehouse.gold.print_features")
OUTLETS = {"gold": [GOLD_ASSET]}


def _schedule() -> str | None:
    return schedule("LAKEHOUSE_SCHEDULE")


DETECT_TIMEOUT = timedelta(minutes=10)


def _deadline() -> Any:
    """Airflow 3's replacement of SLAs: a deadline alert (its callback logs one line) when a run
    is not done ``LAKEHOUSE_DEADLINE_MINUTES`` (90) after it was queued; ``0`` turns it off."""
    minutes = env_int("LAKEHOUSE_DEADLINE_MINUTES", 90)
    if minutes <= 0:
        return None
    from airflow.sdk.definitions.callback import SyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=SyncCallback("jobs.notify.run_late"),
    )


DOC_MD = """
# Lakehouse: raw value-prop events → weekly gold features

Each run moves newly landed raw files through the lake, one task per stage:

| task | what it does | writes |
| --- | --- | --- |
| `detect` | new raw files, or work a failed run left? If not: **downstream skipped**; plans | nothing |
| `bronze` | parses each new raw file exactly once (bad lines → quarantine) | bronze, manifest |
| `silver` | appends bronze rows silver has not consumed yet, by day | silver tables |
| `gold` | rebuilds only the weeks whose inputs changed, atomically | `print_features` |
| `export` | writes the latest week as `final.parquet` / `final.csv` | export files |

Every task returns its summary (files, rows in/out, quarantined, seconds, table versions)
as its XCom `return_value`. `detect`'s carries the run's **plan** (`plan`: raw files per source,
silver days, gold weeks and why, maintenance due; as `python -m jobs plan --format json`), also
logged as text. A failure names what to check (endpoint, bucket, key, setting)
in the task log: an unreachable object store is retried with exponential backoff; wrong keys,
denied access, a missing bucket, bad settings or bad data fail at once (no retry).

**Schedule** from `LAKEHOUSE_SCHEDULE` (`*/5 * * * *` in dev); catchup off; one active run at
a time (a tick while a run is busy waits; stages are idempotent, so a missed tick is picked up
by the next one).

**Params** (Trigger DAG w/ config) override the settings for that run only; any of them makes
the run go ahead even without new raw files:

- `rebuild_weeks`: dates (any day of the week) whose gold weeks to rebuild, e.g. `["2020-11-16"]`
- `full_rebuild`: rebuild every gold week
- `lookback_mode` (`calendar` | `rolling`) and `lookback_weeks` (N, or several windows as text,
  `"3,1,4"`: the first gives `prior_*`, the others `prior_*_<N>w`): recompute gold with another
  lookback. Gold records the lookback (mode and windows) it was built with, so the next
  scheduled run (with the configured lookback) rebuilds gold back to the configured one.

**Notifications**: a task that fails for good and a failed run log one line each
(`on_failure_callback`: `jobs.notify.task_failed`, `jobs.notify.run_failed`); a run not done
`LAKEHOUSE_DEADLINE_MINUTES` (90) after it was queued fires a deadline alert (Airflow 3's
replacement of SLAs) whose callback `jobs.notify.run_late` logs one line. Swap in a provider's
notifier to page someone; `python -m jobs freshness` (exit 9 when stale) catches a DAG that does
not run at all.

**Data quality** (`jobs/quality`: Great Expectations suites and row reconciliation) runs
inside the bronze, silver and gold tasks, before each commit, so there is no separate task: a
blocking check fails the task at once (no retry) with the check's message, and gold keeps its
previous version. The task's XCom carries the quality summary and the HTML report location.

**Lineage**: with the Airflow OpenLineage provider, each task is the job `lakehouse.<task>`; the
stage inside it emits its own run, `lakehouse.stage.<stage>`, with the task's run as parent and
the datasets, Delta versions and quality assertions (jobs/lineage.py): no job is emitted twice.
"""

# The trigger form: the run options' parameters (jobs/options.py validates them again in the task).
FORM = {name: Param(**spec) for name, spec in PARAMS.items()}


def _lineage_parent(context: Any) -> dict[str, str]:
    """This task's run as OpenLineage knows it: the parent of the stage's own OpenLineage run.

    With the Airflow OpenLineage provider installed, exactly the job and run id it emits for this
    task (its ``lineage_*`` macros), so a backend links our ``lakehouse.stage.<stage>`` run under
    the provider's ``lakehouse.<task>`` run; without it, the same names and a UUID derived from
    the task instance (what a backend fed by another integration can still group by).
    """
    ti = context["ti"]
    try:
        from airflow.providers.openlineage.plugins.macros import (
            lineage_job_name,
            lineage_job_namespace,
            lineage_run_id,
        )

        return {
            "namespace": lineage_job_namespace(),
            "name": lineage_job_name(ti),
            "run_id": lineage_run_id(ti),
        }
    except Exception:  # no provider, or another version of it
        import os
        import uuid

        key = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'try_number', 1)}"
        return {
            "namespace": os.environ.get("OPENLINEAGE_NAMESPACE") or "default",
            "name": f"{ti.dag_id}.{ti.task_id}",
            "run_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"airflow:{key}")),
        }


def _call(stage: str, fn: Any) -> Any:
    """Run ``fn(params, identity)``; a PipelineError fails the task with its one-line message."""
    from jobs.errors import PipelineError
    from jobs.orchestration import RunIdentity, is_transient

    context = get_current_context()
    dag_run = context["dag_run"]
    identity = RunIdentity(
        orchestrator_run_id=dag_run.run_id,
        started_at=dag_run.start_date,
        lineage_parent=_lineage_parent(context),
    )
    try:
        return fn(dict(context["params"]), identity)
    except PipelineError as exc:
        log.error("%s failed: %s", stage, exc)
        if not is_transient(exc):
            raise AirflowFailException(f"{stage} failed: {exc}") from exc
        raise


@dag(
    dag_id=DAG_ID,
    schedule=_schedule(),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["lakehouse", "polars", "delta"],
    doc_md=DOC_MD,
    params=FORM,
    default_args={**task_defaults(), "on_failure_callback": task_failed},
    on_failure_callback=run_failed,
    deadline=_deadline(),
)
def lakehouse() -> None:
    @task.short_circuit(task_id="detect", execution_timeout=DETECT_TIMEOUT, multiple_outputs=False)
    def detect() -> dict[str, Any] | bool:
        """Go ahead only if raw files are new, work is pending or the params ask for a run;
        the summary (XCom) carries the plan of the run (``jobs.plan``), logged too."""
        from jobs.orchestration import detect as detect_work

        found = _call("detect", lambda params, identity: detect_work(params, identity))
        summary = found.as_dict()
        get_current_context()["ti"].xcom_push(key="summary", value=summary)
        return summary if found.proceed else False

    def stage_task(stage: str) -> Any:
        @task(task_id=stage, multiple_outputs=False, outlets=OUTLETS.get(stage, []))
        def run() -> dict[str, Any]:
            from jobs.orchestration import run_stage_task

            return _call(stage, lambda params, identity: run_stage_task(stage, params, identity))

        return run()

    gate = detect()
    previous = gate
    for stage in STAGES:
        current = stage_task(stage)
        previous >> current
        previous = current


lakehouse()
