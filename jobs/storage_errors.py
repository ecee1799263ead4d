"""Storage failures as one readable line: what failed, where, as whom, and what to check.

Every library (deltalake, s3fs/botocore, pyarrow, DuckDB) reports S3 errors its own way; this
module reads the error chain once and maps it to the :mod:`jobs.errors` classes that callers
(and orchestrators deciding whether to retry) react to.
"""

from __future__ import annotations

import re

from jobs.errors import (
    AccessDenied,
    BucketMissing,
    CredentialsRejected,
    StorageError,
    StoreUnreachable,
)
from jobs.storage import Storage, bucket_of, is_remote


def storage_error(exc: BaseException, *, uri: str, storage: Storage) -> StorageError:
    """One readable line for the usual ways object storage fails.

    It names the location, the endpoint and the access key (never the secret) and says what to
    check; the subclass (unreachable, credentials, access, bucket) lets callers react.
    """
    text = str(exc)
    low = _chain_text(exc).lower()
    if is_remote(uri):
        endpoint = storage.endpoint
        who = storage.settings.aws_access_key_id or "no access key"
        bucket = bucket_of(uri)
        if re.search(r"\b403\b|forbidden", low) and not _CODES.search(low):
            # A HEAD answer has no body: ask again with a GET to learn the real reason.
            low += " " + _probe(storage, uri).lower()
        if "invalidaccesskeyid" in low or "does not exist in our records" in low:
            return CredentialsRejected(
                f"the object store at {endpoint} does not know access key {who!r} (reading "
                f"{uri}): check {storage.key_variables[0]}, and that the identities were created "
                "(make stack-up / python -m infra.stack seed)"
            )
        if "signaturedoesnotmatch" in low or "signature we calculated does not match" in low:
            return CredentialsRejected(
                f"the object store at {endpoint} rejected the secret of access key {who!r} "
                f"(reading {uri}): check {storage.key_variables[1]}"
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
        if any(s in low for s in ("connection refused", "error sending request", "connect",
                                  "dns", "timed out", "timeout", "could not connect",
                                  "failed to lookup address", "unreachable")):
            return StoreUnreachable(
                f"cannot reach the object store at {endpoint} (for {uri}): check "
                "AWS_ENDPOINT_URL and that the server is running (make stack-up)"
            )
        where = f"{uri} at {endpoint} as {who}"
    else:
        where = uri
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return StorageError(f"cannot access {where}: {first}")


_CODES = re.compile(r"invalidaccesskeyid|signaturedoesnotmatch|accessdenied|nosuchbucket|"
                    r"does not exist in our records|signature we calculated")


def _chain_text(exc: BaseException) -> str:
    """The messages of an exception and its causes (s3fs hides the S3 error code in them)."""
    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " | ".join(parts)


def _probe(storage: Storage, uri: str) -> str:
    """The S3 error code of a listing under ``uri`` ('' if the listing works)."""
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    try:
        storage.s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return f"{code} {exc}"
    return ""
