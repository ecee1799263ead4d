"""The one settings object. Everything configurable comes from the environment or ``envs/*.env``.

Precedence: real environment variables, then the env file(s) named by ``LAKEHOUSE_ENV_FILE`` or
``--env-file`` (a comma- or colon-separated list is read in order, a later file winning, e.g.
``envs/stack.env,.stack/keys/pipeline.env``: shared settings, then one identity's keys; a path
as typed, relative to the working directory), else the project's own ``envs/local.env`` (the
checkout holding this package, wherever the command runs from), then the defaults below.

Relative lake locations (``LAKE_RAW``, ``LAKE_BRONZE``, ``LAKE_SILVER``, ``LAKE_GOLD``,
``LAKE_EXPORT``): one set in an env file is resolved against **that env file's folder**
(``envs/local.env`` says ``../lake/raw``: ``<project>/lake/raw`` from any directory); one set in
the real environment or left at its default, against the working directory. The CLI refuses a
local lake location that does not exist (one line naming it, exit 2) rather than create a lake
there. No module outside this package reads ``os.environ`` for configuration or hard-codes a path, endpoint or
credential.
"""

from __future__ import annotations

import os
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from jobs import options
from jobs.settings.durations import parse_duration
from jobs.settings.env_files import env_file, lake_locations
from jobs.stages import DEFAULT_MAX_FUTURE_DAYS, DEFAULT_MIN_DAY, ENGINE_MAX_DAY, ENGINE_MIN_DAY

if TYPE_CHECKING:
    from jobs.schemas import Limits

# The shortest MAINTAIN_RETENTION_HOURS allowed. Vacuum deletes the files of versions older than
# the retention (and unreferenced files older than it), so a reader that opened an older version
# loses its files mid-read. The lease keeps the pipeline's own runs out while maintenance works,
# but readers outside it (a DuckDB/analyst query, an export consumer, detect's look at the logs)
# may hold a version open; none may run longer than this, and a killed writer's uncommitted files
# must look older than any live writer's.
MAINTAIN_MIN_RETENTION_HOURS = 1


# The region when neither AWS_REGION, AWS_DEFAULT_REGION nor the AWS profile names one (AWS's own).
DEFAULT_AWS_REGION = "us-east-1"

# Secrets that are examples, never to be used beyond this machine's loopback.
EXAMPLE_SECRET_MARKERS = ("example", "change-me", "changeme", "dev-secret")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_example_secret(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in EXAMPLE_SECRET_MARKERS)


def is_loopback(endpoint: str | None) -> bool:
    from urllib.parse import urlparse

    return bool(endpoint) and urlparse(endpoint).hostname in LOOPBACK_HOSTS


class Settings(BaseSettings):
    """Lake locations, object-storage credentials and feature parameters."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    # Where each layer lives: a local directory or an s3:// URI (bucket, optionally a prefix).
    lake_raw: str = "lake/raw"
    lake_bronze: str = "lake/bronze"
    lake_silver: str = "lake/silver"
    lake_gold: str = "lake/gold"
    # Where the latest-week deliverable (final.parquet / final.csv) is written.
    lake_export: str = ""

    # Standard AWS variables, used only when a layer is on s3://. jobs.storage resolves the
    # pipeline's keys once: this key pair (+ session token) when set, else botocore's standard
    # chain (AWS_PROFILE in the shared config/credentials files, SSO, assume-role, container and
    # instance roles). Endpoint: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS. Region:
    # AWS_REGION, else AWS_DEFAULT_REGION, else the profile's, else us-east-1.
    aws_endpoint_url: str | None = None
    aws_endpoint_url_s3: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_profile: str | None = None
    aws_config_file: str | None = None
    aws_shared_credentials_file: str | None = None
    aws_region: str | None = None
    aws_default_region: str | None = None
    aws_ca_bundle: str | None = None
    aws_allow_http: bool = False

    # Bounded waiting on the object store, applied to every client (deltalake/object_store,
    # polars, s3fs/botocore, boto3, DuckDB httpfs) by jobs.storage. A request gets
    # S3_MAX_ATTEMPTS tries, each given S3_CONNECT_TIMEOUT_SECONDS to connect and
    # S3_READ_TIMEOUT_SECONDS for an answer, with a backoff growing from
    # S3_RETRY_BACKOFF_SECONDS between tries. A stalled store thus fails a stage with one
    # "cannot reach the object store" line after at most Storage.request_bound_seconds
    # (about 1.6 minutes with these defaults), not never.
    s3_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    s3_read_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    s3_max_attempts: int = Field(default=3, ge=1, le=10)
    s3_retry_backoff_seconds: float = Field(default=0.2, ge=0, le=30)

    # Other identities on the object store, used only by `python -m infra.stack seed` and the
    # local stack: the admin creates buckets and uploads raw files (MinIO: the root user); the
    # analyst may only read gold. The pipeline identity is AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
    admin_access_key_id: str | None = None
    admin_secret_access_key: SecretStr | None = None
    analyst_access_key_id: str | None = None
    analyst_secret_access_key: SecretStr | None = None

    # Gold features (validated by jobs.options, as the same options of a run are).
    lookback_mode: Annotated[options.LookbackMode, BeforeValidator(options.lookback_mode)] = "calendar"
    # LOOKBACK_WEEKS: one window N or several ("3,1,4"); the first is the primary window
    # (gold's prior_* columns), the others add prior_*_<N>w columns (jobs.feature_registry).
    lookback_weeks: Annotated[tuple[int, ...], NoDecode, BeforeValidator(options.lookback_weeks)] = (3,)
    # Users are processed in this many hash buckets so memory stays bounded as data grows.
    gold_buckets: int = Field(default=0, ge=0, le=4096)
    gold_rows_per_bucket: int = Field(default=5_000_000, ge=1)
    # Raw files are parsed in chunks of about this many bytes (whole lines), bounding memory.
    # 16 MiB vs 64 MiB at scale 100: bronze 129 s vs 135 s, peak RSS 1.7 vs 2.7 GB.
    bronze_chunk_bytes: int = Field(default=16 << 20, ge=1024)
    # The local engine reads this many raw files ahead on threads while it writes the current
    # one (1: one file at a time, in the writer's stream; 0: the machine's cores + 1, which on 2
    # cores measured 11.4 s vs 12.7 s with 2 and 16.3 s with 1 at scale 10). Memory: one parsed chunk
    # per worker, and each file's rows until it is judged (BRONZE_SPOOL_MB).
    bronze_read_workers: int = Field(default=0, ge=0, le=64)
    # Memory for the rows of raw files waiting to be judged whole (the files read at once and
    # the quarantine share it); past it they wait on local disk. The default holds a scale-100
    # file's rows (about 110 bytes a row).
    bronze_spool_mb: int = Field(default=1536, ge=1)

    def read_workers(self) -> int:
        """BRONZE_READ_WORKERS resolved (0: the machine's cores + 1)."""
        return self.bronze_read_workers or (os.cpu_count() or 1) + 1

    # A local raw file modified less than this many seconds ago is watched that long; if it
    # still changes (an upstream still writing) it waits for the next run.
    raw_settle_seconds: float = Field(default=5.0, ge=0)
    # What bronze does with a raw file whose content changed after it was ingested: replace its
    # rows (bronze, quarantine, then silver days and gold weeks follow), skip it with a warning,
    # or fail the run.
    raw_on_change: Literal["replace", "skip", "fail"] = "replace"
    # A raw file whose bytes equal a file bronze holds (a rename, a copy, a re-delivery): skip
    # it (manifest status "duplicate"), or ingest it again as its own delivery.
    raw_on_duplicate: Literal["skip", "ingest"] = "skip"
    # A raw file that disappeared after ingestion: keep its rows (manifest status "deleted"), or
    # retract them from bronze and quarantine (then silver days and gold weeks follow).
    raw_on_delete: Literal["keep", "retract"] = "keep"
    # An operator's way out of a held batch: these pending raw files (path relative to LAKE_RAW
    # = reason) are rejected whole by the next bronze run, every line into quarantine with the
    # reason (`python -m jobs run --reject PATH=REASON`).
    raw_reject: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)

    # Execution engine of bronze, silver and gold (jobs/README.md: Dask). "local": this process.
    # "dask": one task per raw file (bronze), per day (silver) and per user bucket (gold) on a
    # Dask distributed cluster at DASK_SCHEDULER (tls:// or tcp://host:8786); empty starts a
    # 2-worker LocalCluster on 127.0.0.1. Either way each table gets ONE Delta commit per run.
    # jobs.pipeline.engines turns it into every stage's engine; jobs.options checks it.
    engine: Annotated[options.Engine, BeforeValidator(options.engine)] = "local"
    dask_scheduler: str = ""

    # One writer at a time (jobs/lease/): a run holds the lease <LAKE_BRONZE>/_lease.json while
    # it writes. On S3 the holder renews it every LEASE_HEARTBEAT_SECONDS (must be < TTL/2); a
    # lease not renewed for LEASE_TTL_SECONDS (holder dead) is taken over by the next run (a local
    # lease is a flock: no TTL). A second run waits up to LEASE_WAIT_SECONDS for the holder (0:
    # gives up at once, exit code 5).
    lease_ttl_seconds: float = Field(default=60, gt=0, le=86_400)
    lease_heartbeat_seconds: float = Field(default=10, gt=0)
    lease_wait_seconds: float = Field(default=0, ge=0)

    # Table maintenance (jobs/maintain.py; `python -m jobs maintain`, the lakehouse_maintenance DAG).
    # Time travel works back this many hours: vacuum deletes superseded files older than it and
    # orphan files (failed runs) whose modification time is older than it. At least
    # MAINTAIN_MIN_RETENTION_HOURS (see there why); Delta's own default is 168 (a week).
    maintain_retention_hours: int = 168
    # Size compaction aims at per file (0: the table's delta.targetFileSize, else 100 MB).
    maintain_target_file_bytes: int = Field(default=0, ge=0)
    # Rewrite gold weeks that have more than one file Z-ordered by user_id instead of compacting.
    maintain_zorder_gold: bool = False
    # Maintenance that finds the lease held (a pipeline run) waits up to this long for it, then
    # exit 5 / the DAG task retries: it is never in a hurry, a pipeline run is (0: give up at once).
    maintain_lease_wait_seconds: float = Field(default=1800, ge=0)

    @field_validator("maintain_retention_hours")
    @classmethod
    def _retention_covers_readers(cls, value: int) -> int:
        if value < MAINTAIN_MIN_RETENTION_HOURS:
            raise ValueError(
                f"must be at least {MAINTAIN_MIN_RETENTION_HOURS} hour(s): vacuum "
                "would delete files a reader of a recent version still needs"
            )
        return value

    # Data quality (jobs/quality/README.md).
    # A raw file whose quarantined lines exceed this fraction is rejected whole (all its lines in
    # quarantine, the run goes on and exits 7) — unless it has fewer than
    # QUALITY_QUARANTINE_MIN_LINES lines, then it is only a recorded warning.
    quality_max_quarantine_fraction: float = Field(default=0.05, ge=0, le=1)
    quality_quarantine_min_lines: int = Field(default=100, ge=0)
    # Value props silver accepts without a warning (comma-separated in the environment).
    quality_known_value_props: Annotated[tuple[str, ...], NoDecode] = (
        "cellphone_recharge",
        "credits_consumer",
        "link_cobro",
        "point",
        "prepaid",
        "send_money",
        "transport",
    )
    # Plausible days: [QUALITY_MIN_DAY, run date + QUALITY_MAX_FUTURE_DAYS], the run date being
    # the (UTC) date the run started. Bronze quarantines a row dated outside them (with its
    # reason) and the bronze and silver suites check the same window.
    quality_min_day: date = Field(default=DEFAULT_MIN_DAY, ge=ENGINE_MIN_DAY, le=ENGINE_MAX_DAY)
    quality_max_future_days: int = Field(default=DEFAULT_MAX_FUTURE_DAYS, ge=0, le=3660)
    # Severity overrides: "check=warning,silver.day_not_after_run_date=failure" (a check name,
    # optionally prefixed by its layer or suite, e.g. silver.prints.value_prop_in_known_set).
    quality_severity: Annotated[dict[str, Literal["failure", "warning"]], NoDecode] = Field(
        default_factory=dict
    )
    # Rows per validation batch (Polars) (bounds memory) and unexpected rows shown per check.
    quality_batch_rows: int = Field(default=1_000_000, ge=1)
    quality_sample_rows: int = Field(default=5, ge=0, le=100)
    # OpenLineage events (jobs/lineage.py), configured the client's standard way (OPENLINEAGE_URL,
    # OPENLINEAGE_API_KEY, OPENLINEAGE_CONFIG / openlineage.yml): the seconds a run waits, in all,
    # for them to be sent (an HTTP transport's timeout is capped to it, and it does not retry).
    lineage_timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    @field_validator("quality_known_value_props", mode="before")
    @classmethod
    def _split_props(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("raw_reject", mode="before")
    @classmethod
    def _parse_rejects(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
            return {p[0].strip(): (p[1].strip() if len(p) > 1 else "") for p in pairs}
        return value

    @field_validator("quality_severity", mode="before")
    @classmethod
    def _parse_severity(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("expected check=failure|warning, comma-separated")
            return {k.strip(): v.strip().lower() for k, v in pairs}
        return value

    @field_validator("lease_heartbeat_seconds")
    @classmethod
    def _heartbeat_within_ttl(cls, value: float, info: ValidationInfo) -> float:
        ttl = info.data.get("lease_ttl_seconds")
        if ttl is not None and not value < ttl / 2:
            raise ValueError(
                f"must be less than half of LEASE_TTL_SECONDS={ttl:g}, so a live "
                "holder renews its lease at least twice before it could expire"
            )
        return value

    # Observability.
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # METRICS_FILE: every run writes its figures there in Prometheus text format (jobs.runs),
    # for node_exporter's textfile collector; unset: no file (``--metrics-file`` sets it too).
    metrics_file: str | None = None
    # FRESHNESS_MAX_AGE: `python -m jobs freshness` exits 9 when a layer's last commit that changed
    # rows is older than this (30m, 26h, 2d, 1w; ``--max-age`` overrides it).
    freshness_max_age: str = "26h"

    @field_validator("freshness_max_age")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _no_example_secret_beyond_loopback(self) -> Settings:
        """Example / ``change-me`` keys (envs/*.env) only ever talk to this machine's loopback."""
        if self.s3_endpoint_url is None or is_loopback(self.s3_endpoint_url):
            return self
        for name in ("aws_secret_access_key", "admin_secret_access_key", "analyst_secret_access_key"):
            secret = getattr(self, name)
            if secret is not None and is_example_secret(secret.get_secret_value()):
                raise ValueError(
                    f"{name.upper()} is an example value (it contains one of "
                    f"{', '.join(EXAMPLE_SECRET_MARKERS)}) but AWS_ENDPOINT_URL is not loopback: "
                    "set real keys for a shared object store"
                )
        return self

    @field_validator("lake_raw", "lake_bronze", "lake_silver", "lake_gold", "lake_export")
    @classmethod
    def _normalise_uri(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        if "://" in value:
            return value.rstrip("/")
        return str(Path(value).expanduser().resolve())

    def limits(self, run_date: date) -> Limits:
        """The contract's plausible days for a run started on ``run_date``."""
        from jobs.schemas import Limits  # polars: not at import (the DAGs import this module)

        return Limits.for_run(
            run_date, min_day=self.quality_min_day, max_future_days=self.quality_max_future_days
        )

    @property
    def s3_endpoint_url(self) -> str | None:
        """The S3 endpoint: ``AWS_ENDPOINT_URL_S3`` (service-specific, as botocore) wins."""
        return self.aws_endpoint_url_s3 or self.aws_endpoint_url

    @cached_property
    def export_uri(self) -> str:
        """``LAKE_EXPORT`` or, by default, ``<LAKE_GOLD>/export``."""
        return self.lake_export or f"{self.lake_gold}/export"

    def describe(self) -> dict[str, str]:
        """The settings worth printing in a run summary (never a secret)."""
        return {
            "raw": self.lake_raw,
            "bronze": self.lake_bronze,
            "silver": self.lake_silver,
            "gold": self.lake_gold,
            "lookback": f"{self.lookback_mode}, N={options.format_windows(self.lookback_weeks)}",
        }


SettingsT = TypeVar("SettingsT", bound=Settings)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment and env file; ``overrides`` win (used by the CLI)."""
    return load_as(Settings, **overrides)


def load_as(settings_class: type[SettingsT], **overrides: object) -> SettingsT:
    """``settings_class`` (Settings or a subclass with more fields, e.g. infra's) built like
    :func:`load_settings`: a bad value is one :class:`ConfigError` line naming it."""
    from pydantic import ValidationError

    from jobs.errors import ConfigError

    clean = {k: v for k, v in overrides.items() if v is not None}
    files = env_file()
    try:
        return settings_class(_env_file=files, **{**lake_locations(files), **clean})  # type: ignore[call-arg,arg-type]
    except ValidationError as exc:

        def shown(error: Any) -> str:
            if not error["loc"]:  # a whole-model check: its input is every value, secrets too
                return str(error["msg"]).removeprefix("Value error, ")
            name = ".".join(str(p) for p in error["loc"]).upper()
            secret = "SECRET" in name or "PASSWORD" in name
            value = "<hidden>" if secret else repr(error.get("input"))
            return f"{name}={value}: {str(error['msg']).removeprefix('Value error, ')}"

        problems = "; ".join(shown(e) for e in exc.errors(include_input=True))
        shown_files = ", ".join(files) if isinstance(files, tuple) else files
        raise ConfigError(
            f"invalid settings ({problems}); check the environment and {shown_files or 'envs/*.env'}"
        ) from exc
