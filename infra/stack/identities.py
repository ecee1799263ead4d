"""Least privilege on the object store: who may read and write which lake location.

Two identities besides the admin: the **pipeline** reads raw and reads/writes bronze, silver and
gold (and the export location); the **analyst** may only read gold. Locations come from the
settings (a bucket, optionally a prefix inside it). The grants are IAM policy documents, one per
identity, used as they are by both stores: attached to the SeaweedFS identities (its
``-s3.config`` JSON) and created as MinIO policies.

``LAKEHOUSE_ENV_FILE=envs/docker.env python -m infra.stack.identities infra/minio`` regenerates
the committed MinIO policy files.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.errors import ConfigError
from jobs.settings import Settings, load_settings
from jobs.storage import is_remote


@dataclass(frozen=True)
class Location:
    """``s3://bucket/prefix`` split into its bucket and (possibly empty) key prefix."""

    bucket: str
    prefix: str

    @classmethod
    def of(cls, uri: str) -> Location:
        bucket, _, prefix = uri.split("://", 1)[1].partition("/")
        return cls(bucket, prefix.strip("/"))

    def covers(self, other: Location) -> bool:
        return self.bucket == other.bucket and (
            not self.prefix or other.prefix == self.prefix or other.prefix.startswith(self.prefix + "/")
        )


@dataclass(frozen=True)
class Grant:
    read: tuple[Location, ...]
    write: tuple[Location, ...]


def _locations(uris: list[str]) -> tuple[Location, ...]:
    """Distinct locations, leaving out those inside another (``gold/export`` in ``gold``)."""
    found = list(dict.fromkeys(Location.of(u) for u in uris if is_remote(u)))
    return tuple(loc for loc in found if not any(o != loc and o.covers(loc) for o in found))


def grants(settings: Settings) -> dict[str, Grant]:
    """identity → what it may read and write, derived from the layer locations."""
    s = settings
    written = [s.lake_bronze, s.lake_silver, s.lake_gold, s.export_uri]
    return {
        "pipeline": Grant(read=_locations([s.lake_raw, *written]), write=_locations(written)),
        "analyst": Grant(read=_locations([s.lake_gold]), write=()),
    }


def buckets(settings: Settings) -> list[str]:
    """Every bucket the lake uses (what ``seed`` creates)."""
    s = settings
    uris = [s.lake_raw, s.lake_bronze, s.lake_silver, s.lake_gold, s.export_uri]
    return list(dict.fromkeys(Location.of(u).bucket for u in uris if is_remote(u)))


def _keys(settings: Settings) -> dict[str, tuple[str, str]]:
    s = settings

    def pair(name: str, key: str | None, secret: Any) -> tuple[str, str]:
        if not key or secret is None:
            raise ConfigError(
                f"the {name} identity needs both its access key and secret key: "
                f"set them in the env file (see envs/stack.env)"
            )
        return key, secret.get_secret_value()

    return {
        "admin": pair(
            "admin (ADMIN_ACCESS_KEY_ID/ADMIN_SECRET_ACCESS_KEY)",
            s.admin_access_key_id,
            s.admin_secret_access_key,
        ),
        "pipeline": pair(
            "pipeline (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)", s.aws_access_key_id, s.aws_secret_access_key
        ),
        "analyst": pair(
            "analyst (ANALYST_ACCESS_KEY_ID/ANALYST_SECRET_ACCESS_KEY)",
            s.analyst_access_key_id,
            s.analyst_secret_access_key,
        ),
    }


def seaweed_config(settings: Settings) -> dict[str, Any]:
    """The SeaweedFS ``-s3.config`` document: admin, pipeline and analyst identities.

    Each identity carries no legacy actions but one attached IAM policy (``policyNames``), the
    same document MinIO gets (:func:`iam_policies`). weed's legacy actions cannot express the
    design: ``Write:bucket`` also allows PutBucketLifecycle/Versioning/CORS/object lock on that
    bucket, and creating a bucket needs ``Admin`` (everything on every bucket, or on the one
    bucket named); an identity with an attached policy is authorised by that policy alone
    (weed >= 4.44, measured on 4.48 by ``tests/integration/test_security.py``), with S3's own
    action names, so bucket configuration is simply not granted.
    """
    keys = _keys(settings)
    policies = iam_policies(settings)
    policies["admin"] = {**policies["admin"], "Statement": [*policies["admin"]["Statement"], FEDERATION]}
    return {
        "identities": [
            {
                "name": name,
                "credentials": [{"accessKey": keys[name][0], "secretKey": keys[name][1]}],
                "policyNames": [policy_name(name)],
            }
            for name in policies
        ],
        "policies": [
            {"name": policy_name(name), "content": json.dumps(policy, sort_keys=True)}
            for name, policy in policies.items()
        ],
    }


# weed's STS on the S3 port: the admin (identity management) may mint federation tokens; a
# token carries no grant of its own (weed refuses its requests), what tests of session tokens
# need (tests/integration/test_s3_credentials.py). Not in MinIO's policy: MinIO has no such call.
FEDERATION = {"Effect": "Allow", "Action": ["sts:GetFederationToken"], "Resource": ["*"]}


def policy_name(identity: str) -> str:
    """The policy's name, in weed's identities file and in MinIO (infra/minio/init.sh)."""
    return f"lakehouse-{identity}"


def iam_policy(grant: Grant) -> dict[str, Any]:
    """An AWS/MinIO IAM policy document for one grant (``mc admin policy create``)."""
    listed = sorted({f"arn:aws:s3:::{loc.bucket}" for loc in grant.read + grant.write})
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
            "Resource": listed,
        },
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [
                f"arn:aws:s3:::{loc.bucket}/{loc.prefix + '/' if loc.prefix else ''}*" for loc in grant.read
            ],
        },
    ]
    if grant.write:
        statements.append(
            {
                "Effect": "Allow",
                "Action": [
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": [
                    f"arn:aws:s3:::{loc.bucket}/{loc.prefix + '/' if loc.prefix else ''}*"
                    for loc in grant.write
                ],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def admin_policy(settings: Settings) -> dict[str, Any]:
    """The scoped admin (not MinIO's root user): creates the lake's buckets and uploads raw
    files (``python -m infra.stack seed``); it may list every lake bucket (seed's ``head_bucket``)
    but cannot read, write or delete bronze, silver or gold objects, delete any bucket or change
    a bucket's configuration (lifecycle, versioning, policy, ACL). Identities are not an S3
    permission: natively they are the file ``.stack/s3.json`` the admin-side tools write,
    in compose MinIO's root user creates them in the init container."""
    raw = Location.of(settings.lake_raw) if is_remote(settings.lake_raw) else None
    policy = iam_policy(Grant(read=(raw,) if raw else (), write=(raw,) if raw else ()))
    policy["Statement"].insert(
        0,
        {
            "Effect": "Allow",
            "Action": ["s3:CreateBucket", "s3:GetBucketLocation", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{b}" for b in buckets(settings)],
        },
    )
    policy["Statement"] = [st for st in policy["Statement"] if st["Resource"]]
    return policy


def iam_policies(settings: Settings) -> dict[str, dict[str, Any]]:
    """identity → IAM policy document (the admin's too: the app never uses MinIO's root)."""
    return {
        "admin": admin_policy(settings),
        **{name: iam_policy(grant) for name, grant in grants(settings).items()},
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def write_minio_policies(settings: Settings, directory: str) -> list[str]:
    """Write ``<identity>-policy.json`` for MinIO (``mc admin policy create``) into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, policy in iam_policies(settings).items():
        path = out / f"{name}-policy.json"
        path.write_text(dumps(policy))
        written.append(str(path))
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in write_minio_policies(load_settings(), args[0] if args else "."):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
