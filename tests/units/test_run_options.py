"""A run's options are read and checked in one place (jobs/options.py), whoever asks: the CLI's
arguments, an orchestrator's parameters and the settings give the same answers and errors."""

from __future__ import annotations

import argparse
from datetime import date

import pytest

from jobs.cli.args import parser
from jobs.errors import ConfigError
from jobs.options import PARAMS, RunOptions
from jobs.settings import load_settings


def test_the_cli_and_the_orchestrator_read_the_same_options() -> None:
    args = parser().parse_args(
        ["gold", "--weeks", "2020-11-18", "2020-11-02", "--lookback-mode", "rolling", "--lookback-weeks", "2"]
    )
    params = {"rebuild_weeks": "2020-11-02, 2020-11-18", "lookback_mode": "rolling", "lookback_weeks": 2}
    assert RunOptions.from_args(args) == RunOptions.from_params(params)
    assert RunOptions.from_args(args).rebuild == (date(2020, 11, 2), date(2020, 11, 18))


def test_an_engine_is_an_option_but_forces_no_run() -> None:
    args = parser().parse_args(["bronze", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:8786"])
    options = RunOptions.from_args(args)
    assert (options.engine, options.dask_scheduler) == ("dask", "tcp://127.0.0.1:8786")
    assert not options.forces_run
    assert options.overrides["engine"] == "dask"


@pytest.mark.parametrize("value", [0, 53, "many", 2.5, True])
def test_a_bad_lookback_is_one_line_from_every_caller(value: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_ENV_FILE", "")
    with pytest.raises(ConfigError) as cli:
        RunOptions.from_args(argparse.Namespace(lookback_weeks=value))
    with pytest.raises(ConfigError) as params:
        RunOptions.from_params({"lookback_weeks": value})
    with pytest.raises(ConfigError) as settings:
        load_settings(lookback_weeks=value)
    for raised in (cli, params, settings):
        assert "\n" not in str(raised.value) and "LOOKBACK_WEEKS" in str(raised.value)
    assert str(cli.value).startswith("--lookback-weeks: ")
    assert str(params.value).startswith("lookback_weeks: ")


def test_the_trigger_form_offers_the_bounds_the_options_check() -> None:
    spec = PARAMS["lookback_weeks"]
    RunOptions.from_params({"lookback_weeks": spec["minimum"]})
    RunOptions.from_params({"lookback_weeks": spec["maximum"]})
    with pytest.raises(ConfigError):
        RunOptions.from_params({"lookback_weeks": spec["maximum"] + 1})
    assert set(PARAMS) == set(RunOptions().describe())


def test_several_windows_read_the_same_from_every_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--lookback-weeks 3,1,4``, the run parameter and LOOKBACK_WEEKS give the windows in
    their order (the first is the primary window); one window is a tuple of one."""
    monkeypatch.setenv("LAKEHOUSE_ENV_FILE", "")
    args = parser().parse_args(["gold", "--lookback-weeks", "3,1,4"])
    assert RunOptions.from_args(args).lookback_weeks == (3, 1, 4)
    for value in ("3,1,4", " 3, 1 ,4 ", [3, 1, 4], ["3", "1", "4"]):
        assert RunOptions.from_params({"lookback_weeks": value}).lookback_weeks == (3, 1, 4)
    assert RunOptions.from_params({"lookback_weeks": 2}).lookback_weeks == (2,)
    assert RunOptions.from_params({"lookback_weeks": "3,1,4"}).describe()["lookback_weeks"] == "3,1,4"
    assert load_settings(lookback_weeks="3,1,4").lookback_weeks == (3, 1, 4)
    monkeypatch.setenv("LOOKBACK_WEEKS", "4,2")
    assert load_settings().lookback_weeks == (4, 2)
    assert load_settings(**RunOptions.from_args(args).overrides).lookback_weeks == (3, 1, 4)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("3,1,3", "window(s) 3 given twice in 3,1,3"),
        ("3,0", "0 is not between 1 and 52 weeks"),
        ("3,53", "53 is not between 1 and 52 weeks"),
        ("3,x", "'x' is not a whole number"),
        (",", "',' names no window"),
        ([], "no window given"),
    ],
)
def test_a_bad_list_of_windows_is_one_line_from_every_caller(
    value: object, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEHOUSE_ENV_FILE", "")
    if value != []:  # an empty list is "not set" for an option, but not a valid setting
        with pytest.raises(ConfigError) as cli:
            RunOptions.from_args(argparse.Namespace(lookback_weeks=value))
        assert str(cli.value) == f"--lookback-weeks: {why} (overrides LOOKBACK_WEEKS)"
        with pytest.raises(ConfigError) as params:
            RunOptions.from_params({"lookback_weeks": value})
        assert str(params.value) == f"lookback_weeks: {why} (overrides LOOKBACK_WEEKS)"
    with pytest.raises(ConfigError) as settings:
        load_settings(lookback_weeks=value)
    assert "\n" not in str(settings.value) and why in str(settings.value)


def test_the_trigger_form_accepts_a_list_of_windows_as_text() -> None:
    import re

    spec = PARAMS["lookback_weeks"]
    assert "string" in spec["type"] and "integer" in spec["type"]
    assert re.match(spec["pattern"], "3,1,4") and re.match(spec["pattern"], " 3, 1 ")
    assert not re.match(spec["pattern"], "3;1") and not re.match(spec["pattern"], "")
