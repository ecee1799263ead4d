"""The data dictionary: every table of every layer and every column, with what it means.

One source, the contracts of :mod:`jobs.schemas` with their descriptions
(:mod:`jobs.descriptions`) and the feature registry (:data:`jobs.feature_registry.GOLD_FEATURES`),
serves every place a description shows:

* the Delta tables themselves: the table's description and each column's ``comment`` metadata
  (what Spark and other Delta readers show), set by :mod:`jobs.tables.lake` when a table is
  created, or once by the first write to a table that lacks them (:func:`lookup`,
  :func:`arrow_schema_with_comments`);
* ``python -m jobs describe [TABLE] [--format markdown|json]`` (:func:`describe`);
* the DuckDB views of ``python -m jobs query`` and ``make duckdb`` as ``COMMENT ON``
  (:func:`comment_views`, :func:`comment_sql`), which ``duckdb_columns()`` shows;
* jobs/README.md's data contract, the block between :data:`README_BEGIN` and
  :data:`README_END` (``python -m jobs.dictionary`` rewrites it; a test fails if it drifts).

Tables are named as ``jobs query`` names them (``gold.print_features``, ``bronze.manifest``);
the path under the layer's location (``gold/print_features``, ``bronze/_manifest``) works too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from jobs.descriptions import (
    BRONZE_DOC,
    GOLD_PRINT_DOC,
    MANIFEST_DOC,
    QUALITY_RESULTS_DOC,
    QUALITY_SAMPLES_DOC,
    QUARANTINE_DOC,
    RUNS_DOC,
    SILVER_DOC,
    TABLE_DOC,
)
from jobs.errors import PipelineError
from jobs.feature_registry import GOLD_FEATURES, Feature
from jobs.schemas import (
    BRONZE,
    GOLD,
    GOLD_PARTITION,
    GOLD_TABLE,
    MANIFEST,
    QUALITY_RESULTS,
    QUALITY_SAMPLES,
    QUALITY_SAMPLES_TABLE,
    QUALITY_TABLE,
    QUARANTINE,
    RUNS,
    RUNS_TABLE,
    SILVER,
    SILVER_PARTITION,
    SOURCES,
)

COMMENT = "comment"
"""The key of a Delta column's metadata that holds its description (Spark's, Delta's)."""

WINDOW = (
    "the settings' lookback window (LOOKBACK_MODE, LOOKBACK_WEEKS = N): calendar, the N full "
    "weeks before the print's week; rolling, the 7·N days before the print's day"
)

README = Path(__file__).with_name("README.md")
README_BEGIN = (
    "<!-- dictionary: begin (generated from schemas.py, descriptions.py and feature_registry.py by "
    "`python -m jobs.dictionary`; do not edit) -->"
)
README_END = "<!-- dictionary: end -->"


@dataclass(frozen=True)
class TableDoc:
    """One table of the dictionary: its names, description, contract and partitioning."""

    name: str  # as `jobs query` names it: gold.print_features
    path: str  # under its layer's location: gold/print_features
    description: str
    schema: pl.Schema
    columns: Mapping[str, str]
    partition_by: str | None = None
    features: tuple[Feature, ...] = ()

    @property
    def folder(self) -> str:
        return self.path.split("/", 1)[1]

    def column(self, name: str) -> str:
        """The description of column ``name`` ('' when the dictionary does not know it)."""
        if name in self.columns:
            return self.columns[name]
        for feature in self.features:  # another window of a feature: <name>_<window>
            if name.startswith(f"{feature.name}_"):
                return f"{feature.description} (window {name[len(feature.name) + 1 :]})"
        return ""


def catalog(features: Sequence[Feature] = GOLD_FEATURES) -> list[TableDoc]:
    """Every table the pipeline writes, in pipeline order."""
    docs = [
        TableDoc(f"bronze.{s}", f"bronze/{s}", TABLE_DOC[f"bronze/{s}"], BRONZE[s], BRONZE_DOC[s])
        for s in SOURCES
    ]
    docs += [
        TableDoc(
            "bronze.quarantine",
            "bronze/quarantine",
            TABLE_DOC["bronze/quarantine"],
            QUARANTINE,
            QUARANTINE_DOC,
        ),
        TableDoc(
            "bronze.manifest", "bronze/_manifest", TABLE_DOC["bronze/_manifest"], MANIFEST, MANIFEST_DOC
        ),
        TableDoc(
            "bronze.quality_samples",
            f"bronze/{QUALITY_SAMPLES_TABLE}",
            TABLE_DOC[f"bronze/{QUALITY_SAMPLES_TABLE}"],
            QUALITY_SAMPLES,
            QUALITY_SAMPLES_DOC,
        ),
    ]
    docs += [
        TableDoc(
            f"silver.{s}", f"silver/{s}", TABLE_DOC[f"silver/{s}"], SILVER[s], SILVER_DOC[s], SILVER_PARTITION
        )
        for s in SOURCES
    ]
    gold_columns = {**GOLD_PRINT_DOC, **{f.column(): f.description for f in features}}
    docs += [
        TableDoc(
            f"gold.{GOLD_TABLE}",
            f"gold/{GOLD_TABLE}",
            TABLE_DOC[f"gold/{GOLD_TABLE}"],
            GOLD,
            gold_columns,
            GOLD_PARTITION,
            tuple(features),
        ),
        TableDoc(
            "gold.quality_results",
            f"gold/{QUALITY_TABLE}",
            TABLE_DOC[f"gold/{QUALITY_TABLE}"],
            QUALITY_RESULTS,
            QUALITY_RESULTS_DOC,
        ),
        TableDoc("gold.runs", f"gold/{RUNS_TABLE}", TABLE_DOC[f"gold/{RUNS_TABLE}"], RUNS, RUNS_DOC),
    ]
    return docs


def find(name: str) -> TableDoc:
    """The table named ``name`` (``gold.print_features``, ``gold/print_features``, or a gold
    table unqualified); an unknown name is one line listing the known ones (exit 2)."""
    docs = catalog()
    for doc in docs:
        if name in (doc.name, doc.path) or (doc.name.startswith("gold.") and name == doc.name[5:]):
            return doc
    raise PipelineError(f"no table {name!r} in the data dictionary: one of {', '.join(d.name for d in docs)}")


def lookup(uri: str, schema: pl.Schema) -> TableDoc | None:
    """The dictionary's table a write of ``schema`` to ``uri`` is (its folder is the table's
    folder; bronze and silver prints share it, their columns tell them apart), None if none."""
    folder = uri.rstrip("/").rsplit("/", 1)[-1]
    found = [d for d in catalog() if d.folder == folder]
    if not found:
        return None
    names = set(schema.names())
    return max(found, key=lambda d: len(names & set(d.schema.names())) - len(set(d.schema.names()) - names))


# -- the Delta log ------------------------------------------------------------------------------
def comments(doc: TableDoc, names: Iterable[str]) -> dict[str, str]:
    """Column → description for the columns ``names`` the dictionary describes."""
    return {n: text for n in names if (text := doc.column(n))}


def arrow_schema_with_comments(schema: pa.Schema, doc: TableDoc | None) -> pa.Schema:
    """``schema`` with each described field's ``comment`` metadata set (types unchanged)."""
    if doc is None:
        return schema
    fields = []
    for f in schema:
        text = doc.column(f.name)
        fields.append(f.with_metadata({**(f.metadata or {}), COMMENT.encode(): text.encode()}) if text else f)
    return pa.schema(fields, metadata=schema.metadata)


def undocumented(table: Any, doc: TableDoc) -> bool:
    """Whether an opened ``DeltaTable`` lacks (or has other) descriptions than ``doc``'s."""
    if table.metadata().description != doc.description:
        return True
    return any(
        (f.metadata or {}).get(COMMENT) != text for f in table.schema().fields if (text := doc.column(f.name))
    )


# -- DuckDB -------------------------------------------------------------------------------------
def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def comment_sql(view: str, columns: Iterable[str] | None = None) -> list[str]:
    """``COMMENT ON`` statements for the view ``schema.name`` of a dictionary table (a gold
    table's plain ``main.name`` view too): the view's description and its ``columns`` (default:
    every column of the contract). Nothing for a view the dictionary does not know."""
    schema, name = view.split(".", 1)
    try:
        doc = find(f"gold.{name}" if schema == "main" else view)
    except PipelineError:
        return []
    target = f"{_ident(schema)}.{_ident(name)}"
    statements = [f"COMMENT ON VIEW {target} IS {sql_literal(doc.description)}"]
    for column, text in comments(doc, doc.schema.names() if columns is None else columns).items():
        statements.append(f"COMMENT ON COLUMN {target}.{_ident(column)} IS {sql_literal(text)}")
    return statements


def comment_views(con: Any) -> None:
    """Describe every view of ``con`` the dictionary knows (``jobs query``'s connection), on
    the columns each view really has."""
    rows = con.execute(
        "SELECT schema_name, table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
        "WHERE NOT internal AND table_name IN (SELECT view_name FROM duckdb_views() WHERE NOT internal) "
        "GROUP BY ALL"
    ).fetchall()
    for schema, view, columns in rows:
        for statement in comment_sql(f"{schema}.{view}", columns):
            con.execute(statement)


# -- describe -----------------------------------------------------------------------------------
def type_name(dtype: pl.DataType) -> str:
    """A contract type as the README writes it: date, int64, string, decimal(18,2), bool …"""
    if isinstance(dtype, pl.Decimal):
        return f"decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        return (
            f"timestamp({dtype.time_unit}, {dtype.time_zone})"
            if dtype.time_zone
            else f"timestamp({dtype.time_unit})"
        )
    names = {pl.String: "string", pl.Boolean: "bool", pl.Date: "date"}
    return names.get(type(dtype), str(dtype).lower())


def feature_entry(feature: Feature) -> dict[str, Any]:
    exact = (
        f"exact: summed in integer units (10^-{feature.scale}) as Int128, never rounded or wrapped"
        if feature.aggregation == "sum"
        else "exact: an integer count"
    )
    return {
        "name": feature.name,
        "column": feature.column(),
        "description": feature.description,
        "source": f"silver.{feature.source}",
        "aggregation": feature.aggregation if feature.value is None else f"sum of {feature.value}",
        "window": WINDOW,
        "type": type_name(feature.dtype),
        "exactness": exact,
    }


def table_entry(doc: TableDoc) -> dict[str, Any]:
    return {
        "name": doc.name,
        "path": doc.path,
        "description": doc.description,
        "format": "delta",
        "partition_by": doc.partition_by,
        "columns": [
            {"name": n, "type": type_name(t), "description": doc.column(n)} for n, t in doc.schema.items()
        ],
        "features": [feature_entry(f) for f in doc.features],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def markdown(docs: Sequence[TableDoc]) -> str:
    """The dictionary of ``docs`` as Markdown (what jobs/README.md's data contract holds)."""
    out: list[str] = []
    for doc in docs:
        entry = table_entry(doc)
        parted = f", partitioned by `{doc.partition_by}`" if doc.partition_by else ", not partitioned"
        out += [f"#### `{doc.name}`", "", f"Delta table `{doc.path}`{parted}. {_cell(doc.description)}", ""]
        out += ["| column | type | description |", "| --- | --- | --- |"]
        out += [f"| `{c['name']}` | {c['type']} | {_cell(c['description'])} |" for c in entry["columns"]]
        if entry["features"]:
            out += [
                "",
                "| feature | source | aggregation | window | exactness |",
                "| --- | --- | --- | --- | --- |",
            ]
            out += [
                f"| `{f['column']}` | {f['source']} | {f['aggregation']} | the lookback window "
                f"| {_cell(f['exactness'])} |"
                for f in entry["features"]
            ]
            out += ["", f"Window: {_cell(WINDOW)}."]
        out.append("")
    return "\n".join(out)


def describe(
    table: str | None = None, fmt: str = "markdown", *, lookback: Mapping[str, Any] | None = None
) -> str:
    """What ``python -m jobs describe`` prints: every table, or ``table``, as Markdown or JSON
    (JSON also names this lake's lookback settings, ``lookback``, when given)."""
    docs = catalog() if table is None else [find(table)]
    if fmt == "json":
        document: dict[str, Any] = {"tables": [table_entry(d) for d in docs]}
        if lookback is not None:
            document["lookback"] = dict(lookback)
        return json.dumps(document, indent=2) + "\n"
    return markdown(docs)


def readme_block() -> str:
    """jobs/README.md's generated block, its markers included."""
    return f"{README_BEGIN}\n\n{markdown(catalog())}\n{README_END}"


def write_readme(path: Path = README) -> bool:
    """Rewrite the generated block of ``path``; whether it changed."""
    text = path.read_text()
    start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
    new = text[:start] + readme_block() + text[end:]
    path.write_text(new)
    return new != text


if __name__ == "__main__":  # python -m jobs.dictionary: regenerate jobs/README.md's block
    print("jobs/README.md " + ("updated" if write_readme() else "already up to date"), file=sys.stderr)
