"""Turns settings into what each library needs to reach a lake location.

This is the only module that knows about endpoints and credentials. Local paths and
``s3://`` URIs are handled alike by every caller: they ask for a filesystem, for Delta/Polars
storage options or for DuckDB secret SQL, and never build those themselves.

It is also the one place that bounds waiting on the object store. Every client gets the same
connect timeout, read timeout, number of attempts and backoff (settings ``S3_*``), in the
spelling that client understands:

* deltalake (object_store): ``connect_timeout``, ``timeout`` (the whole request, per
  attempt), ``retry_timeout`` and ``backoff_config.*``. ``max_retries`` cannot be given: the
  same options reach polars through ``pl.scan_delta(table)``, and polars wants an integer
  where deltalake wants a string, so deltalake's retries are bounded by ``retry_timeout``.
* polars' own object store (``pl.scan_delta``/``scan_parquet``): the same ``timeout`` keys,
  and its retries as ``max_retries``/``retry_*_ms`` (integers): in
  :meth:`Storage.polars_options`, and added to a Delta table's options by
  :meth:`jobs.tables.Lake.scan_table`. No option builder changes the process environment.
* botocore (boto3 clients and s3fs): ``connect_timeout``, ``read_timeout`` and
  ``total_max_attempts`` in standard retry mode; s3fs's own retry loop is set to one try so
  the attempts do not multiply.
* DuckDB httpfs: ``http_timeout``, ``http_retries``, ``http_retry_wait_ms``,
  ``http_retry_backoff`` (:meth:`Storage.duckdb_settings_sql`).

Credentials are resolved here once per identity and handed to every client (infra/README.md,
"Credentials"): the settings' key pair (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, with
``AWS_SESSION_TOKEN``; or the identity's ``ADMIN_*``/``ANALYST_*`` keys) when set, else
botocore's standard chain (profile, SSO, assume-role, container/instance role), one botocore
session per process. Temporary keys are re-read from that session each time options are built,
and botocore refreshes them before they expire.
"""

from __future__ import annotations

import functools
import math
import os
import posixpath
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from jobs.errors import CredentialsUnavailable
from jobs.settings import DEFAULT_AWS_REGION

if TYPE_CHECKING:
    import botocore.session
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
class Credentials:
    """One identity's resolved keys (``repr`` never shows the secret or the token)."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    # What a person checks when they are wrong: "AWS_ACCESS_KEY_ID", "profile 'dev'", ...
    source: str = "AWS_ACCESS_KEY_ID"
    # True when they came from botocore's chain (a boto3 client can then refresh them itself).
    from_chain: bool = False


@functools.lru_cache(maxsize=8)
def aws_session(
    profile: str | None, config_file: str | None, credentials_file: str | None
) -> botocore.session.Session:
    """One botocore session per process and profile: it resolves credentials through the
    standard chain once and refreshes temporary ones before they expire."""
    import botocore.session

    session = botocore.session.Session(profile=profile)
    if config_file:
        session.set_config_variable("config_file", config_file)
    if credentials_file:
        session.set_config_variable("credentials_file", credentials_file)
    return session


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
        return self.settings.s3_endpoint_url or "AWS default endpoint"

    # -- credentials, region, CA bundle -----------------------------------------------------------
    def _session(self) -> botocore.session.Session:
        s = self.settings
        return aws_session(s.aws_profile, s.aws_config_file, s.aws_shared_credentials_file)

    def credentials(self) -> Credentials:
        """This identity's keys now: the settings' key pair, else the standard chain.

        Raises :class:`CredentialsUnavailable` (one line) when there are none."""
        s = self.settings
        if s.aws_access_key_id and s.aws_secret_access_key:
            token = s.aws_session_token.get_secret_value() if s.aws_session_token else None
            key = self.key_variables[0]
            return Credentials(s.aws_access_key_id, s.aws_secret_access_key.get_secret_value(), token, key)
        if s.aws_access_key_id or s.aws_secret_access_key:
            first, second = self.key_variables
            raise CredentialsUnavailable(
                f"only one of {first} and {second} is set: set both (or neither, to use "
                "AWS_PROFILE or the standard AWS credential chain)"
            )
        return self._chain_credentials()

    def _chain_credentials(self) -> Credentials:
        from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

        try:
            found = self._session().get_credentials()
            frozen = found.get_frozen_credentials() if found is not None else None
        except ProfileNotFound:
            raise CredentialsUnavailable(self._profile_missing()) from None
        except (BotoCoreError, ClientError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CredentialsUnavailable(
                f"cannot get AWS credentials from {self._profile_label()}: {first}; check that "
                "profile's settings (e.g. aws sso login for an SSO profile)"
            ) from None
        if found is None or frozen is None or not frozen.access_key:
            raise CredentialsUnavailable(self._nothing_found())
        source = f"{self._profile_label()} ({found.method})"
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None, source, True)

    def _profile_label(self) -> str:
        return f"AWS profile {self.settings.aws_profile or 'default'!r}"

    def _shared_files(self) -> str:
        s = self.settings
        config = s.aws_config_file or "~/.aws/config"
        shared = s.aws_shared_credentials_file or "~/.aws/credentials"
        return f"{config} (AWS_CONFIG_FILE) and {shared} (AWS_SHARED_CREDENTIALS_FILE)"

    def _profile_missing(self) -> str:
        return (
            f"{self._profile_label()} not found (AWS_PROFILE): check the profile name and the "
            f"files {self._shared_files()}"
        )

    def _nothing_found(self) -> str:
        first, second = self.key_variables
        return (
            f"no credentials for the object store at {self.endpoint} ({self.identity} identity): "
            f"set {first}/{second}, or AWS_PROFILE with a profile in {self._shared_files()}, "
            "or run where a container/instance role is available"
        )

    def describe_key(self) -> str:
        """The access key to name in a message (never the secret), without failing."""
        try:
            return self.credentials().access_key
        except CredentialsUnavailable:
            return "no access key"

    @property
    def key_source(self) -> tuple[str, str]:
        """What to check for a wrong access key and for a wrong secret (for error messages)."""
        if self.settings.aws_access_key_id:
            return self.key_variables
        label = self._profile_label()
        return f"the access key of {label}", f"the secret of {label}"

    @property
    def region(self) -> str:
        """``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else the profile's, else us-east-1."""
        s = self.settings
        return s.aws_region or s.aws_default_region or self._profile_value("region") or DEFAULT_AWS_REGION

    @property
    def ca_bundle(self) -> str | None:
        """``AWS_CA_BUNDLE``, else the profile's ``ca_bundle``: the CAs trusted for https."""
        return self.settings.aws_ca_bundle or self._profile_value("ca_bundle")

    def _profile_value(self, name: str) -> str | None:
        """A value of the named (or default) profile; botocore also reads ``AWS_DEFAULT_*``."""
        from botocore.exceptions import ProfileNotFound

        try:
            value = self._session().get_config_variable(name)
        except ProfileNotFound:
            raise CredentialsUnavailable(self._profile_missing()) from None
        return str(value) if value else None

    def trust_ca_bundle(self) -> None:
        """deltalake's and polars' Rust clients take no CA option but read ``SSL_CERT_FILE``
        when they build their first client: with a CA bundle, it is put there for this process
        (over the system bundle that images often set), as botocore's ``AWS_CA_BUNDLE`` replaces
        its own. Called once by :class:`jobs.tables.Lake` when it is built (on Dask workers
        too), never by the option builders, which only return options."""
        if bundle := self.ca_bundle:
            os.environ["SSL_CERT_FILE"] = bundle

    # -- bounded waiting -----------------------------------------------------------------------
    @property
    def attempts(self) -> int:
        return self.settings.s3_max_attempts

    @property
    def backoff_max_seconds(self) -> float:
        """The longest pause between two tries (the backoff doubles from S3_RETRY_BACKOFF)."""
        return self.settings.s3_retry_backoff_seconds * 2 ** max(self.attempts - 2, 0)

    @property
    def request_bound_seconds(self) -> float:
        """How long one request may wait on a stalled store before it fails: every attempt
        connecting and waiting for an answer in full, plus the pauses between attempts."""
        s = self.settings
        return (
            self.attempts * (s.s3_connect_timeout_seconds + s.s3_read_timeout_seconds)
            + (self.attempts - 1) * self.backoff_max_seconds
        )

    @property
    def _retry_window_seconds(self) -> float:
        """object_store's ``retry_timeout``: no new attempt starts after this long, which on a
        stalled store allows S3_MAX_ATTEMPTS attempts of S3_READ_TIMEOUT_SECONDS each."""
        s = self.settings
        return (self.attempts - 1) * (s.s3_read_timeout_seconds + self.backoff_max_seconds)

    def _object_store_timeouts(self) -> dict[str, str]:
        s = self.settings
        return {
            "connect_timeout": _duration(s.s3_connect_timeout_seconds),
            "timeout": _duration(s.s3_read_timeout_seconds),
            "pool_idle_timeout": _duration(max(s.s3_read_timeout_seconds, 15.0)),
        }

    def polars_retry_options(self, uri: str) -> dict[str, int] | None:
        """polars' own retry policy for its object-store reads (integers, which deltalake
        refuses in its options): ``pl.scan_delta(table, storage_options=...)`` adds them to the
        table's options for the data files polars reads; None for local paths."""
        if not is_remote(uri):
            return None
        return {
            "max_retries": self.attempts - 1,
            "retry_timeout_ms": _ms(self._retry_window_seconds),
            "retry_init_backoff_ms": _ms(self.settings.s3_retry_backoff_seconds),
            "retry_max_backoff_ms": _ms(self.backoff_max_seconds),
        }

    def _botocore_config(self) -> dict[str, Any]:
        s = self.settings
        return {
            "s3": {"addressing_style": "path"},
            "connect_timeout": s.s3_connect_timeout_seconds,
            "read_timeout": s.s3_read_timeout_seconds,
            "retries": {"total_max_attempts": self.attempts, "mode": "standard"},
        }

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

    def s3_client(self) -> Any:
        """A boto3 S3 client (path-style addressing) for this identity; with keys from the
        standard chain it shares the process's botocore session, which refreshes them."""
        import boto3
        from botocore.config import Config

        creds = self.credentials()
        options: dict[str, Any] = {
            "endpoint_url": self.settings.s3_endpoint_url,
            "region_name": self.region,
            "config": Config(**self._botocore_config()),
        }
        if bundle := self.ca_bundle:
            options["verify"] = bundle
        if creds.from_chain:
            return boto3.session.Session(botocore_session=self._session()).client("s3", **options)
        return boto3.client(
            "s3",
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            aws_session_token=creds.token,
            **options,
        )

    def delta_options(self, uri: str) -> dict[str, str] | None:
        """Options for ``deltalake`` (and ``pl.scan_delta``), None for local paths."""
        if not is_remote(uri):
            return None
        s = self.settings
        creds = self.credentials()
        opts = {
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": str(s.aws_allow_http).lower(),
            "AWS_ACCESS_KEY_ID": creds.access_key,
            "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        }
        if creds.token:
            opts["AWS_SESSION_TOKEN"] = creds.token
        if s.s3_endpoint_url:
            opts["AWS_ENDPOINT_URL"] = s.s3_endpoint_url
        # Path-style addressing: MinIO and SeaweedFS serve buckets under the endpoint's path.
        opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
        opts |= self._object_store_timeouts()
        opts["retry_timeout"] = _duration(self._retry_window_seconds)
        opts["backoff_config.init_backoff"] = _duration(self.settings.s3_retry_backoff_seconds)
        opts["backoff_config.max_backoff"] = _duration(self.backoff_max_seconds)
        opts["backoff_config.base"] = "2"
        # pl.scan_delta(table) reads the data files with polars' own client and these options,
        # plus polars_retry_options (Lake.scan_table).
        return opts

    def polars_options(self, uri: str) -> dict[str, Any] | None:
        """Options for ``pl.scan_parquet``/``read_parquet``/``write_parquet`` on object storage
        (polars' own retry keys included: it takes integers there)."""
        if not is_remote(uri):
            return None
        delta = self.delta_options(uri) or {}
        opts: dict[str, Any] = {
            k.lower(): v
            for k, v in delta.items()
            if k not in ("retry_timeout",) and not k.startswith("backoff_")
        }
        opts |= self.polars_retry_options(uri) or {}
        return opts

    @cached_property
    def _s3fs_by_keys(self) -> dict[tuple[str, str | None], fsspec.AbstractFileSystem]:
        return {}

    def _s3fs(self) -> fsspec.AbstractFileSystem:
        """One s3fs per set of keys: a refreshed temporary key gets a new filesystem."""
        creds = self.credentials()
        cache, keys = self._s3fs_by_keys, (creds.access_key, creds.token)
        fs = cache.get(keys)
        if fs is None:  # two threads may both build one: harmless, and never a KeyError
            fs = self._new_s3fs(creds)
            cache.clear()  # the old keys are expired or about to be
            cache[keys] = fs
        return fs

    def _new_s3fs(self, creds: Credentials) -> fsspec.AbstractFileSystem:
        import s3fs

        client_kwargs: dict[str, Any] = {"region_name": self.region}
        if bundle := self.ca_bundle:
            client_kwargs["verify"] = bundle
        fs = s3fs.S3FileSystem(
            key=creds.access_key,
            secret=creds.secret_key,
            token=creds.token,
            endpoint_url=self.settings.s3_endpoint_url,
            client_kwargs=client_kwargs,
            # botocore retries (standard mode, S3_MAX_ATTEMPTS in all) with bounded timeouts.
            config_kwargs=self._botocore_config(),
            use_listings_cache=False,
        )
        # s3fs retries timeouts itself too (5 times by default): one try of botocore's
        # attempts, or a stalled store would be waited on S3_MAX_ATTEMPTS x 5 times.
        fs.retries = 1
        return fs

    def filesystem(self, uri: str) -> fsspec.AbstractFileSystem:
        """An fsspec filesystem for ``uri`` (local or S3)."""
        if is_remote(uri):
            return self._s3fs()
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

    def duckdb_settings_sql(self) -> list[str]:
        """DuckDB httpfs settings bounding each request like the other clients (seconds for
        ``http_timeout``, retries after the first attempt, the first pause in ms, doubling)."""
        s = self.settings
        settings = [
            f"SET http_timeout = {math.ceil(s.s3_read_timeout_seconds)}",
            f"SET http_retries = {self.attempts - 1}",
            f"SET http_retry_wait_ms = {_ms(s.s3_retry_backoff_seconds)}",
            "SET http_retry_backoff = 2",
        ]
        if bundle := self.ca_bundle:  # a path from settings, as a quoted SQL literal
            settings.append("SET ca_cert_file = '" + bundle.replace("'", "''") + "'")
        return settings

    @property
    def uses_s3(self) -> bool:
        """Whether any layer of the lake is on object storage."""
        s = self.settings
        return any(is_remote(u) for u in (s.lake_raw, s.lake_bronze, s.lake_silver, s.lake_gold))

    def duckdb_secret(self) -> tuple[str, list[str | bool]] | None:
        """``CREATE SECRET`` for DuckDB's httpfs with its values as prepared-statement
        parameters (never interpolated into SQL text), or None when no layer is on S3."""
        if not self.uses_s3:
            return None
        creds = self.credentials()
        parts: list[str] = ["TYPE S3", "URL_STYLE 'path'", "REGION ?", "KEY_ID ?", "SECRET ?"]
        values: list[str | bool] = [self.region, creds.access_key, creds.secret_key]
        if creds.token:
            parts.append("SESSION_TOKEN ?")
            values.append(creds.token)
        if endpoint := self.settings.s3_endpoint_url:
            parsed = urlparse(endpoint)
            parts += ["ENDPOINT ?", "USE_SSL ?"]
            values += [parsed.netloc or parsed.path, parsed.scheme == "https"]
        return f"CREATE OR REPLACE SECRET lake ({', '.join(parts)})", values


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 0)


def _duration(seconds: float) -> str:
    """A duration as object_store parses it (humantime: whole units, so milliseconds)."""
    return f"{_ms(seconds)}ms"
