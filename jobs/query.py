"""Ad-hoc SQL over the lake with DuckDB, reading the Delta tables where they lie.

DuckDB's delta and httpfs extensions come from PyPI packages pinned to DuckDB's version and are
loaded from disk, so nothing is downloaded at run time. Every existing table is exposed as a
view in a schema named after its layer (``gold.print_features``, ``silver.prints``,
``bronze.quarantine``); gold's tables are also available unqualified (``print_features``).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb
import polars as pl

from jobs.errors import PipelineError
from jobs.run import RunContext
from jobs.schemas import GOLD_TABLE, SOURCES

EXTENSIONS = ("delta", "httpfs")


def extension_path(name: str) -> Path:
    """The ``.duckdb_extension`` file shipped by the ``duckdb-extension-<name>`` package."""
    module = importlib.import_module(f"duckdb_extension_{name}")
    base = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    found = sorted(base.glob(f"{name}.duckdb_extension"))
    if not found:
        raise FileNotFoundError(f"no {name} extension for DuckDB {duckdb.__version__} in {base}")
    return found[0]


def tables(ctx: RunContext) -> dict[str, str]:
    """Qualified view name → table URI for every table in the lake layout."""
    names = {f"silver.{s}": ctx.silver(s) for s in SOURCES}
    names |= {f"bronze.{s}": ctx.bronze(s) for s in SOURCES}
    names["bronze.quarantine"] = ctx.quarantine_uri
    names["bronze.manifest"] = ctx.manifest_uri
    names[f"gold.{GOLD_TABLE}"] = ctx.gold(GOLD_TABLE)
    names["gold.quality_results"] = ctx.gold("_quality_results")
    return names


def connect(ctx: RunContext) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the extensions loaded, the S3 secret set and the views made."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    for name in EXTENSIONS:
        con.execute(f"LOAD '{extension_path(name)}'")
    if secret := ctx.storage.duckdb_secret_sql():
        con.execute(secret)
    for view, uri in tables(ctx).items():
        if not ctx.lake.exists(uri):
            continue
        schema, name = view.split(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM delta_scan('{uri}')")
        if schema == "gold":
            con.execute(f"CREATE OR REPLACE VIEW main.{name} AS SELECT * FROM {view}")
    return con


def run_query(ctx: RunContext, sql: str) -> pl.DataFrame:
    con = connect(ctx)
    try:
        return con.sql(sql).pl()
    except duckdb.Error as exc:
        views = [f"{s}.{n}" for s, n in con.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal "
            "AND schema_name <> 'main' ORDER BY ALL").fetchall()]
        first = str(exc).strip().splitlines()[0]
        raise PipelineError(f"query failed: {first} (available views: "
                            f"{', '.join(views) or 'none yet: run the pipeline first'})") from exc
    finally:
        con.close()
