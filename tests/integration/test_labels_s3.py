"""``python -m jobs features`` on a real S3 server (SeaweedFS): label files and the output on
the lake's object store, CSV and Parquet, equal to the same labels read from local disk."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from infra.generator import generate
from infra.stack.seed import SeedOptions, seed_lake
from jobs.cli import main
from jobs.pipeline import run_all
from jobs.run import RunContext
from jobs.settings import Settings
from jobs.storage import Storage, join
from tests.integration.conftest import S3Stack

pytestmark = pytest.mark.integration

START = date(2020, 11, 1)


@pytest.fixture(scope="module")
def built(s3: S3Stack, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    raw = tmp_path_factory.mktemp("raw")
    generate(out_dir=raw, scale=0.01, start=START, days=10)
    settings = s3.lake("labels")
    seed_lake(settings, SeedOptions(source=raw, identities=False))
    run_all(RunContext(settings))
    return settings


def test_labels_and_output_on_the_object_store(
    s3: S3Stack, built: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prints = RunContext(built).lake.scan(join(built.lake_silver, "prints")).collect()
    labels = (
        prints.select("user_id", "value_prop", "day")
        .head(30)
        .with_columns(pl.col("day") + timedelta(days=7), pl.int_range(30).alias("row"))
    )
    storage = Storage(built)
    fs = storage.filesystem(built.export_uri)
    local = tmp_path / "labels.parquet"
    labels.write_parquet(local)
    labels.write_csv(tmp_path / "labels.csv")
    where = join(built.export_uri, "ml")
    assert where.startswith("s3://")
    fs.put_file(str(local), storage.strip_protocol(join(where, "labels.parquet")))
    fs.put_file(str(tmp_path / "labels.csv"), storage.strip_protocol(join(where, "labels.csv")))
    env_file = s3.env_file(built, tmp_path / "lake.env")

    def features(labels_uri: str, out: str) -> None:
        assert main(["features", "--labels", labels_uri, "--out", out, "--env-file", str(env_file)]) == 0
        assert "wrote 30 label row(s)" in capsys.readouterr().out

    features(str(local), str(tmp_path / "local.parquet"))
    features(join(where, "labels.parquet"), join(where, "train.parquet"))
    features(join(where, "labels.csv"), join(where, "train.csv"))
    expected = pl.read_parquet(tmp_path / "local.parquet")
    assert expected["prior_views"].sum() > 0
    with fs.open(storage.strip_protocol(join(where, "train.parquet")), "rb") as f:
        assert_frame_equal(pl.read_parquet(f), expected)
    with fs.open(storage.strip_protocol(join(where, "train.csv")), "rb") as f:
        assert_frame_equal(pl.read_csv(f, schema=expected.schema), expected)
    assert not [p for p in fs.ls(storage.strip_protocol(where)) if ".tmp-" in p]
