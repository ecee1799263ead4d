"""`airflow dags test lakehouse` end to end on the SeaweedFS stack, as `make dag-test` runs it.

One small generated data set (scale 0.01, 15 days): 14 days seeded first, the 15th trickled in
later. The tests run in order and share one AIRFLOW_HOME and one lake, like consecutive ticks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from infra.generator import generate
from infra.stack.seed import SeedOptions, seed_lake
from infra.stack.weed import WeedServer
from jobs.pipeline import run_all
from jobs.run import RunContext
from jobs.schemas import GOLD_TABLE
from jobs.settings import Settings
from tests.airflow.conftest import SCALE, START, AirflowHome, DagRun, make_home
from tests.conftest import table_versions as versions
from tests.integration.conftest import S3Stack, stack_settings, start_server
from tests.reference import canonical, reference_gold
from tests.test_generated_data_end_to_end import read_clean_raw

pytestmark = pytest.mark.integration

DAYS = 15
STAGES = ("bronze", "silver", "gold", "export")


def gold_of(settings: Settings) -> pl.DataFrame:
    ctx = RunContext(settings)
    return canonical(ctx.lake.scan(ctx.gold(GOLD_TABLE)).collect())


def expected_gold(raw: Path, n_days: int) -> pl.DataFrame:
    """The brute-force reference over the first ``n_days`` of the raw files."""
    last = START + timedelta(days=n_days - 1)
    ev = {s: f.filter(pl.col("day") <= last) for s, f in read_clean_raw(raw).items()}
    return canonical(reference_gold(ev["prints"], ev["taps"], ev["pays"], mode="calendar", n_weeks=3))


def describe(run: DagRun) -> str:
    return f"{run.state} {run.states} rc={run.returncode}\n{run.output[-6000:]}"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    generate(out_dir=out, scale=SCALE, start=START, days=DAYS)
    return out


@pytest.fixture(scope="module")
def lake(s3: S3Stack, raw: Path) -> Settings:
    settings = s3.lake("airflow-dags-test")
    report = seed_lake(settings, SeedOptions(source=raw, days=DAYS - 1, identities=False))
    assert report.uploaded == 3 * (DAYS - 1)
    return settings


@pytest.fixture(scope="module")
def home(lake: Settings, s3: S3Stack, tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    directory = tmp_path_factory.mktemp("airflow-home")
    lake_env = s3.env_file(lake, directory / "lake.env")
    return make_home(directory, lake_env)


def test_first_run_builds_gold_equal_to_the_reference(home: AirflowHome, lake: Settings, raw: Path) -> None:
    run = home.dags_test()
    assert run.returncode == 0 and run.state == "success", describe(run)
    assert run.states == dict.fromkeys(("detect", *STAGES), "success")
    # every task hands back its summary as XCom
    detect = run.xcoms["detect"]
    assert detect["proceed"] and detect["pending_files"] == dict.fromkeys(
        ("prints", "taps", "pays"), DAYS - 1
    )
    assert run.xcoms["bronze"]["files"] == 3 * (DAYS - 1)
    assert run.xcoms["silver"]["rows_out"] == run.xcoms["bronze"]["rows_out"] > 0
    assert run.xcoms["gold"]["full"] is True
    assert run.xcoms["export"]["files"] == 2
    assert len({x["run_id"] for x in run.xcoms.values() if "run_id" in x}) == 1
    assert_frame_equal(gold_of(lake), expected_gold(raw, DAYS - 1))


def test_second_run_skips_every_stage_and_writes_no_version(home: AirflowHome, lake: Settings) -> None:
    before = versions(lake)
    run = home.dags_test()
    assert run.returncode == 0 and run.state == "success", describe(run)
    assert run.states == {"detect": "success", **dict.fromkeys(STAGES, "skipped")}
    assert "nothing new under" in run.output
    assert versions(lake) == before


def test_a_trickled_day_updates_only_the_affected_weeks(
    home: AirflowHome, lake: Settings, raw: Path, tmp_path: Path
) -> None:
    before = gold_of(lake)
    report = seed_lake(lake, SeedOptions(source=raw, days=1, identities=False))
    assert report.days == [(START + timedelta(days=DAYS - 1)).isoformat()]
    run = home.dags_test()
    assert run.returncode == 0 and run.state == "success", describe(run)
    assert run.states == dict.fromkeys(("detect", *STAGES), "success")
    assert run.xcoms["bronze"]["files"] == 3
    # 2020-11-15 is a Sunday: its week is 2020-11-09, and no later week has prints
    gold = run.xcoms["gold"]
    assert (gold["weeks"], gold["full"]) == (["2020-11-09"], False)
    after = gold_of(lake)
    untouched = pl.col("week_start") < pl.date(2020, 11, 9)
    assert_frame_equal(after.filter(untouched), before.filter(untouched))
    assert_frame_equal(after, expected_gold(raw, DAYS))
    # ... and equal to gold computed by the pipeline directly, in one run, on local disk
    local = Settings(
        _env_file=None,
        lake_raw=str(raw),  # type: ignore[call-arg]
        **{f"lake_{x}": str(tmp_path / x) for x in ("bronze", "silver", "gold")},
    )
    run_all(RunContext(local))
    assert_frame_equal(after, gold_of(local))


@pytest.fixture
def stopped_store(tmp_path: Path) -> Iterator[Settings]:
    """Settings of an object store that was running and has been stopped."""
    server, _ = start_server(tmp_path / "weed")
    server.stop(timeout=5)
    assert WeedServer(server.directory, server.ports).pid() is None
    yield stack_settings(
        server.directory,
        server.ports,
        **{f"lake_{x}": f"s3://{x}/gone" for x in ("raw", "bronze", "silver", "gold")},
    )


def test_with_the_store_stopped_the_run_fails_naming_the_endpoint(
    s3: S3Stack, stopped_store: Settings, tmp_path: Path, home: AirflowHome
) -> None:
    lake_env = s3.env_file(stopped_store, tmp_path / "stopped.env")
    broken = AirflowHome(home.home, lake_env, home.overrides)
    run = broken.dags_test(LAKEHOUSE_RETRIES="1", LAKEHOUSE_RETRY_DELAY_SECONDS="1")
    assert run.returncode != 0 and run.state == "failed", describe(run)
    assert run.states["detect"] == "failed"
    assert run.tries["detect"] == 2  # retried once (unreachable is worth a retry), then failed
    assert {run.states[s] for s in STAGES} == {"upstream_failed"}
    endpoint = stopped_store.aws_endpoint_url
    message = (
        f"detect failed: cannot reach the object store at {endpoint} (for s3://bronze/gone/"
        "_manifest): check AWS_ENDPOINT_URL and that the server is running (make stack-up)"
    )
    assert message in run.output, run.output[-4000:]
