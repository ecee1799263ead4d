"""Options for the Rust object_store clients: deltalake's and polars' own.

* deltalake (object_store): ``connect_timeout``, ``timeout`` (the whole request, per
  attempt), ``retry_timeout`` and ``backoff_config.*``. ``max_retries`` cannot be given: the
  same options reach polars through ``pl.scan_delta(table)``, and polars wants an integer
  where deltalake wants a string, so deltalake's retries are bounded by ``retry_timeout``.
* polars' own object store (``pl.scan_delta``/``scan_parquet``): the same ``timeout`` keys,
  and its retries as ``max_retries``/``retry_*_ms`` (integers): in
  :meth:`ObjectStoreOptions.polars_options`, and added to a Delta table's options by
  :meth:`jobs.tables.Lake.scan_table`. No option builder changes the process environment.
"""

from __future__ import annotations

from typing import Any

from jobs.storage.base import StorageBase, duration, is_remote, ms


class ObjectStoreOptions(StorageBase):
    """The deltalake and polars option builders of :class:`jobs.storage.Storage`."""

    def _object_store_timeouts(self) -> dict[str, str]:
        s = self.settings
        return {
            "connect_timeout": duration(s.s3_connect_timeout_seconds),
            "timeout": duration(s.s3_read_timeout_seconds),
            "pool_idle_timeout": duration(max(s.s3_read_timeout_seconds, 15.0)),
        }

    def polars_retry_options(self, uri: str) -> dict[str, int] | None:
        """polars' own retry policy for its object-store reads (integers, which deltalake
        refuses in its options): ``pl.scan_delta(table, storage_options=...)`` adds them to the
        table's options for the data files polars reads; None for local paths."""
        if not is_remote(uri):
            return None
        return {
            "max_retries": self.attempts - 1,
            "retry_timeout_ms": ms(self._retry_window_seconds),
            "retry_init_backoff_ms": ms(self.settings.s3_retry_backoff_seconds),
            "retry_max_backoff_ms": ms(self.backoff_max_seconds),
        }

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
        opts["retry_timeout"] = duration(self._retry_window_seconds)
        opts["backoff_config.init_backoff"] = duration(self.settings.s3_retry_backoff_seconds)
        opts["backoff_config.max_backoff"] = duration(self.backoff_max_seconds)
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
