"""Least privilege that holds in practice, against a real ``weed mini``.

Each observed problem has a regression test here: the grants as a permission matrix, no
anonymous side door on any stack port, owner-only files under STACK_DIR, the analyst shell's
environment, a read-only ``jobs query``, and seeding that never changes identities.
"""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from infra.stack.__main__ import analyst_environment
from infra.stack.__main__ import main as stack_main
from infra.stack.identities import Location, grants
from infra.stack.keys import ensure_key_files, key_file
from infra.stack.weed import ADMIN_GRPC_OFFSET
from jobs.cli import main
from jobs.settings import Settings
from jobs.storage import Storage
from tests.integration.conftest import KEYS, LAYERS, S3Stack, env_lines, stack_settings

pytestmark = pytest.mark.integration

PREFIX = "sec-matrix"

# The designed grants (infra/README.md, "Identities and what each may do"): identity -> bucket ->
# the operation classes it may perform. Everything not listed is refused (AccessDenied).
OBJECT = ("get", "put", "delete")
BUCKET_CONFIG = ("put lifecycle", "put versioning", "put policy", "put ACL")
OPERATIONS = (*OBJECT, "list", "create bucket", "delete bucket", *BUCKET_CONFIG)
DESIGN: dict[str, dict[str, tuple[str, ...]]] = {
    "admin": {
        "raw": ("get", "put", "delete", "list", "create bucket"),
        "bronze": ("list", "create bucket"),
        "silver": ("list", "create bucket"),
        "gold": ("list", "create bucket"),
    },
    "pipeline": {
        "raw": ("get", "list"),
        "bronze": ("get", "put", "delete", "list"),
        "silver": ("get", "put", "delete", "list"),
        "gold": ("get", "put", "delete", "list"),
    },
    "analyst": {"raw": (), "bronze": (), "silver": (), "gold": ("get", "list")},
}


def client(settings: Settings, identity: str):
    return Storage(settings).for_identity(identity).s3_client()


def attempt(c, op: str, bucket: str, identity: str) -> bool:
    """Whether ``identity`` may do ``op`` on ``bucket``: True unless weed says AccessDenied.

    Every call is harmless when allowed: objects under PREFIX only, creating a bucket that
    exists (BucketAlreadyExists/OwnedByYou means it passed the grant check), deleting a
    non-empty bucket, an expiry rule for a prefix nothing uses, suspended versioning, a policy
    that denies reading a key nobody writes, the private ACL."""
    rule = {"ID": "probe", "Status": "Enabled", "Filter": {"Prefix": "no-such/"}, "Expiration": {"Days": 1}}
    deny_nothing = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/no-such/*",
            }
        ],
    }
    calls = {
        "get": lambda: c.get_object(Bucket=bucket, Key=f"{PREFIX}/probe.txt")["Body"].read(),
        "put": lambda: c.put_object(Bucket=bucket, Key=f"{PREFIX}/{identity}-put.txt", Body=b"x"),
        "delete": lambda: c.delete_object(Bucket=bucket, Key=f"{PREFIX}/{identity}-delete.txt"),
        "list": lambda: c.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/"),
        "create bucket": lambda: c.create_bucket(Bucket=bucket),
        "delete bucket": lambda: c.delete_bucket(Bucket=bucket),
        "put lifecycle": lambda: c.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [rule]}
        ),
        "put versioning": lambda: c.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}
        ),
        "put policy": lambda: c.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny_nothing)),
        "put ACL": lambda: c.put_bucket_acl(Bucket=bucket, ACL="private"),
    }
    try:
        calls[op]()
        return True
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "AccessDenied":
            return False
        # past the grant check, refused for what the bucket is (it exists, it is not empty)
        assert (op, code) in (
            ("create bucket", "BucketAlreadyExists"),
            ("create bucket", "BucketAlreadyOwnedByYou"),
            ("delete bucket", "BucketNotEmpty"),
        ), (identity, op, bucket, exc)
        return True


def test_permission_matrix_of_every_identity_bucket_and_operation_equals_the_design(
    s3: S3Stack,
) -> None:
    settings = s3.base
    admin, pipeline = client(settings, "admin"), client(settings, "pipeline")
    for bucket in LAYERS:
        writer = admin if bucket == "raw" else pipeline
        writer.put_object(Bucket=bucket, Key=f"{PREFIX}/probe.txt", Body=b"probe")
        for identity in KEYS:
            writer.put_object(Bucket=bucket, Key=f"{PREFIX}/{identity}-delete.txt", Body=b"d")
    measured, designed = {}, {}
    for identity in KEYS:
        c = client(settings, identity)
        for bucket in LAYERS:
            for op in OPERATIONS:
                measured[identity, bucket, op] = attempt(c, op, bucket, identity)
                designed[identity, bucket, op] = op in DESIGN[identity][bucket]
    wrong = {k: ("allowed" if v else "refused") for k, v in measured.items() if v != designed[k]}
    assert not wrong, wrong
    # the matrix equals the grants the product renders (one source: infra/stack/identities.py)
    for identity, grant in grants(settings).items():
        for bucket in LAYERS:
            here = Location(bucket, f"{PREFIX}/x")
            assert ("get" in DESIGN[identity][bucket]) == any(loc.covers(here) for loc in grant.read)
            assert ("put" in DESIGN[identity][bucket]) == any(loc.covers(here) for loc in grant.write)
    # refused deletes deleted nothing; no bucket configuration got through
    for bucket in LAYERS:
        for identity in KEYS:
            if "delete" not in DESIGN[identity][bucket]:
                pipeline.head_object(Bucket=bucket, Key=f"{PREFIX}/{identity}-delete.txt")
        assert bucket in {b["Name"] for b in admin.list_buckets()["Buckets"]}


def test_the_pipeline_writes_large_objects_in_parts_and_the_admin_cannot_in_gold(s3: S3Stack) -> None:
    """Multipart uploads (what the Delta writer uses for large files) are PutObject's grant."""
    for identity, bucket, allowed in (("pipeline", "gold", True), ("admin", "gold", False)):
        c = client(s3.base, identity)
        key = f"{PREFIX}/{identity}-multipart.bin"
        try:
            upload = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            part = c.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"m" * 1024)
            c.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload,
                MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
            )
            done = True
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDenied", exc
            done = False
        assert done == allowed, identity
    body = client(s3.base, "pipeline").get_object(Bucket="gold", Key=f"{PREFIX}/pipeline-multipart.bin")
    assert body["Body"].read() == b"m" * 1024


def test_the_designed_matrix_is_the_one_documented_in_infra_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "infra" / "README.md").read_text()
    for identity, by_bucket in DESIGN.items():
        for bucket in LAYERS:
            cells = [("yes" if op in by_bucket[bucket] else "-") for op in OPERATIONS]
            row = f"| {identity} | {bucket} | " + " | ".join(cells) + " |"
            assert row in readme, row


# -- anonymous side doors -------------------------------------------------------------------
def anonymous(method: str, url: str, data: bytes | None = None) -> tuple[object, bytes]:
    """(status or error name, body head) of an unauthenticated request; no client certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we only want to know whether it answers at all
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback test
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as resp:  # noqa: S310
            return resp.status, resp.read(200)
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read(200)
        except OSError:  # the server may reset the connection after its error status
            body = b""
        return exc.code, body
    except (urllib.error.URLError, OSError) as exc:
        return type(getattr(exc, "reason", exc)).__name__, b""


def listening_ports(pid: int) -> set[int]:
    """Every TCP port the weed process listens on (ss), beyond the configured ones."""
    res = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=30, check=True)
    return {
        int(line.split()[3].rsplit(":", 1)[1]) for line in res.stdout.splitlines() if f"pid={pid}," in line
    }


HEALTH = ("/status", "/health")  # liveness probes (S3 gateway, admin): an empty "ok", no data


def refused(request: str, answer: tuple[object, bytes]) -> bool:
    status, body = answer
    if status == 200 and request.endswith(HEALTH) and request.startswith("GET"):
        return len(body) < 40 and b"probe" not in body
    return not isinstance(status, int) or (status in (400, 401, 403, 404, 405) and b"probe" not in body)


def test_anonymous_requests_to_every_stack_port_are_refused_while_s3_with_keys_works(
    s3: S3Stack,
) -> None:
    admin = client(s3.base, "admin")
    admin.put_object(Bucket="raw", Key=f"{PREFIX}/anon.txt", Body=b"probe")
    client(s3.base, "pipeline").put_object(Bucket="gold", Key=f"{PREFIX}/anon.txt", Body=b"probe")
    ports = s3.server.ports
    pid = s3.server.pid()
    assert pid
    every = set(ports.all()) | listening_ports(pid)
    assert ports.admin + ADMIN_GRPC_OFFSET in every
    answers = {}
    for port in sorted(every):
        for scheme in ("http", "https"):
            base = f"{scheme}://127.0.0.1:{port}"
            requests = [
                ("GET", "/", None),
                ("GET", "/buckets/raw/", None),
                ("GET", f"/buckets/raw/{PREFIX}/anon.txt", None),
                ("GET", f"/raw/{PREFIX}/anon.txt", None),
                ("GET", f"/gold/{PREFIX}/", None),
                ("PUT", f"/buckets/gold/{PREFIX}/evil.txt", b"evil"),
                ("PUT", f"/gold/{PREFIX}/evil.txt", b"evil"),
                ("DELETE", f"/buckets/raw/{PREFIX}/anon.txt", None),
                ("DELETE", f"/raw/{PREFIX}/anon.txt", None),
                ("GET", "/dir/assign", None),
                ("GET", "/dir/status", None),
                ("GET", "/vol/status", None),
                ("GET", "/status", None),
                ("POST", "/col/delete?collection=raw", None),
                ("GET", "/api/cluster/topology", None),
                ("GET", "/health", None),
            ]
            for method, path, data in requests:
                answers[f"{method} {base}{path}"] = anonymous(method, base + path, data)
    opened = {k: v for k, v in answers.items() if not refused(k, v)}
    assert not opened, opened
    # nothing anonymous got through: the objects are intact, nothing new appeared
    pipeline = client(s3.base, "pipeline")
    for bucket in ("raw", "gold"):
        body = pipeline.get_object(Bucket=bucket, Key=f"{PREFIX}/anon.txt")["Body"].read()
        assert body == b"probe"
        listed = pipeline.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/evil")
        assert listed["KeyCount"] == 0
    # S3 with the right keys keeps working
    assert (
        client(s3.base, "analyst").get_object(Bucket="gold", Key=f"{PREFIX}/anon.txt")["Body"].read()
        == b"probe"
    )


# -- owner-only files -----------------------------------------------------------------------
def test_every_file_and_directory_of_the_stack_is_owner_only(s3: S3Stack) -> None:
    root = s3.server.directory
    assert (root / "security.toml").is_file() and (root / "tls" / "weed.key").is_file()
    loose = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink() or path.is_socket():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        # weed itself writes some volume files (*.vif) 0644 whatever the umask: they sit in
        # 0700 directories, so nobody else can reach them; every other file is 0600.
        if mode & 0o077 and not (path.suffix == ".vif" and path.parent.name == "data"):
            loose.append(f"{path.relative_to(root)} {oct(mode)}")
    assert not loose, loose
    assert stat.S_IMODE((root / "data").stat().st_mode) == 0o700


def test_private_files_are_owner_only_from_their_first_byte_whatever_the_umask(
    tmp_path: Path,
) -> None:
    from infra.stack.security import write_private

    old = os.umask(0)
    try:
        write_private(tmp_path / "new" / "s3.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "s3.json").stat().st_mode) == 0o600


# -- one identity per process ---------------------------------------------------------------
def test_key_files_hold_one_identity_each_and_the_analyst_shell_gets_only_the_analysts(
    tmp_path: Path,
) -> None:
    from infra.stack.weed import WeedPorts

    settings = stack_settings(
        tmp_path / "stack",
        WeedPorts.free(),
        aws_access_key_id=None,
        aws_secret_access_key=None,
        admin_access_key_id=None,
        admin_secret_access_key=None,
        analyst_access_key_id=None,
        analyst_secret_access_key=None,
    )
    assert ensure_key_files(settings) == ["admin", "pipeline", "analyst"]
    assert ensure_key_files(settings) == []  # never rewritten
    secrets = {}
    for identity in ("admin", "pipeline", "analyst"):
        path = key_file(settings.stack_dir, identity)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        names = [ln.split("=", 1)[0] for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
        assert names == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        secrets[identity] = path.read_text().split("AWS_SECRET_ACCESS_KEY=")[1].strip()
    # the launcher's shell variables as a developer might have them: every secret exported
    shell = {
        "PATH": "/usr/bin",
        "HOME": str(tmp_path),
        "AWS_SECRET_ACCESS_KEY": secrets["pipeline"],
        "ADMIN_SECRET_ACCESS_KEY": secrets["admin"],
        "MINIO_ROOT_PASSWORD": "x" * 12,
        "LAKEHOUSE_ENV_FILE": "envs/stack.env,.stack/keys/pipeline.env",
    }
    env = analyst_environment(settings, shell)
    values = "\n".join(env.values())
    assert secrets["pipeline"] not in values and secrets["admin"] not in values
    assert env["AWS_SECRET_ACCESS_KEY"] == secrets["analyst"]
    assert env["AWS_ACCESS_KEY_ID"] == "lakehouse-analyst"
    assert not any(k.startswith(("ADMIN_", "ANALYST_", "MINIO_", "LAKEHOUSE_ENV")) for k in env)


def test_make_duckdb_starts_the_shell_through_the_analyst_launcher(
    s3: S3Stack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(
        ["make", "-n", "duckdb", f"STAMP={root / 'Makefile'}"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "-m infra.stack duckdb" in res.stdout and "ANALYST_" not in res.stdout
    assert "set -a" not in res.stdout  # no env file sourced into the shell
    monkeypatch.delenv("LAKEHOUSE_ENV_FILE", raising=False)
    env_file = tmp_path / "admin-side.env"  # the admin side knows every key ...
    env_file.write_text(env_lines(s3.base))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS["pipeline"][1])
    assert stack_main(["duckdb", "--env-file", str(env_file), "--print-env"]) == 0
    names, command = capsys.readouterr().out.strip().splitlines()
    assert "duckdb -init" in command
    init = Path(command.split()[-1])
    assert stat.S_IMODE(init.stat().st_mode) == 0o600
    assert not any(secret in init.read_text() for _, secret in KEYS.values())
    assert set(names.split()) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert not any(n.startswith(("ADMIN_", "ANALYST_")) for n in names.split())


# -- read-only query ------------------------------------------------------------------------
@pytest.mark.parametrize("identity", ["pipeline", "analyst"])
@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1 AS x) TO 's3://gold/{prefix}/x.parquet'",
        "CREATE TABLE t AS SELECT 1 AS x",
        "SELECT 1; COPY (SELECT 1 AS x) TO 's3://gold/{prefix}/y.csv'",
    ],
)
def test_query_with_a_write_statement_writes_nothing_and_prints_one_line(
    s3: S3Stack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sql: str,
    identity: str,
) -> None:
    lake = s3.lake()
    prefix = Location.of(lake.lake_gold).prefix
    env_file = s3.env_file(s3.as_identity(lake, identity), tmp_path / "q.env")
    code = main(["query", "--env-file", str(env_file), sql.format(prefix=prefix)])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1, err
    assert "query refused" in lines[0] and "read-only" in lines[0]
    assert "Traceback" not in out + err
    listed = client(s3.base, "admin").list_objects_v2(Bucket="gold", Prefix=f"{prefix}/")
    assert listed["KeyCount"] == 0


def test_the_analysts_keys_cannot_write_even_past_the_statement_guard(s3: S3Stack) -> None:
    """Defence in depth: DuckDB with the analyst's secret cannot COPY into gold."""
    import duckdb

    from jobs.query import connect
    from jobs.run import RunContext

    lake = s3.as_identity(s3.lake(), "analyst")
    con = connect(RunContext(lake))
    prefix = Location.of(lake.lake_gold).prefix
    with pytest.raises(duckdb.Error):
        con.execute(f"COPY (SELECT 1 AS x) TO 's3://gold/{prefix}/direct.parquet'")
    listed = client(s3.base, "admin").list_objects_v2(Bucket="gold", Prefix=f"{prefix}/")
    assert listed["KeyCount"] == 0


def test_the_analyst_querying_a_layer_it_may_not_read_is_told_access_denied(
    s3: S3Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = s3.lake()
    env_file = s3.env_file(s3.as_identity(lake, "analyst"), tmp_path / "q.env")
    code = main(["query", "--env-file", str(env_file), "SELECT count(*) FROM silver.prints"])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1, err
    assert "may not read" in lines[0] and "(access denied)" in lines[0], err
    assert "does not exist" not in lines[0] and "Traceback" not in out + err
    # gold, which it may read, is there even on a lake nothing has written yet (empty)
    assert main(["query", "--env-file", str(env_file), "SELECT count(*) AS n FROM gold.print_features"]) == 0


# -- seeding never changes identities -------------------------------------------------------
def test_seed_with_a_different_secret_fails_in_one_line_and_never_changes_identities(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.integration.conftest import start_server

    monkeypatch.delenv("LAKEHOUSE_ENV_FILE", raising=False)
    server, settings = start_server(tmp_path / "stack")
    try:
        live = server.config_path.read_bytes()
        rotated = stack_settings(
            server.directory, server.ports, aws_secret_access_key="another-pipeline-secret"
        )
        env_file = tmp_path / "rotated.env"
        env_file.write_text(env_lines(rotated))
        code = stack_main(["seed", "--env-file", str(env_file), "--buckets-only"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code != 0 and len(err) == 1, err
        assert "identities apply" in err[0] and "pipeline: secret key changed" in err[0]
        assert "another-pipeline-secret" not in err[0]
        assert server.config_path.read_bytes() == live
        Storage(settings).s3_client().list_buckets()  # the live pipeline key still works
        assert stack_main(["up", "--env-file", str(env_file), "--no-seed"]) != 0
        assert server.config_path.read_bytes() == live
        capsys.readouterr()

        # the explicit way shows what changes, then changes it
        assert stack_main(["identities", "apply", "--dry-run", "--env-file", str(env_file)]) == 0
        assert capsys.readouterr().out.strip() == "pipeline: secret key changed"
        assert server.config_path.read_bytes() == live
        assert stack_main(["identities", "apply", "--env-file", str(env_file)]) == 0
        applied = capsys.readouterr().out
        assert "reloaded" in applied and "pipeline: secret key changed" in applied
        Storage(rotated).s3_client().list_buckets()
        with pytest.raises(ClientError):
            Storage(settings).s3_client().list_buckets()
        assert stack_main(["seed", "--env-file", str(env_file), "--buckets-only"]) == 0
        assert "identities: admin, pipeline, analyst match" in capsys.readouterr().out
    finally:
        server.stop(timeout=5)
