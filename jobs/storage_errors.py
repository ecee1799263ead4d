"""Storage failures as one readable line: what failed, where, as whom, and what to check.

Every library (deltalake, s3fs/botocore, pyarrow, DuckDB) reports S3 errors its own way; this
module reads the error chain once and maps it to the :mod:`jobs.errors` classes that callers
(and orchestrators deciding whether to retry) react to.

A damaged table is told apart from a failing store (:func:`table_damage`): deltalake 1.6 says
``Kernel error: Json error: …`` for a commit file it cannot parse, ``… Expected contiguous
commit files, but found gap …`` for a missing commit in the middle of the log, ``… No table
metadata or protocol found in delta log`` when the first commits are gone (no checkpoint) and
``Kernel error: Arrow error: Parquet error: …`` for a checkpoint that is not Parquet; polars and
deltalake say ``No such file or directory`` / ``Object at location … not found`` for a data file
an add action names but storage lacks. None of these words occur when the store is unreachable
or refuses the keys, so those stay exit 3 (a parse error beside connection words, e.g. a body cut
off by a reset connection, is the store's too).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from jobs.errors import (
    AccessDenied,
    BucketMissing,
    CredentialsRejected,
    CredentialsUnavailable,
    PipelineError,
    StorageError,
    StoreUnreachable,
    TableDamaged,
)
from jobs.storage import Storage, bucket_of, is_remote


def storage_error(exc: BaseException, *, uri: str, storage: Storage) -> StorageError:
    """One readable line for the usual ways object storage fails.

    It names the location, the endpoint and the access key (never the secret) and says what to
    check; the subclass (unreachable, credentials, access, bucket) lets callers react.
    """
    if isinstance(exc, CredentialsUnavailable):  # already one line saying what to check
        return exc
    low = _chain_text(exc).lower()
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
        if _unreachable(exc, low):
            return StoreUnreachable(
                f"cannot reach the object store at {endpoint} (for {uri}): check "
                "AWS_ENDPOINT_URL and that the server is running (make stack-up)"
            )
        where = f"{uri} at {endpoint} as {who}"
    else:
        where = uri
    return StorageError(f"cannot access {where}: {_first_line(exc)}")


DOCTOR_HINT = "run python -m jobs doctor"


def table_damage(exc: BaseException, *, storage: Storage, uri: str | None = None) -> TableDamaged | None:
    """``exc`` as one :class:`TableDamaged` line when it says a table's log, checkpoint or data
    file is damaged or missing (``uri``: the table being opened, when known), else None."""
    text = _chain_text(exc)
    low = text.lower()
    if "expected contiguous commit files" in low:
        versions = [int(v) for v in re.findall(r'filename: "(\d+)\.json"', text)]
        between = (
            f" (no commit between versions {versions[0]} and {versions[-1]})" if len(versions) > 1 else ""
        )
        problem = f"its log has a gap{between}"
        logs = re.findall(r'path: "([^"]+)/_delta_log/', text)
        uri = uri or (_table_of(logs[0] + "/_delta_log", storage) if logs else None)
    elif "no table metadata or protocol found" in low:
        problem = "its log has lost its first commits (no metadata or protocol, no checkpoint)"
    elif "kernel error" in low and "json error" in low and not _unreachable(exc, low):
        found = _unreadable_log_file(storage, uri, commits=True)
        which = f"commit file {found}" if found else "a commit file of its log"
        problem = f"{which} cannot be parsed ({_detail(text, 'Json error')})"
    elif "kernel error" in low and "parquet error" in low and not _unreachable(exc, low):
        found = _unreadable_log_file(storage, uri, commits=False)
        which = f"checkpoint {found}" if found else "a checkpoint of its log"
        problem = f"{which} cannot be read ({_detail(text, 'Parquet error')})"
    elif (missing := _missing_data_file(text, low)) is not None:
        uri = uri or _table_of(missing, storage)
        if uri is None:  # polars elides the folders ("…/part-….parquet"): whose add action is it?
            uri, missing = _table_naming(storage, missing.rsplit("/", 1)[-1]) or (None, missing)
        shown = _relative_to(missing, uri) if uri else missing.rsplit("/", 1)[-1]
        problem = f"data file {shown} is missing"
    else:
        return None
    name = f"table {table_label(uri, storage)}" if uri else "a table of the lake"
    return TableDamaged(f"{name} is damaged: {problem}: {DOCTOR_HINT}")


def _unreadable_log_file(storage: Storage, uri: str | None, *, commits: bool) -> str:
    """``_delta_log/<file>``: the first commit file that is not JSON lines (``commits``), or the
    first checkpoint whose Parquet footer does not read; '' when unknown. Best effort: it reads
    the log once more, on the way to an error only."""
    if uri is None:
        return ""
    fs = storage.filesystem(uri)
    folder = storage.strip_protocol(uri).rstrip("/") + "/_delta_log"
    wanted = _COMMIT_FILE if commits else _CHECKPOINT_FILE
    try:
        names = sorted(
            n for p in fs.ls(folder, detail=False) if wanted.fullmatch(n := str(p).rsplit("/", 1)[-1])
        )
        for name in names:
            if not _log_file_reads(fs, f"{folder}/{name}", commits=commits):
                return f"_delta_log/{name}"
    except Exception:  # the store failed on the way: the line goes without the file
        return ""
    return ""


_COMMIT_FILE = re.compile(r"\d{20}\.json")
_CHECKPOINT_FILE = re.compile(r"\d{20}\.checkpoint(\.\d+\.\d+)?\.parquet")


def _log_file_reads(fs: Any, path: str, *, commits: bool) -> bool:
    """Whether a commit file is JSON lines, or a checkpoint's Parquet footer reads."""
    import json

    import pyarrow.parquet as pq

    if commits:
        try:
            return all(
                json.loads(line) is not None for line in fs.cat_file(path).splitlines() if line.strip()
            )
        except ValueError:
            return False
    try:
        with fs.open(path, "rb") as handle:
            pq.read_metadata(handle)
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        if isinstance(exc, FileNotFoundError):
            raise
        return False
    return True


def table_label(uri: str, storage: Storage) -> str:
    """``layer/name`` (e.g. ``silver/prints``) of a table location, else the location itself."""
    for layer, base in _layers(storage):
        root, spelled = _spelled(base), _spelled(uri)
        if spelled.startswith(root + "/"):
            return f"{layer}/{spelled[len(root) + 1 :]}"
    return uri


def _layers(storage: Storage) -> list[tuple[str, str]]:
    settings = storage.settings
    return [("bronze", settings.lake_bronze), ("silver", settings.lake_silver), ("gold", settings.lake_gold)]


def _spelled(location: str) -> str:
    """How a message spells a location: an absolute local path, or an S3 key without s3://."""
    location = location.rstrip("/")
    if is_remote(location):
        return location.split("://", 1)[1]
    return os.path.abspath(location.removeprefix("file://"))


_MISSING_FILE = re.compile(r"([^\s'\"()]+\.parquet)")


def _missing_data_file(text: str, low: str) -> str | None:
    """The data file path a not-found error names (None: not such an error)."""
    if "nosuchbucket" in low or not any(
        w in low for w in ("no such file or directory", "not found", "nosuchkey", "filenotfounderror")
    ):
        return None
    paths = [p for p in _MISSING_FILE.findall(text) if "/_delta_log/" not in p]
    return paths[0] if paths else None


def _table_of(path: str, storage: Storage) -> str | None:
    """The table folder (its layer location + name) holding the data file at ``path``."""
    bare = path.split("://", 1)[-1]
    for _, base in _layers(storage):
        root = _spelled(base)
        if bare.startswith(root + "/"):
            return base.rstrip("/") + "/" + bare[len(root) + 1 :].split("/", 1)[0]
    return None


def _table_naming(storage: Storage, file_name: str) -> tuple[str, str] | None:
    """(table location, data file path) of the lake table whose current version names a data
    file called ``file_name``; None when none does. Opens every table of the lake once: on the
    way to an error only, and best effort (a table that does not open is passed over)."""
    for _, base in _layers(storage):
        for folder in _folders(storage, base):
            uri = storage.to_uri(base, folder)
            if named := [p for p in _file_uris(storage, uri) if p.endswith("/" + file_name)]:
                return uri, named[0]
    return None


def _folders(storage: Storage, base: str) -> list[str]:
    """The folders listed under a layer ([] when it cannot be listed)."""
    try:
        return [str(p) for p in storage.filesystem(base).ls(storage.strip_protocol(base), detail=False)]
    except Exception:  # best effort, on the way to an error
        return []


def _file_uris(storage: Storage, uri: str) -> list[str]:
    """The data files of the table at ``uri`` ([] when it is no table or does not open)."""
    from deltalake import DeltaTable

    try:
        return list(DeltaTable(uri, storage_options=storage.delta_options(uri)).file_uris())
    except Exception:  # best effort, on the way to an error
        return []


def _relative_to(path: str, uri: str) -> str:
    root = _spelled(uri)
    bare = path.split("://", 1)[-1]
    return bare[len(root) + 1 :] if bare.startswith(root + "/") else bare


def _detail(text: str, start: str) -> str:
    """The message from ``start`` to the end of its line (the Rust backtrace left out)."""
    at = text.find(start)
    return text[at:].splitlines()[0].split(" | ")[0].strip().rstrip(".") if at >= 0 else start


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
    text = _chain_text(exc)
    uri = _uri_in(text, storage)
    if uri:
        failure = storage_error(exc, uri=uri, storage=storage)
    elif _unreachable(exc, text.lower()):
        failure = StoreUnreachable(
            f"cannot reach the object store at {storage.endpoint}: check AWS_ENDPOINT_URL and "
            "that the server is running (make stack-up)"
        )
    else:
        first = _first_line(exc)
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
_UNREACHABLE_WORDS = (
    "connection refused",
    "error sending request",
    "connect",
    "dns",
    "timed out",
    "timeout",
    "could not connect",
    "failed to lookup address",
    "unreachable",
    "connection reset",
    "connection aborted",
    "broken pipe",
    "server disconnected",
    "connection closed",
    "remote end closed",
    "os error 111",
    "os error 104",
    "incompleteread",
    "incomplete read",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _chain(exc: BaseException) -> list[BaseException]:
    out, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def _storage_type(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        module = cls.__module__ or ""
        if (module, None) in _STORAGE_TYPES or (module, cls.__name__) in _STORAGE_TYPES:
            return True
    return False


def _is_storage_failure(exc: BaseException, storage: Storage) -> bool:
    endpoint = (storage.settings.s3_endpoint_url or "").lower()
    for item in _chain(exc):
        if _storage_type(item):
            return True
        if isinstance(item, OSError | ConnectionError | TimeoutError) or _deltalake_error(item):
            low = _ANSI.sub("", str(item)).lower()
            if any(w in low for w in _STORE_WORDS) or (endpoint and endpoint in low):
                return True
            if isinstance(item, ConnectionError | TimeoutError) and "s3://" in low:
                return True
    return False


def _deltalake_error(exc: BaseException) -> bool:
    module = sys.modules.get("deltalake.exceptions")
    base = getattr(module, "DeltaError", None) if module else None
    return bool(base and isinstance(exc, base))


def _unreachable(exc: BaseException, low: str) -> bool:
    """Nothing (or nothing in time) answered: a refused or timed-out connection."""
    names = {cls.__name__ for item in _chain(exc) for cls in type(item).__mro__}
    if names & {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ClientConnectionError",
        "ConnectionError",
        "TimeoutError",
    }:
        return True
    return any(w in low for w in _UNREACHABLE_WORDS)


def _uri_in(text: str, storage: Storage) -> str:
    """The ``s3://bucket/key`` an error message names (as s3:// or as an endpoint URL)."""
    text = _ANSI.sub("", text)
    if found := re.search(r"s3://[^\s'\"()]+", text):
        return found.group(0).rstrip(".,:;")
    endpoint = (storage.settings.s3_endpoint_url or "").rstrip("/")
    if endpoint and (found := re.search(re.escape(endpoint) + r"/([^\s'\"?()]+)", text)):
        return "s3://" + found.group(1).rstrip(".,:;")
    return ""


def _first_line(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc)).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


_CODES = re.compile(
    r"invalidaccesskeyid|signaturedoesnotmatch|accessdenied|nosuchbucket|"
    r"does not exist in our records|signature we calculated"
)


def _chain_text(exc: BaseException) -> str:
    """The messages of an exception and its causes (s3fs hides the S3 error code in them)."""
    return _ANSI.sub("", " | ".join(f"{type(e).__name__}: {e}" for e in _chain(exc)))


def _probe(storage: Storage, uri: str) -> str:
    """The S3 error code of a listing under ``uri`` ('' if the listing works)."""
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    try:
        storage.s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return f"{code} {exc}"
    return ""
