"""The one home of the deltalake re-entrancy workaround.

deltalake consumes a Python stream of record batches from inside its (tokio) async runtime. Code
running in that stream cannot itself call deltalake — reading another table, recording quality
results, rolling back — or it panics ("Cannot start a runtime from within a runtime"). Two tools
keep such code off deltalake's threads: :func:`produce_on_own_thread` runs the whole stream on a
plain Python thread, and :func:`run_on_fresh_thread` runs one call on a fresh thread and waits.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def remember_errors(items: Iterator[T], sink: list[BaseException]) -> Iterator[T]:
    """Pass ``items`` through, remembering an exception their producer raises: deltalake
    consumes the stream in Rust and would turn it into an opaque Arrow error."""
    try:
        yield from items
    except Exception as exc:
        sink.append(exc)
        raise


def produce_on_own_thread(items: Iterator[T]) -> Generator[T, None, None]:
    """Produce ``items`` on a plain Python thread, handing them over one at a time.

    Memory stays at about two items. Closing the returned iterator stops the producer.
    Context variables (run id, stage: see :mod:`jobs.logs`) carry over to the producer.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer(exc)

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(produce,), daemon=True, name="lake-write-stream")
    thread.start()
    try:
        while True:
            got = handoff.get()
            if got is done:
                return
            if isinstance(got, BaseException):
                raise got
            yield got  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def run_on_fresh_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` on a fresh thread and wait for it (for Delta calls made inside a stream)."""
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-call") as pool:
        return pool.submit(context.run, fn).result()
