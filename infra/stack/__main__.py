"""``python -m infra.stack up|down|status|seed|identities|duckdb``: the local object store's commands.

``up`` (``make stack-up``) generates each identity's keys into ``STACK_DIR/keys/`` if missing
(owner-only), starts ``weed mini`` unless it runs, waits until it answers, starts the bucket
console (:mod:`infra.stack.console`), creates the buckets, seeds the scale-1 raw data and prints
what to open; ``down`` stops both by the PIDs they recorded.
Both are idempotent and neither changes live identities: ``identities apply`` does, showing
what changes. ``duckdb`` (``make duckdb``) starts the DuckDB shell with the analyst's keys only.
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

from infra.stack.console import Console, describe
from infra.stack.identities import seaweed_config
from infra.stack.keys import FIELDS, ensure_key_files, keys_dir, rotate_key_file, with_identity_keys
from infra.stack.settings import StackSettings, load_stack_settings
from infra.stack.weed import (
    WeedServer,
    apply_identities,
    check_identities,
    identity_changes,
)
from jobs.errors import ConfigError, PipelineError, exit_code

# Variables that may carry some identity's keys: never passed on to a process of another one.
SECRET_PREFIXES = ("AWS_", "ADMIN_", "ANALYST_", "PIPELINE_", "MINIO_", "WEED_", "LAKEHOUSE_ENV")


# -- commands -------------------------------------------------------------------------------
def up(settings: StackSettings, *, seed: bool = True, scale: float = 1.0, days: int = 30) -> None:
    from infra.stack.seed import SeedOptions, seed_lake

    server = WeedServer.from_settings(settings)
    missing = [name for name, (key, _) in FIELDS.items() if not getattr(settings, key)]
    made = ensure_key_files(settings) if missing else []
    if made:
        print(f"generated keys for {', '.join(made)} in {keys_dir(settings)} (owner-only)")
    settings = with_identity_keys(settings)
    if server.live_identities() is not None:
        check_identities(settings)  # changed keys: one line saying to run `identities apply`
    if server.pid() is not None:
        print(f"weed already running (pid {server.pid()}); identities unchanged")
    else:
        started = time.perf_counter()
        pid = server.start(settings)
        print(f"started weed mini (pid {pid}), data in {server.directory / 'data'}")
        server.wait_ready(settings)
        print(f"S3 answers after {time.perf_counter() - started:.1f}s")
    console = Console.of(server)
    if console.pid() is None:
        pid = console.start(settings)
        console.wait_ready()
        print(f"started the bucket console (pid {pid}) on {console.url}")
    write_endpoint_file(settings, server)
    report = seed_lake(
        settings,
        SeedOptions(generate=seed, scale=scale, gen_days=days, upload=seed),
        identities=check_identities,
    )
    print(report.describe())
    _print_info(settings, server)


def write_endpoint_file(settings: StackSettings, server: WeedServer) -> Path:
    """``<STACK_DIR>/endpoint.env``: this stack's S3 endpoint as the product reads it
    (``AWS_ENDPOINT_URL``, its port moved by STACK_PORT_OFFSET). The product's settings know
    nothing of the offset: a second stack's processes load this file after ``envs/stack.env``
    (``make run-s3 STACK_PORT_OFFSET=N`` does)."""
    from infra.stack.security import write_private

    path = server.directory / "endpoint.env"
    write_private(
        path, f"# Written by python -m infra.stack up\nAWS_ENDPOINT_URL={settings.aws_endpoint_url}\n"
    )
    return path


def _print_info(settings: StackSettings, server: WeedServer) -> None:
    s = settings
    keys = keys_dir(s)
    print()
    print("Local object store (SeaweedFS) is up:")
    print(
        f"  S3 endpoint     {server.endpoint}   (AWS_ENDPOINT_URL, path-style, plain http; "
        "the only open door: master/volume/filer/admin need weed's own TLS certificate)"
    )
    print(f"  console         {describe(Console.of(server), s)}")
    print(f"  pipeline        {s.aws_access_key_id}  (read raw; read/write bronze, silver, gold)")
    print(f"  analyst         {s.analyst_access_key_id}  (read gold only)")
    print(f"  admin           {s.admin_access_key_id}  (buckets, raw uploads)")
    print(f"  keys            one owner-only file per identity in {keys}/ (never in envs/)")
    env_file = _env_file_in_use()
    args = _make_args(env_file)
    # A second stack's endpoint (moved by the offset) is in its endpoint file, not in env_file.
    endpoint = f",{Path(s.stack_dir) / 'endpoint.env'}" if "STACK_PORT_OFFSET" in args else ""
    print(f"  as one identity LAKEHOUSE_ENV_FILE={env_file}{endpoint},{keys}/<identity>.env")
    print(f"  DuckDB shell    make duckdb{args}   (as the analyst: its keys only)")
    print(
        f"  lake            raw={s.lake_raw} bronze={s.lake_bronze} silver={s.lake_silver} gold={s.lake_gold}"
    )
    print(f"  logs, pid       {server.log_path}, {server.pid_path}")
    print(f"Next: make run-s3{args}   ·   make stack-down{args}")


def _env_file_in_use() -> str:
    """The env file these settings came from (the first of LAKEHOUSE_ENV_FILE), for hints."""
    return (os.environ.get("LAKEHOUSE_ENV_FILE") or "envs/stack.env").split(",")[0]


def _make_args(env_file: str) -> str:
    """What a hint's make command needs to reach this stack again (its env file, its offset)."""
    args = "" if env_file == "envs/stack.env" else f" STACK_ENV={env_file}"
    offset = os.environ.get("STACK_PORT_OFFSET", "0")
    return args + ("" if offset in ("", "0") else f" STACK_PORT_OFFSET={offset}")


def down(settings: StackSettings) -> None:
    server = WeedServer.from_settings(settings)
    console = Console.of(server)
    console_pid = console.pid()
    if console.stop():
        print(f"stopped the bucket console (pid {console_pid})")
    pid = server.pid()
    if server.stop():
        print(f"stopped weed (pid {pid}); data kept in {server.directory / 'data'}")
    else:
        print("the local stack is not running")


def status(settings: StackSettings) -> int:
    """One JSON line: is weed running, its S3 endpoint, the bucket console (URL, PID, where its
    logins are) and the make arguments that reach this stack again (env file, port offset)."""
    from infra.stack.keys import console_file

    server = WeedServer.from_settings(settings)
    console = Console.of(server)
    pid = server.pid()
    args = _make_args(_env_file_in_use()).strip()
    print(
        json.dumps(
            {
                "running": pid is not None,
                "pid": pid,
                "endpoint": server.endpoint,
                "console": console.url,
                "console_pid": console.pid(),
                "console_logins": str(console_file(settings)),
                "stack_dir": settings.stack_dir,
                "make_args": args,
            }
        )
    )
    return 0 if pid else 1


def seed(settings: StackSettings, args: argparse.Namespace) -> None:
    from infra.stack.seed import SeedOptions, run_seed

    print(
        run_seed(
            settings,
            SeedOptions(
                source=args.source,
                generate=args.generate,
                scale=args.scale,
                seed=args.seed,
                start=args.start,
                gen_days=args.gen_days,
                days=args.days,
                identities=not args.no_identities,
                upload=not args.buckets_only,
            ),
            identities=check_identities,
        ).describe()
    )


def identities(settings: StackSettings, args: argparse.Namespace) -> None:
    """``identities show|apply``: the one way identities change, saying what changes."""
    server = WeedServer.from_settings(settings)
    if args.action == "apply" and args.rotate:
        for name in args.rotate:
            rotate_key_file(settings, name)
        settings = with_identity_keys(_reload_without(settings, args.rotate))
    changes = identity_changes(server.live_identities(), seaweed_config(settings))
    if args.action == "show" or args.dry_run:
        print("\n".join(changes) if changes else f"identities up to date in {server.config_path}")
        return
    print(apply_identities(settings))


def _reload_without(settings: StackSettings, names: list[str]) -> StackSettings:
    """``settings`` with the keys of ``names`` cleared, so their key files are read again."""
    cleared = {field: None for name in names for field in FIELDS[name]}
    return type(settings)(_env_file=None, **(settings.model_dump() | cleared))  # type: ignore[call-arg]


def analyst_environment(settings: StackSettings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment ``make duckdb`` starts the DuckDB shell with: this shell's variables
    minus every credential variable, plus the analyst's keys and the endpoint. Nothing else."""
    from jobs.storage import Storage

    storage = Storage(with_identity_keys(settings, ("analyst",))).for_identity("analyst")
    if storage.identity != "analyst":
        raise ConfigError(
            f"no analyst keys: set ANALYST_ACCESS_KEY_ID/ANALYST_SECRET_ACCESS_KEY "
            f"or run make stack-up (it writes {keys_dir(settings)}/analyst.env)"
        )
    s = storage.settings
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.upper().startswith(SECRET_PREFIXES)
    }
    env |= {
        "AWS_ACCESS_KEY_ID": s.aws_access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": s.aws_secret_access_key.get_secret_value()
        if s.aws_secret_access_key
        else "",
        "AWS_REGION": storage.region,
    }
    if s.s3_endpoint_url:
        env["AWS_ENDPOINT_URL"] = s.s3_endpoint_url
    return env


def duckdb_shell(settings: StackSettings, args: argparse.Namespace) -> int:
    """Write the init file as the analyst, then exec ``duckdb -init`` with the analyst env."""
    from infra.stack.security import write_private
    from jobs.query import init_sql
    from jobs.run import RunContext
    from jobs.storage import Storage

    env = analyst_environment(settings)
    analyst = Storage(with_identity_keys(settings, ("analyst",))).for_identity("analyst").settings
    out = Path(settings.stack_dir) / "duckdb-init.sql"
    write_private(out, init_sql(RunContext(analyst)))
    binary = Path(sys.executable).parent / "duckdb"
    cmd = [str(binary) if binary.is_file() else "duckdb", "-init", str(out)]
    if args.print_env:
        print(" ".join(sorted(env)))
        print(" ".join(cmd))
        return 0
    os.execvpe(cmd[0], cmd, env)  # noqa: S606 - the analyst's shell, replacing this process
    return 0  # pragma: no cover


# -- command line ---------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", help="env file (default: LAKEHOUSE_ENV_FILE)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")

    parser = argparse.ArgumentParser(
        prog="python -m infra.stack",
        description="Local SeaweedFS object store (no Docker) and the object store's init step (seed).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = sub.add_parser(
        "up", parents=[common], help="start weed mini, buckets + identities, seed scale-1 raw data"
    )
    start.add_argument("--no-seed", action="store_true", help="do not upload raw data")
    start.add_argument("--scale", type=float, default=1.0, help="scale of the seeded data")
    start.add_argument("--days", type=int, default=30, help="days of seeded data")
    sub.add_parser("down", parents=[common], help="stop weed by its PID (data kept)")
    sub.add_parser("status", parents=[common], help="is weed running? (JSON; exit 1 if not)")

    # Seeding options only: the pipeline's (lookback, engine) belong to `python -m jobs`.
    seeding = sub.add_parser(
        "seed",
        parents=[common],
        help="create buckets and identities, upload raw files to LAKE_RAW",
        description="Create the buckets, check the identities and upload raw files to LAKE_RAW (admin).",
    )
    seeding.add_argument("--log-json", action="store_true", help="JSON-lines logs on stderr")
    seeding.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="DIR",
        help="local raw directory to upload (<source>/... like LAKE_RAW)",
    )
    seeding.add_argument(
        "--generate", action="store_true", help="generate the raw files first (cached under STACK_DIR/cache)"
    )
    seeding.add_argument("--scale", type=float, default=1.0, help="with --generate")
    seeding.add_argument("--seed", type=int, default=42, help="with --generate")
    seeding.add_argument("--start", type=date.fromisoformat, default=date(2020, 11, 1))
    seeding.add_argument("--gen-days", type=int, default=30, help="days generated for a full seed")
    seeding.add_argument(
        "--days", type=int, metavar="K", help="trickle: upload only the next K days not yet in the bucket"
    )
    seeding.add_argument(
        "--no-identities", action="store_true", help="skip the check that the keys match the live identities"
    )
    seeding.add_argument("--buckets-only", action="store_true", help="upload nothing")
    ident = sub.add_parser(
        "identities", parents=[common], help="show or apply identity changes (seeding never changes them)"
    )
    ident.add_argument("action", choices=["show", "apply"])
    ident.add_argument(
        "--rotate",
        nargs="+",
        choices=list(FIELDS),
        default=[],
        help="with apply: a new secret for these identities (their key files)",
    )
    ident.add_argument("--dry-run", action="store_true", help="with apply: only show")
    shell = sub.add_parser(
        "duckdb", parents=[common], help="the DuckDB shell over gold as the analyst (its keys only)"
    )
    shell.add_argument(
        "--print-env", action="store_true", help="print the variable names and command instead of starting it"
    )
    return parser


def _settings(args: argparse.Namespace) -> StackSettings:
    if args.env_file:
        if not Path(args.env_file).is_file():
            raise PipelineError(f"env file {args.env_file} not found")
        os.environ["LAKEHOUSE_ENV_FILE"] = args.env_file
    settings = load_stack_settings()
    # The admin-side tools see every identity's keys (explicit settings, else the key files);
    # the analyst shell is given only the analyst's.
    return settings if args.command in ("duckdb", "status", "down") else with_identity_keys(settings)


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
        elif args.command == "identities":
            identities(settings, args)
        elif args.command == "duckdb":
            return duckdb_shell(settings, args)
        else:
            from jobs import logs

            logs.configure(
                fmt="json" if args.log_json else settings.log_format,
                level="DEBUG" if args.debug else settings.log_level,
            )
            seed(settings, args)
    except PipelineError as exc:
        return exit_code(exc, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
