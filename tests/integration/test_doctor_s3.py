"""doctor on a real S3 server (SeaweedFS ``weed mini``) as the pipeline identity: a half-written
gold commit and a deleted bronze data file are found, repaired, and one run makes gold right."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from infra.generator import generate
from infra.stack.seed import SeedOptions, seed_lake
from jobs.cli import main
from jobs.pipeline import run_all
from jobs.run import RunContext
from jobs.schemas import GOLD, GOLD_TABLE
from jobs.settings import Settings
from tests.integration.conftest import S3Stack

pytestmark = pytest.mark.integration


def gold_of(settings: Settings) -> pl.DataFrame:
    ctx = RunContext(settings)
    return ctx.lake.scan(ctx.gold(GOLD_TABLE)).collect().sort(list(GOLD.names()))


def cli(capsys: pytest.CaptureFixture[str], env_file: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--env-file", str(env_file)])
    out = capsys.readouterr()
    return code, out.out, out.err


def bucket_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    out = tmp_path / "raw"
    generate(out_dir=out, seed=3, scale=0.005, start=date(2020, 11, 2), days=4, bad_lines=4)
    return out


def test_on_s3_a_half_gold_commit_and_a_lost_bronze_data_file_are_repaired_and_gold_is_right_again(
    s3: S3Stack, raw_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = s3.lake()
    seed_lake(settings, SeedOptions(source=raw_dir, identities=False))
    ctx = RunContext(settings)
    run_all(ctx)
    client = ctx.storage.s3_client()
    bucket, key = bucket_key(f"{ctx.gold(GOLD_TABLE)}/_delta_log/{0:020d}.json")
    payload = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=payload[: len(payload) // 2])
    data_file = sorted(ctx.lake.open(ctx.bronze("prints")).file_uris())[0]
    bucket, key = bucket_key(data_file)
    client.delete_object(Bucket=bucket, Key=key)
    env = s3.env_file(settings, tmp_path / "pipeline.env")

    code, _, err = cli(capsys, env, "run")
    assert code == 8, err
    damaged = (
        f"error: table gold/print_features is damaged: commit file _delta_log/{0:020d}.json cannot be parsed"
    )
    assert damaged in err and err.rstrip().endswith("run python -m jobs doctor"), err
    code, out, _ = cli(capsys, env, "doctor")
    assert code == 8, out
    assert "gold/print_features: commit file(s) 0 cannot be parsed" in out, out
    assert "bronze/prints: 1 data file(s) named by the log are missing" in out, out
    code, out, err = cli(capsys, env, "doctor", "--repair")
    assert code == 0, out + err
    code, _, err = cli(capsys, env, "run")
    assert code == 0, err
    code, out, _ = cli(capsys, env, "doctor")
    assert code == 0, out

    local = Settings(  # type: ignore[call-arg]
        _env_file=None,
        lake_raw=str(raw_dir),
        **{f"lake_{layer}": str(tmp_path / "local" / layer) for layer in ("bronze", "silver", "gold")},
    )
    run_all(RunContext(local))
    assert_frame_equal(gold_of(settings), gold_of(local))
