"""The DuckDB S3 secret is made from prepared-statement parameters, never from SQL text."""

from __future__ import annotations

import duckdb

from jobs.query import EXTENSIONS, extension_path, literal
from jobs.settings import load_settings
from jobs.storage import Storage

TRICKY = "it's a ') , SECRET 'injected"


def test_a_secret_with_quotes_works_and_is_neither_in_the_sql_nor_shown() -> None:
    storage = Storage(
        load_settings(
            lake_gold="s3://gold",
            aws_endpoint_url="http://127.0.0.1:9",
            aws_access_key_id="key'one",
            aws_secret_access_key=TRICKY,
        )
    )
    secret = storage.duckdb_secret()
    assert secret is not None
    sql, values = secret
    assert TRICKY not in sql and "key'one" not in sql and TRICKY in values
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for name in EXTENSIONS:
        con.execute(f"LOAD {literal(str(extension_path(name)))}")
    con.execute(sql, values)
    [(shown,)] = con.execute("SELECT secret_string FROM duckdb_secrets() WHERE name = 'lake'").fetchall()
    assert "key_id=key'one" in shown and TRICKY not in shown and "injected" not in shown


def test_no_secret_when_every_layer_is_local() -> None:
    assert Storage(load_settings()).duckdb_secret() is None


def test_a_location_becomes_a_quoted_sql_literal() -> None:
    assert literal("s3://b/it's") == "'s3://b/it''s'"
