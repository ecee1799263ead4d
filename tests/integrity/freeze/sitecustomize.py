"""Test hook, loaded by the processes a fault test starts with this folder on ``PYTHONPATH``.

With ``FREEZE_AT_COMMIT=N`` (or ``CALL:N``, the N-th commit made through that deltalake call,
e.g. ``DeltaTable.create_write_transaction:4``) the process stops itself (SIGSTOP, like a GC
pause, a frozen VM or a stalled request) right before that Delta commit, *at the deltalake
call*: whatever code path leads there, its lease check and snapshot are behind it and only the
commit is ahead. ``FREEZE_MARKER`` names a file written just before stopping ("<pid> <call>").
With ``FREEZE_LOG`` every commit call is appended there (to count a run's commits). (An S3
lease's heartbeat may be mid-request when the process stops; that is the stalled request the
lease's TTL and the fence are there for. A local lease is one flock taken at the start, so no
lease change is ever in flight.)
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

_KIND, _, _N = os.environ.get("FREEZE_AT_COMMIT", "").rpartition(":")
_AT = int(_N or "0")
_LOG = os.environ.get("FREEZE_LOG", "")
_calls: dict[str, int] = {}


def _before_commit(call: str) -> None:
    kind = call if _KIND else ""
    _calls[kind] = _calls.get(kind, 0) + 1
    if _LOG:
        with open(_LOG, "a") as log:
            log.write(f"{call}\n")
    if _calls[kind] == _AT and _KIND in ("", call):
        with open(os.environ["FREEZE_MARKER"], "w") as marker:
            marker.write(f"{os.getpid()} {call}\n")
        os.kill(os.getpid(), signal.SIGSTOP)


def _install() -> None:
    import deltalake
    import deltalake.transaction
    import pyarrow as pa
    from deltalake import DeltaTable

    write_deltalake = deltalake.write_deltalake

    def frozen_write(table_or_uri: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        reader = pa.RecordBatchReader.from_stream(data)

        def batches() -> Iterator[pa.RecordBatch]:
            yield from reader  # the caller's lease check runs when its stream ends
            _before_commit("write_deltalake")

        stream = pa.RecordBatchReader.from_batches(reader.schema, batches())
        return write_deltalake(table_or_uri, stream, *args, **kwargs)

    deltalake.write_deltalake = frozen_write

    for name in ("create_write_transaction", "delete"):
        method = getattr(DeltaTable, name)

        def frozen(self: Any, *args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            _before_commit(f"DeltaTable.{_name}")
            return _method(self, *args, **kwargs)

        setattr(DeltaTable, name, frozen)

    create = deltalake.transaction.create_table_with_add_actions

    def frozen_create(*args: Any, **kwargs: Any) -> Any:
        _before_commit("create_table_with_add_actions")
        return create(*args, **kwargs)

    deltalake.transaction.create_table_with_add_actions = frozen_create


if _AT or _LOG:
    _install()
