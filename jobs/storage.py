"""Turns settings into what each library needs to reach a lake location.

This is the only module that knows about endpoints and credentials. Local paths and
``s3://`` URIs are handled alike by every caller: they ask for a filesystem, for Delta/Polars
storage options or for DuckDB secret SQL, and never build those themselves.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    import fsspec

    from jobs.settings import Settings


def is_remote(uri: str) -> bool:
    """True for object-store URIs (``s3://bucket/prefix``)."""
    return "://" in uri and not uri.startswith("file://")


def join(base: str, *parts: str) -> str:
    """Join path segments onto a local path or URI with forward slashes."""
    return posixpath.join(base, *[p.strip("/") for p in parts if p])


def bucket_of(uri: str) -> str:
    """The bucket name of an ``s3://`` URI."""
    return urlparse(uri).netloc


@dataclass(frozen=True)
class Storage:
    """Storage options for polars, deltalake, DuckDB and fsspec, derived from one Settings."""

    settings: Settings
    # Whose keys ``settings.aws_*`` hold: "pipeline" (this process), "admin" or "analyst".
    identity: str = "pipeline"

    @property
    def key_variables(self) -> tuple[str, str]:
        """The settings a person edits to change this identity's keys (for error messages)."""
        prefix = {"admin": "ADMIN", "analyst": "ANALYST"}.get(self.identity, "AWS")
        return f"{prefix}_ACCESS_KEY_ID", f"{prefix}_SECRET_ACCESS_KEY"

    @property
    def endpoint(self) -> str:
        """The object-store endpoint as a person would type it (for error messages)."""
        return self.settings.aws_endpoint_url or "AWS default endpoint"

    def _secret(self) -> str | None:
        s = self.settings.aws_secret_access_key
        return s.get_secret_value() if s else None

    def for_identity(self, identity: str) -> Storage:
        """The same lake seen as another identity: ``"admin"`` or ``"analyst"`` (settings
        ``ADMIN_*``/``ANALYST_*``); ``"pipeline"`` is this process's own ``AWS_*`` keys."""
        if identity == "pipeline":
            return self
        s = self.settings
        key, secret = {
            "admin": (s.admin_access_key_id, s.admin_secret_access_key),
            "analyst": (s.analyst_access_key_id, s.analyst_secret_access_key),
        }[identity]
        if not key:  # no separate key configured: this process's identity is used as is
            return self
        update = {"aws_access_key_id": key, "aws_secret_access_key": secret}
        # A new Settings (not model_copy): cached properties must not carry over.
        return Storage(type(s)(**(s.model_dump() | update)), identity=identity)

    def s3_client(self) -> Any:
        """A boto3 S3 client (path-style addressing) for this identity."""
        import boto3
        from botocore.config import Config

        s = self.settings
        return boto3.client(
            "s3",
            endpoint_url=s.aws_endpoint_url,
            aws_access_key_id=s.aws_access_key_id,
            aws_secret_access_key=self._secret(),
            region_name=s.aws_region,
            config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=60,
                          retries={"max_attempts": 2, "mode": "standard"}),
        )

    def delta_options(self, uri: str) -> dict[str, str] | None:
        """Options for ``deltalake`` (and ``pl.scan_delta``), None for local paths."""
        if not is_remote(uri):
            return None
        s = self.settings
        opts = {"AWS_REGION": s.aws_region, "AWS_ALLOW_HTTP": str(s.aws_allow_http).lower()}
        if s.aws_endpoint_url:
            opts["AWS_ENDPOINT_URL"] = s.aws_endpoint_url
        if s.aws_access_key_id:
            opts["AWS_ACCESS_KEY_ID"] = s.aws_access_key_id
        if secret := self._secret():
            opts["AWS_SECRET_ACCESS_KEY"] = secret
        # Path-style addressing: MinIO and SeaweedFS serve buckets under the endpoint's path.
        opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
        return opts

    def polars_options(self, uri: str) -> dict[str, str] | None:
        """Options for ``pl.scan_parquet``/``write_parquet`` on object storage."""
        delta = self.delta_options(uri)
        return {k.lower(): v for k, v in delta.items()} if delta else None

    @cached_property
    def _s3fs(self) -> fsspec.AbstractFileSystem:
        import s3fs

        s = self.settings
        return s3fs.S3FileSystem(
            key=s.aws_access_key_id,
            secret=self._secret(),
            endpoint_url=s.aws_endpoint_url,
            client_kwargs={"region_name": s.aws_region},
            # Transient errors are retried a little (standard mode), a dead endpoint fails fast.
            config_kwargs={"s3": {"addressing_style": "path"}, "connect_timeout": 5,
                           "read_timeout": 60,
                           "retries": {"max_attempts": 3, "mode": "standard"}},
            use_listings_cache=False,
        )

    def filesystem(self, uri: str) -> fsspec.AbstractFileSystem:
        """An fsspec filesystem for ``uri`` (local or S3)."""
        if is_remote(uri):
            return self._s3fs
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(auto_mkdir=True)

    def strip_protocol(self, uri: str) -> str:
        """The fsspec path for ``uri`` (``bucket/key`` on S3, an absolute path locally)."""
        return uri.split("://", 1)[1] if is_remote(uri) else uri

    def to_uri(self, base: str, path: str) -> str:
        """Inverse of :meth:`strip_protocol` for paths listed under ``base``."""
        if is_remote(base):
            return f"{base.split('://', 1)[0]}://{path}"
        return path

    def duckdb_secret_sql(self) -> str | None:
        """``CREATE SECRET`` for DuckDB's httpfs, or None when no layer is on S3."""
        s = self.settings
        layers = (s.lake_raw, s.lake_bronze, s.lake_silver, s.lake_gold)
        if not any(is_remote(u) for u in layers):
            return None
        parts = ["TYPE S3", "URL_STYLE 'path'", f"REGION '{s.aws_region}'"]
        if s.aws_access_key_id:
            parts.append(f"KEY_ID '{s.aws_access_key_id}'")
        if secret := self._secret():
            parts.append(f"SECRET '{secret}'")
        if s.aws_endpoint_url:
            parsed = urlparse(s.aws_endpoint_url)
            parts.append(f"ENDPOINT '{parsed.netloc or parsed.path}'")
            parts.append(f"USE_SSL {'true' if parsed.scheme == 'https' else 'false'}")
        return f"CREATE OR REPLACE SECRET lake ({', '.join(parts)})"
