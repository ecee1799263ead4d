"""``python -m jobs <command>``: run the pipeline or one stage, query the lake.

User-facing failures (bad settings, unreachable storage, bad data) print one line saying what
to check and exit non-zero; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import EXIT_REJECTED_INPUT, PipelineError, exit_code

if TYPE_CHECKING:
    from jobs.pipeline import Progress
    from jobs.run import RunContext
    from jobs.summary import StageResult

log = logging.getLogger("jobs")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", help="env file with settings (default envs/local.env)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    common.add_argument("--log-json", action="store_true", help="JSON-lines logs on stderr")
    # Options of the gold features: only the commands that build gold take them.
    features = argparse.ArgumentParser(add_help=False)
    features.add_argument(
        "--lookback-mode", choices=["calendar", "rolling"], help="lookback windows (LOOKBACK_MODE)"
    )
    features.add_argument(
        "--lookback-weeks", type=int, metavar="N", help="weeks each lookback covers (LOOKBACK_WEEKS)"
    )
    # The engine of the stages that can run on a Dask cluster (bronze, silver, gold).
    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument(
        "--engine",
        choices=["local", "dask"],
        help="engine of bronze, silver and gold: this process (default) or a Dask cluster",
    )
    engine.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: a local 2-worker cluster)",
    )

    from jobs import __version__

    invoked = os.path.basename(sys.argv[0])
    parser = argparse.ArgumentParser(
        prog="lakehouse" if invoked == "lakehouse" else "python -m jobs",
        description="Value-prop lakehouse: raw → bronze → silver → gold.",
        epilog="exit codes: 0 done; 1 a bug (traceback); 2 usage or settings; 3 storage; 4 data "
        "(a quality gate held a commit); 5 another run holds the lake lease; 6 this run "
        "lost the lease; 7 done, with raw files rejected whole; 8 a table is damaged (python -m jobs doctor)",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    held = argparse.ArgumentParser(add_help=False)
    held.add_argument(
        "--release",
        action="append",
        metavar="CHECK",
        help="a held batch's way forward: this quality check counts as a warning for this "
        "run only (recorded as such in the history); repeatable",
    )
    held.add_argument(
        "--reject",
        action="append",
        metavar="PATH[=REASON]",
        help="reject this pending raw file whole (path relative to LAKE_RAW): every line "
        "into quarantine with the reason, the rest goes on; repeatable",
    )

    weeks = argparse.ArgumentParser(add_help=False)
    weeks.add_argument(
        "--weeks",
        type=date.fromisoformat,
        nargs="+",
        metavar="YYYY-MM-DD",
        help="also rebuild these weeks of gold (any day of the week)",
    )
    weeks.add_argument("--full", action="store_true", help="rebuild every week of gold")

    def stage(name: str, parents: list[argparse.ArgumentParser], text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=parents, help=text, description=text[0].upper() + text[1:] + ".")

    run = stage(
        "run",
        [common, features, engine, weeks, held],
        "run every stage in order (bronze, silver, gold, export), skipping those with nothing new",
    )
    run.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="run summary as a table (default) or one JSON object on stdout",
    )
    stage(
        "bronze",
        [common, engine, held],
        "take in new and corrected raw files as landed: every line in bronze or in quarantine "
        "with its reason, each file once",
    )
    stage(
        "silver",
        [common, engine, held],
        "rebuild the silver days whose bronze rows changed: clean, typed, one row per event",
    )
    stage(
        "gold",
        [common, features, engine, weeks, held],
        "rebuild the affected weeks of the gold feature table (click flag and lookback aggregates)",
    )
    stage("export", [common], "write gold as final.parquet/final.csv (LAKE_EXPORT)")
    maint = stage("maintain", [common], "compact, checkpoint and vacuum every table (MAINTAIN_* settings)")
    maint.add_argument("--format", choices=["table", "json"], default="table")
    maint.add_argument(
        "--tables",
        nargs="+",
        metavar="LAYER/NAME",
        help="only these tables, e.g. gold/print_features bronze/_manifest",
    )

    doctor = stage(
        "doctor",
        [common],
        "check every table's log, checkpoints, data files and lineage (exit 8 if something is "
        "wrong); --repair applies the safe fixes holding the lease",
    )
    doctor.add_argument("--repair", action="store_true", help="apply the safe fixes (holds the lake lease)")
    doctor.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="one line per finding (default) or one JSON object with the findings on stdout",
    )

    ddb = stage("duckdb-init", [common], "write a start-up file for the duckdb CLI (views over gold)")
    ddb.add_argument("--out", type=Path, default=Path("duckdb-init.sql"), help="default: %(default)s")
    ddb.add_argument(
        "--identity",
        choices=["analyst", "pipeline"],
        default="analyst",
        help="whose view of the lake the views are listed with (default analyst)",
    )

    lease = stage("lease", [common], "who holds the lake's write lease; break it if its holder is dead")
    lease.add_argument("action", choices=["status", "break"])

    q = stage("query", [common], "read-only SQL over the lake's Delta tables with DuckDB")
    q.add_argument("sql", help='e.g. "SELECT count(*) FROM gold.print_features"')
    q.add_argument("--format", choices=["table", "csv", "json"], default="table")
    q.add_argument(
        "--identity",
        choices=["analyst", "pipeline"],
        default="analyst",
        help="whose keys the query runs with (default analyst: reads gold only; its "
        "keys from ANALYST_*, else this process's own keys, e.g. the analyst's key file "
        "named by LAKEHOUSE_ENV_FILE). Either way only SELECT/EXPLAIN statements run",
    )
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from jobs.settings import load_settings

    if args.env_file:
        if not Path(args.env_file).is_file():
            raise PipelineError(f"env file {args.env_file} not found")
        os.environ["LAKEHOUSE_ENV_FILE"] = args.env_file
    chosen = {  # only the commands that take these options set them
        "lookback_mode": getattr(args, "lookback_mode", None),
        "lookback_weeks": getattr(args, "lookback_weeks", None),
        "engine": getattr(args, "engine", None),
        "dask_scheduler": getattr(args, "scheduler", None),
    }
    settings = load_settings(**chosen)
    releases, rejects = getattr(args, "release", None) or [], getattr(args, "reject", None) or []
    if not releases and not rejects:
        return settings
    for check in releases:
        log.warning("released by the operator for this run: quality check %s counts as a warning", check)
    severity = {**settings.quality_severity, **dict.fromkeys(releases, "warning")}
    reject = {**settings.raw_reject, **dict(r.split("=", 1) if "=" in r else (r, "") for r in rejects)}
    return load_settings(**chosen, quality_severity=severity, raw_reject=reject)


@contextmanager
def _progress(enabled: bool) -> Any:
    """A spinner with the current step on a terminal; plain silence otherwise."""
    if not enabled:
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("starting…") as status:
        yield lambda text: status.update(f"[bold]{text}")


def _print_summary(results: list[Any], ctx: Any, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run {ctx.run_id}", title_justify="left")
    for col in ("stage", "files", "rows in", "rows out", "quarantined", "seconds", "note"):
        table.add_column(col, justify="right" if col not in ("stage", "note") else "left")
    for r in results:
        note = "nothing new — no table version written" if r.skipped and not r.note else r.note
        table.add_row(
            r.stage,
            f"{r.files:,}",
            f"{r.rows_in:,}",
            f"{r.rows_out:,}",
            f"{r.quarantined:,}",
            f"{r.seconds:.2f}",
            note,
        )
    console = Console(width=max(Console().width, 130))
    console.print(table)
    for r in results:
        if r.stage == "bronze" and r.details:
            bad = [d for d in r.details if d.get("quarantined_rows")]
            if bad:
                console.print(f"{len(bad)} file(s) had quarantined lines; see bronze.quarantine:")
                for d in bad[:10]:
                    console.print(
                        f"  {d['path']}: {d['lines']:,} lines = {d['bronze_rows']:,} "
                        f"bronze + {d['quarantined_rows']:,} quarantined"
                    )
    from jobs.summary import drift_lines

    for line in drift_lines(results):  # fields the contract does not know, per source
        console.print(line, highlight=False, markup=False)
    from jobs.quality.report import summary_lines  # quality hook: reconciliation + report

    for line in summary_lines(results):
        console.print(line, highlight=False, markup=False)
    console.print(f"total {seconds:.1f}s")


def _print_maintenance(done: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"maintenance {done.run_id} (retention {done.retention_hours} h)", title_justify="left"
    )
    for col in (
        "table",
        "version",
        "live files",
        "stored files",
        "compacted",
        "vacuumed",
        "MB freed",
        "seconds",
    ):
        table.add_column(col, justify="left" if col == "table" else "right")
    for t in done.tables:
        if not t.exists:
            table.add_row(t.table, "no table yet", "", "", "", "", "", "")
            continue
        version = (
            f"{t.version_before}"
            if t.version_after == t.version_before
            else f"{t.version_before} → {t.version_after}"
        )
        table.add_row(
            t.table,
            version,
            f"{t.live_files_before:,} → {t.live_files_after:,}",
            f"{t.stored_files_before:,} → {t.stored_files_after:,}",
            f"{t.compacted_files_removed:,} → {t.compacted_files_added:,}"
            + (" (z-order)" if t.zordered else ""),
            f"{t.vacuumed_files:,}",
            f"{t.vacuumed_bytes / 1e6:.2f}",
            f"{t.seconds:.2f}",
        )
    console = Console(width=max(Console().width, 130))
    console.print(table)
    totals = done.totals()
    console.print(
        f"stored files {totals['stored_files_before']:,} → "
        f"{totals['stored_files_after']:,}; total {done.seconds:.1f}s"
    )


def _raw_is_empty(ctx: Any) -> bool:
    from jobs.raw.files import list_raw_files
    from jobs.schemas import SOURCES

    return not any(list_raw_files(ctx.storage, ctx.settings.lake_raw, s) for s in SOURCES)


def _check_credentials(ctx: Any) -> None:
    """No keys or a missing profile is one line before any work, not a failure mid-stage."""
    if ctx.storage.uses_s3:
        ctx.storage.credentials()


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
        _print_maintenance(done)
    return 0


def _doctor(args: argparse.Namespace, ctx: RunContext) -> int:
    from jobs.doctor import diagnose, repair
    from jobs.errors import TableDamaged

    report = repair(ctx) if args.repair else diagnose(ctx)
    print(report.to_json() if args.format == "json" else "\n".join(report.lines()))
    return 0 if report.healthy else TableDamaged.exit_code


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
    from jobs.query import run_query

    ctx = _as_identity(args, ctx)
    _check_credentials(ctx)
    frame = run_query(ctx, args.sql)
    if args.format == "csv":
        sys.stdout.write(frame.write_csv())
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


def _run(args: argparse.Namespace, ctx: RunContext) -> int:
    """Every stage in order, as one run holding the lake lease (:func:`jobs.pipeline.run_all`)."""
    from jobs.pipeline import run_all

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
    return _stages(
        args, ctx, lambda progress: run_all(ctx, progress=progress, rebuild=args.weeks, full=args.full)
    )


def _stage(args: argparse.Namespace, ctx: RunContext) -> int:
    """One stage (``args.command``), holding the lake lease (:func:`jobs.pipeline.run_stage`)."""
    from jobs.pipeline import run_stage

    extra = {"rebuild": args.weeks, "full": args.full} if args.command == "gold" else {}
    return _stages(args, ctx, lambda progress: [run_stage(ctx, args.command, progress=progress, **extra)])


def _stages(
    args: argparse.Namespace, ctx: RunContext, run: Callable[[Progress | None], list[StageResult]]
) -> int:
    """Run stages with a spinner on a terminal, then print their summary; the exit code."""
    started = time.perf_counter()
    with _progress(sys.stderr.isatty() and not args.log_json) as progress:
        results = run(progress)
    seconds = time.perf_counter() - started
    if getattr(args, "format", "table") == "json":
        print(
            json.dumps(
                {
                    "run_id": ctx.run_id,
                    "seconds": round(seconds, 3),
                    "stages": [r.as_dict() for r in results],
                },
                default=str,
            )
        )
    else:
        _print_summary(results, ctx, seconds)
    if rejected := [path for r in results for path in r.rejected]:
        print(
            f"completed with rejected input: {len(rejected)} raw file(s) rejected whole "
            f"({', '.join(rejected[:3])}{', …' if len(rejected) > 3 else ''}); their lines and "
            "reasons are in bronze.quarantine, and a corrected file is taken in by the next run",
            file=sys.stderr,
        )
    return exit_status(results)


def exit_status(results: list[StageResult]) -> int:
    """The exit code of stages that completed: 7 if they rejected raw files whole, else 0."""
    return EXIT_REJECTED_INPUT if any(r.rejected for r in results) else 0


COMMANDS: dict[str, Handler] = {
    "run": _run,
    "bronze": _stage,
    "silver": _stage,
    "gold": _stage,
    "export": _stage,
    "maintain": _maintain,
    "doctor": _doctor,
    "duckdb-init": _duckdb_init,
    "lease": _lease,
    "query": _query,
}
"""Every command of the parser and its handler."""

# Commands that check credentials themselves, with the keys of their --identity.
OWN_CREDENTIALS = ("duckdb-init", "query")


def _execute(args: argparse.Namespace) -> int:
    from jobs import logs
    from jobs.logs import stop_process
    from jobs.run import RunContext

    settings = _settings(args)
    logs.configure(
        fmt="json" if args.log_json else settings.log_format,
        level="DEBUG" if args.debug else settings.log_level,
    )
    ctx = RunContext(settings, on_store_unreachable=stop_process)
    logs.run_id_var.set(ctx.run_id)
    if args.command not in OWN_CREDENTIALS:
        _check_credentials(ctx)
    return COMMANDS[args.command](args, ctx)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
    from jobs.storage_errors import storage_failure

    try:
        settings = _settings(args)
    except Exception:  # the settings loaded before the failure; if not, keep the traceback
        return None
    return storage_failure(exc, storage=Storage(settings))
