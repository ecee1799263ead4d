"""Real processes contending for the lake lease, and the test-side helpers that drive them.

Run as ``python -m tests.integrity.lease_harness hold|race --env FILE --dir DIR --run-id ID``.
Processes and the test talk through small files in ``DIR`` (each written atomically):

* ``hold``: take the lease (waiting up to ``--wait``), write ``acquired-<id>.json``, call
  ``ensure()`` in a loop until ``release-<id>`` appears, then release and write
  ``released-<id>.json``. A ``LeaseHeld``/``LeaseLost`` prints its one line and exits 5/6.
* ``race``: for each round r, wait for ``go-<r>`` (it holds a wall-clock instant so all
  processes start together), try once (wait 0) and write ``r<r>-<id>.json`` saying whether it
  won; the winner holds until ``end-<r>`` appears, then releases.

Every wait is bounded (``LIMIT`` seconds): a stuck process fails its test instead of hanging.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 120.0  # seconds any loop here may wait before giving up


# -- shared ------------------------------------------------------------------------------------
def write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def wait_for(check: Callable[[], Any], what: str, limit: float = LIMIT) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.02)
    raise AssertionError(f"gave up after {limit:.0f} s waiting for {what}")


# -- the worker process -----------------------------------------------------------------------
def _hold(args: argparse.Namespace, storage: Any, owner: Any) -> int:
    from jobs.lease import acquire

    control = Path(args.dir)
    with acquire(storage, owner=owner, ttl=args.ttl, heartbeat=args.heartbeat, wait=args.wait) as lease:
        write_json(control / f"acquired-{args.run_id}.json", {"token": lease.token, "pid": os.getpid()})
        deadline = time.monotonic() + LIMIT
        while not (control / f"release-{args.run_id}").exists():
            lease.ensure()  # what the pipeline does before each commit
            if time.monotonic() > deadline:
                return 9
            time.sleep(0.05)
    write_json(control / f"released-{args.run_id}.json", {"token": lease.token})
    return 0


def _race(args: argparse.Namespace, storage: Any, owner: Any) -> int:
    from jobs.errors import LeaseHeld
    from jobs.lease import acquire

    control = Path(args.dir)
    for r in range(args.rounds):
        go = wait_for(lambda r=r: (control / f"go-{r}").is_file() and (control / f"go-{r}"), f"go-{r}")
        start_at = json.loads(go.read_text())["at"]
        time.sleep(max(0.0, start_at - time.time()))
        report = control / f"r{r}-{args.run_id}.json"
        try:
            lease = acquire(storage, owner=owner, ttl=args.ttl, heartbeat=args.heartbeat, wait=0)
        except LeaseHeld as exc:
            write_json(report, {"won": False, "message": str(exc)})
            continue
        write_json(report, {"won": True, "token": lease.token})
        wait_for(lambda r=r: (control / f"end-{r}").exists(), f"end-{r}")
        lease.ensure()  # still ours: nobody else got it meanwhile
        lease.release()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["hold", "race"])
    parser.add_argument("--env", required=True, help="env file with the lake settings")
    parser.add_argument("--dir", required=True, help="control directory")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--ttl", type=float, default=2.0)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    parser.add_argument("--wait", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ["LAKEHOUSE_ENV_FILE"] = args.env

    from jobs.errors import PipelineError, exit_code
    from jobs.lease import Owner
    from jobs.logs import configure
    from jobs.settings import load_settings
    from jobs.storage import Storage

    settings = load_settings()
    configure(fmt=settings.log_format, level=settings.log_level)
    storage = Storage(settings)
    owner = Owner.this_process(args.run_id)
    try:
        return (_hold if args.mode == "hold" else _race)(args, storage, owner)
    except PipelineError as exc:
        return exit_code(exc, debug=False)


# -- the test side -----------------------------------------------------------------------------
def spawn(mode: str, *, env: Path, control: Path, run_id: str, **options: Any) -> subprocess.Popen[str]:
    """Start one worker process; its stderr (log lines, the error line) goes to
    ``<control>/<run_id>.err`` (see :func:`stderr_of`)."""
    cmd = [
        sys.executable,
        "-m",
        "tests.integrity.lease_harness",
        mode,
        "--env",
        str(env),
        "--dir",
        str(control),
        "--run-id",
        run_id,
    ]
    for name, value in options.items():
        if value is not None:
            cmd += [f"--{name.replace('_', '-')}", str(value)]
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
    with open(control / f"{run_id}.err", "w") as err:
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )


def stderr_of(proc: subprocess.Popen[str]) -> str:
    args = list(proc.args)  # type: ignore[arg-type]
    control = Path(args[args.index("--dir") + 1])
    return (control / f"{args[args.index('--run-id') + 1]}.err").read_text()


def finish(proc: subprocess.Popen[str], limit: float = LIMIT) -> tuple[int, str]:
    """Wait for a worker (bounded) and return its exit code and stderr."""
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"worker {proc.args} did not finish: {stderr_of(proc)}") from None
    return proc.returncode, stderr_of(proc)


def stop(procs: list[subprocess.Popen[str]]) -> None:
    """Kill workers a failed test left running (by PID, each one)."""
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def expired_lease(run_id: str = "crashed-run", *, pid: int | None = None) -> bytes:
    """An S3 lease whose holder died ten minutes ago (locally: a dead holder's leftover record)."""
    from jobs.lease import Holder, Owner

    beat = datetime.now(UTC) - timedelta(minutes=10)
    holder = Holder(
        owner=Owner(run_id=run_id, host="lost-host", pid=pid or dead_pid(), command="python -m jobs run"),
        token=uuid.uuid4().hex,
        acquired_at=beat - timedelta(minutes=5),
        heartbeat_at=beat,
        expires_at=beat + timedelta(seconds=60),
    )
    return holder.to_bytes()


def race_rounds(
    *,
    env: Path,
    control: Path,
    processes: int,
    rounds: int,
    read_token: Callable[[], str | None],
    before_round: Callable[[int], None],
) -> list[dict[str, Any]]:
    """Run ``rounds`` races of ``processes`` workers; per round, check exactly one won, that the
    lease is the winner's, that every loser was told who holds it, and that the winner releases.
    Returns the per-round outcome."""
    run_ids = [f"racer-{i}" for i in range(processes)]
    procs = [
        spawn("race", env=env, control=control, run_id=rid, rounds=rounds, ttl=30, heartbeat=5)
        for rid in run_ids
    ]
    outcomes = []
    try:
        for r in range(rounds):
            before_round(r)
            write_json(control / f"go-{r}", {"at": time.time() + 0.5})

            def reports(r: int = r) -> dict[str, Any] | None:
                files = {rid: control / f"r{r}-{rid}.json" for rid in run_ids}
                if all(f.is_file() for f in files.values()):
                    return {rid: json.loads(f.read_text()) for rid, f in files.items()}
                if dead := [p.args for p in procs if p.poll() not in (None, 0)]:
                    raise AssertionError(f"a racer died: {dead}: {[finish(p)[1] for p in procs]}")
                return None

            seen = wait_for(reports, f"all reports of round {r}")
            winners = [rid for rid, rep in seen.items() if rep["won"]]
            assert len(winners) == 1, f"round {r}: winners {winners}"
            winner = winners[0]
            assert read_token() == seen[winner]["token"]
            for rid, rep in seen.items():
                if rid != winner:
                    assert f"run {winner} " in rep["message"], rep["message"]
            write_json(control / f"end-{r}", {})
            wait_for(lambda: read_token() is None, f"the winner of round {r} to release")
            outcomes.append({"round": r, "winner": winner})
        for proc in procs:
            code, err = finish(proc)
            assert code == 0, err
    finally:
        stop(procs)
    return outcomes


if __name__ == "__main__":
    sys.exit(main())
