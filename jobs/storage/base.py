"""What every storage client's options are made of: one identity's keys, its region and CA
bundle, and the bounds on waiting for the store (see :mod:`jobs.storage` for the whole).

Credentials are resolved here once per identity: the settings' key pair when set, else
botocore's standard chain (profile, SSO, assume-role, container/instance role), one botocore
session per process. :class:`StorageBase` is the base of :class:`jobs.storage.Storage`; the
option builders of each library are its other bases (:mod:`jobs.storage.object_store`,
:mod:`jobs.storage.boto`, :mod:`jobs.storage.duckdb_secret`).
"""

from __future__ import annotations

import functools
import os
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from jobs.errors import CredentialsUnavailable
from jobs.settings import DEFAULT_AWS_REGION

if TYPE_CHECKING:
    import botocore.session

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
class StorageBase:
    """One Settings seen as one identity: its keys, region, CA bundle and bounds on waiting."""

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

    @property
    def uses_s3(self) -> bool:
        """Whether any layer of the lake is on object storage."""
        s = self.settings
        return any(is_remote(u) for u in (s.lake_raw, s.lake_bronze, s.lake_silver, s.lake_gold))


def ms(seconds: float) -> int:
    return max(round(seconds * 1000), 0)


def duration(seconds: float) -> str:
    """A duration as object_store parses it (humantime: whole units, so milliseconds)."""
    return f"{ms(seconds)}ms"
