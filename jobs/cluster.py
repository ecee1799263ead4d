"""The Dask cluster the ``dask`` engine runs its tasks on (imported only with ENGINE=dask)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from jobs.errors import PipelineError
from jobs.settings import Settings

WORKER_ENV = {"POLARS_MAX_THREADS": "1"}  # one Polars thread per single-threaded Dask worker

# Test hook, not a setting: while a test sets this (monkeypatch) to a task's position, the task
# in that position of every run_tasks call raises on its worker instead of running, to prove a
# failed task commits nothing. None (always, outside the tests): every task runs.
FAIL_TASK: int | None = None


def client(settings: Settings) -> tuple[Any, Any]:
    """(client, cluster-to-close-or-None) for DASK_SCHEDULER, or a 2-worker LocalCluster."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - dask is in the lock
        raise PipelineError("ENGINE=dask needs dask[distributed] installed") from exc
    if settings.dask_scheduler:
        try:
            return Client(settings.dask_scheduler, timeout="10s"), None
        except OSError as exc:
            raise PipelineError(
                f"cannot reach the Dask scheduler at {settings.dask_scheduler}: "
                f"{exc}; check DASK_SCHEDULER and that the cluster runs"
            ) from exc
    cluster = local_cluster()
    return Client(cluster), cluster


def local_cluster() -> Any:
    """The cluster used when no DASK_SCHEDULER is given: 2 single-threaded worker processes on
    127.0.0.1, no dashboard (also what the tests run the engine on).

    Every connection is mutual TLS with a certificate made for this run only (distributed's
    ``Security.temporary()``: a self-signed certificate and key held in memory and handed to
    the workers, never written to disk), so another local user who finds the port cannot
    talk to the scheduler or the workers (which hold the pipeline's keys): a client without
    the certificate is refused at the handshake.

    Its own logs are silenced below CRITICAL: a task's failure reaches the driver as an
    exception (:class:`TaskFailed`, one line), and what is left is shutdown noise (a worker's
    heartbeat racing the scheduler's close prints a traceback that is no error of the run)."""
    import logging

    from distributed import LocalCluster
    from distributed.security import Security

    return LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        protocol="tls://",
        security=Security.temporary(),
        dashboard_address=None,
        env=WORKER_ENV,
        silence_logs=logging.CRITICAL,
    )


@contextmanager
def run_tasks(settings: Settings, task: Callable[..., Any], *args: list[Any]) -> Iterator[Iterator[Any]]:
    """Run ``task(*row)`` for every row of ``args`` (one list per parameter) on the cluster.

    Waits for ALL tasks (so none still writes after a failure) and raises :class:`TaskFailed`
    for the first that failed; otherwise yields their results in order, fetched one at a time
    from the workers (the driver holds one result at a time), for as long as the block runs.
    """
    from distributed import wait

    if FAIL_TASK is not None:  # the test hook: every task learns its position
        task = functools.partial(_failing, task, FAIL_TASK)
        args = (list(range(len(args[0]) if args else 0)), *args)
    connection, cluster = client(settings)
    try:
        futures = connection.map(task, *args, pure=False)
        wait(futures)
        for i, future in enumerate(futures):
            if future.status != "finished":
                raise TaskFailed(i, future.exception() if future.status == "error" else future.status)
        yield _one_by_one(futures)
    finally:
        connection.close()
        if cluster is not None:
            cluster.close()


def _failing(task: Callable[..., Any], fail: int, position: int, *args: Any) -> Any:
    """``task(*args)``, or an injected failure for the task in position ``fail`` (FAIL_TASK)."""
    if position == fail:
        raise RuntimeError(f"injected failure in task {position + 1} (jobs.cluster.FAIL_TASK)")
    return task(*args)


def _one_by_one(futures: list[Any]) -> Iterator[Any]:
    futures = list(reversed(futures))
    while futures:
        yield futures.pop().result()  # the future goes: the worker may forget the result


class TaskFailed(Exception):
    """A task failed: ``index`` is its position among the tasks submitted, ``error`` why."""

    def __init__(self, index: int, error: object) -> None:
        super().__init__(f"task {index + 1} failed: {error}")
        self.index, self.error = index, error
