"""jobs.orchestration, what the DAG's tasks call: params, the short-circuit decision, summaries."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import pytest

from jobs.errors import (
    AccessDenied,
    BucketMissing,
    ConfigError,
    CredentialsRejected,
    DataError,
    StorageError,
    StoreUnreachable,
)
from jobs.options import RunOptions
from jobs.orchestration import RunIdentity, detect, is_transient, run_stage_task
from jobs.settings import load_settings
from tests.conftest import LocalLake, days

D = date(2020, 11, 2)  # a Monday


@pytest.fixture
def lake_env(lake: LocalLake, monkeypatch: pytest.MonkeyPatch) -> LocalLake:
    """The orchestration reads settings like the tasks do: from the environment."""
    for layer in ("raw", "bronze", "silver", "gold"):
        monkeypatch.setenv(f"LAKE_{layer.upper()}", str(lake.root / layer))
    return lake


def land_week(lake: LocalLake, start: date, name: str) -> None:
    lake.land_events("prints", [(d, 1, "cash", 1) for d in days(start, 7)], f"{name}.json")
    lake.land_events("taps", [(start, 1, "cash", 1)], f"{name}.json")
    lake.land_pays([(start, "10.50", 1, "cash")], f"{name}.csv")


# -- params ---------------------------------------------------------------------------------------
def test_empty_params_request_nothing() -> None:
    for params in (
        None,
        {},
        {"rebuild_weeks": [], "full_rebuild": False, "lookback_mode": None, "lookback_weeks": None},
    ):
        request = RunOptions.from_params(params)
        assert request == RunOptions()
        assert not request.forces_run


def test_params_are_parsed_and_force_a_run() -> None:
    request = RunOptions.from_params(
        {"rebuild_weeks": ["2020-11-04", "2020-11-02", "2020-11-04"], "full_rebuild": False}
    )
    assert request.rebuild == (date(2020, 11, 2), date(2020, 11, 4))
    assert request.forces_run
    # the trigger form may hand over one string
    assert RunOptions.from_params({"rebuild_weeks": "2020-11-02, 2020-11-09"}).rebuild == (
        date(2020, 11, 2),
        date(2020, 11, 9),
    )
    assert RunOptions.from_params({"full_rebuild": True}).forces_run
    override = RunOptions.from_params({"lookback_mode": "rolling", "lookback_weeks": "2"})
    assert (override.lookback_mode, override.lookback_weeks) == ("rolling", (2,))
    assert load_settings(**override.overrides).lookback_mode == "rolling"
    assert load_settings(**override.overrides).lookback_weeks == (2,)
    windows = RunOptions.from_params({"lookback_weeks": "3,1,4"})
    assert load_settings(**windows.overrides).lookback_weeks == (3, 1, 4)
    assert windows.describe()["lookback_weeks"] == "3,1,4"
    json.dumps(override.describe())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rebuild_weeks": ["last week"]}, "rebuild_weeks: 'last week' is not a date"),
        ({"lookback_mode": "sliding"}, "lookback_mode: 'sliding'"),
        ({"lookback_weeks": "many"}, "lookback_weeks: 'many' is not a whole number"),
        ({"lookback_weeks": "3,1,3"}, "lookback_weeks: window(s) 3 given twice in 3,1,3"),
    ],
)
def test_bad_params_are_one_line_config_errors(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        RunOptions.from_params(params)


def test_out_of_range_lookback_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="LOOKBACK_WEEKS"):
        load_settings(**RunOptions.from_params({"lookback_weeks": 99}).overrides)


# -- run ids --------------------------------------------------------------------------------------
def test_every_task_of_one_orchestrator_run_shares_one_pipeline_run_id() -> None:
    started = datetime(2026, 11, 22, 5, 30, tzinfo=UTC)
    a = RunIdentity("scheduled__2026-11-22T05:30:00+00:00", started).context(load_settings())
    b = RunIdentity("scheduled__2026-11-22T05:30:00+00:00", started).context(load_settings())
    c = RunIdentity("manual__2026-11-22T05:31:00+00:00", started).context(load_settings())
    assert a.run_id == b.run_id != c.run_id
    assert re.fullmatch(r"20261122T053000Z-[0-9a-f]{8}", a.run_id)
    assert a.started_at == started


# -- the short-circuit decision ------------------------------------------------------------------
def test_nothing_landed_means_no_run(lake_env: LocalLake) -> None:
    found = detect({})
    assert not found.proceed
    assert found.as_dict()["pending_files"] == {"prints": 0, "taps": 0, "pays": 0}


def test_new_files_then_nothing_new_then_a_forced_rebuild(lake_env: LocalLake) -> None:
    land_week(lake_env, D, "w1")
    found = detect({})
    assert found.proceed
    assert found.pending_files == {"prints": 1, "taps": 1, "pays": 1}
    assert found.reasons == ["new raw files: prints 1, taps 1, pays 1"]

    summaries = {s: run_stage_task(s, {}) for s in ("bronze", "silver", "gold", "export")}
    assert all(not s["skipped"] for s in summaries.values())
    json.dumps(summaries)  # what Airflow stores as XCom
    assert summaries["gold"]["weeks"] == ["2020-11-02"]
    # the data-quality gate runs inside the stage; its summary travels with the XCom
    assert summaries["gold"]["quality"]["checks"] > 0
    assert summaries["gold"]["quality"]["failed"] == []

    assert not detect({}).proceed
    forced = detect({"rebuild_weeks": ["2020-11-05"]})
    assert forced.proceed and forced.reasons[0].startswith("requested:")
    versions = lake_env.versions()
    rerun = run_stage_task("gold", {"rebuild_weeks": ["2020-11-05"]})
    assert rerun["weeks"] == ["2020-11-02"] and rerun["full"] is False
    assert lake_env.versions()["gold/print_features"] == versions["gold/print_features"] + 1
    assert run_stage_task("bronze", {})["skipped"]


def test_work_left_by_a_failed_run_is_picked_up(lake_env: LocalLake) -> None:
    land_week(lake_env, D, "w1")
    run_stage_task("bronze", {})  # the run stopped here: silver never ran
    assert detect({}).reasons == ["bronze rows not in silver yet: prints, taps, pays"]
    run_stage_task("silver", {})
    assert detect({}).reasons == ["gold not built yet"]
    run_stage_task("gold", {})
    assert detect({}).reasons[0].endswith("not exported yet")
    run_stage_task("export", {})
    assert not detect({}).proceed


def test_changed_lookback_settings_mean_a_run(lake_env: LocalLake, monkeypatch: pytest.MonkeyPatch) -> None:
    land_week(lake_env, D, "w1")
    for stage in ("bronze", "silver", "gold", "export"):
        run_stage_task(stage, {})
    monkeypatch.setenv("LOOKBACK_WEEKS", "2")
    assert detect({}).reasons == ["lookback settings changed since gold was built"]
    monkeypatch.setenv("LOOKBACK_WEEKS", "3,1")  # the same primary window, one more window
    assert detect({}).reasons == ["lookback settings changed since gold was built"]
    monkeypatch.setenv("LOOKBACK_WEEKS", " 3 ")  # the windows gold was built with
    assert not detect({}).proceed


def test_detect_logs_the_plan_and_returns_it_in_its_xcom(
    lake_env: LocalLake, caplog: pytest.LogCaptureFixture
) -> None:
    land_week(lake_env, D, "w1")
    before = lake_env.versions()
    with caplog.at_level("INFO", logger="jobs.orchestration"):
        summary = detect({"rebuild_weeks": ["2020-11-04"]}).as_dict()
    json.dumps(summary)  # what Airflow stores as XCom
    plan = summary["plan"]
    assert plan["bronze"]["prints"]["ingest"] == ["prints/w1.json"]
    assert plan["gold"]["weeks"] == ["2020-11-02"]
    assert plan["options"]["rebuild_weeks"] == ["2020-11-04"]
    assert "plan of this run:" in caplog.text and "gold: 1 week(s)" in caplog.text
    assert lake_env.versions() == before  # detect writes nothing
    for stage in ("bronze", "silver", "gold", "export"):
        run_stage_task(stage, {})
    idle = detect({}).as_dict()
    assert not idle["proceed"] and idle["plan"] is None  # a no-op tick pays for no plan


# -- failures -------------------------------------------------------------------------------------
def test_only_an_unreachable_store_is_worth_a_retry() -> None:
    assert is_transient(StoreUnreachable("down"))
    assert is_transient(StorageError("flaky"))
    assert is_transient(RuntimeError("a bug"))
    for exc in (
        CredentialsRejected("x"),
        AccessDenied("x"),
        BucketMissing("x"),
        ConfigError("x"),
        DataError("x"),
    ):
        assert not is_transient(exc)


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        run_stage_task("platinum", {})
