"""The command line as a person uses it: real subprocesses, real files; the parser's help is
checked in this process (one real ``python -m jobs --help`` remains)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import COMMANDS, main
from jobs.cli.args import parser

REPO = Path(__file__).resolve().parents[1]  # cwd of the commands: ``-m infra...`` imports from it


def cli(*args: str, root: Path, module: str = "jobs", **env: str) -> subprocess.CompletedProcess[str]:
    lake = {f"LAKE_{layer.upper()}": str(root / layer) for layer in ("raw", "bronze", "silver", "gold")}
    full_env = {**os.environ, "LAKEHOUSE_ENV_FILE": "", **lake, **env}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    gen = cli("--scale", "0.01", "--days", "15", "--bad-lines", "5", root=root, module="infra.generator")
    assert gen.returncode == 0, gen.stderr
    run = cli("run", "--log-json", root=root)
    assert run.returncode == 0, run.stderr
    (root / "run.stdout").write_text(run.stdout)
    (root / "run.stderr").write_text(run.stderr)
    return root


def test_run_prints_a_summary_of_every_stage(built: Path) -> None:
    out = (built / "run.stdout").read_text()
    for stage in ("bronze", "silver", "gold", "export"):
        assert stage in out
    assert "quarantined" in out


def test_log_json_emits_json_lines_with_run_id_and_stage(built: Path) -> None:
    records = [
        json.loads(line) for line in (built / "run.stderr").read_text().splitlines() if line.startswith("{")
    ]
    assert records
    assert {r["stage"] for r in records} >= {"bronze", "silver", "gold", "export"}
    assert len({r["run_id"] for r in records}) == 1


def test_query_returns_csv_and_json_for_scripts(built: Path) -> None:
    sql = "SELECT count(*) AS n FROM gold.print_features"
    csv = cli("query", sql, "--format", "csv", root=built)
    assert csv.returncode == 0, csv.stderr
    n = int(csv.stdout.splitlines()[1])
    as_json = cli("query", sql, "--format", "json", root=built)
    assert json.loads(as_json.stdout) == [{"n": n}]
    silver = cli("query", "SELECT count(*) FROM silver.prints", "--format", "csv", root=built)
    assert int(silver.stdout.splitlines()[1]) == n


def test_quarantine_is_queryable_with_reasons(built: Path) -> None:
    res = cli("query", "SELECT count(*) AS n FROM bronze.quarantine", "--format", "csv", root=built)
    assert int(res.stdout.splitlines()[1]) == 15  # 5 bad lines per source


def test_second_run_is_a_no_op(built: Path) -> None:
    res = cli("run", root=built)
    assert res.returncode == 0
    assert res.stdout.count("nothing new") >= 3


def test_run_on_an_empty_local_lake_is_one_line_saying_how_to_get_raw_files(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    res = cli("run", root=tmp_path)
    assert res.returncode != 0
    assert res.stderr.strip().splitlines() == [
        f"error: no raw files under {tmp_path / 'raw'}: generate some with `make generate` "
        "(python -m infra.generator) or land files there"
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # the product never generates data itself
    missing = cli("run", root=tmp_path / "nowhere")  # no lake at all: one line naming LAKE_RAW
    assert missing.returncode == 2
    assert missing.stderr.startswith(
        f"error: no lake at {tmp_path / 'nowhere' / 'raw'} (LAKE_RAW does not exist)"
    )
    assert not (tmp_path / "nowhere").exists()


def test_missing_env_file_is_one_clear_error_line(tmp_path: Path) -> None:
    res = cli("run", "--env-file", str(tmp_path / "nope.env"), root=tmp_path)
    assert res.returncode != 0
    assert res.stderr.strip().splitlines() == [f"error: env file {tmp_path / 'nope.env'} not found"]


def test_invalid_setting_is_one_clear_error_line(tmp_path: Path) -> None:
    res = cli("gold", root=tmp_path, LOOKBACK_MODE="monthly")
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert "LOOKBACK_MODE" in res.stderr.upper()


def _empty_lake(root: Path) -> Path:
    """A lake nothing has written yet: its layer directories exist, no table does."""
    for layer in ("bronze", "silver", "gold"):
        (root / layer).mkdir(exist_ok=True)
    return root


def test_query_of_an_unknown_table_says_which_views_exist(tmp_path: Path) -> None:
    _empty_lake(tmp_path)
    res = cli("query", "SELECT * FROM gold.nope", root=tmp_path)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith("error: query failed:") and "available views:" in res.stderr
    assert "bronze.quarantine" in res.stderr and "gold.print_features" in res.stderr


def test_every_documented_view_exists_on_a_lake_nothing_has_written_yet(tmp_path: Path) -> None:
    _empty_lake(tmp_path)
    views = ["bronze.quarantine", "bronze.manifest", "bronze.prints", "silver.pays", "gold.print_features"]
    sql = " UNION ALL ".join(f"SELECT '{v}' AS view, count(*) AS n FROM {v}" for v in views)
    res = cli("query", sql, "--format", "csv", root=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[1:] == [f"{v},0" for v in views]
    columns = cli("query", "SELECT reason, raw_line FROM bronze.quarantine", "--format", "csv", root=tmp_path)
    assert columns.returncode == 0, columns.stderr  # the contract's columns, typed, no rows


def test_a_syntax_error_is_one_line_without_the_list_of_views(tmp_path: Path) -> None:
    res = cli("query", "SELEC 1", root=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "syntax error" in lines[0].lower(), res.stderr
    assert "available views" not in res.stderr


def test_a_table_cut_for_the_terminal_says_how_many_rows_it_shows(tmp_path: Path) -> None:
    _empty_lake(tmp_path)
    res = cli("query", "SELECT range AS n FROM range(120)", root=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "showing 50 of 120 rows" in res.stdout


def test_run_format_json_prints_one_object_for_scripts(built: Path) -> None:
    out = cli("run", "--format", "json", root=built)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert [s["stage"] for s in summary["stages"]] == ["bronze", "silver", "gold", "export"]
    assert all(s["skipped"] for s in summary["stages"][:3])  # nothing new since the build


def test_a_missing_env_file_named_anywhere_is_an_error(tmp_path: Path) -> None:
    out = cli("bronze", root=tmp_path, LAKEHOUSE_ENV_FILE=str(tmp_path / "nope.env"))
    assert out.returncode == 2
    assert (
        out.stderr.strip() == f"error: env file {tmp_path / 'nope.env'} not found (LAKEHOUSE_ENV_FILE): "
        "check the path, or unset it to use the defaults"
    )


def test_help_runs_as_a_real_process_with_the_exit_codes(tmp_path: Path) -> None:
    res = cli("--help", root=tmp_path)  # the one smoke test of the entry point's help
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: python -m jobs")
    assert "5 another run holds the lake lease" in " ".join(res.stdout.split())


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    """A command's help, from the parser in this process (argparse exits 0 after printing it)."""
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_version_and_exit_codes_are_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == "python -m jobs 0.1.0"
    assert "5 another run holds the lake lease" in " ".join(_help(capsys).split())


def test_every_command_has_a_handler_and_a_help(capsys: pytest.CaptureFixture[str]) -> None:
    [commands] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == set(COMMANDS)
    for command in COMMANDS:
        assert _help(capsys, command).startswith(f"usage: python -m jobs {command}"), command


def test_each_stage_help_says_what_it_does_and_lists_only_its_own_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gold_only = ("--lookback-mode", "--lookback-weeks")
    engine = ("--engine", "--scheduler")  # the stages that can run on Dask
    for command in ("bronze", "silver", "export", "query", "lease", "maintain"):
        helptext = _help(capsys, command)
        assert not [o for o in gold_only if o in helptext], command
    for command in ("export", "query", "lease", "maintain"):
        helptext = _help(capsys, command)
        assert not [o for o in engine if o in helptext], command
    for command in ("run", "gold"):
        helptext = _help(capsys, command)
        assert all(o in helptext for o in gold_only + engine), command
    for command in ("bronze", "silver"):
        helptext = _help(capsys, command)
        assert all(o in helptext for o in engine), command
    bronze = " ".join(_help(capsys, "bronze").split())
    assert "every line in bronze or in quarantine" in bronze


def test_make_help_lists_the_variables_a_user_may_set() -> None:
    out = subprocess.run(["make", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in ("STACK_ENV", "AIRFLOW_ENV", "ARGS", "DAYS", "SCALE", "STACK_PORT_OFFSET", "SQL"):
        assert f"  {name} " in out, name


def test_every_generator_option_has_help_text() -> None:
    from infra.generator.__main__ import _parser

    missing = [a.option_strings for a in _parser()._actions if a.option_strings and not a.help]
    assert missing == []


def test_the_stack_seed_command_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    from infra.stack.__main__ import main as stack

    with pytest.raises(SystemExit) as done:
        stack(["seed", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--env-file",
        "--debug",
        "--log-json",
        "--from",
        "--generate",
        "--scale",
        "--seed",
        "--start",
        "--gen-days",
        "--days",
        "--no-identities",
        "--buckets-only",
    ):
        assert f"{option} " in out or f"{option}\n" in out, option
