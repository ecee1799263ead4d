"""DuckDB httpfs: the lake's S3 secret and the settings bounding each request.

The secret is built by ONE function, :func:`create_secret_sql`, whose values are SQL
expressions: prepared-statement parameters for a connection of this process
(:meth:`DuckDBOptions.duckdb_secret`, the keys never in SQL text), or ``getenv(…)`` for the
``duckdb -init`` file (:func:`env_secret_sql`, no key written into the file). Both fall back
to the same region, :data:`jobs.settings.DEFAULT_AWS_REGION`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import urlparse

from jobs.settings import DEFAULT_AWS_REGION
from jobs.storage.base import StorageBase, ms


def create_secret_sql(values: Mapping[str, str]) -> str:
    """``CREATE OR REPLACE SECRET lake`` (S3, path-style addressing) with each option's value
    an SQL expression: ``REGION``, ``KEY_ID``, ``SECRET`` and optionally ``SESSION_TOKEN``,
    ``ENDPOINT`` (host[:port], no scheme), ``USE_SSL``."""
    parts = ["TYPE S3", "URL_STYLE 'path'", *(f"{option} {expr}" for option, expr in values.items())]
    return f"CREATE OR REPLACE SECRET lake ({', '.join(parts)})"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def env_secret_sql() -> str:
    """The secret of the ``duckdb -init`` file, read from the environment when DuckDB starts:
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``
    (else ``AWS_DEFAULT_REGION``, else the default region) and ``AWS_ENDPOINT_URL_S3`` (else
    ``AWS_ENDPOINT_URL``)."""
    endpoint = "coalesce(nullif(getenv('AWS_ENDPOINT_URL_S3'), ''), getenv('AWS_ENDPOINT_URL'))"
    region = (
        "coalesce(nullif(getenv('AWS_REGION'), ''), nullif(getenv('AWS_DEFAULT_REGION'), ''), "
        f"{_quoted(DEFAULT_AWS_REGION)})"
    )
    return create_secret_sql(
        {
            "KEY_ID": "getenv('AWS_ACCESS_KEY_ID')",
            "SECRET": "getenv('AWS_SECRET_ACCESS_KEY')",
            "SESSION_TOKEN": "getenv('AWS_SESSION_TOKEN')",
            "REGION": region,
            "ENDPOINT": f"regexp_replace({endpoint}, '^https?://', '')",
            "USE_SSL": f"starts_with({endpoint}, 'https://')",
        }
    )


class DuckDBOptions(StorageBase):
    """The DuckDB builders of :class:`jobs.storage.Storage`."""

    def duckdb_settings_sql(self) -> list[str]:
        """DuckDB httpfs settings bounding each request like the other clients (seconds for
        ``http_timeout``, retries after the first attempt, the first pause in ms, doubling)."""
        s = self.settings
        settings = [
            f"SET http_timeout = {math.ceil(s.s3_read_timeout_seconds)}",
            f"SET http_retries = {self.attempts - 1}",
            f"SET http_retry_wait_ms = {ms(s.s3_retry_backoff_seconds)}",
            "SET http_retry_backoff = 2",
        ]
        if bundle := self.ca_bundle:  # a path from settings, as a quoted SQL literal
            settings.append(f"SET ca_cert_file = {_quoted(bundle)}")
        return settings

    def duckdb_secret(self) -> tuple[str, list[str | bool]] | None:
        """``CREATE SECRET`` for DuckDB's httpfs with its values as prepared-statement
        parameters (never interpolated into SQL text), or None when no layer is on S3."""
        if not self.uses_s3:
            return None
        creds = self.credentials()
        values: dict[str, str | bool] = {
            "REGION": self.region,
            "KEY_ID": creds.access_key,
            "SECRET": creds.secret_key,
        }
        if creds.token:
            values["SESSION_TOKEN"] = creds.token
        if endpoint := self.settings.s3_endpoint_url:
            parsed = urlparse(endpoint)
            values["ENDPOINT"] = parsed.netloc or parsed.path
            values["USE_SSL"] = parsed.scheme == "https"
        return create_secret_sql(dict.fromkeys(values, "?")), list(values.values())


def sandbox_sql(locations: list[str], files: list[str] | None = None) -> list[str]:
    """The ``SET`` statements that close a DuckDB session in, once its extensions are loaded,
    its secret made and its views created: only ``locations`` (and what is under them) and the
    ``files`` (e.g. the CA bundle) may be opened, no other file, URL or object, no extension
    installed or loaded, and no setting changed afterwards (``lock_configuration`` last)."""
    allowed = ", ".join(_quoted(location.rstrip("/") + "/") for location in locations)
    paths = ", ".join(_quoted(path) for path in files or [])
    return [
        "SET temp_directory = ''",  # else DuckDB also allows its spill directory, ./.tmp
        f"SET allowed_directories = [{allowed}]",
        f"SET allowed_paths = [{paths}]",
        "SET enable_external_access = false",
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET allow_community_extensions = false",
        "SET lock_configuration = true",
    ]
