"""A damaged table is TableDamaged (exit 8) naming the table, and the file when deltalake or
polars names it; a store that fails is still a storage error (exit 3). The damage is done for
real to small Delta tables; the store failures are the texts deltalake gives for them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from jobs.errors import StorageError, StoreUnreachable, TableDamaged
from jobs.settings import load_settings
from jobs.storage import Storage
from jobs.storage.errors import storage_failure, table_damage
from jobs.tables import Lake

ENDPOINT = "http://127.0.0.1:1"


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def storage(lake_root: Path) -> Storage:
    layers = {f"lake_{layer}": str(lake_root / layer) for layer in ("raw", "bronze", "silver", "gold")}
    return Storage(load_settings(**layers))


def _table(root: Path, *, checkpoint: bool = False) -> Path:
    """silver/prints with four commits (a checkpoint at version 3 and a fifth commit)."""
    path = root / "silver" / "prints"
    for i in range(4):
        write_deltalake(str(path), pl.DataFrame({"a": [i]}).to_arrow(), mode="append")
    if checkpoint:
        DeltaTable(str(path)).create_checkpoint()
        write_deltalake(str(path), pl.DataFrame({"a": [9]}).to_arrow(), mode="append")
    return path


def _commit(path: Path, version: int) -> Path:
    return path / "_delta_log" / f"{version:020d}.json"


def _half(file: Path) -> None:
    payload = file.read_bytes()
    file.write_bytes(payload[: len(payload) // 2])


DAMAGE: dict[str, tuple[Callable[[Path], None], bool, str]] = {
    "gap": (
        lambda p: _commit(p, 1).unlink(),
        False,
        "its log has a gap (no commit between versions 0 and 2)",
    ),
    "half latest commit": (
        lambda p: _half(_commit(p, 3)),
        False,
        f"commit file _delta_log/{3:020d}.json cannot be parsed (Json error: ",
    ),
    "half middle commit": (
        lambda p: _half(_commit(p, 1)),
        False,
        f"commit file _delta_log/{1:020d}.json cannot be parsed (Json error: ",
    ),
    "first commit gone": (
        lambda p: _commit(p, 0).unlink(),
        False,
        "its log has lost its first commits",
    ),
    "garbage checkpoint": (
        lambda p: next((p / "_delta_log").glob("*.checkpoint.parquet")).write_bytes(os.urandom(600)),
        True,
        f"checkpoint _delta_log/{3:020d}.checkpoint.parquet cannot be read (Parquet error: ",
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_opening_a_damaged_table_names_the_table_and_doctor(
    lake_root: Path, storage: Storage, damage: str
) -> None:
    do, checkpoint, problem = DAMAGE[damage]
    path = _table(lake_root, checkpoint=checkpoint)
    do(path)
    with pytest.raises(TableDamaged) as raised:
        Lake(storage).open(str(path))
    message = str(raised.value)
    assert message.startswith(f"table silver/prints is damaged: {problem}"), message
    assert message.endswith(": run python -m jobs doctor") and "\n" not in message
    assert raised.value.exit_code == 8


def test_a_missing_data_file_read_by_polars_names_the_table_and_the_file(
    lake_root: Path, storage: Storage
) -> None:
    path = _table(lake_root)
    missing = Path(DeltaTable(str(path)).file_uris()[0].removeprefix("file://"))
    missing.unlink()
    with pytest.raises(FileNotFoundError) as raised:
        DeltaTable(str(path)).to_pyarrow_table()
    failure = storage_failure(raised.value, storage=storage)
    assert isinstance(failure, TableDamaged)
    assert str(failure) == (
        f"table silver/prints is damaged: data file {missing.name} is missing: run python -m jobs doctor"
    )


def test_a_garbage_last_checkpoint_is_not_an_error(lake_root: Path, storage: Storage) -> None:
    path = _table(lake_root, checkpoint=True)
    (path / "_delta_log" / "_last_checkpoint").write_text("garbage{")
    assert Lake(storage).open(str(path)).version() == 4  # deltalake lists the log instead


@pytest.mark.parametrize(
    "exc",
    [
        OSError(
            "Kernel error -> Generic S3 error: Error performing GET "
            f"{ENDPOINT}/silver/prints/_delta_log/_last_checkpoint: Connection refused (os error 111)"
        ),
        TimeoutError(
            "object-store error: Generic S3 error: Error performing GET "
            f"{ENDPOINT}/silver/prints/part-0.parquet in 4.2s - HTTP error: error sending request"
        ),
        OSError("Kernel error: Generic S3 error: NoSuchBucket: the bucket silver/prints/x.parquet"),
        OSError("[Errno 2] No such file or directory: '/tmp/local/file'"),
        OSError("Kernel error: Json error: Truncated record whilst reading string: connection reset by peer"),
    ],
)
def test_a_failing_store_or_a_local_error_is_not_table_damage(storage: Storage, exc: BaseException) -> None:
    assert table_damage(exc, storage=storage) is None


def test_a_refused_connection_to_the_store_stays_exit_3() -> None:
    remote = Storage(
        load_settings(
            aws_endpoint_url=ENDPOINT,
            aws_access_key_id="k",
            aws_secret_access_key="s",
            lake_silver="s3://silver",
        )
    )
    exc = OSError(
        f"Kernel error: Generic S3 error: Error performing GET {ENDPOINT}/silver/prints/_delta_log/"
        "00000000000000000000.json: error sending request: Connection refused (os error 111)"
    )
    failure = storage_failure(exc, storage=remote)
    assert isinstance(failure, StoreUnreachable) and isinstance(failure, StorageError)
