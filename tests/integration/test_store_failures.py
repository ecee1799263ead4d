"""A stalled (SIGSTOP) or killed (SIGKILL) object store during each stage, with the real command.

Every test runs ``python -m jobs <stage>`` in its own process against a SeaweedFS server of this
module (not the session's: it gets stopped and killed here), with small ``S3_*`` timeouts so
a stalled store fails within seconds. The stage must exit non-zero within the bound with ONE
``error:`` line naming the endpoint, no Python traceback and no Rust panic text; after the
store is back, a rerun of the stage completes and its tables equal a clean local build.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from infra.generator import generate
from infra.processes import alive
from infra.stack.seed import Seeder, SeedOptions, SeedReport, seed_lake
from infra.stack.weed import WeedServer
from jobs.audit import NO_AUDITS
from jobs.pipeline import run_all, run_stage
from jobs.run import RunContext
from jobs.schemas import GOLD_TABLE, SOURCES
from jobs.settings import Settings
from jobs.storage import Storage
from tests.integration.conftest import LAYERS, env_lines, stack_settings, start_server

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCALE = 0.01
START = date(2020, 11, 1)
# Small bounds for the tests: one request gives up after 2 x (1 s + 2 s) + 0.1 s = 6.1 s.
TIMEOUTS = {
    "s3_connect_timeout_seconds": 1.0,
    "s3_read_timeout_seconds": 2.0,
    "s3_max_attempts": 2,
    "s3_retry_backoff_seconds": 0.1,
}
# A failing stage may wait on a few requests in turn (the failing one, polars re-reading a
# file once, cleanup of uncommitted files, the quality gate's own table): it must still end
# within this many request bounds after the store stopped answering.
REQUESTS_PER_STAGE = 6
PREVIOUS = {"bronze": (), "silver": ("bronze",), "gold": ("bronze", "silver")}
# Where each stage writes first: the store is stopped/killed once something appears there.
OUTPUT = {"bronze": "bronze", "silver": "silver", "gold": f"gold/{{name}}/{GOLD_TABLE}/"}
LINEAGE = ("run_id", "ingested_at")


@dataclass
class Store:
    """This module's weed server, which tests pause, resume, kill and restart by its PID."""

    server: WeedServer
    base: Settings

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def pid(self) -> int:
        pid = self.server.pid()
        assert pid is not None, "the store is not running"
        return pid

    def signal(self, sig: signal.Signals) -> None:
        pid = self.pid()
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            deadline = time.monotonic() + 10
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    def ensure_running(self) -> None:
        """Resume a paused server, restart a killed one (same ports, same data)."""
        pid = self.server.pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
            self.server.wait_ready(self.base, timeout=30)
            return
        self.server.start(self.base)
        self.server.wait_ready(self.base, timeout=60)

    def lake(self, name: str) -> Settings:
        locations = {f"lake_{layer}": f"s3://{layer}/{name}" for layer in LAYERS}
        return stack_settings(self.server.directory, self.server.ports, **(locations | TIMEOUTS))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    server, settings = start_server(tmp_path_factory.mktemp("weed-failures"))
    try:
        Seeder(settings).ensure_buckets(SeedReport())
        yield Store(server, settings)
    finally:
        pid = server.pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        server.stop(timeout=5)


@pytest.fixture(autouse=True)
def _store_back(store: Store) -> Iterator[None]:
    """Whatever a test did to the server (and whether it passed), the next one finds it up."""
    try:
        yield
    finally:
        store.ensure_running()


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw-failures")
    generate(out_dir=out, scale=SCALE, start=START, days=10, bad_lines=3)
    return out


@pytest.fixture(scope="module")
def reference(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The same raw files built on local disk with no failure: what every rerun must equal."""
    root = tmp_path_factory.mktemp("reference")
    settings = Settings(
        _env_file=None,
        lake_raw=str(raw_dir),  # type: ignore[call-arg]
        **{f"lake_{layer}": str(root / layer) for layer in LAYERS[1:]},
    )
    run_all(RunContext(settings), audits=NO_AUDITS)
    return settings


def prepared_lake(store: Store, raw_dir: Path, name: str, stage: str) -> Settings:
    """A fresh lake under ``name`` with raw files seeded and the stages before ``stage`` done."""
    settings = store.lake(name)
    seed_lake(settings, SeedOptions(source=raw_dir, identities=False))
    ctx = RunContext(settings)
    for previous in PREVIOUS[stage]:
        run_stage(ctx, previous, audits=NO_AUDITS)
    return settings


@dataclass
class Outcome:
    code: int | None
    stderr: str
    after_signal: float  # seconds from the signal to the exit


def run_command(stage: str, env_file: Path, *, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobs", stage, "--env-file", str(env_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "LAKEHOUSE_ENV_FILE": ""},
    )


def run_with_failure(
    store: Store,
    settings: Settings,
    stage: str,
    env_file: Path,
    sig: signal.Signals,
    *,
    before: bool,
    limit: float,
) -> Outcome:
    """Run the stage; signal the store before it starts, or once its first output appears."""
    if before:
        store.signal(sig)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs", stage, "--env-file", str(env_file)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "LAKEHOUSE_ENV_FILE": ""},
    )
    signalled = [time.monotonic()]
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    try:
        if not before:
            _signal_when_written(store, settings, stage, sig, proc)
            signalled[0] = time.monotonic()
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"{stage} still ran {limit:.0f}s after the store stopped answering")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join()
    return Outcome(proc.returncode, "".join(chunks), time.monotonic() - signalled[0])


def _signal_when_written(
    store: Store, settings: Settings, stage: str, sig: signal.Signals, proc: subprocess.Popen[str]
) -> None:
    name = settings.lake_bronze.rsplit("/", 1)[1]
    target = OUTPUT[stage].format(name=name)
    bucket, _, prefix = target.partition("/")
    prefix = prefix or f"{name}/"
    client = Storage(store.base).for_identity("admin").s3_client()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{stage} ended (code {proc.returncode}) before it wrote to s3://{bucket}/{prefix}")
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        if listed.get("KeyCount", 0):
            store.signal(sig)
            return
        time.sleep(0.05)
    pytest.fail(f"{stage} wrote nothing to s3://{bucket}/{prefix} within 120s")


def assert_one_error_line_naming_the_endpoint(outcome: Outcome, store: Store) -> None:
    err = outcome.stderr
    assert outcome.code == 3, err
    assert "Traceback" not in err, err
    assert "panicked" not in err and "RUST_BACKTRACE" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert errors[0].startswith(f"error: cannot reach the object store at {store.endpoint}"), err


def assert_tables_equal_reference(settings: Settings, reference: Settings, stage: str) -> None:
    """The stage's tables hold exactly the rows of a clean build: nothing lost, nothing twice."""
    tables = {
        "bronze": [*SOURCES, "quarantine", "_manifest"],
        "silver": list(SOURCES),
        "gold": [GOLD_TABLE],
    }[stage]
    got, want = RunContext(settings), RunContext(reference)
    for table in tables:
        uri = {"bronze": got.bronze, "silver": got.silver, "gold": got.gold}[stage](table)
        ref = {"bronze": want.bronze, "silver": want.silver, "gold": want.gold}[stage](table)
        frames = [lake.scan(u).collect() for lake, u in ((got.lake, uri), (want.lake, ref))]
        # lineage and how a file was fingerprinted (S3 ETag vs local size+mtime) differ by design
        frames = [f.drop([c for c in (*LINEAGE, "fingerprint") if c in f.columns]) for f in frames]
        frames = [f.sort(f.columns) for f in frames]
        assert_frame_equal(frames[0], frames[1], check_column_order=False)


def _bound(settings: Settings) -> float:
    """No stage may wait longer than this for a store that stopped answering: a generous
    multiple of the per-request bound (it proves the wait is bounded, not how fast it is: a
    loaded CI machine needed 97 s for gold once, 9.5 s is typical)."""
    return 4 * REQUESTS_PER_STAGE * Storage(settings).request_bound_seconds + 60


# -- a store that stops answering or dies during a stage ----------------------------------------
@pytest.mark.parametrize("stage", ["bronze", "silver", "gold"])
@pytest.mark.parametrize("sig", [signal.SIGSTOP, signal.SIGKILL], ids=["stalled", "killed"])
def test_store_failing_mid_stage_ends_it_with_one_line_in_time_and_a_rerun_completes(
    store: Store,
    raw_dir: Path,
    reference: Settings,
    tmp_path: Path,
    stage: str,
    sig: signal.Signals,
) -> None:
    name = f"{stage}-{sig.name.lower()}"
    settings = prepared_lake(store, raw_dir, name, stage)
    env_file = tmp_path / f"{name}.env"
    # A stage that dies with the store cannot release its lease: the rerun waits for it to expire.
    env_file.write_text(
        env_lines(settings) + "\nLEASE_TTL_SECONDS=3\nLEASE_HEARTBEAT_SECONDS=0.5\nLEASE_WAIT_SECONDS=60\n"
    )
    bound = _bound(settings)

    outcome = run_with_failure(store, settings, stage, env_file, sig, before=False, limit=bound + 60)
    store.ensure_running()

    print(f"{stage} {sig.name}: exit {outcome.code} {outcome.after_signal:.1f}s after the signal")
    assert_one_error_line_naming_the_endpoint(outcome, store)
    assert outcome.after_signal < bound, f"{outcome.after_signal:.1f}s > {bound:.1f}s"
    # The rerun must complete, not fail fast: the default request timeouts (the failure's tiny
    # ones can expire on a loaded machine while the restarted store warms up).
    rerun_env = tmp_path / f"{name}-rerun.env"
    defaults = {key: Settings.model_fields[key].default for key in TIMEOUTS}
    rerun_env.write_text(env_lines(settings.model_copy(update=defaults)) + "\nLEASE_WAIT_SECONDS=120\n")
    rerun = run_command(stage, rerun_env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "Traceback" not in rerun.stderr and "panicked" not in rerun.stderr
    assert_tables_equal_reference(settings, reference, stage)


def test_store_stalled_before_a_stage_starts_ends_it_with_one_line_in_time(
    store: Store, raw_dir: Path, tmp_path: Path
) -> None:
    settings = prepared_lake(store, raw_dir, "stalled-before-silver", "silver")
    env_file = tmp_path / "before.env"
    env_file.write_text(env_lines(settings))
    bound = _bound(settings)

    outcome = run_with_failure(
        store, settings, "silver", env_file, signal.SIGSTOP, before=True, limit=bound + 60
    )
    store.ensure_running()

    print(f"silver SIGSTOP before: exit {outcome.code} {outcome.after_signal:.1f}s")
    assert_one_error_line_naming_the_endpoint(outcome, store)
    assert outcome.after_signal < bound, f"{outcome.after_signal:.1f}s > {bound:.1f}s"


def test_storage_settings_bound_every_client(store: Store) -> None:
    """The S3_* settings reach each client in its own spelling (checked on the real objects)."""
    storage = Storage(store.lake("options"))
    delta = storage.delta_options("s3://bronze/x") or {}
    assert (delta["connect_timeout"], delta["timeout"]) == ("1000ms", "2000ms")
    assert "max_retries" not in delta  # polars reads these too and wants an int there
    polars = storage.polars_options("s3://bronze/x") or {}
    assert polars["max_retries"] == 1 and polars["timeout"] == "2000ms"
    config = storage.s3_client().meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.0, 2.0)
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    fs = storage.filesystem("s3://bronze/x")
    assert fs.retries == 1
    assert storage.request_bound_seconds == pytest.approx(6.1)
    assert "SET http_retries = 1" in storage.duckdb_settings_sql()


# -- a wait that no request timeout bounds --------------------------------------------------------
HOLD_AND_HANG = """
import threading
from jobs.lease import Owner, acquire
from jobs.logs import stop_process
from jobs.logs import store_panics_filtered
from jobs.settings import load_settings
from jobs.storage import Storage

storage, owner = Storage(load_settings()), Owner.this_process("hang")
with store_panics_filtered(), acquire(storage, owner=owner, on_unreachable=stop_process):
    print("holding", flush=True)
    threading.Event().wait()  # stands for any call that waits on the store without a timeout
"""  # as the CLI runs: fd 2 through the panic filter, whose last lines must still come out


def test_a_run_stuck_on_a_stalled_store_is_stopped_by_its_lease_with_one_line(
    store: Store, tmp_path: Path
) -> None:
    settings = store.lake("hang")
    env_file = tmp_path / "hang.env"
    env_file.write_text(env_lines(settings) + "\nLEASE_TTL_SECONDS=3\nLEASE_HEARTBEAT_SECONDS=0.5\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_HANG],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "LAKEHOUSE_ENV_FILE": str(env_file), "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        store.signal(signal.SIGSTOP)
        # TTL, then one request bound of grace, then the renewal under way: well inside this.
        limit = 3 + 3 * Storage(settings).request_bound_seconds + 60
        _, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the process still hung on the stalled store")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert errors[0].startswith(f"error: cannot reach the object store at {store.endpoint}"), err
    assert "lake lease TTL of 3 s" in errors[0], err
