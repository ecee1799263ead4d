"""Ad-hoc SQL over the lake with DuckDB, reading the Delta tables where they lie.

DuckDB's delta and httpfs extensions come from PyPI packages pinned to DuckDB's version and are
loaded from disk, so nothing is downloaded at run time. Every documented table is a view in a
schema named after its layer (``gold.print_features``, ``silver.prints``, ``bronze.quarantine``),
empty with its contract's columns until the table is written; gold's tables are also available
unqualified (``print_features``).
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from jobs.dictionary import comment_sql, comment_views
from jobs.errors import AccessDenied, BucketMissing, PipelineError, StorageError
from jobs.run import RunContext
from jobs.schemas import (
    BRONZE,
    GOLD,
    GOLD_TABLE,
    MANIFEST,
    QUALITY_RESULTS,
    QUALITY_TABLE,
    QUARANTINE,
    SILVER,
    SOURCES,
)
from jobs.storage.duckdb_secret import env_secret_sql

log = logging.getLogger(__name__)

EXTENSIONS = ("delta", "httpfs")


def extension_path(name: str) -> Path:
    """The ``.duckdb_extension`` file shipped by the ``duckdb-extension-<name>`` package."""
    module = importlib.import_module(f"duckdb_extension_{name}")
    base = Path(str(module.__file__)).parent / "extensions" / f"v{duckdb.__version__}"
    found = sorted(base.glob(f"{name}.duckdb_extension"))
    if not found:
        raise FileNotFoundError(f"no {name} extension for DuckDB {duckdb.__version__} in {base}")
    return found[0]


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
    return names


@dataclass
class Connection:
    """A DuckDB connection over the lake, and why views this identity cannot read are absent."""

    con: duckdb.DuckDBPyConnection
    unreadable: dict[str, str] = field(default_factory=dict)  # view -> why (one clause)


def connect(ctx: RunContext) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the extensions loaded, the S3 secret set and the views made."""
    return open_lake(ctx).con


def open_lake(ctx: RunContext) -> Connection:
    """Every documented view exists: over the Delta table, or empty with the contract's columns
    while the table is not written yet (a clean lake has no quarantine). Views of a layer this
    identity may not read, or of a missing bucket, are left out and remembered with the reason."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for name in EXTENSIONS:
        con.execute(f"LOAD {literal(str(extension_path(name)))}")
    if secret := ctx.storage.duckdb_secret():
        sql, values = secret
        try:
            con.execute(sql, values)
        except duckdb.Error:  # its message may quote a value: say what to check instead
            raise StorageError(
                "DuckDB refused the S3 settings (CREATE SECRET): check AWS_REGION, "
                "AWS_ENDPOINT_URL(_S3) and the access key settings"
            ) from None
        for setting in ctx.storage.duckdb_settings_sql():  # bounded waiting on the store
            con.execute(setting)
    lake = Connection(con)
    for view, (uri, schema) in _layout(ctx).items():
        try:
            present = ctx.lake.exists(uri)
        except AccessDenied:  # e.g. the analyst identity reads gold only
            lake.unreadable[view] = (
                f"the keys in use may not read {uri} (access denied): the analyst identity reads "
                "gold only; --identity pipeline queries the other layers"
            )
            continue
        except BucketMissing:
            lake.unreadable[view] = f"the bucket of {uri} does not exist (bucket missing)"
            continue
        layer, name = view.split(".")
        # View names are this module's constants; the location is a quoted literal.
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
        if present:
            source = f"delta_scan({literal(uri)})"
        else:
            source = f"_empty_{layer}_{name}"
            con.register(source, pl.DataFrame(schema=schema).to_arrow())
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source}")  # noqa: S608
        if layer == "gold":
            con.execute(f"CREATE OR REPLACE VIEW main.{name} AS SELECT * FROM {view}")  # noqa: S608
    comment_views(con)  # the data dictionary's descriptions, as COMMENT ON (jobs.dictionary)
    return lake


def literal(text: str) -> str:
    """``text`` as a SQL string literal (quotes doubled): locations come from settings."""
    if "\x00" in text:
        raise PipelineError("a lake location contains a NUL character")
    return "'" + text.replace("'", "''") + "'"


# What `python -m jobs query` runs: reading statements only. A write (COPY ... TO, CREATE,
# INSERT, ATTACH, EXPORT, SET, ...) is refused before anything runs, whatever the keys may do.
READ_ONLY = ("SELECT", "EXPLAIN")


def refuse_writes(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise a one-line :class:`PipelineError` unless every statement in ``sql`` only reads."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise PipelineError(f"query failed: {first}") from None
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_ONLY:
            raise PipelineError(
                f"query refused: {kind} statements are not allowed here, "
                f"only {' and '.join(READ_ONLY)} (the query command is "
                "read-only); nothing was run"
            )


def run_query(ctx: RunContext, sql: str) -> pl.DataFrame:
    lake = open_lake(ctx)
    try:
        refuse_writes(lake.con, sql)
        return lake.con.sql(sql).pl()
    except duckdb.Error as exc:
        raise PipelineError(_failure(lake, sql, exc)) from exc
    finally:
        lake.con.close()


def _failure(lake: Connection, sql: str, exc: duckdb.Error) -> str:
    """One line: what failed, and for an unknown name what can be read instead."""
    first = str(exc).strip().splitlines()[0]
    if not isinstance(exc, duckdb.CatalogException):
        return f"query failed: {first}"
    named = [view for view in lake.unreadable if re.search(rf"\b{re.escape(view)}\b", sql, re.IGNORECASE)]
    if named:
        return f"query failed: {lake.unreadable[named[0]]}; nothing was read"
    views = [
        f"{s}.{n}"
        for s, n in lake.con.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal "
            "AND schema_name <> 'main' ORDER BY ALL"
        ).fetchall()
    ]
    return f"query failed: {first} (available views: {', '.join(views) or 'none'})"


def init_sql(ctx: RunContext) -> str:
    """A start-up file for the ``duckdb`` CLI (``duckdb -init FILE``) over this lake.

    It loads the offline extensions from this virtualenv, creates the S3 secret from the
    environment at start-up (``getenv``: no key is written into the file) and a view per gold
    table. Use it with the variables of an env file exported, e.g. the analyst's keys as
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``.
    """
    lines = [
        "-- Generated by `python -m jobs duckdb-init`; regenerate after moving the virtualenv.",
        "-- Reads AWS_ENDPOINT_URL(_S3), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,",
        "-- AWS_REGION (or AWS_DEFAULT_REGION) from the environment when DuckDB starts; nothing",
        "-- secret is stored here.",
        ".bail on",
        ".output /dev/null",
        "SET autoinstall_known_extensions = false;",
        "SET autoload_known_extensions = false;",
    ]
    lines += [f"LOAD {literal(str(extension_path(name)))};" for name in EXTENSIONS]
    if ctx.storage.uses_s3:
        lines += [f"{setting};" for setting in ctx.storage.duckdb_settings_sql()]
        lines.append(f"{env_secret_sql()};")  # the secret Storage.duckdb_secret makes, from getenv
    lines.append("CREATE SCHEMA IF NOT EXISTS gold;")
    gold = {v: u for v, u in tables(ctx).items() if v.startswith("gold.")}
    for view, uri in gold.items():
        try:
            present = ctx.lake.exists(uri)
        except AccessDenied:
            present = False
        if present or view == f"gold.{GOLD_TABLE}":
            name = view.split(".", 1)[1]
            lines.append(
                f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM "  # noqa: S608
                f"delta_scan({literal(uri)});"
            )
            lines.append(f"CREATE OR REPLACE VIEW main.{name} AS SELECT * FROM {view};")  # noqa: S608
            # the data dictionary's descriptions; a column the table lacks fails only its line
            lines += [
                ".bail off",
                *(f"{s};" for v in (view, f"main.{name}") for s in comment_sql(v)),
                ".bail on",
            ]
    lines += [
        ".output",
        ".bail off",
        "SELECT 'gold views: ' || string_agg(schema_name || '.' || view_name, ', ') AS ready "
        "FROM duckdb_views() WHERE schema_name = 'gold';",
    ]
    return "\n".join(lines) + "\n"
