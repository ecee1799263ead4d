"""The local stack's life cycle (``make stack-up`` / ``make stack-down``) on its own server."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from infra.stack.__main__ import down, up
from infra.stack.__main__ import main as stack_main
from infra.stack.console import Console
from infra.stack.weed import WeedPorts, WeedServer
from jobs.cli import main
from jobs.run import RunContext
from tests.integration.conftest import env_lines, stack_settings

pytestmark = pytest.mark.integration


def test_stack_up_twice_then_down_and_a_stopped_server_gives_one_clear_error_and_keeps_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAKEHOUSE_ENV_FILE", raising=False)  # --env-file sets it; undone after
    settings = stack_settings(tmp_path / "stack", WeedPorts.free())
    server = WeedServer.from_settings(settings)
    env_file = tmp_path / "stack.env"
    env_file.write_text(env_lines(settings))
    try:
        up(settings, scale=0.01, days=3)
        first = capsys.readouterr().out
        assert "started weed mini" in first and "uploaded 9" in first
        assert server.endpoint in first and "only open door" in first  # no file browser
        up(settings, scale=0.01, days=3)
        again = capsys.readouterr().out
        assert "already running" in again and "uploaded 0" in again and "skipped 9" in again
        # the seed command wires the running server's identity step in
        assert (
            stack_main(
                ["seed", "--env-file", str(env_file), "--generate", "--scale", "0.01", "--gen-days", "3"]
            )
            == 0
        )
        seeded = capsys.readouterr().out
        assert "identities: admin, pipeline, analyst match" in seeded
        assert "uploaded 0" in seeded and "skipped 9" in seeded

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
        Console.of(server).stop(timeout=5)  # stack-up starts the bucket console too
        server.stop(timeout=5)


def test_layers_as_prefixes_of_one_bucket_get_prefix_scoped_grants(tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    from infra.stack.seed import SeedOptions, seed_lake
    from infra.stack.weed import apply_identities, check_identities
    from jobs.storage import Storage
    from tests.integration.conftest import start_server

    server, _ = start_server(tmp_path / "stack")
    try:
        settings = stack_settings(
            server.directory,
            server.ports,
            **{f"lake_{layer}": f"s3://lake/{layer}" for layer in ("raw", "bronze", "silver", "gold")},
        )
        raw = tmp_path / "raw" / "prints"
        raw.mkdir(parents=True)
        (raw / "a.json").write_text("{}\n")
        assert "reloaded" in apply_identities(settings)  # the explicit step, then the seed
        report = seed_lake(settings, SeedOptions(source=tmp_path / "raw"), identities=check_identities)
        assert report.buckets_created == ["lake"] and "match" in report.identities

        ctx = RunContext(settings)  # the pipeline identity writes a table under lake/gold
        frame = pl.DataFrame({"n": [1]})
        gold = ctx.gold("probe")
        assert ctx.lake.write(gold, frame, schema=frame.schema) == 0
        pipeline = Storage(settings).s3_client()
        with pytest.raises(ClientError, match="AccessDenied"):
            pipeline.put_object(Bucket="lake", Key="raw/prints/b.json", Body=b"{}")

        analyst = Storage(settings).for_identity("analyst")
        assert analyst.s3_client().list_objects_v2(Bucket="lake", Prefix="gold/")["KeyCount"]
        from jobs.tables import Lake

        assert Lake(analyst).version(gold) == 0
        for key in ("raw/prints/a.json", "bronze/anything"):
            with pytest.raises(ClientError, match="AccessDenied"):
                analyst.s3_client().get_object(Bucket="lake", Key=key)
    finally:
        server.stop(timeout=5)
