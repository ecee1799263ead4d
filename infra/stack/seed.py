"""``python -m infra.stack seed``: the object store's init step.

1. Creates the lake's buckets if missing (as the admin identity), after step 2.
2. Checks the identities through the step it is given (the caller composes it, so seeding
   never imports a server) BEFORE changing anything: on the local SeaweedFS stack
   :func:`infra.stack.weed.check_identities` fails with one line if the keys it was given
   differ from the live identities file (changing identities is the explicit
   ``python -m infra.stack identities apply``, never a side effect of seeding); on MinIO the
   compose init service applies ``infra/minio/*.json`` with ``mc`` before seeding.
3. Uploads raw files from a local directory (or from the generator's output, cached under
   ``<STACK_DIR>/cache``) to ``LAKE_RAW``. Idempotent: an object already there with the same size
   and MD5 is skipped, so seeding twice uploads nothing; an object with the same key but other
   bytes stops the seed before anything is uploaded (raw files are immutable).
   ``--days K`` (trickle) uploads only the next K days not yet in the bucket.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import posixpath
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from infra.stack.identities import Location, buckets
from infra.stack.settings import StackSettings
from jobs.errors import ConfigError, DataError, PipelineError, StorageError
from jobs.schemas import SOURCES
from jobs.storage import Storage, is_remote
from jobs.tables import storage_error

log = logging.getLogger(__name__)

DAY = re.compile(r"(?:^|/)day=(\d{4}-\d{2}-\d{2})(?:/|$)")

# The identity step: checks the identities before anything changes, says what it found.
IdentitySetup = Callable[[StackSettings], str]


@dataclass(frozen=True)
class SeedOptions:
    source: Path | None = None  # local directory laid out as <source>/... (like LAKE_RAW)
    generate: bool = False  # generate the files with the project's generator first
    scale: float = 1.0
    seed: int = 42
    start: date = date(2020, 11, 1)
    gen_days: int = 30  # days generated for a full seed
    days: int | None = None  # trickle: upload only the next K days not yet present
    identities: bool = True  # run the identity step seed_lake is given
    upload: bool = True


@dataclass
class SeedReport:
    buckets_created: list[str] = field(default_factory=list)
    buckets_existing: list[str] = field(default_factory=list)
    identities: str = "not changed"
    uploaded: int = 0
    uploaded_bytes: int = 0
    skipped: int = 0
    days: list[str] = field(default_factory=list)
    source: str = ""
    seconds: float = 0.0

    def describe(self) -> str:
        lines = [
            f"buckets: {len(self.buckets_created)} created {self.buckets_created}, "
            f"{len(self.buckets_existing)} already there",
            f"identities: {self.identities}",
        ]
        if self.source:
            days = f"; days {self.days[0]}..{self.days[-1]}" if self.days else ""
            lines.append(
                f"raw files from {self.source}: uploaded {self.uploaded} "
                f"({self.uploaded_bytes / 1e6:.1f} MB), skipped {self.skipped} already "
                f"present{days}"
            )
        lines.append(f"seeded in {self.seconds:.1f}s")
        return "\n".join(lines)


@dataclass(frozen=True)
class LocalFile:
    rel: str  # relative to the raw root, e.g. prints/day=2020-11-01/part-0.json
    path: Path
    size: int

    @property
    def day(self) -> str | None:
        m = DAY.search(self.rel)
        return m.group(1) if m else None


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # S3 ETags of single-part uploads are MD5s
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_files(root: Path) -> list[LocalFile]:
    """Raw files under ``root/<source>/`` (hidden and ``_`` files skipped, like bronze does)."""
    found = []
    for source in SOURCES:
        base = root / source
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith((".", "_")):
                found.append(LocalFile(path.relative_to(root).as_posix(), path, path.stat().st_size))
    return found


class Seeder:
    """Seeding as the admin identity (the pipeline may not write raw)."""

    def __init__(self, settings: StackSettings) -> None:
        if not is_remote(settings.lake_raw):
            raise ConfigError(
                f"seed uploads to object storage, but LAKE_RAW is the local path "
                f"{settings.lake_raw}; set LAKE_RAW=s3://bucket[/prefix]"
            )
        self.settings = settings
        self.storage = Storage(settings).for_identity("admin")
        self.client = self.storage.s3_client()
        raw = Location.of(settings.lake_raw)
        self.bucket, self.prefix = raw.bucket, raw.prefix

    def _error(self, exc: Exception, uri: str) -> StorageError:
        return storage_error(exc, uri=uri, storage=self.storage)

    # -- buckets ----------------------------------------------------------------------------
    def ensure_buckets(self, report: SeedReport) -> None:
        from botocore.exceptions import ClientError

        for bucket in buckets(self.settings):
            try:
                try:
                    self.client.head_bucket(Bucket=bucket)
                    report.buckets_existing.append(bucket)
                    continue
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                        raise
                self.client.create_bucket(Bucket=bucket)
                report.buckets_created.append(bucket)
            except Exception as exc:
                raise self._error(exc, f"s3://{bucket}") from exc

    # -- raw objects ------------------------------------------------------------------------
    def key(self, rel: str) -> str:
        return posixpath.join(self.prefix, rel) if self.prefix else rel

    def remote(self) -> dict[str, tuple[int, str]]:
        """rel path → (size, ETag without quotes) of every object under LAKE_RAW."""
        found: dict[str, tuple[int, str]] = {}
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
            for page in pages:
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(start) :]
                    found[rel] = (int(obj["Size"]), obj.get("ETag", "").strip('"'))
        except Exception as exc:
            raise self._error(exc, self.settings.lake_raw) from exc
        return found

    def remote_md5(self, rel: str, etag: str) -> str:
        """The MD5 of an object: its ETag, or the ``md5`` metadata of a multipart upload."""
        if "-" not in etag:
            return etag
        head = self.client.head_object(Bucket=self.bucket, Key=self.key(rel))
        return head.get("Metadata", {}).get("md5", etag)

    def upload(self, files: list[LocalFile], report: SeedReport) -> None:
        remote = self.remote()
        todo: list[tuple[LocalFile, str]] = []
        conflicts = []
        for f in files:
            md5 = _md5(f.path)
            if f.rel in remote:
                size, etag = remote[f.rel]
                if size == f.size and self.remote_md5(f.rel, etag) == md5:
                    report.skipped += 1
                    continue
                conflicts.append(f.rel)
                continue
            todo.append((f, md5))
        if conflicts:
            raise DataError(
                f"{len(conflicts)} raw file(s) already in {self.settings.lake_raw} differ from "
                f"the local ones (e.g. {conflicts[0]}): raw files are immutable, so nothing was "
                "uploaded; seed into an empty bucket/prefix or remove those objects first"
            )

        def put(item: tuple[LocalFile, str]) -> int:
            f, md5 = item
            body = f.path.read_bytes()
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(f.rel),
                Body=body,
                ContentMD5=base64.b64encode(bytes.fromhex(md5)).decode(),
                Metadata={"md5": md5},
            )
            return len(body)

        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                for size in pool.map(put, todo):
                    report.uploaded += 1
                    report.uploaded_bytes += size
        except Exception as exc:
            raise self._error(exc, self.settings.lake_raw) from exc
        report.days = sorted({d for f, _ in todo if (d := f.day)})

    def remote_days(self) -> set[str]:
        return {m.group(1) for rel in self.remote() if (m := DAY.search(rel))}


# -- generating -----------------------------------------------------------------------------
def cache_dir(settings: StackSettings, options: SeedOptions) -> Path:
    return Path(settings.stack_dir).resolve() / "cache" / f"scale-{options.scale:g}-seed-{options.seed}"


def _generate(out: Path, options: SeedOptions, start: date, days: int) -> None:
    """Generate ``days`` days from ``start`` into ``out`` unless a marker says they are there."""
    from infra.generator import generate  # imports polars: only when generating

    marker = out / "_generated.json"
    done = json.loads(marker.read_text()) if marker.is_file() else []
    wanted = [(start + timedelta(days=i)).isoformat() for i in range(days)]
    if set(wanted) <= set(done):
        return
    started = time.perf_counter()
    old = os.umask(0o077)  # the cache lives under STACK_DIR: owner-only like everything there
    try:
        generate(
            out_dir=out, seed=options.seed, scale=options.scale, start=start, days=days, skip_existing=True
        )
        marker.write_text(json.dumps(sorted(set(done) | set(wanted))))
    finally:
        os.umask(old)
    log.info("generated %d day(s) from %s into %s in %.1fs", days, start, out, time.perf_counter() - started)


# -- the command ----------------------------------------------------------------------------
def seed_lake(
    settings: StackSettings, options: SeedOptions, identities: IdentitySetup | None = None
) -> SeedReport:
    """``identities`` (unless ``options.identities`` is off), then buckets, then the uploads."""
    started = time.perf_counter()
    report = SeedReport()
    seeder = Seeder(settings)
    if options.identities and identities is not None:
        report.identities = identities(settings)
    seeder.ensure_buckets(report)
    if options.upload:
        files = _files_to_upload(settings, seeder, options, report)
        seeder.upload(files, report)
    report.seconds = time.perf_counter() - started
    return report


def _files_to_upload(
    settings: StackSettings, seeder: Seeder, options: SeedOptions, report: SeedReport
) -> list[LocalFile]:
    if options.days is not None and options.days < 1:
        raise ConfigError("--days must be at least 1")
    if options.source is not None:
        root = options.source.resolve()
        if not root.is_dir():
            raise ConfigError(f"raw directory {root} not found")
    elif options.generate:
        root = cache_dir(settings, options)
    else:
        raise ConfigError("nothing to upload: give --from DIR or --generate")
    report.source = str(root)

    if options.days is None:
        if options.generate and options.source is None:
            _generate(root, options, options.start, options.gen_days)
        return local_files(root)

    present = seeder.remote_days()
    if options.generate and options.source is None:
        last = max((date.fromisoformat(d) for d in present), default=None)
        first = last + timedelta(days=1) if last else options.start
        _generate(root, options, first, options.days)
        wanted = {(first + timedelta(days=i)).isoformat() for i in range(options.days)}
        return [f for f in local_files(root) if f.day in wanted]
    files = local_files(root)
    missing = sorted({d for f in files if (d := f.day) and d not in present})
    wanted = set(missing[: options.days])
    return [f for f in files if f.day in wanted]


def run_seed(
    settings: StackSettings, options: SeedOptions, identities: IdentitySetup | None = None
) -> SeedReport:
    """CLI entry point: errors a user can hit are PipelineErrors (one line)."""
    try:
        return seed_lake(settings, options, identities)
    except PipelineError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read raw files: {exc}") from exc
