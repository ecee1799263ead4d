"""Logging: readable text by default, JSON lines (with run id and stage) for machines."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

run_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("run_id", default="")
stage_var: contextvars.ContextVar[str] = contextvars.ContextVar("stage", default="")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "run_id": run_id_var.get(),
            "stage": stage_var.get(),
            "message": record.getMessage(),
        }
        for key in ("event", "rows_in", "rows_out", "quarantined", "seconds", "files"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record, so a terminal's progress
    display (which redirects it while shown) prints log lines above itself, never glued on."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(*, fmt: str = "text", level: str = "INFO") -> None:
    handler = _CurrentStderr()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if level.upper() != "DEBUG":
        handler.addFilter(_DaskChatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "s3fs", "aiobotocore", "fsspec", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.filters[:] = [f for f in asyncio_log.filters if not isinstance(f, _LostConnectionNoise)]
    asyncio_log.addFilter(_LostConnectionNoise())


class _DaskChatter(logging.Filter):
    """Dask's own INFO records (cluster start and stop, one per worker and connection) are not
    the run's news, and one of them carries a traceback when a worker's stream closes during
    shutdown; its warnings and errors still pass (``--debug`` shows everything)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith("distributed")


class _LostConnectionNoise(logging.Filter):
    """s3fs runs aiohttp on its own event loop; when the store dies mid-request, aiohttp's
    background write task fails too and asyncio logs "Task exception was never retrieved" with a
    traceback, although the request itself already failed and the stage reports that as one line.
    Those records are dropped (``--debug`` keeps them); any other asyncio record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not _is_connection_error(exc):
            return True
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    try:
        from aiohttp import ClientConnectionError
    except ImportError:  # pragma: no cover - s3fs depends on aiohttp
        return False
    return isinstance(exc, ClientConnectionError)


# -- Rust panic text of the object-store client ------------------------------------------------
# When an upload fails mid-write (a store that stops answering or dies), deltalake's Parquet
# writer keeps writing to object_store's BufWriter after its failed shutdown, and object_store
# panics ("Already shut down", object_store/src/buffered.rs) on tokio worker threads, once per
# open data file. tokio catches those panics and deltalake returns the upload error, which the
# stage reports as ONE storage error line; Rust's default panic hook still prints each panic
# to stderr (fd 2) from those threads, whatever RUST_BACKTRACE or the log level say. Python
# cannot replace that hook, so the CLI filters exactly these panic blocks out of fd 2 (and
# logs them at DEBUG); any other panic text passes through untouched.
_PANIC = re.compile(r"^thread '[^']*'(?: \(\d+\))? panicked at (?P<where>\S+):$")
_STORE_PANIC_SOURCES = ("/object_store-", "\\object_store-")
_NOTE = "note: run with `RUST_BACKTRACE=1`"


@contextmanager
def store_panics_filtered(enabled: bool = True) -> Iterator[None]:
    """Drop object_store's panic blocks from this process's stderr (fd 2) while inside."""
    if not enabled:
        yield
        return
    try:
        original = os.dup(2)
        read_fd, write_fd = os.pipe()
    except OSError:  # no usable fd 2: nothing to filter
        yield
        return
    sys.stderr.flush()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, original), daemon=True, name="stderr-filter")
    pump.start()
    _filters.append((original, pump))
    try:
        yield
    finally:
        _restore_stderr()
        os.close(original)


_filters: list[tuple[int, threading.Thread]] = []  # the active filter: (original fd 2, its pump)


def _restore_stderr() -> None:
    """Put the original fd 2 back and let the pump forward what it still holds."""
    sys.stderr.flush()
    if _filters:
        original, pump = _filters.pop()
        os.dup2(original, 2)  # closes the pipe's last write end: the pump drains and ends
        pump.join(timeout=5)


def stop_process(message: str) -> None:
    """An ``on_unreachable`` for commands (:class:`jobs.run.RunContext`): print ``error: <message>``
    and end the process now with the storage exit code (3). As safe as a kill -9: Delta commits
    are atomic, and the next run settles or removes what this one left."""
    from jobs.errors import StorageError

    logging.shutdown()
    flush_stderr()
    with contextlib.suppress(OSError):
        os.write(2, f"error: {message}\n".encode())
    os._exit(StorageError.exit_code)


def flush_stderr() -> None:
    """Before a process ends with ``os._exit``: everything written so far reaches the real
    stderr (the panic filter's pump would otherwise die holding the last lines)."""
    _restore_stderr()


def _pump(read_fd: int, out_fd: int) -> None:
    dropped: list[str] = []
    pending_blank = b""
    state = "pass"  # "pass" | "message" (the panic's one-line payload) | "trace"
    with os.fdopen(read_fd, "rb", buffering=0) as source:
        for raw in iter(source.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            header = _PANIC.match(line)
            if header and any(s in header["where"] for s in _STORE_PANIC_SOURCES):
                pending_blank, state = b"", "message"
                dropped.append(line)
                continue
            if state == "message":
                dropped[-1] += f" {line}"
                state = "trace"
                continue
            if state == "trace" and (line.startswith((_NOTE, "stack backtrace:")) or line[:1].isspace()):
                continue
            state = "pass"
            if not line.strip():
                os.write(out_fd, pending_blank)
                pending_blank = raw
                continue
            os.write(out_fd, pending_blank + raw)
            pending_blank = b""
        os.write(out_fd, pending_blank)
    for text in dropped:
        logging.getLogger("jobs.storage").debug(
            "object-store client panic (reported as the storage error): %s", text
        )
