"""The data dictionary travels with the data: every table and column of a real run carries its
description in the Delta log, in the DuckDB views of ``jobs query`` and ``make duckdb``, in
``jobs describe`` and in jobs/README.md's data contract, all from one source."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from jobs.dictionary import COMMENT, README, catalog, find, readme_block
from jobs.schemas import QUALITY_SAMPLES, SILVER
from jobs.settings import load_settings
from jobs.storage import Storage
from jobs.tables.commits import DOCUMENTED, changes_rows
from jobs.tables.lake import Lake
from tests.test_cli import cli

DOCS = {d.path: d for d in catalog()}
PIPELINE_TABLES = [p for p in DOCS if p != "bronze/_quality_samples"]  # only when a check fails


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dictionary")
    gen = cli("--scale", "0.01", "--days", "15", "--bad-lines", "5", root=root, module="infra.generator")
    assert gen.returncode == 0, gen.stderr
    run = cli("run", root=root)
    assert run.returncode == 0, run.stderr
    return root


def _versions(root: Path) -> dict[str, int]:
    return {p: DeltaTable(str(root / p)).version() for p in PIPELINE_TABLES}


def _log_schema(uri: Path) -> tuple[str | None, dict[str, dict[str, str]]]:
    """The newest metaData action of the table's _delta_log JSON: description, field metadata."""
    meta = None
    for path in sorted((uri / "_delta_log").glob("*.json")):
        for line in path.read_text().splitlines():
            action = json.loads(line)
            meta = action.get("metaData", meta)
    assert meta is not None
    fields = json.loads(meta["schemaString"])["fields"]
    return meta.get("description"), {f["name"]: f["metadata"] for f in fields}


def test_every_table_and_column_of_a_run_has_its_description_in_the_delta_log(built: Path) -> None:
    for path in PIPELINE_TABLES:
        doc = DOCS[path]
        description, fields = _log_schema(built / path)
        assert description == doc.description, path
        assert set(fields) == set(doc.schema.names()), path
        for column, metadata in fields.items():
            assert metadata.get(COMMENT) == doc.column(column) != "", (path, column)
        table = DeltaTable(str(built / path))  # what a Delta reader shows
        assert all(f.metadata.get(COMMENT) for f in table.schema().fields), path


def test_a_no_op_run_writes_no_table_version(built: Path) -> None:
    before = _versions(built)
    again = cli("run", root=built)
    assert again.returncode == 0, again.stderr
    assert _versions(built) == before


def test_query_views_carry_the_descriptions(built: Path) -> None:
    sql = (
        "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
        "WHERE NOT internal AND schema_name IN ('bronze', 'silver', 'gold', 'main')"
    )
    res = cli("query", sql, "--format", "json", "--identity", "pipeline", root=built)
    assert res.returncode == 0, res.stderr
    # the views (the sandbox registers each table's Arrow dataset as _table_<layer>_<name>)
    rows = [r for r in json.loads(res.stdout) if not r["table_name"].startswith("_table_")]
    views = {(r["schema_name"], r["table_name"]) for r in rows}
    assert {
        ("gold", "print_features"),
        ("main", "print_features"),
        ("silver", "pays"),
        ("bronze", "manifest"),
    } <= views
    assert len(views) == 14  # 11 documented views + gold's three plain ones
    assert [r for r in rows if not r["comment"]] == []
    prior = next(
        r for r in rows if r["table_name"] == "print_features" and r["column_name"] == "prior_amount"
    )
    assert prior["comment"] == find("gold.print_features").column("prior_amount")
    sql = "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal"
    tables = cli("query", sql, "--format", "json", root=built)
    assert tables.returncode == 0, tables.stderr
    described = [r for r in json.loads(tables.stdout) if not r["view_name"].startswith("_table_")]
    assert {r["view_name"] for r in described} >= {"print_features", "quality_results", "runs"}
    assert all(r["comment"] for r in described)


def test_the_duckdb_init_file_comments_its_views(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "init.sql"
    res = cli("duckdb-init", "--out", str(out), root=built)
    assert res.returncode == 0, res.stderr
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for statement in out.read_text().split(";\n"):
        statement = "\n".join(line for line in statement.splitlines() if not line.startswith((".", "--")))
        if statement.strip():
            con.execute(statement)
    comments = con.execute(
        "SELECT column_name, comment FROM duckdb_columns() "
        "WHERE schema_name = 'gold' AND table_name = 'print_features'"
    ).fetchall()
    assert comments and all(c for _, c in comments)


def test_describe_one_table_and_all_in_markdown_and_json(built: Path) -> None:
    one = cli("describe", "gold.print_features", root=built)
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("#### `gold.print_features`")
    assert "partitioned by `week_start`" in one.stdout and "| `prior_amount` | decimal(38,2) |" in one.stdout
    assert "| `prior_amount` | silver.pays | sum of total | the lookback window |" in one.stdout
    data = json.loads(cli("describe", "gold.print_features", "--format", "json", root=built).stdout)
    [gold] = data["tables"]
    assert gold["partition_by"] == "week_start" and data["lookback"] == {"mode": "calendar", "weeks": [3]}
    assert [f["source"] for f in gold["features"]] == [
        "silver.prints",
        "silver.taps",
        "silver.pays",
        "silver.pays",
    ]
    assert all(c["description"] for c in gold["columns"])
    every = json.loads(cli("describe", "--format", "json", root=built).stdout)
    assert [t["name"] for t in every["tables"]] == [d.name for d in catalog()]
    assert all(c["description"] for t in every["tables"] for c in t["columns"])
    unknown = cli("describe", "gold.nope", root=built)
    assert unknown.returncode == 2 and "gold.print_features" in unknown.stderr


def test_describe_needs_no_lake(tmp_path: Path) -> None:
    res = cli("describe", "bronze/_manifest", root=tmp_path / "nowhere")
    assert res.returncode == 0, res.stderr
    assert "| `checksum` | string |" in res.stdout


def test_the_readme_data_contract_is_what_describe_generates(tmp_path: Path) -> None:
    text = README.read_text()
    assert readme_block() in text, "jobs/README.md drifted from the dictionary: run python -m jobs.dictionary"
    every = cli("describe", "--format", "markdown", root=tmp_path)
    assert every.returncode == 0 and every.stdout in text


def _lake() -> Lake:
    return Lake(Storage(load_settings()))


def test_a_table_made_before_the_dictionary_gets_its_descriptions_once(tmp_path: Path) -> None:
    uri = str(tmp_path / "silver" / "prints")
    rows = pl.DataFrame(
        {"day": [date(2020, 11, 2)], "user_id": [1], "value_prop": ["x"], "position": [0], "run_id": ["r"]},
        schema=SILVER["prints"],
    )
    write_deltalake(uri, rows.to_arrow(), partition_by=["day"])  # no descriptions
    lake = _lake()
    version = lake.write(uri, rows, schema=SILVER["prints"], partition_by="day", metadata={"run_id": "r2"})
    assert version == 1  # the data commit; the descriptions follow it
    history = lake.history(uri)
    assert [c["version"] for c in history if DOCUMENTED in c] == [2, 3]
    assert not any(changes_rows(c) for c in history if DOCUMENTED in c)
    table = DeltaTable(uri)
    assert table.metadata().description == find("silver.prints").description
    assert all(f.metadata.get(COMMENT) for f in table.schema().fields)
    assert table.to_pyarrow_table().num_rows == 2
    lake.write(uri, rows, schema=SILVER["prints"], partition_by="day", metadata={"run_id": "r3"})
    assert lake.version(uri) == 4  # documented already: the write's commit only


def test_a_new_table_is_created_with_its_descriptions_in_one_commit(tmp_path: Path) -> None:
    uri = str(tmp_path / "bronze" / "_quality_samples")
    rows = pl.DataFrame(
        {
            "run_id": ["r"],
            "layer": ["gold"],
            "table_name": ["t"],
            "expectation": ["e"],
            "unexpected_rows": ["[]"],
        }
    ).with_columns(recorded_at=pl.lit(None, dtype=QUALITY_SAMPLES["recorded_at"]))
    assert _lake().write(uri, rows, schema=QUALITY_SAMPLES) == 0
    description, fields = _log_schema(Path(uri))
    assert description == find("bronze.quality_samples").description
    assert all(m.get(COMMENT) for m in fields.values())
