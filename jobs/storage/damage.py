"""A damaged table told apart from a failing store: one :class:`~jobs.errors.TableDamaged`
line naming the table and what is wrong with it (exit 8, ``python -m jobs doctor``).

deltalake 1.6 says ``Kernel error: Json error: …`` for a commit file it cannot parse, ``…
Expected contiguous commit files, but found gap …`` for a missing commit in the middle of the
log, ``… No table metadata or protocol found in delta log`` when the first commits are gone (no
checkpoint) and ``Kernel error: Arrow error: Parquet error: …`` for a checkpoint that is not
Parquet; polars and deltalake say ``No such file or directory`` / ``Object at location … not
found`` for a data file an add action names but storage lacks. None of these words occur when
the store is unreachable or refuses the keys, so those stay exit 3 (a parse error beside
connection words, e.g. a body cut off by a reset connection, is the store's too).
"""

from __future__ import annotations

import os
import re
from typing import Any

from jobs.errors import TableDamaged
from jobs.storage import Storage, is_remote
from jobs.storage.error_chain import chain_text, unreachable

DOCTOR_HINT = "run python -m jobs doctor"


def table_damage(exc: BaseException, *, storage: Storage, uri: str | None = None) -> TableDamaged | None:
    """``exc`` as one :class:`TableDamaged` line when it says a table's log, checkpoint or data
    file is damaged or missing (``uri``: the table being opened, when known), else None."""
    text = chain_text(exc)
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
    elif "kernel error" in low and "json error" in low and not unreachable(exc, low):
        found = _unreadable_log_file(storage, uri, commits=True)
        which = f"commit file {found}" if found else "a commit file of its log"
        problem = f"{which} cannot be parsed ({_detail(text, 'Json error')})"
    elif "kernel error" in low and "parquet error" in low and not unreachable(exc, low):
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
