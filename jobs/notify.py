"""The DAGs' notification hooks: one log line when a run fails or is late (standard library only,
so parsing a DAG stays cheap; nothing external is needed to run or test them).

- :func:`task_failed` is every lakehouse task's ``on_failure_callback`` and :func:`run_failed`
  the DAG's: Airflow calls them with the task's context when a task (after its retries) or the
  run fails.
- :func:`run_late` is the callback of the DAG's **deadline alert** (Airflow 3 removed SLAs;
  ``DeadlineAlert`` replaces them): called when a run has not finished
  ``LAKEHOUSE_DEADLINE_MINUTES`` after it was queued.

Each logs one ``WARNING``/``ERROR`` line on the ``lakehouse.notify`` logger. To page someone, replace
the body with a notifier (Slack, SMTP, PagerDuty providers' ``*Notifier`` classes take the same
context) or ship the logger's lines; the freshness check (``python -m jobs freshness``, exit 9)
covers a DAG that does not run at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("lakehouse.notify")


def _run_id(context: Mapping[str, Any]) -> str:
    run = context.get("dag_run")
    return str(getattr(run, "run_id", None) or context.get("run_id") or "?")


def task_failed(context: Mapping[str, Any]) -> None:
    """A task failed for good: one line with the DAG, run, task and the error."""
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    first = (str(error).strip().splitlines() or [type(error).__name__])[0] if error else "failed"
    line = (
        f"lakehouse task failed: dag={getattr(ti, 'dag_id', '?')} run={_run_id(context)} "
        f"task={getattr(ti, 'task_id', '?')}: {first}"
    )
    log.error(line)


def run_failed(context: Mapping[str, Any]) -> None:
    """The DAG run failed: one line."""
    run = context.get("dag_run")
    line = f"lakehouse run failed: dag={getattr(run, 'dag_id', '?')} run={_run_id(context)}"
    log.error(line)


def run_late(context: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
    """A deadline alert fired: the run is still not done past its deadline."""
    context = context or {}
    line = f"lakehouse run late: run={_run_id(context)} past its deadline {kwargs or ''}".rstrip()
    log.warning(line)
