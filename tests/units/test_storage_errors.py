"""storage_error: each way S3 fails becomes one line naming where, as whom, and what to check."""

from __future__ import annotations

import pytest

from jobs.errors import (
    AccessDenied,
    BucketMissing,
    CredentialsRejected,
    StorageError,
    StoreUnreachable,
)
from jobs.settings import load_settings
from jobs.storage import Storage
from jobs.storage.errors import storage_error

SECRET = "s3cr3t-never-shown"


@pytest.fixture
def storage() -> Storage:
    return Storage(
        load_settings(
            aws_endpoint_url="http://127.0.0.1:1",
            aws_access_key_id="pipeline-key",
            aws_secret_access_key=SECRET,
            lake_bronze="s3://bronze",
        )
    )


@pytest.mark.parametrize(
    ("message", "kind", "says"),
    [
        (
            "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records",
            CredentialsRejected,
            "does not know access key 'pipeline-key'",
        ),
        (
            "SignatureDoesNotMatch: The request signature we calculated does not match",
            CredentialsRejected,
            "rejected the secret of access key 'pipeline-key'",
        ),
        (
            "NoSuchBucket: The specified bucket does not exist",
            BucketMissing,
            "bucket 'bronze' does not exist",
        ),
        ("AccessDenied: Access Denied", AccessDenied, "identity 'pipeline-key' may not use"),
        (
            "Generic S3 error: Error after 0 retries: error sending request: connection refused",
            StoreUnreachable,
            "cannot reach the object store at http://127.0.0.1:1",
        ),
        ("CommitFailedError: concurrent transaction conflict", StorageError, "another writer committed"),
    ],
)
def test_each_s3_failure_maps_to_its_class_and_one_line_without_the_secret(
    storage: Storage, message: str, kind: type[StorageError], says: str
) -> None:
    error = storage_error(RuntimeError(message), uri="s3://bronze/prints", storage=storage)
    assert type(error) is kind
    assert says in str(error)
    assert "\n" not in str(error) and SECRET not in str(error)


def test_the_s3_error_code_is_found_in_the_cause_chain(storage: Storage) -> None:
    try:
        try:
            raise OSError("NoSuchBucket")
        except OSError as inner:
            raise RuntimeError("upload failed") from inner
    except RuntimeError as outer:
        error = storage_error(outer, uri="s3://bronze/prints", storage=storage)
    assert isinstance(error, BucketMissing)


def test_a_local_failure_names_the_path_and_the_first_line_of_the_cause(storage: Storage) -> None:
    error = storage_error(
        PermissionError("Permission denied\nmore detail"), uri="/lake/bronze/x", storage=storage
    )
    assert type(error) is StorageError
    assert str(error) == "cannot access /lake/bronze/x: Permission denied"
