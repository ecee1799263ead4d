"""botocore's clients (boto3, s3fs) and the fsspec filesystems of the lake.

botocore (boto3 clients and s3fs) gets ``connect_timeout``, ``read_timeout`` and
``total_max_attempts`` in standard retry mode; s3fs's own retry loop is set to one try so the
attempts do not multiply. With keys from the standard chain, a boto3 client shares the
process's botocore session, which refreshes temporary keys before they expire.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from jobs.storage.base import Credentials, StorageBase, is_remote

if TYPE_CHECKING:
    import fsspec


class BotoClients(StorageBase):
    """The boto3, s3fs and fsspec builders of :class:`jobs.storage.Storage`."""

    def _botocore_config(self) -> dict[str, Any]:
        s = self.settings
        return {
            "s3": {"addressing_style": "path"},
            "connect_timeout": s.s3_connect_timeout_seconds,
            "read_timeout": s.s3_read_timeout_seconds,
            "retries": {"total_max_attempts": self.attempts, "mode": "standard"},
        }

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
