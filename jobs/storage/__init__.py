"""Turns settings into what each library needs to reach a lake location.

This is the only place that knows about endpoints and credentials. Local paths and ``s3://``
URIs are handled alike by every caller: they ask :class:`Storage` for a filesystem, for
Delta/Polars storage options or for DuckDB secret SQL, and never build those themselves.

It is also the one place that bounds waiting on the object store. Every client gets the same
connect timeout, read timeout, number of attempts and backoff (settings ``S3_*``), in the
spelling that client understands. One module per concern, all bases of :class:`Storage`:

* :mod:`jobs.storage.base`: paths, the identity's keys, region and CA bundle, the bounds;
* :mod:`jobs.storage.object_store`: deltalake's and polars' options (``connect_timeout``,
  ``timeout``, ``retry_timeout``, ``backoff_config.*``; polars' integer ``max_retries``/
  ``retry_*_ms``);
* :mod:`jobs.storage.boto`: boto3 clients, s3fs and the fsspec filesystems (botocore's
  ``connect_timeout``, ``read_timeout``, ``total_max_attempts``; s3fs retries once);
* :mod:`jobs.storage.duckdb_secret`: DuckDB httpfs (``http_timeout``, ``http_retries``,
  ``http_retry_wait_ms``, ``http_retry_backoff``) and the lake's S3 secret.

Credentials are resolved once per identity and handed to every client (infra/README.md,
"Credentials"): the settings' key pair (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, with
``AWS_SESSION_TOKEN``; or the identity's ``ADMIN_*``/``ANALYST_*`` keys) when set, else
botocore's standard chain (profile, SSO, assume-role, container/instance role), one botocore
session per process. Temporary keys are re-read from that session each time options are built,
and botocore refreshes them before they expire. Failures become one line in
:mod:`jobs.storage.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobs.storage.base import Credentials, aws_session, bucket_of, is_remote, join
from jobs.storage.boto import BotoClients
from jobs.storage.duckdb_secret import DuckDBOptions
from jobs.storage.object_store import ObjectStoreOptions

if TYPE_CHECKING:
    from jobs.settings import Settings

__all__ = ["Credentials", "Storage", "aws_session", "bucket_of", "is_remote", "join"]


@dataclass(frozen=True)
class Storage(ObjectStoreOptions, BotoClients, DuckDBOptions):
    """Storage options for polars, deltalake, DuckDB and fsspec, derived from one Settings
    (``settings``) as one identity (``identity``: "pipeline", "admin" or "analyst")."""

    def for_identity(self, identity: str) -> Storage:
        """The same lake seen as another identity: ``"admin"`` or ``"analyst"``.

        Its keys come from the settings ``ADMIN_*``/``ANALYST_*`` if set (the admin-side tools,
        compose's init container); else this process's own keys are used as they are: a process
        is handed one identity's keys, e.g. the analyst's key file named by
        ``LAKEHOUSE_ENV_FILE``. ``"pipeline"`` is this process's ``AWS_*`` keys.
        """
        if identity == "pipeline":
            return self
        s = self.settings
        key, secret = {
            "admin": (s.admin_access_key_id, s.admin_secret_access_key),
            "analyst": (s.analyst_access_key_id, s.analyst_secret_access_key),
        }[identity]
        if not key:  # no separate key: this process's identity is used as is
            return self
        # Long-term keys of another identity: no session token or profile of this process.
        update = {
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
            "aws_session_token": None,
            "aws_profile": None,
        }
        # A new Settings (not model_copy): cached properties must not carry over.
        return Storage(type(s)(**(s.model_dump() | update)), identity=identity)

    def for_workers(self) -> Settings:
        """Settings for remote (Dask) workers: this identity's keys as resolved here, frozen (a
        worker cannot refresh them), and nothing else secret: no other identity's keys, no
        profile or shared files of this machine."""
        s = self.settings
        update: dict[str, Any] = {
            "admin_access_key_id": None,
            "admin_secret_access_key": None,
            "analyst_access_key_id": None,
            "analyst_secret_access_key": None,
            "aws_profile": None,
            "aws_config_file": None,
            "aws_shared_credentials_file": None,
        }
        if self.uses_s3:
            creds = self.credentials()
            update |= {
                "aws_access_key_id": creds.access_key,
                "aws_secret_access_key": creds.secret_key,
                "aws_session_token": creds.token,
                "aws_region": self.region,
                "aws_ca_bundle": self.ca_bundle,
            }
        return type(s)(**(s.model_dump() | update))
