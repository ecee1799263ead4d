"""``python -m jobs <command>``: run the pipeline or one stage, query the lake.

Each command is a handler (:data:`COMMANDS`) given its arguments (parsed by
:mod:`jobs.cli.args`) and the run's context; the run options are validated by
:class:`jobs.options.RunOptions`, and :mod:`jobs.cli.output` prints. User-facing failures (bad
settings, unreachable storage, bad data) print one line saying what to check and exit non-zero;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.cli.args import parse
from jobs.errors import EXIT_REJECTED_INPUT, PipelineError, exit_code
from jobs.options import RunOptions

if TYPE_CHECKING:
    from jobs.pipeline import Progress
    from jobs.run import RunContext
    from jobs.summary import StageResult

log = logging.getLogger("jobs")


def _settings(args: argparse.Namespace) -> Any:
    """The settings of this command: the environment's (``--env-file``), its run options and
    the operator's ``--release``/``--reject`` winning."""
    if args.env_file:
        if not Path(args.env_file).is_file():
            raise PipelineError(f"env file {args.env_file} not found")
        os.environ["LAKEHOUSE_ENV_FILE"] = args.env_file
    from jobs.settings import load_settings

    options = RunOptions.from_args(args)
    overrides = {**options.overrides, "metrics_file": getattr(args, "metrics_file", None)}
    settings = load_settings(**overrides)
    releases, rejects = getattr(args, "release", None) or [], getattr(args, "reject", None) or []
    if not releases and not rejects:
        return settings
    for check in releases:
        log.warning("released by the operator for this run: quality check %s counts as a warning", check)
    severity = {**settings.quality_severity, **dict.fromkeys(releases, "warning")}
    reject = {**settings.raw_reject, **dict(r.split("=", 1) if "=" in r else (r, "") for r in rejects)}
    return load_settings(**overrides, quality_severity=severity, raw_reject=reject)


def _raw_is_empty(ctx: Any) -> bool:
    from jobs.raw.files import list_raw_files
    from jobs.schemas import SOURCES

    return not any(list_raw_files(ctx.storage, ctx.settings.lake_raw, s) for s in SOURCES)


def _check_credentials(ctx: Any) -> None:
    """No keys or a missing profile is one line before any work, not a failure mid-stage."""
    if ctx.storage.uses_s3:
        ctx.storage.credentials()


# Commands that judge a missing lake themselves (jobs.query: a location without a lake).
OWN_LAKE_CHECK = ("query", "duckdb-init", "describe")


def _require_lake(command: str, settings: Any) -> None:
    """A local lake location that does not exist is one line naming it (exit 2), before any
    work: no command creates a lake where there was none (a wrong env file or working
    directory). ``run``/``bronze`` need ``LAKE_RAW``; the others the lake itself (``LAKE_BRONZE``,
    where the lease lives), which the first run creates."""
    from jobs.errors import ConfigError
    from jobs.storage import is_remote

    if command in OWN_LAKE_CHECK:
        return
    name, where = (
        ("LAKE_RAW", settings.lake_raw)
        if command in ("run", "plan", "bronze")
        else ("LAKE_BRONZE", settings.lake_bronze)
    )
    if is_remote(where) or Path(where).is_dir():
        return
    then = (
        "or generate raw files there with `make generate` (python -m infra.generator)"
        if name == "LAKE_RAW"
        else "or run the pipeline first (python -m jobs run)"
    )
    raise ConfigError(
        f"no lake at {where} ({name} does not exist): check --env-file/LAKEHOUSE_ENV_FILE (a "
        f"relative location in an env file is resolved against the env file's folder), {then}"
    )


Handler = Callable[[argparse.Namespace, "RunContext"], int]
"""One command: its arguments and the run's context (credentials checked) → its exit code."""


def _lease(args: argparse.Namespace, ctx: RunContext) -> int:
    from jobs.lease import describe_state
    from jobs.pipeline import break_lease

    if args.action == "break":
        broken = break_lease(ctx)
        print(
            f"lease broken: run {broken} can commit nothing more (every table fenced)"
            if broken
            else "nobody held the lease"
        )
    else:
        print(describe_state(ctx.storage))
    return 0


def _maintain(args: argparse.Namespace, ctx: RunContext) -> int:
    from jobs.maintain import maintain

    done = maintain(ctx, tables=args.tables)
    if args.format == "json":
        sys.stdout.write(done.to_json() + "\n")
    else:
        from jobs.cli.output import print_maintenance

        print_maintenance(done)
    return 0


def _doctor(args: argparse.Namespace, ctx: RunContext) -> int:
    from jobs.doctor import diagnose, repair
    from jobs.errors import TableDamaged

    report = repair(ctx) if args.repair else diagnose(ctx)
    print(report.to_json() if args.format == "json" else "\n".join(report.lines()))
    return 0 if report.healthy else TableDamaged.exit_code


def _freshness(args: argparse.Namespace, ctx: RunContext) -> int:
    """How old each layer's newest data and last commit that changed rows are (exit 9: stale)."""
    from jobs.errors import ConfigError
    from jobs.freshness import EXIT_STALE, check
    from jobs.settings.durations import parse_duration

    given = args.max_age or ctx.settings.freshness_max_age
    try:
        max_age = parse_duration(given)
    except ValueError as exc:
        raise ConfigError(f"--max-age: {exc}") from None
    found = check(ctx, max_age)
    print(found.to_json() if args.format == "json" else "\n".join(found.lines()))
    return EXIT_STALE if found.stale else 0


def _as_identity(args: argparse.Namespace, ctx: RunContext) -> RunContext:
    """The run's context with the keys of ``--identity`` (analyst or pipeline)."""
    from jobs.run import RunContext

    return RunContext(ctx.storage.for_identity(args.identity).settings, run_id=ctx.run_id)


def _duckdb_init(args: argparse.Namespace, ctx: RunContext) -> int:
    from jobs.query import init_sql

    out = args.out
    ctx = _as_identity(args, ctx)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(init_sql(ctx))
    print(
        f"wrote {out}; start DuckDB with only the analyst's keys exported as "
        f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (make duckdb does): duckdb -init {out}"
    )
    return 0


def _query(args: argparse.Namespace, ctx: RunContext) -> int:
    from jobs.query import csv_text, run_query

    ctx = _as_identity(args, ctx)
    _check_credentials(ctx)
    frame = run_query(ctx, args.sql)
    if args.format == "csv":
        sys.stdout.write(csv_text(frame))
    elif args.format == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        import polars as pl

        shown = 50
        with pl.Config(tbl_rows=shown, tbl_cols=20, tbl_width_chars=160, tbl_hide_dataframe_shape=True):
            print(frame)
        if frame.height > shown:
            print(f"showing {shown} of {frame.height} rows (--format csv prints them all)")
    return 0


def _describe(args: argparse.Namespace, ctx: RunContext) -> int:
    from jobs.dictionary import describe

    lookback = {"mode": ctx.settings.lookback_mode, "weeks": ctx.settings.lookback_weeks}
    sys.stdout.write(describe(args.table, args.format, lookback=lookback))
    return 0


def _features(args: argparse.Namespace, ctx: RunContext) -> int:
    """Point-in-time features for a label file (:mod:`jobs.gold.labels`)."""
    from jobs.gold import label_io as labels

    settings = ctx.settings
    mode, weeks = settings.lookback_mode, settings.lookback_weeks
    if args.known_at is not None:
        moment = labels.parse_moment(args.known_at)
        versions = labels.versions_known_at(ctx.lake, settings.lake_silver, moment)
        source = f"silver as known at {moment.isoformat()}"
    elif args.version is not None:
        build = labels.versions_of_gold(ctx.lake, ctx.gold("print_features"), args.version)
        versions = build["silver_versions"]
        # gold's own lookback unless the command names one
        mode = args.lookback_mode or build["lookback_mode"] or mode
        weeks = args.lookback_weeks or build["lookback_weeks"] or weeks
        source = f"the silver versions gold version {args.version} was built from"
    else:
        versions = labels.versions_now(ctx.lake, settings.lake_silver)
        source = "silver now"
    done = labels.write_label_features(
        ctx, args.labels, args.out, mode=mode, windows=labels.windows_of(weeks), versions=versions
    )
    shown = ", ".join(f"{s} v{v}" for s, v in done.versions.items())
    print(
        f"wrote {done.rows} label row(s) with features to {done.out} ({done.mode}, "
        f"{'/'.join(map(str, done.windows))} week(s); {source}: {shown}; {done.buckets} bucket(s))"
    )
    return 0


def _plan(args: argparse.Namespace, ctx: RunContext) -> int:
    """What ``run`` would do with these options (:func:`jobs.plan.plan_run`), writing nothing."""
    from jobs.plan import plan_run

    options = RunOptions.from_args(args)
    plan = plan_run(ctx, rebuild=list(options.rebuild) or None, full=options.full)
    print(plan.to_json() if args.format == "json" else "\n".join(plan.lines()))
    return 0


def _run(args: argparse.Namespace, ctx: RunContext) -> int:
    """Every stage in order, as one run holding the lake lease (:func:`jobs.pipeline.run_all`)."""
    from jobs.pipeline import run_all

    if args.plan:
        return _plan(args, ctx)
    if _raw_is_empty(ctx):
        from jobs.storage import is_remote

        if is_remote(ctx.settings.lake_raw):
            raise PipelineError(
                f"no raw files under {ctx.settings.lake_raw}: seed them first (python -m infra.stack seed)"
            )
        raise PipelineError(
            f"no raw files under {ctx.settings.lake_raw}: generate some with "
            "`make generate` (python -m infra.generator) or land files there"
        )
    options = RunOptions.from_args(args)
    rebuild = list(options.rebuild) or None
    return _stages(
        args, ctx, lambda progress: run_all(ctx, progress=progress, rebuild=rebuild, full=options.full)
    )


def _stage(args: argparse.Namespace, ctx: RunContext) -> int:
    """One stage (``args.command``), holding the lake lease (:func:`jobs.pipeline.run_stage`)."""
    from jobs.pipeline import run_stage

    options = RunOptions.from_args(args)  # only gold takes --weeks and --full
    rebuild = list(options.rebuild) or None
    return _stages(
        args,
        ctx,
        lambda progress: [
            run_stage(ctx, args.command, progress=progress, rebuild=rebuild, full=options.full)
        ],
    )


def _stages(
    args: argparse.Namespace, ctx: RunContext, run: Callable[[Progress | None], list[StageResult]]
) -> int:
    """Run stages with a spinner on a terminal, then print their summary; the exit code."""
    from jobs.cli.output import print_stages, progress

    started = time.perf_counter()
    with progress(sys.stderr.isatty() and not args.log_json) as shown:
        results = run(shown)
    seconds = time.perf_counter() - started
    as_json = getattr(args, "format", "table") == "json"
    print_stages(results, run_id=ctx.run_id, seconds=seconds, as_json=as_json)
    return exit_status(results)


def exit_status(results: list[StageResult]) -> int:
    """The exit code of stages that completed: 7 if they rejected raw files whole, else 0."""
    return EXIT_REJECTED_INPUT if any(r.rejected for r in results) else 0


COMMANDS: dict[str, Handler] = {
    "run": _run,
    "plan": _plan,
    "bronze": _stage,
    "silver": _stage,
    "gold": _stage,
    "export": _stage,
    "maintain": _maintain,
    "doctor": _doctor,
    "freshness": _freshness,
    "duckdb-init": _duckdb_init,
    "lease": _lease,
    "query": _query,
    "describe": _describe,
    "features": _features,
}
"""Every command of the parser and its handler."""

# Commands that check credentials themselves, with the keys of their --identity.
OWN_CREDENTIALS = ("duckdb-init", "query", "describe")  # describe reads no table


def _execute(args: argparse.Namespace) -> int:
    from jobs import logs
    from jobs.logs import stop_process
    from jobs.run import RunContext

    settings = _settings(args)
    logs.configure(
        fmt="json" if args.log_json else settings.log_format,
        level="DEBUG" if args.debug else settings.log_level,
    )
    _require_lake(args.command, settings)
    ctx = RunContext(settings, on_store_unreachable=stop_process)
    logs.run_id_var.set(ctx.run_id)
    if args.command not in OWN_CREDENTIALS:
        _check_credentials(ctx)
    return COMMANDS[args.command](args, ctx)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from jobs.logs import store_panics_filtered

    # --debug shows everything, object_store's panic text included (see jobs.logs).
    with store_panics_filtered(enabled=not args.debug):
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        return _execute(args)
    except PipelineError as exc:
        return exit_code(exc, debug=args.debug)
    except KeyboardInterrupt:
        print("interrupted: no partial table version was committed", file=sys.stderr)
        return 130
    except Exception as exc:
        # An object-store failure that escaped a stage unclassified (cleanup code, polars,
        # DuckDB) is still one line; any other exception is a bug and keeps its traceback.
        failure = _storage_failure(args, exc)
        if failure is None:
            raise
        return exit_code(failure, debug=args.debug)


def _storage_failure(args: argparse.Namespace, exc: BaseException) -> PipelineError | None:
    from jobs.storage import Storage
    from jobs.storage.errors import storage_failure

    try:
        settings = _settings(args)
    except Exception:  # the settings loaded before the failure; if not, keep the traceback
        return None
    return storage_failure(exc, storage=Storage(settings))
