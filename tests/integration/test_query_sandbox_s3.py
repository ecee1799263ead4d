"""The query sandbox on S3 (``weed mini``), as the analyst and as the pipeline (whose keys may
write gold): every form of tests/test_query_sandbox.py is refused in one line, DuckDB itself
refuses what reaches outside, nothing lands in any bucket, and the views still read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from infra.stack.identities import Location
from jobs.errors import PipelineError
from jobs.query import connect, init_sql, run_query
from jobs.run import RunContext
from jobs.schemas import GOLD, GOLD_TABLE
from jobs.settings import Settings
from jobs.storage import Storage
from tests.integration.conftest import KEYS, S3Stack
from tests.test_query_sandbox import FORMS, Form

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
IDENTITIES = ("analyst", "pipeline")


@pytest.fixture(scope="module")
def lake(s3: S3Stack, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A lake whose gold table the pipeline wrote (empty), and a secret file outside it."""
    settings = s3.lake()
    uri = RunContext(settings).gold(GOLD_TABLE)
    pl.DataFrame(schema=GOLD).write_delta(uri, storage_options=Storage(settings).delta_options(uri))
    return settings


def values(settings: Settings, secret: Path) -> dict[str, str]:
    prefix = Location.of(settings.lake_gold).prefix
    return {
        "target": f"s3://gold/{prefix}/_audit/x.csv",
        "target_dir": RunContext(settings).gold(GOLD_TABLE),
        "secret": str(secret),
        "url": "http://127.0.0.1:9/metrics",
    }


def audit_objects(s3: S3Stack, settings: Settings) -> int:
    prefix = Location.of(settings.lake_gold).prefix
    admin = Storage(s3.base).for_identity("admin").s3_client()
    return int(admin.list_objects_v2(Bucket="gold", Prefix=f"{prefix}/_audit")["KeyCount"])


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "admin.env"
    path.write_text("ADMIN_SECRET_ACCESS_KEY=do-not-read\n")
    return path


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_every_form_is_refused_on_s3(
    s3: S3Stack, lake: Settings, secret: Path, form: Form, identity: str
) -> None:
    ctx = RunContext(s3.as_identity(lake, identity))
    sql = form.sql.format(**values(lake, secret))
    with pytest.raises(PipelineError) as refused:
        run_query(ctx, sql)
    assert str(refused.value).startswith("query refused:") and "\n" not in str(refused.value)
    if form.duckdb_refuses:  # past the statement check, on the sandboxed connection itself
        with pytest.raises(duckdb.Error) as direct:
            connect(ctx).execute(sql).fetchall()
        assert "do-not-read" not in str(direct.value)
    assert audit_objects(s3, lake) == 0


@pytest.mark.parametrize("identity", IDENTITIES)
def test_the_views_still_read_on_s3(s3: S3Stack, lake: Settings, identity: str) -> None:
    ctx = RunContext(s3.as_identity(lake, identity))
    frame = run_query(ctx, "SELECT count(*) AS n FROM gold.print_features")
    assert frame["n"].to_list() == [0]
    if identity == "pipeline":
        views = ["silver.prints", "bronze.quarantine", "bronze.manifest", "gold.quality_results"]
        sql = " UNION ALL ".join(f"SELECT count(*) AS n FROM {v}" for v in views)
        assert run_query(ctx, sql)["n"].to_list() == [0] * len(views)


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("name", ["explain-analyze-copy", "read-text-outside", "multi-statement"])
def test_the_command_refuses_on_s3_in_one_line(
    s3: S3Stack, lake: Settings, secret: Path, tmp_path: Path, name: str, identity: str
) -> None:
    form = next(f for f in FORMS if f.name == name)
    env_file = s3.env_file(s3.as_identity(lake, identity), tmp_path / "q.env")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs",
            "query",
            "--env-file",
            str(env_file),
            form.sql.format(**values(lake, secret)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ADMIN_", "ANALYST_"))}
        | {"PYTHONPATH": str(REPO), "LAKEHOUSE_ENV_FILE": ""},
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: query refused:"), (
        res.stderr
    )
    assert "do-not-read" not in res.stdout + res.stderr
    assert audit_objects(s3, lake) == 0


DUCKDB = Path(sys.executable).parent / "duckdb"


@pytest.mark.skipif(not DUCKDB.is_file(), reason="the duckdb-cli package is not installed")
def test_the_duckdb_shell_on_s3_reads_gold_only(
    s3: S3Stack, lake: Settings, secret: Path, tmp_path: Path
) -> None:
    init = tmp_path / "init.sql"
    init.write_text(init_sql(RunContext(s3.as_identity(lake, "analyst"))))
    key, secret_key = KEYS["pipeline"]  # keys that could write: the sandbox alone must hold

    def shell(sql: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(DUCKDB), "-init", str(init), "-csv", "-noheader", "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp_path),
                "AWS_ENDPOINT_URL": s3.server.endpoint,
                "AWS_ACCESS_KEY_ID": key,
                "AWS_SECRET_ACCESS_KEY": secret_key,
                "AWS_REGION": "us-east-1",
            },
        )

    ok = shell("SELECT count(*) FROM print_features")
    assert ok.returncode == 0 and ok.stdout.strip().splitlines()[-1] == "0", ok.stderr
    prefix = Location.of(lake.lake_silver).prefix
    for sql in (
        f"SELECT * FROM read_text('{secret}')",
        f"SELECT count(*) FROM read_parquet('s3://silver/{prefix}/**/*.parquet')",
        f"COPY (SELECT 1) TO '{tmp_path}/out.csv'",
    ):
        res = shell(sql)
        assert "Permission Error" in res.stderr and "do-not-read" not in res.stdout + res.stderr, sql
    assert "the configuration has been locked" in shell("SET enable_external_access = true").stderr
