"""storage_failure: what escapes a stage is one storage line if (and only if) the store failed;
store_panics_filtered: object_store's panic text never reaches stderr, other text does."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jobs.errors import StorageError, StoreUnreachable
from jobs.settings import load_settings
from jobs.storage import Storage
from jobs.storage.errors import storage_failure

ENDPOINT = "http://127.0.0.1:1"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def storage() -> Storage:
    return Storage(
        load_settings(
            aws_endpoint_url=ENDPOINT,
            aws_access_key_id="pipeline-key",
            aws_secret_access_key="x",
            lake_bronze="s3://bronze",
        )
    )


def _raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    try:
        try:
            if cause is not None:
                raise cause
        finally:
            raise exc
    except BaseException as caught:
        return caught


def test_botocore_endpoint_connection_error_from_cleanup_code_is_store_unreachable(
    storage: Storage,
) -> None:
    from botocore.exceptions import EndpointConnectionError

    exc = EndpointConnectionError(endpoint_url=f"{ENDPOINT}/gold?list-type=2")
    failure = storage_failure(exc, storage=storage)
    assert isinstance(failure, StoreUnreachable)
    assert f"cannot reach the object store at {ENDPOINT}" in str(failure)
    assert failure.__cause__ is exc


def test_botocore_read_timeout_names_the_bucket_of_the_url(storage: Storage) -> None:
    from botocore.exceptions import ReadTimeoutError

    exc = ReadTimeoutError(endpoint_url=f"{ENDPOINT}/silver/t/prints/_delta_log/x.json")
    failure = storage_failure(exc, storage=storage)
    assert isinstance(failure, StoreUnreachable)
    assert "s3://silver/t/prints/_delta_log/x.json" in str(failure)


def test_rust_object_store_timeout_raised_by_polars_is_one_line_without_colour_codes(
    storage: Storage,
) -> None:
    exc = TimeoutError(
        "object-store error: Generic S3 error: Error performing GET "
        f"{ENDPOINT}/bronze/t/prints/part-0.parquet in 4.2s, after 1 retries - "
        "HTTP error: error sending request (path: s3://bronze/t/prints/part-0."
        "parquet)\n\nCaused by:\n    operation timed out"
    )
    failure = storage_failure(exc, storage=storage)
    assert isinstance(failure, StoreUnreachable)
    assert "\n" not in str(failure) and "s3://bronze/t/prints/part-0.parquet" in str(failure)


def test_deltalake_error_text_with_ansi_codes_is_classified(storage: Storage) -> None:
    exc = OSError(
        "Kernel error -> Generic S3 error\n  \x1b[31m↳\x1b[0m Error performing GET "
        f"{ENDPOINT}/bronze/t/x/_delta_log/_last_checkpoint\n  \x1b[31m↳\x1b[0m "
        "Connection refused (os error 111)"
    )
    failure = storage_failure(exc, storage=storage)
    assert isinstance(failure, StoreUnreachable)
    assert "\x1b" not in str(failure)


def test_storage_error_cause_further_down_the_chain_is_found(storage: Storage) -> None:
    from botocore.exceptions import ConnectTimeoutError

    exc = _raised(RuntimeError("cleanup failed"), cause=ConnectTimeoutError(endpoint_url=f"{ENDPOINT}/gold"))
    assert isinstance(storage_failure(exc, storage=storage), StoreUnreachable)


def test_an_existing_storage_error_is_kept(storage: Storage) -> None:
    exc = StorageError("already one line")
    assert storage_failure(exc, storage=storage) is exc


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("invalid literal for int()"),
        KeyError("week_start"),
        OSError("[Errno 2] No such file or directory: '/tmp/local/file'"),
        TimeoutError("a lock was not acquired in time"),
        AssertionError("version is None"),
    ],
)
def test_bugs_and_local_errors_are_not_storage_failures(storage: Storage, exc: BaseException) -> None:
    assert storage_failure(exc, storage=storage) is None


def test_object_store_panic_text_is_filtered_from_stderr_and_other_text_is_kept() -> None:
    script = textwrap.dedent("""
        import os, sys
        from jobs.logs import store_panics_filtered
        panic = (b"\\nthread 'tokio-rt-worker' (18412) panicked at /home/runner/.cargo/registry/"
                 b"src/index.crates.io-1949cf8c6b5b557f/object_store-0.13.2/src/buffered.rs:"
                 b"369:41:\\nAlready shut down\\nnote: run with `RUST_BACKTRACE=1` environment "
                 b"variable to display a backtrace\\n")
        other = b"thread 'main' panicked at src/lib.rs:1:1:\\nsomething else\\n"
        with store_panics_filtered():
            print("INFO before", file=sys.stderr, flush=True)
            os.write(2, panic)
            os.write(2, panic.replace(b"18412", b"18413"))
            print("error: cannot reach the object store", file=sys.stderr, flush=True)
            os.write(2, other)
        print("after", file=sys.stderr)
    """)
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "object_store" not in res.stderr and "Already shut down" not in res.stderr
    assert "RUST_BACKTRACE" not in res.stderr
    lines = res.stderr.splitlines()
    assert lines == [
        "INFO before",
        "error: cannot reach the object store",
        "thread 'main' panicked at src/lib.rs:1:1:",
        "something else",
        "after",
    ]
