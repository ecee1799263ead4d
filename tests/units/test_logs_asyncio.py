"""The CLI's logging drops asyncio's "exception was never retrieved" noise of a dead store."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator

import pytest
from aiohttp.client_exceptions import ClientConnectionResetError

from jobs import logs


def _orphan_failed_task(exc: BaseException) -> None:
    async def fail() -> None:
        raise exc

    loop = asyncio.new_event_loop()
    try:
        loop.create_task(fail())  # noqa: RUF006 (an orphan task is the point)
        loop.run_until_complete(asyncio.sleep(0))  # the task fails; nobody retrieves it
    finally:
        loop.close()
    gc.collect()  # asyncio logs "Task exception was never retrieved" when the task is collected


@pytest.fixture
def configured() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure(fmt="text", level="INFO")
    yield
    root.handlers[:], root.level = handlers, level


def test_a_dead_store_connection_error_of_an_orphan_task_prints_no_traceback(
    configured: None, capfd: pytest.CaptureFixture[str]
) -> None:
    _orphan_failed_task(ClientConnectionResetError("Cannot write to closing transport"))
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "never retrieved" not in err


def test_any_other_orphan_task_error_is_still_logged(
    configured: None, capfd: pytest.CaptureFixture[str]
) -> None:
    _orphan_failed_task(ValueError("a bug"))
    err = capfd.readouterr().err
    assert "never retrieved" in err
    assert "ValueError: a bug" in err
