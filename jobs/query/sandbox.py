"""The DuckDB connection of ``python -m jobs query``: a sandbox made of DuckDB's own settings.

DuckDB gets no file system at all (``enable_external_access = false`` with no allowed
directory): no local file, no URL, no S3 object, for reading or for writing (``COPY … TO``,
``EXPORT``, ``ATTACH 'file'``, ``read_text``, ``read_csv('http://…')``, ``glob`` are refused by
DuckDB, whatever the statement around them). The lake's tables reach it as Arrow datasets that
deltalake opens with the settings' keys (:meth:`jobs.tables.lake.Lake.open`), registered as views;
DuckDB never holds an S3 secret. Then ``lock_configuration = true``: no ``SET``, ``RESET`` or
``PRAGMA`` can give any of it back, and no extension can be installed or loaded.

Why not ``allowed_directories``/``allowed_paths`` with ``delta_scan``: DuckDB lets a connection
write wherever it may read, so ``COPY … TO`` into the lake's own location would stay possible
(``tests/test_query_sandbox.py`` shows it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from jobs.dictionary import comment_views
from jobs.errors import AccessDenied, BucketMissing, ConfigError, StorageError
from jobs.run import RunContext
from jobs.schemas import (
    BRONZE,
    GOLD,
    GOLD_TABLE,
    MANIFEST,
    QUALITY_RESULTS,
    QUALITY_TABLE,
    QUARANTINE,
    RUNS,
    RUNS_TABLE,
    SILVER,
    SOURCES,
)
from jobs.storage import is_remote

log = logging.getLogger(__name__)

# The settings of every query connection. The last two are SET right after connecting (nothing
# of the user's runs in between): given to duckdb.connect, DuckDB would also allow the files of
# the in-memory database (./:memory:, ./:memory:.wal, ...), so a COPY could write those.
SANDBOX: dict[str, Any] = {
    # DuckDB allows its spill directory (./.tmp) even without external access: no spilling, so
    # no directory at all (a result that does not fit in memory fails with DuckDB's own line).
    "temp_directory": "",
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "python_enable_replacements": False,  # no Python variable of this process as a table
    "enable_external_access": False,  # no file, URL or object store; no ATTACH of a file
    "lock_configuration": True,  # SET/RESET/PRAGMA of any option is refused from here on
}
_AFTER_CONNECT = ("enable_external_access", "lock_configuration")


def sandboxed() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection closed in by :data:`SANDBOX`, with nothing in it."""
    con = duckdb.connect(config={k: v for k, v in SANDBOX.items() if k not in _AFTER_CONNECT})
    for name in _AFTER_CONNECT:  # in this order: the lock last
        con.execute(f"SET {name} = {str(SANDBOX[name]).lower()}")
    return con


LAYERS = ("bronze", "silver", "gold")


def tables(ctx: RunContext) -> dict[str, str]:
    """Qualified view name → table URI for every table in the lake layout."""
    return {view: uri for view, (uri, _) in _layout(ctx).items()}


def _layout(ctx: RunContext) -> dict[str, tuple[str, pl.Schema]]:
    """Qualified view name → (table URI, contract schema) for every documented view."""
    names = {f"silver.{s}": (ctx.silver(s), SILVER[s]) for s in SOURCES}
    names |= {f"bronze.{s}": (ctx.bronze(s), BRONZE[s]) for s in SOURCES}
    names["bronze.quarantine"] = (ctx.quarantine_uri, QUARANTINE)
    names["bronze.manifest"] = (ctx.manifest_uri, MANIFEST)
    names[f"gold.{GOLD_TABLE}"] = (ctx.gold(GOLD_TABLE), GOLD)
    names["gold.quality_results"] = (ctx.gold(QUALITY_TABLE), QUALITY_RESULTS)
    names["gold.runs"] = (ctx.gold(RUNS_TABLE), RUNS)
    return names


@dataclass
class Connection:
    """A DuckDB connection over the lake, and why views this identity cannot read are absent."""

    con: duckdb.DuckDBPyConnection
    unreadable: dict[str, str] = field(default_factory=dict)  # view -> why (one clause)


def connect(ctx: RunContext) -> duckdb.DuckDBPyConnection:
    """A sandboxed DuckDB connection with a view per readable table of the lake."""
    return open_lake(ctx).con


def _missing_layers(ctx: RunContext) -> dict[str, str]:
    """Layer → absolute location, for each local layer directory that does not exist."""
    s = ctx.settings
    roots = {"bronze": s.lake_bronze, "silver": s.lake_silver, "gold": s.lake_gold}
    return {
        layer: str(Path(root).resolve())
        for layer, root in roots.items()
        if not is_remote(root) and not Path(root).is_dir()
    }


def open_lake(ctx: RunContext) -> Connection:
    """Every documented view exists: over the Delta table, or empty with the contract's columns
    while the table is not written yet (a clean lake has no quarantine). Views of a layer this
    identity may not read, of a missing bucket or of a missing local directory are left out and
    remembered with the reason. When no view could be made because the lake's locations do not
    exist, that is the error (naming them), not empty results."""
    lake = Connection(sandboxed())
    missing = _missing_layers(ctx)
    absent: set[str] = set()  # layers whose bucket is missing
    made = 0
    for view, (uri, schema) in _layout(ctx).items():
        layer, name = view.split(".")
        if layer in missing:
            lake.unreadable[view] = f"there is no lake at {missing[layer]} (no such directory)"
            continue
        try:
            table = ctx.lake.open(uri)
        except AccessDenied:  # e.g. the analyst identity reads gold only
            lake.unreadable[view] = (
                f"the keys in use may not read {uri} (access denied): the analyst identity reads "
                "gold only; --identity pipeline queries the other layers"
            )
            continue
        except BucketMissing:
            lake.unreadable[view] = f"the bucket of {uri} does not exist (bucket missing)"
            absent.add(layer)
            continue
        data = pl.DataFrame(schema=schema).to_arrow() if table is None else table.to_pyarrow_dataset()
        source = f"_table_{layer}_{name}"
        lake.con.register(source, data)
        # View names are this module's constants, never the user's.
        lake.con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
        lake.con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source}")  # noqa: S608
        if layer == "gold":
            lake.con.execute(f"CREATE OR REPLACE VIEW main.{name} AS SELECT * FROM {view}")  # noqa: S608
        made += 1
    comment_views(lake.con)  # the data dictionary's descriptions, as COMMENT ON (jobs.dictionary)
    if not made and (missing or absent):
        lake.con.close()
        _no_lake(ctx, missing, absent)
    return lake


def _no_lake(ctx: RunContext, missing: dict[str, str], absent: set[str]) -> None:
    """Raise the one-line error of a lake whose locations do not exist (exit 2 for local
    directories, a settings problem; exit 3 for missing buckets, a storage one)."""
    if missing:
        where = ", ".join(missing[layer] for layer in LAYERS if layer in missing)
        raise ConfigError(
            f"query failed: there is no lake at {where} (no such directory): check LAKE_BRONZE, "
            "LAKE_SILVER, LAKE_GOLD and the directory relative paths resolve from; nothing was read"
        )
    roots = {
        "bronze": ctx.settings.lake_bronze,
        "silver": ctx.settings.lake_silver,
        "gold": ctx.settings.lake_gold,
    }
    where = ", ".join(roots[layer] for layer in LAYERS if layer in absent)
    raise StorageError(f"query failed: there is no lake at {where} (bucket missing); nothing was read")
