"""The local stack's life cycle (``make stack-up`` / ``make stack-down``) on its own server."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from jobs.cli import main
from jobs.run import RunContext
from jobs.stack import WeedPorts, WeedServer, down, up
from tests.integration.conftest import env_lines, stack_settings

pytestmark = pytest.mark.integration


def test_stack_up_twice_then_down_and_a_stopped_server_gives_one_clear_error_and_keeps_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = stack_settings(tmp_path / "stack", WeedPorts.free())
    server = WeedServer.from_settings(settings)
    env_file = tmp_path / "stack.env"
    env_file.write_text(env_lines(settings))
    try:
        up(settings, scale=0.01, days=3)
        first = capsys.readouterr().out
        assert "started weed mini" in first and "uploaded 9" in first
        assert server.endpoint in first and server.filer_url in first
        up(settings, scale=0.01, days=3)
        again = capsys.readouterr().out
        assert "already running" in again and "uploaded 0" in again and "skipped 9" in again

        ctx = RunContext(settings)  # a table of the pipeline identity (cheaper than a run)
        table = ctx.silver("probe")
        frame = pl.DataFrame({"n": [1, 2, 3]})
        version = ctx.lake.write(table, frame, schema=frame.schema)
        assert version == 0

        down(settings)
        assert "stopped weed" in capsys.readouterr().out
        assert server.pid() is None
        code = main(["run", "--env-file", str(env_file)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 3
        assert err[-1].startswith(f"error: cannot reach the object store at {server.endpoint}")
        assert "make stack-up" in err[-1] and not any("Traceback" in line for line in err)
        down(settings)
        assert "not running" in capsys.readouterr().out

        up(settings, seed=False)  # data survives a restart; nothing was half-written
        assert RunContext(settings).lake.version(table) == version
    finally:
        server.stop(timeout=5)
