"""``python -m infra.stack up|down|status|seed``: the local object store's commands.

``up`` (``make stack-up``) starts ``weed mini`` unless it runs (then it only reloads changed
identities), waits until it answers, creates the buckets and identities, seeds the scale-1 raw
data and prints what to open; ``down`` stops it by the PID it recorded. Both are idempotent.
``seed`` is the object store's init step on any S3 server (buckets, identities, raw uploads; the
compose init container runs it against MinIO). This module composes the server
(:mod:`infra.stack.weed`) and the seed (:mod:`infra.stack.seed`), which do not import each other.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

from infra.stack.weed import WeedServer, apply_identities
from jobs.errors import PipelineError, exit_code
from jobs.settings import Settings, load_settings


# -- commands -------------------------------------------------------------------------------
def up(settings: Settings, *, seed: bool = True, scale: float = 1.0, days: int = 30) -> None:
    from infra.stack.seed import SeedOptions, seed_lake

    server = WeedServer.from_settings(settings)
    was_running = server.pid() is not None
    if was_running:
        reloaded = server.apply_identities(settings)
        print(f"weed already running (pid {server.pid()})"
              + ("; identities reloaded" if reloaded else ""))
    else:
        started = time.perf_counter()
        pid = server.start(settings)
        print(f"started weed mini (pid {pid}), data in {server.directory / 'data'}")
        server.wait_ready(settings)
        print(f"S3 answers after {time.perf_counter() - started:.1f}s")
    report = seed_lake(settings, SeedOptions(generate=seed, scale=scale, gen_days=days,
                                             upload=seed), identities=apply_identities)
    print(report.describe())
    _print_info(settings, server)


def _print_info(settings: Settings, server: WeedServer) -> None:
    s = settings
    print()
    print("Local object store (SeaweedFS) is up:")
    print(f"  S3 endpoint     {server.endpoint}   (AWS_ENDPOINT_URL, path-style, plain http)")
    print(f"  file browser    {server.filer_url}/buckets/")
    print(f"  pipeline keys   AWS_ACCESS_KEY_ID={s.aws_access_key_id}  (read raw; read/write "
          "bronze, silver, gold)")
    print(f"  analyst keys    ANALYST_ACCESS_KEY_ID={s.analyst_access_key_id}  (read gold only)")
    print(f"  admin keys      ADMIN_ACCESS_KEY_ID={s.admin_access_key_id}")
    print("  secrets         in the env file (LAKEHOUSE_ENV_FILE); dev defaults only")
    print("  in a shell      set -a; . envs/stack.env; set +a   (then aws, duckdb, python -m jobs)")
    print(f"  lake            raw={s.lake_raw} bronze={s.lake_bronze} silver={s.lake_silver} "
          f"gold={s.lake_gold}")
    print(f"  logs, pid       {server.log_path}, {server.pid_path}")
    print("Next: make run-s3   ·   make stack-down")


def down(settings: Settings) -> None:
    server = WeedServer.from_settings(settings)
    pid = server.pid()
    if server.stop():
        print(f"stopped weed (pid {pid}); data kept in {server.directory / 'data'}")
    else:
        print("the local stack is not running")


def status(settings: Settings) -> int:
    server = WeedServer.from_settings(settings)
    pid = server.pid()
    print(json.dumps({"running": pid is not None, "pid": pid, "endpoint": server.endpoint,
                      "file_browser": server.filer_url}))
    return 0 if pid else 1


def seed(settings: Settings, args: argparse.Namespace) -> None:
    from infra.stack.seed import SeedOptions, run_seed

    print(run_seed(settings, SeedOptions(
        source=args.source, generate=args.generate, scale=args.scale, seed=args.seed,
        start=args.start, gen_days=args.gen_days, days=args.days,
        identities=not args.no_identities, upload=not args.buckets_only),
        identities=apply_identities).describe())


# -- command line ---------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", help="env file (default: LAKEHOUSE_ENV_FILE)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")

    parser = argparse.ArgumentParser(prog="python -m infra.stack",
                                     description="Local SeaweedFS object store (no Docker) and "
                                                 "the object store's init step (seed).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = sub.add_parser("up", parents=[common],
                           help="start weed mini, buckets + identities, seed scale-1 raw data")
    start.add_argument("--no-seed", action="store_true", help="do not upload raw data")
    start.add_argument("--scale", type=float, default=1.0, help="scale of the seeded data")
    start.add_argument("--days", type=int, default=30, help="days of seeded data")
    sub.add_parser("down", parents=[common], help="stop weed by its PID (data kept)")
    sub.add_parser("status", parents=[common], help="is weed running? (JSON; exit 1 if not)")

    # The options `python -m jobs seed` had (the pipeline's common ones included).
    seeding = sub.add_parser("seed", parents=[common],
                             help="create buckets and identities, upload raw files to LAKE_RAW")
    seeding.add_argument("--log-json", action="store_true", help="JSON-lines logs on stderr")
    seeding.add_argument("--lookback-mode", choices=["calendar", "rolling"])
    seeding.add_argument("--lookback-weeks", type=int, metavar="N")
    seeding.add_argument("--engine", choices=["local", "dask"])
    seeding.add_argument("--scheduler", metavar="ADDRESS")
    seeding.add_argument("--from", dest="source", type=Path, metavar="DIR",
                         help="local raw directory to upload (<source>/... like LAKE_RAW)")
    seeding.add_argument("--generate", action="store_true",
                         help="generate the raw files first (cached under STACK_DIR/cache)")
    seeding.add_argument("--scale", type=float, default=1.0, help="with --generate")
    seeding.add_argument("--seed", type=int, default=42, help="with --generate")
    seeding.add_argument("--start", type=date.fromisoformat, default=date(2020, 11, 1))
    seeding.add_argument("--gen-days", type=int, default=30,
                         help="days generated for a full seed")
    seeding.add_argument("--days", type=int, metavar="K",
                         help="trickle: upload only the next K days not yet in the bucket")
    seeding.add_argument("--no-identities", action="store_true", help="leave identities alone")
    seeding.add_argument("--buckets-only", action="store_true", help="upload nothing")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    if args.env_file:
        if not Path(args.env_file).is_file():
            raise PipelineError(f"env file {args.env_file} not found")
        os.environ["LAKEHOUSE_ENV_FILE"] = args.env_file
    return load_settings(lookback_mode=getattr(args, "lookback_mode", None),
                         lookback_weeks=getattr(args, "lookback_weeks", None),
                         engine=getattr(args, "engine", None),
                         dask_scheduler=getattr(args, "scheduler", None))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command == "up":
            up(settings, seed=not args.no_seed, scale=args.scale, days=args.days)
        elif args.command == "down":
            down(settings)
        elif args.command == "status":
            return status(settings)
        else:
            from jobs import logs

            logs.configure(fmt="json" if args.log_json else settings.log_format,
                           level="DEBUG" if args.debug else settings.log_level)
            seed(settings, args)
    except PipelineError as exc:
        return exit_code(exc, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
