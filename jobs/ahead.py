"""Work on the next items while the current one is written: both cores busy on the local engine.

The local engines hand their pieces to a writer in order: bronze its raw files (reading one is
parsing, checking and hashing), silver its days (computing one from bronze). Polars, DuckDB and
hashlib release the GIL, so :func:`read_ahead` works on up to ``workers`` next items on threads
while the caller writes the one before them. Results come back in the items' order, so every
raw file is still judged and accounted for in order; at most ``workers + 1`` results are held
at once (a bronze file's rows in its bounded :class:`~jobs.bronze.spool.Spool`, a silver day).
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def read_ahead(
    read: Callable[[Item], Result], items: Iterable[Item], *, workers: int
) -> Generator[tuple[Item, Result], None, None]:
    """``(item, read(item))`` in the order of ``items``, reading up to ``workers`` ahead.

    With one worker it reads in the caller's thread (nothing runs behind its back). An
    exception of ``read`` is raised when its item is reached; the reads not started yet are
    cancelled and the running ones are waited for, so nothing outlives the generator.
    """
    if workers <= 1:
        for item in items:
            yield item, read(item)
        return
    source = iter(items)
    pending: deque[tuple[Item, Future[Result]]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ahead")

    def submit() -> None:
        for item in source:
            context = contextvars.copy_context()  # run id and stage of the log lines
            pending.append((item, pool.submit(context.run, read, item)))
            return

    try:
        for _ in range(workers):
            submit()
        while pending:
            item, future = pending.popleft()
            result = future.result()
            submit()
            yield item, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
