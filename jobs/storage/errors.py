"""Storage failures as one readable line: what failed, where, as whom, and what to check.

Every library (deltalake, s3fs/botocore, pyarrow, DuckDB) reports S3 errors its own way; this
module reads the error chain once (:mod:`jobs.storage.error_chain`) and maps it to the
:mod:`jobs.errors` classes that callers (and orchestrators deciding whether to retry) react to.
A damaged table is told apart from a failing store by :func:`table_damage`
(:mod:`jobs.storage.damage`, re-exported here).
"""

from __future__ import annotations

import re
import sys

from jobs.errors import (
    AccessDenied,
    BucketMissing,
    CredentialsRejected,
    CredentialsUnavailable,
    PipelineError,
    StorageError,
    StoreUnreachable,
)
from jobs.storage import Storage, bucket_of, is_remote
from jobs.storage.damage import DOCTOR_HINT, table_damage, table_label
from jobs.storage.error_chain import ANSI, chain, chain_text, first_line, unreachable

__all__ = ["DOCTOR_HINT", "storage_error", "storage_failure", "table_damage", "table_label"]


def storage_error(exc: BaseException, *, uri: str, storage: Storage) -> StorageError:
    """One readable line for the usual ways object storage fails.

    It names the location, the endpoint and the access key (never the secret) and says what to
    check; the subclass (unreachable, credentials, access, bucket) lets callers react.
    """
    if isinstance(exc, CredentialsUnavailable):  # already one line saying what to check
        return exc
    low = chain_text(exc).lower()
    if is_remote(uri):
        endpoint = storage.endpoint
        who = storage.describe_key()
        bucket = bucket_of(uri)
        if re.search(r"\b403\b|forbidden", low) and not _CODES.search(low):
            # A HEAD answer has no body: ask again with a GET to learn the real reason.
            low += " " + _probe(storage, uri).lower()
        if "invalidaccesskeyid" in low or "does not exist in our records" in low:
            return CredentialsRejected(
                f"the object store at {endpoint} does not know access key {who!r} (reading "
                f"{uri}): check {storage.key_source[0]}, and that the identities were created "
                "(make stack-up / python -m infra.stack seed)"
            )
        if "signaturedoesnotmatch" in low or "signature we calculated does not match" in low:
            return CredentialsRejected(
                f"the object store at {endpoint} rejected the secret of access key {who!r} "
                f"(reading {uri}): check {storage.key_source[1]}"
            )
        if "nosuchbucket" in low or "specified bucket does not exist" in low:
            return BucketMissing(
                f"bucket {bucket!r} does not exist at {endpoint} (for {uri}): check the LAKE_* "
                "settings or create the buckets (python -m infra.stack seed)"
            )
        if any(s in low for s in ("accessdenied", "access denied", "forbidden", " 403")):
            return AccessDenied(
                f"access denied: identity {who!r} may not use {uri} at {endpoint}: check that "
                f"these are the right keys and that bucket {bucket!r} exists and is granted to "
                "them (the pipeline reads raw and writes bronze/silver/gold; the analyst only "
                "reads gold)"
            )
        if "commitfailed" in low or ("concurrent" in low and "transaction" in low):
            return StorageError(
                f"another writer committed to {uri} at the same time, so this commit was "
                "refused and nothing was written: run the stage again"
            )
        if unreachable(exc, low):
            return StoreUnreachable(
                f"cannot reach the object store at {endpoint} (for {uri}): check "
                "AWS_ENDPOINT_URL and that the server is running (make stack-up)"
            )
        where = f"{uri} at {endpoint} as {who}"
    else:
        where = uri
    return StorageError(f"cannot access {where}: {first_line(exc)}")


def storage_failure(exc: BaseException, *, storage: Storage) -> PipelineError | None:
    """``exc`` as one :class:`StorageError` line when it clearly is an object-store failure
    that escaped a stage unclassified (e.g. from cleanup code, or raised inside polars or
    DuckDB), as :class:`TableDamaged` when it says a table is damaged, else None: anything
    else is a bug and keeps its traceback."""
    if isinstance(exc, StorageError):
        return exc
    if (damaged := table_damage(exc, storage=storage)) is not None:
        damaged.__cause__ = exc
        return damaged
    if not _is_storage_failure(exc, storage):
        return None
    text = chain_text(exc)
    uri = _uri_in(text, storage)
    if uri:
        failure = storage_error(exc, uri=uri, storage=storage)
    elif unreachable(exc, text.lower()):
        failure = StoreUnreachable(
            f"cannot reach the object store at {storage.endpoint}: check AWS_ENDPOINT_URL and "
            "that the server is running (make stack-up)"
        )
    else:
        first = first_line(exc)
        failure = StorageError(f"the object store at {storage.endpoint} failed: {first}")
    failure.__cause__ = exc
    return failure


# Exception types (by module and name, so nothing is imported just to check) that only a
# storage client raises: botocore/s3fs, aiohttp (under s3fs), urllib3, DuckDB's I/O errors.
_STORAGE_TYPES = {
    ("botocore.exceptions", None),  # every botocore error: EndpointConnectionError, timeouts…
    ("aiohttp.client_exceptions", None),
    ("urllib3.exceptions", None),
    ("duckdb", "IOException"),
    ("duckdb", "HTTPException"),
    ("_duckdb", "IOException"),
    ("_duckdb", "HTTPException"),
}
# Words of the object-store clients inside Rust (deltalake, polars) that raise plain
# OSError/DeltaError: their message names the store.
_STORE_WORDS = (
    "object-store error",
    "object_store",
    "generic s3 error",
    "error sending request",
    "error performing",
    "s3 error",
    "kernel error",
)


def _storage_type(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        module = cls.__module__ or ""
        if (module, None) in _STORAGE_TYPES or (module, cls.__name__) in _STORAGE_TYPES:
            return True
    return False


def _is_storage_failure(exc: BaseException, storage: Storage) -> bool:
    endpoint = (storage.settings.s3_endpoint_url or "").lower()
    for item in chain(exc):
        if _storage_type(item):
            return True
        if isinstance(item, OSError | ConnectionError | TimeoutError) or _deltalake_error(item):
            low = ANSI.sub("", str(item)).lower()
            if any(w in low for w in _STORE_WORDS) or (endpoint and endpoint in low):
                return True
            if isinstance(item, ConnectionError | TimeoutError) and "s3://" in low:
                return True
    return False


def _deltalake_error(exc: BaseException) -> bool:
    module = sys.modules.get("deltalake.exceptions")
    base = getattr(module, "DeltaError", None) if module else None
    return bool(base and isinstance(exc, base))


def _uri_in(text: str, storage: Storage) -> str:
    """The ``s3://bucket/key`` an error message names (as s3:// or as an endpoint URL)."""
    text = ANSI.sub("", text)
    if found := re.search(r"s3://[^\s'\"()]+", text):
        return found.group(0).rstrip(".,:;")
    endpoint = (storage.settings.s3_endpoint_url or "").rstrip("/")
    if endpoint and (found := re.search(re.escape(endpoint) + r"/([^\s'\"?()]+)", text)):
        return "s3://" + found.group(1).rstrip(".,:;")
    return ""


_CODES = re.compile(
    r"invalidaccesskeyid|signaturedoesnotmatch|accessdenied|nosuchbucket|"
    r"does not exist in our records|signature we calculated"
)


def _probe(storage: Storage, uri: str) -> str:
    """The S3 error code of a listing under ``uri`` ('' if the listing works)."""
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    try:
        storage.s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return f"{code} {exc}"
    return ""
