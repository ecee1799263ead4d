"""The query sandbox on a local lake: every write form and every read outside the lake is
refused in one line and leaves nothing behind, and DuckDB itself (not the statement check)
refuses what reaches outside. The same table runs on S3 as both identities in
tests/integration/test_query_sandbox_s3.py."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from jobs.errors import PipelineError
from jobs.query import connect, init_sql, run_query, sandboxed
from jobs.query.statements import one_reading_statement
from jobs.run import RunContext
from jobs.schemas import GOLD, GOLD_TABLE
from jobs.settings import Settings

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Form:
    """A statement the query command must refuse. ``{target}`` is a file inside the lake's gold
    location, ``{secret}`` a readable file outside the lake, ``{url}`` a local port.
    ``duckdb_refuses``: DuckDB's settings refuse it on their own (the statement check aside);
    the others only touch this process's throw-away in-memory catalog."""

    name: str
    sql: str
    duckdb_refuses: bool = True
    passes_the_check: bool = False  # the friendly check lets it through: DuckDB alone stops it


FORMS = [
    Form("copy", "COPY (SELECT 1 AS x) TO '{target}'"),
    Form("explain-analyze-copy", "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{target}'", passes_the_check=True),
    Form(
        "copy-to-memory-file", "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO ':memory:.wal'", passes_the_check=True
    ),
    Form("attach-file", "ATTACH '{target}.duckdb' AS other"),
    Form("create-as", "CREATE TABLE t AS SELECT 1 AS x", duckdb_refuses=False),
    Form("insert", "INSERT INTO gold.print_features SELECT * FROM gold.print_features"),
    Form("set", "SET enable_external_access = true"),
    Form("pragma", "PRAGMA threads = 1"),
    Form("reset", "RESET lock_configuration"),
    Form("export", "EXPORT DATABASE '{target}.d'"),
    Form("install", "INSTALL httpfs"),
    Form("multi-statement", "SELECT 1; COPY (SELECT 1 AS x) TO '{target}'"),
    Form("read-text-outside", "SELECT * FROM read_text('{secret}')", passes_the_check=True),
    Form("read-csv-url", "SELECT * FROM read_csv('{url}')", passes_the_check=True),
    Form(
        "read-lake-file", "SELECT * FROM read_text('{target_dir}/_delta_log/*.json')", passes_the_check=True
    ),
    Form("glob", "SELECT * FROM glob('/etc/*')", passes_the_check=True),
    Form(
        "explain-analyze-read", "EXPLAIN ANALYZE SELECT * FROM read_text('{secret}')", passes_the_check=True
    ),
]


def settings_of(root: Path) -> Settings:
    return Settings(
        _env_file=None,
        lake_raw=str(root / "raw"),  # type: ignore[call-arg]
        **{f"lake_{layer}": str(root / layer) for layer in ("bronze", "silver", "gold")},
    )


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A lake with its layer directories and one (empty) gold table written."""
    root = tmp_path_factory.mktemp("sandbox")
    for layer in ("bronze", "silver", "gold"):
        (root / layer).mkdir()
    settings = settings_of(root)
    pl.DataFrame(schema=GOLD).write_delta(RunContext(settings).gold(GOLD_TABLE))
    (root / "secret.env").write_text("ADMIN_SECRET_ACCESS_KEY=do-not-read\n")
    return settings


def values(settings: Settings) -> dict[str, str]:
    gold = RunContext(settings).gold(GOLD_TABLE)
    return {
        "target": f"{settings.lake_gold}/_audit/x.csv",
        "target_dir": gold,
        "secret": str(Path(settings.lake_gold).parent / "secret.env"),
        "url": "http://127.0.0.1:9/metrics",
    }


def written(settings: Settings) -> list[str]:
    """Files in the lake's gold location that are not the table's own."""
    root = Path(settings.lake_gold)
    return [str(p) for p in root.rglob("*") if p.is_file() and GOLD_TABLE not in p.parts]


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_every_form_is_refused_in_one_line_and_writes_nothing(lake: Settings, form: Form) -> None:
    with pytest.raises(PipelineError) as refused:
        run_query(RunContext(lake), form.sql.format(**values(lake)))
    message = str(refused.value)
    assert "\n" not in message and message.startswith("query refused:"), message
    assert "do-not-read" not in message
    assert written(lake) == [] and not list(Path.cwd().glob(":memory:*"))


@pytest.mark.parametrize("form", [f for f in FORMS if f.duckdb_refuses], ids=lambda f: f.name)
def test_duckdb_itself_refuses_every_form_that_reaches_outside(lake: Settings, form: Form) -> None:
    """Past the statement check, straight on the sandboxed connection: DuckDB's settings."""
    con = connect(RunContext(lake))
    with pytest.raises(duckdb.Error) as refused:
        con.execute(form.sql.format(**values(lake))).fetchall()
    assert "do-not-read" not in str(refused.value)
    assert written(lake) == []


@pytest.mark.parametrize("form", [f for f in FORMS if f.passes_the_check], ids=lambda f: f.name)
def test_a_form_the_statement_check_lets_through_is_refused_by_duckdb(lake: Settings, form: Form) -> None:
    sql = form.sql.format(**values(lake))
    with sandboxed() as bare:
        one_reading_statement(bare, sql)  # no objection here ...
    with pytest.raises(PipelineError, match=r"^query refused: .*\(DuckDB: Permission Error"):
        run_query(RunContext(lake), sql)  # ... DuckDB's settings refuse it


def test_the_connection_is_closed_in_by_its_settings(lake: Settings) -> None:
    con = connect(RunContext(lake))
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'lock_configuration', 'allowed_directories', 'allowed_paths', 'temp_directory', "
            "'autoload_known_extensions', 'autoinstall_known_extensions')"
        ).fetchall()
    )
    assert settings["enable_external_access"] == "false" and settings["lock_configuration"] == "true"
    assert settings["allowed_directories"] == "[]" and settings["allowed_paths"] == "[]"
    assert settings["temp_directory"] == ""
    assert settings["autoload_known_extensions"] == "false" == settings["autoinstall_known_extensions"]


def test_why_not_allowed_directories_duckdb_writes_where_it_may_read(tmp_path: Path) -> None:
    """The reason the lake reaches DuckDB as Arrow datasets, not through allowed_directories."""
    con = duckdb.connect()
    con.execute(f"SET allowed_directories = ['{tmp_path}/']")
    con.execute("SET enable_external_access = false")
    con.execute(f"COPY (SELECT 1 AS x) TO '{tmp_path}/written.csv'")
    assert (tmp_path / "written.csv").exists()


def test_every_view_still_reads(lake: Settings) -> None:
    ctx = RunContext(lake)
    views = ["gold.print_features", "print_features", "gold.quality_results", "silver.prints", "silver.taps"]
    views += [
        "silver.pays",
        "bronze.prints",
        "bronze.taps",
        "bronze.pays",
        "bronze.quarantine",
        "bronze.manifest",
    ]
    sql = " UNION ALL ".join(f"SELECT '{v}' AS v, count(*) AS n FROM {v}" for v in views)
    assert run_query(ctx, sql).rows() == [(v, 0) for v in views]
    assert run_query(ctx, "SELECT * FROM gold.print_features").columns == list(GOLD.names())


# -- the real command line ------------------------------------------------------------------
def cli(*args: str, root: Path, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    lake = {f"LAKE_{layer.upper()}": str(root / layer) for layer in ("raw", "bronze", "silver", "gold")}
    return subprocess.run(
        [sys.executable, "-m", "jobs", "query", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "LAKEHOUSE_ENV_FILE": "", **lake, **env},
        timeout=120,
        cwd=cwd,
    )


def one_line(res: subprocess.CompletedProcess[str], code: int = 2) -> str:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code and len(lines) == 1, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    return lines[0]


SUBSET = [
    "explain-analyze-copy",
    "copy-to-memory-file",
    "read-text-outside",
    "read-csv-url",
    "set",
    "attach-file",
    "multi-statement",
]


@pytest.mark.parametrize("name", SUBSET)
def test_the_command_refuses_in_one_line_exit_2(lake: Settings, tmp_path: Path, name: str) -> None:
    form = next(f for f in FORMS if f.name == name)
    root = Path(lake.lake_gold).parent
    sql = form.sql.format(**(values(lake) | {"target": "x.csv"}))  # relative: the working directory
    line = one_line(cli(sql, root=root, cwd=tmp_path))
    assert line.startswith("error: query refused:") and "do-not-read" not in line
    assert list(tmp_path.iterdir()) == [] and written(lake) == []


@pytest.mark.parametrize("sql", ["", "   ", "-- only a comment", "/* a comment */ ;"])
def test_empty_sql_or_only_comments_is_one_line(lake: Settings, sql: str) -> None:
    line = one_line(cli(sql, root=Path(lake.lake_gold).parent))
    assert "no SQL statement given" in line


def test_several_statements_are_one_line_and_run_nothing(lake: Settings) -> None:
    line = one_line(cli("SELECT 1; SELECT 2", root=Path(lake.lake_gold).parent))
    assert "2 statements given" in line


def test_nested_columns_are_json_text_in_csv(lake: Settings) -> None:
    root = Path(lake.lake_gold).parent
    res = cli("SELECT [1, 2] AS l, {'a': 1, 'b': 'x'} AS s, 'ab'::BLOB AS b", "--format", "csv", root=root)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["l,s,b", '"[1,2]","{""a"":1,""b"":""x""}",\\x6162']
    tables = cli("SHOW ALL TABLES", "--format", "csv", root=root)
    assert tables.returncode == 0, tables.stderr
    assert any(",gold,print_features," in line for line in tables.stdout.splitlines())


def test_a_type_the_output_cannot_hold_is_one_line(lake: Settings) -> None:
    line = one_line(cli("SELECT INTERVAL 1 MONTH AS i", root=Path(lake.lake_gold).parent))
    assert "cannot hold" in line


def test_a_location_without_a_lake_is_an_error_naming_it(tmp_path: Path) -> None:
    """Run from a directory with no lake: relative locations name nothing; not 0 rows."""
    lake = {f"LAKE_{layer.upper()}": f"lake/{layer}" for layer in ("raw", "bronze", "silver", "gold")}
    res = subprocess.run(
        [sys.executable, "-m", "jobs", "query", "SELECT count(*) FROM gold.print_features"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "LAKEHOUSE_ENV_FILE": "", **lake},
        timeout=120,
        cwd=tmp_path,
    )
    line = one_line(res)
    assert f"there is no lake at {tmp_path.resolve()}/lake/bronze" in line and "/lake/gold" in line


def test_an_empty_table_of_an_existing_lake_stays_an_empty_view(tmp_path: Path) -> None:
    (tmp_path / "gold").mkdir()
    res = cli("SELECT count(*) AS n FROM gold.quality_results", "--format", "csv", root=tmp_path)
    assert res.returncode == 0 and res.stdout.splitlines() == ["n", "0"], res.stderr
    missing = one_line(cli("SELECT count(*) FROM silver.prints", root=tmp_path))
    assert f"there is no lake at {tmp_path}/silver" in missing


def test_a_lake_whose_buckets_are_missing_is_an_error_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """On S3 (a store that says NoSuchBucket): exit 3, the locations named, not empty views."""
    from jobs.errors import BucketMissing, StorageError
    from jobs.tables.lake import Lake

    def missing(self: Lake, uri: str, version: int | None = None) -> None:
        raise BucketMissing(f"no bucket for {uri}")

    monkeypatch.setattr(Lake, "open", missing)
    settings = Settings(
        _env_file=None,
        lake_raw="s3://raw/x",  # type: ignore[call-arg]
        **{f"lake_{layer}": f"s3://{layer}/x" for layer in ("bronze", "silver", "gold")},
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    with pytest.raises(StorageError) as failed:  # exit 3
        run_query(RunContext(settings), "SELECT count(*) FROM gold.print_features")
    assert failed.value.exit_code == 3
    assert str(failed.value).startswith(
        "query failed: there is no lake at s3://bronze/x, s3://silver/x, s3://gold/x"
    )


# -- the duckdb shell (make duckdb) ----------------------------------------------------------
DUCKDB = Path(sys.executable).parent / "duckdb"


def shell(init: Path, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DUCKDB), "-init", str(init), "-csv", "-noheader", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "HOME": str(init.parent)},
        cwd=init.parent,
    )


@pytest.mark.skipif(not DUCKDB.is_file(), reason="the duckdb-cli package is not installed")
def test_the_duckdb_shell_reads_gold_and_nothing_outside(lake: Settings, tmp_path: Path) -> None:
    init = tmp_path / "init.sql"
    init.write_text(init_sql(RunContext(lake)))
    ok = shell(init, "SELECT count(*) FROM print_features")
    assert ok.returncode == 0 and ok.stdout.strip().splitlines()[-1] == "0", ok.stderr
    v = values(lake)
    for sql in (
        f"SELECT * FROM read_text('{v['secret']}')",
        "SELECT * FROM read_csv('http://127.0.0.1:9/metrics')",
        f"COPY (SELECT 1) TO '{tmp_path}/out.csv'",
        f"ATTACH '{tmp_path}/x.duckdb'",
        "COPY (SELECT 1) TO ':memory:.wal'",
    ):
        res = shell(init, sql)
        assert "Permission Error" in res.stderr and "do-not-read" not in res.stdout + res.stderr, sql
    for sql in (
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "RESET temp_directory",
    ):
        assert "the configuration has been locked" in shell(init, sql).stderr, sql
    assert "cannot be used in -safe mode" in shell(init, ".shell cat secret.env").stderr
    assert "cannot be used in -safe mode" in shell(init, ".open other.duckdb").stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["init.sql"]
