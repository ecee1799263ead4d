"""The pipeline on a real S3 server (SeaweedFS ``weed mini``), as the least-privileged identities.

Tiny generated data (scale 0.01) keeps the whole module well under a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from infra.generator import generate
from infra.stack.seed import SeedOptions, seed_lake
from jobs.cli import main
from jobs.errors import AccessDenied, BucketMissing, CommitRefused, CredentialsRejected, DataError
from jobs.pipeline import run_all
from jobs.raw.files import list_raw_files
from jobs.run import RunContext
from jobs.schemas import GOLD, GOLD_TABLE
from jobs.settings import Settings
from jobs.storage import Storage
from jobs.tables import Lake
from tests.conftest import table_versions as versions
from tests.integration.conftest import KEYS, S3Stack

pytestmark = pytest.mark.integration

SCALE = 0.01
START = date(2020, 11, 1)


def gold_of(settings: Settings) -> pl.DataFrame:
    ctx = RunContext(settings)
    return ctx.lake.scan(ctx.gold(GOLD_TABLE)).collect().sort(list(GOLD.names()))


def local_settings(root: Path, raw: Path) -> Settings:
    return Settings(
        _env_file=None,
        lake_raw=str(raw),  # type: ignore[call-arg]
        **{f"lake_{layer}": str(root / layer) for layer in ("bronze", "silver", "gold")},
    )


def cli(capsys: pytest.CaptureFixture[str], env_file: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--env-file", str(env_file)])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(stderr: str) -> bool:
    """The failure is ONE line starting with ``error:`` (after any INFO logs), no traceback."""
    lines = stderr.strip().splitlines()
    return (
        bool(lines)
        and lines[-1].startswith("error: ")
        and sum(line.startswith("error") for line in lines) == 1
        and "Traceback" not in stderr
        and "panicked" not in stderr
    )


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    generate(out_dir=out, scale=SCALE, start=START, days=20, bad_lines=6)
    return out


@pytest.fixture(scope="module")
def built(s3: S3Stack, raw_dir: Path) -> Settings:
    """A lake seeded from ``raw_dir`` and built once by the pipeline identity."""
    settings = s3.lake("built")
    report = seed_lake(settings, SeedOptions(source=raw_dir, identities=False))
    assert report.uploaded == 60 and report.skipped == 0
    run_all(RunContext(settings))
    return settings


# -- the pipeline -------------------------------------------------------------------------------
def test_whole_pipeline_on_s3_gives_the_same_gold_as_on_local_disk(
    built: Settings, raw_dir: Path, tmp_path: Path
) -> None:
    local = local_settings(tmp_path / "lake", raw_dir)
    run_all(RunContext(local))
    on_s3 = gold_of(built)
    assert on_s3.height > 0
    assert_frame_equal(on_s3, gold_of(local))
    # bronze accounting and quarantine work on S3 too
    ctx = RunContext(built)
    manifest = ctx.lake.scan(ctx.manifest_uri).collect()
    assert manifest.height == 60
    assert ctx.lake.scan(ctx.quarantine_uri).collect().height == 18  # 6 bad lines x 3 sources
    assert (manifest["lines"] == manifest["bronze_rows"] + manifest["quarantined_rows"]).all()


def test_export_on_s3_writes_final_files_and_marker(built: Settings) -> None:
    storage = Storage(built)
    fs = storage.filesystem(built.export_uri)
    base = storage.strip_protocol(built.export_uri)
    names = sorted(p.rsplit("/", 1)[1] for p in fs.ls(base, detail=False))
    assert names == ["_export.json", "final.csv", "final.parquet"]
    marker = json.loads(fs.cat(f"{base}/_export.json"))
    assert marker["gold_version"] == versions(built)["gold/print_features"]


def test_second_run_on_s3_writes_no_table_version(built: Settings) -> None:
    before = versions(built)
    results = run_all(RunContext(built))
    assert all(r.skipped for r in results)
    assert versions(built) == before


# -- seeding ------------------------------------------------------------------------------------
def test_seeding_twice_uploads_nothing_the_second_time(s3: S3Stack, built: Settings, raw_dir: Path) -> None:
    report = seed_lake(built, SeedOptions(source=raw_dir, identities=False))
    assert (report.uploaded, report.skipped) == (0, 60)
    assert "uploaded 0" in report.describe()


def test_seed_refuses_to_overwrite_a_raw_file_with_other_bytes(s3: S3Stack, tmp_path: Path) -> None:
    settings = s3.lake()
    local = tmp_path / "raw"
    (local / "prints").mkdir(parents=True)
    (local / "prints" / "a.json").write_text('{"x": 1}\n')
    assert seed_lake(settings, SeedOptions(source=local, identities=False)).uploaded == 1
    (local / "prints" / "a.json").write_text('{"x": 2}\n')
    (local / "prints" / "b.json").write_text('{"x": 3}\n')
    with pytest.raises(DataError, match="immutable"):
        seed_lake(settings, SeedOptions(source=local, identities=False))
    listed = list_raw_files(Storage(settings), settings.lake_raw, "prints")
    assert [f.rel_path for f in listed] == ["prints/a.json"]  # b.json was not uploaded either


def test_trickle_seeding_one_more_day_then_a_run_rebuilds_only_the_affected_weeks(
    s3: S3Stack,
) -> None:
    settings = s3.lake()
    opts = SeedOptions(generate=True, scale=SCALE, start=START, identities=False)
    first = seed_lake(settings, SeedOptions(**{**opts.__dict__, "days": 8}))
    assert first.days[0] == "2020-11-01" and first.days[-1] == "2020-11-08"
    run_all(RunContext(settings))
    ctx = RunContext(settings)
    gold_uri = ctx.gold(GOLD_TABLE)
    files_before = _files_by_week(ctx.lake, gold_uri)
    assert set(files_before) == {"2020-10-26", "2020-11-02"}

    more = seed_lake(settings, SeedOptions(**{**opts.__dict__, "days": 1}))
    assert (more.uploaded, more.days) == (3, ["2020-11-09"])
    run_all(RunContext(settings))
    last = ctx.lake.history(gold_uri)[-1]
    assert last["weeks"] == "2020-11-09"
    files_after = _files_by_week(ctx.lake, gold_uri)
    assert set(files_after) == {"2020-10-26", "2020-11-02", "2020-11-09"}
    for week in ("2020-10-26", "2020-11-02"):  # untouched partitions keep their files
        assert files_after[week] == files_before[week]


def _files_by_week(lake: Lake, uri: str) -> dict[str, set[str]]:
    table = lake.open(uri)
    actions = pl.DataFrame(table.get_add_actions(flatten=True))
    out: dict[str, set[str]] = {}
    for path, week in zip(actions["path"], actions["partition.week_start"], strict=True):
        out.setdefault(str(week), set()).add(path)
    return out


# -- identities ---------------------------------------------------------------------------------
def test_analyst_can_read_gold_but_cannot_write_gold_or_read_raw(s3: S3Stack, built: Settings) -> None:
    analyst = s3.as_identity(built, "analyst")
    ctx = RunContext(analyst)
    gold_uri = ctx.gold(GOLD_TABLE)
    version = ctx.lake.version(gold_uri)
    assert ctx.lake.scan(gold_uri).collect().height == gold_of(built).height

    with pytest.raises(AccessDenied, match=KEYS["analyst"][0]):
        ctx.lake.write(
            gold_uri, gold_of(built).head(5), schema=GOLD, mode="append", partition_by="week_start"
        )
    assert ctx.lake.version(gold_uri) == version
    with pytest.raises(AccessDenied, match="s3://raw/built"):
        list_raw_files(ctx.storage, analyst.lake_raw, "prints")


def test_pipeline_identity_cannot_write_raw(s3: S3Stack, built: Settings) -> None:
    client = Storage(built).s3_client()
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="AccessDenied"):
        client.put_object(Bucket="raw", Key="built/prints/evil.json", Body=b"{}")


def test_identities_file_is_reloaded_by_the_running_server_without_restart(s3: S3Stack) -> None:
    from infra.stack.weed import apply_identities

    base = s3.base
    assert "up to date" in apply_identities(base)
    rotated = type(base)(  # the stack's settings (apply_identities finds the server by them)
        _env_file=None,
        **(
            base.model_dump()  # type: ignore[call-arg]
            | {"analyst_secret_access_key": "rotated-secret"}
        ),
    )
    try:
        assert "reloaded" in apply_identities(rotated)
        new_key = Storage(rotated).for_identity("analyst").s3_client()
        _eventually(lambda: new_key.list_objects_v2(Bucket="gold", MaxKeys=1))
        old_key = Storage(base).for_identity("analyst").s3_client()
        from botocore.exceptions import ClientError

        with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
            old_key.list_objects_v2(Bucket="gold", MaxKeys=1)
    finally:
        apply_identities(base)
        _eventually(
            lambda: (
                Storage(base).for_identity("analyst").s3_client().list_objects_v2(Bucket="gold", MaxKeys=1)
            )
        )


def _eventually(call, attempts: int = 100) -> None:  # type: ignore[no-untyped-def]
    """Retry until the server has applied a reload (no timing assertion: just bounded)."""
    import time

    for i in range(attempts):
        try:
            call()
            return
        except Exception:
            if i == attempts - 1:
                raise
            time.sleep(0.1)


# -- bad input ----------------------------------------------------------------------------------
def test_wrong_secret_gives_one_line_naming_endpoint_and_key_and_leaves_tables_untouched(
    s3: S3Stack, built: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = versions(built)
    wrong = Settings(
        _env_file=None,
        **(
            built.model_dump()  # type: ignore[call-arg]
            | {"aws_secret_access_key": "not-the-secret"}
        ),
    )
    code, _, err = cli(capsys, s3.env_file(wrong, tmp_path / "wrong.env"), "run")
    assert code == 3
    assert one_error_line(err)
    assert s3.server.endpoint in err and KEYS["pipeline"][0] in err
    assert "AWS_SECRET_ACCESS_KEY" in err
    assert versions(built) == before


def test_unknown_access_key_is_reported_as_such_by_the_real_command(
    s3: S3Stack, built: Settings, tmp_path: Path
) -> None:
    unknown = Settings(
        _env_file=None,
        **(
            built.model_dump()  # type: ignore[call-arg]
            | {"aws_access_key_id": "nobody"}
        ),
    )
    env_file = s3.env_file(unknown, tmp_path / "unknown.env")
    res = subprocess.run(
        [sys.executable, "-m", "jobs", "run", "--env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "LAKEHOUSE_ENV_FILE": ""},
    )
    assert res.returncode == 3
    assert one_error_line(res.stderr)
    assert "does not know access key 'nobody'" in res.stderr
    assert "AWS_ACCESS_KEY_ID" in res.stderr


def test_access_denied_mid_run_names_the_bucket_and_commits_no_gold_version(
    s3: S3Stack, raw_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Gold pointed at a bucket the pipeline may only read: bronze and silver succeed, gold fails.
    settings = s3.lake()
    seed_lake(settings, SeedOptions(source=raw_dir, identities=False))
    denied = Settings(
        _env_file=None,
        **(
            settings.model_dump()  # type: ignore[call-arg]
            | {"lake_gold": "s3://raw/not-for-gold"}
        ),
    )
    code, _, err = cli(capsys, s3.env_file(denied, tmp_path / "denied.env"), "run")
    assert code == 3 and one_error_line(err)
    assert "access denied" in err and "s3://raw/not-for-gold" in err
    assert KEYS["pipeline"][0] in err
    admin = Lake(Storage(denied).for_identity("admin"))
    assert admin.version("s3://raw/not-for-gold/print_features") is None


def test_missing_bucket_is_named_in_the_error(s3: S3Stack, built: Settings) -> None:
    # weed checks the grant before the bucket: a missing bucket is "missing" only to an identity
    # granted it, so the lake's export location is pointed at a bucket nobody created for now.
    update = {"lake_export": "s3://no-such-bucket/export"}
    granted = type(s3.base)(_env_file=None, **(s3.base.model_dump() | update))
    s3.server.apply_identities(granted)
    try:
        lake = Lake(Storage(built))
        deadline = time.monotonic() + 15
        while True:  # until the running server has re-read its identities (SIGHUP)
            try:
                lake.version("s3://no-such-bucket/export/print_features")
            except AccessDenied:
                assert time.monotonic() < deadline, "the identities were not reloaded"
                time.sleep(0.2)
                continue
            except BucketMissing as exc:
                assert "'no-such-bucket'" in str(exc) and "python -m infra.stack seed" in str(exc)
                break
            pytest.fail("a missing bucket raised nothing")
    finally:
        s3.server.apply_identities(s3.base)


def test_wrong_credentials_raise_credentials_rejected(s3: S3Stack, built: Settings) -> None:
    wrong = Settings(
        _env_file=None,
        **(
            built.model_dump()  # type: ignore[call-arg]
            | {"aws_secret_access_key": "nope"}
        ),
    )
    with pytest.raises(CredentialsRejected):
        Lake(Storage(wrong)).version(f"{built.lake_gold}/{GOLD_TABLE}")


# -- concurrency --------------------------------------------------------------------------------
def test_racing_delta_writers_on_s3_each_land_whole_or_are_refused_whole(s3: S3Stack) -> None:
    """deltalake commits with a conditional put (If-None-Match), and every commit is made from
    the snapshot its writer read (no rebase): of writers racing for one version, one lands and
    the others are refused whole with exit 6 (CommitRefused), never half-written."""
    settings = s3.lake()
    lake = RunContext(settings).lake
    uri = f"{settings.lake_silver}/race"
    schema = pl.Schema({"writer": pl.Int64, "n": pl.Int64})
    lake.write(uri, pl.DataFrame({"writer": [-1], "n": [0]}), schema=schema)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            lake.write(uri, pl.DataFrame({"writer": [i] * 10, "n": list(range(10))}), schema=schema)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(e, CommitRefused) for e in errors), errors
    landed = 6 - len(errors)
    assert landed >= 1 and lake.version(uri) == landed
    frame = lake.scan(uri).collect()
    assert frame.height == 1 + 10 * landed and frame["writer"].n_unique() == 1 + landed


def test_concurrent_overwrites_of_one_partition_leave_exactly_one_writers_rows(
    s3: S3Stack,
) -> None:
    settings = s3.lake()
    lake = RunContext(settings).lake
    uri = f"{settings.lake_silver}/overwrite-race"
    schema = pl.Schema({"part": pl.String, "writer": pl.Int64})
    lake.write(
        uri, pl.DataFrame({"part": ["a", "b"], "writer": [-1, -1]}), schema=schema, partition_by="part"
    )
    barrier = threading.Barrier(2)
    outcome: dict[int, BaseException | None] = {}

    def writer(i: int) -> None:
        barrier.wait()
        try:
            lake.write(
                uri,
                pl.DataFrame({"part": ["a"] * 3, "writer": [i] * 3}),
                schema=schema,
                mode="overwrite",
                partition_by="part",
                predicate="part = 'a'",
            )
            outcome[i] = None
        except BaseException as exc:
            outcome[i] = exc

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, exc in outcome.items() if exc is None]
    assert winners, outcome
    for exc in outcome.values():  # a loser is told why, in one line, and it is no storage error
        assert exc is None or (isinstance(exc, CommitRefused) and "was refused" in str(exc))
    frame = lake.scan(uri).collect()
    part_a = frame.filter(pl.col("part") == "a")
    assert part_a.height == 3 and part_a["writer"].n_unique() == 1
    assert part_a["writer"][0] in winners
    assert frame.filter(pl.col("part") == "b")["writer"].to_list() == [-1]


# -- DuckDB -------------------------------------------------------------------------------------
def test_query_command_reads_gold_on_s3_as_pipeline_and_as_analyst(
    s3: S3Stack, built: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = gold_of(built).height
    sql = "SELECT count(*) AS n FROM gold.print_features"
    for identity in ("pipeline", "analyst"):
        env_file = s3.env_file(s3.as_identity(built, identity), tmp_path / f"{identity}.env")
        code, out, err = cli(capsys, env_file, "query", sql, "--format", "csv")
        assert code == 0, err
        assert int(out.splitlines()[1]) == expected


def test_duckdb_cli_init_file_reads_gold_on_s3_with_keys_from_the_environment(
    s3: S3Stack, built: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init = tmp_path / "init.sql"
    code, _, err = cli(capsys, s3.env_file(built, tmp_path / "p.env"), "duckdb-init", "--out", str(init))
    assert code == 0, err
    text = init.read_text()
    assert KEYS["pipeline"][1] not in text and KEYS["analyst"][1] not in text
    duckdb = Path(sys.executable).parent / "duckdb"
    key, secret = KEYS["analyst"]
    res = subprocess.run(
        [str(duckdb), "-init", str(init), "-csv", "-c", "SELECT count(*) AS n FROM print_features"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "AWS_ENDPOINT_URL": s3.server.endpoint,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": "us-east-1",
        },
    )
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip().splitlines()[-1]) == gold_of(built).height
