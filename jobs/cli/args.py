"""The ``python -m jobs`` command line: its commands, their options and help texts.

Only the grammar: the run options stay strings here and :class:`jobs.options.RunOptions` parses
and validates them (as it does an orchestrator's parameters); :mod:`jobs.cli` runs the commands
and :mod:`jobs.cli.output` prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from jobs.options import ENGINES, LOOKBACK_MODES

# The options every command takes, before or after the command's name (``--env-file X run`` is
# ``run --env-file X``). Given after it they land in ``after_<name>`` (:func:`parse` merges them):
# argparse would otherwise let the command's own defaults overwrite what came before it.
GLOBAL_OPTIONS = ("env_file", "debug", "log_json")


def _global_options(after: bool) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    dest = "after_{}".format if after else "{}".format
    extra: dict[str, Any] = {"default": argparse.SUPPRESS} if after else {}
    common.add_argument(
        "--env-file",
        dest=dest("env_file"),
        help="env file with settings (default: the project's envs/local.env; relative lake "
        "locations in it are resolved against the env file's folder)",
        **extra,
    )
    common.add_argument("--debug", dest=dest("debug"), action="store_true", help="show tracebacks", **extra)
    common.add_argument(
        "--log-json",
        dest=dest("log_json"),
        action="store_true",
        help="JSON-lines logs on stderr",
        **extra,
    )
    return common


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line parsed, the global options merged whichever side of the command they
    were given on; the same ``--env-file`` given twice with different files is one line, exit 2."""
    top = parser()
    args = top.parse_args(argv)
    for name in GLOBAL_OPTIONS:
        after = vars(args).pop(f"after_{name}", None)
        before = getattr(args, name)
        if name != "env_file":
            setattr(args, name, bool(before or after))
        elif after is not None and before is not None and Path(before).resolve() != Path(after).resolve():
            sys.stderr.write(
                f"error: --env-file given twice with different files ({before} before the command, "
                f"{after} after it): give it once\n"
            )
            raise SystemExit(2)
        elif after is not None:
            args.env_file = after
    return args


def parser() -> argparse.ArgumentParser:
    """Every command with its options (:data:`jobs.cli.COMMANDS` has their handlers); use
    :func:`parse` to read a command line (it merges the global options)."""
    common = _global_options(after=True)
    # Options of the gold features: only the commands that build gold take them.
    features = argparse.ArgumentParser(add_help=False)
    features.add_argument("--lookback-mode", choices=LOOKBACK_MODES, help="lookback windows (LOOKBACK_MODE)")
    features.add_argument(
        "--lookback-weeks",
        metavar="N[,N...]",
        help="weeks each lookback covers: one window, or several (3,1,4: the first gives prior_*, "
        "the others prior_*_<N>w) (LOOKBACK_WEEKS)",
    )
    # The engine of the stages that can run on a Dask cluster (bronze, silver, gold).
    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument(
        "--engine",
        choices=ENGINES,
        help="engine of bronze, silver and gold: this process (default) or a Dask cluster",
    )
    engine.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: a local 2-worker cluster)",
    )

    from jobs import __version__
    from jobs.cli.exits import epilog  # not at import: `python -m jobs.cli.exits` runs it

    invoked = os.path.basename(sys.argv[0])
    top = argparse.ArgumentParser(
        prog="lakehouse" if invoked == "lakehouse" else "python -m jobs",
        description="Value-prop lakehouse: raw → bronze → silver → gold.",
        epilog=epilog(),
        parents=[_global_options(after=False)],
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    metrics = argparse.ArgumentParser(add_help=False)
    metrics.add_argument(
        "--metrics-file",
        metavar="PATH",
        help="write the run's figures there in Prometheus text format, replaced atomically "
        "(node_exporter's textfile collector; METRICS_FILE)",
    )

    weeks = argparse.ArgumentParser(add_help=False)
    weeks.add_argument(
        "--weeks",
        nargs="+",
        metavar="YYYY-MM-DD",
        help="also rebuild these weeks of gold (any day of the week)",
    )
    weeks.add_argument("--full", action="store_true", help="rebuild every week of gold")

    def stage(name: str, parents: list[argparse.ArgumentParser], text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=parents, help=text, description=text[0].upper() + text[1:] + ".")

    run = stage(
        "run",
        [common, features, engine, weeks, held, metrics],
        "run every stage in order (bronze, silver, gold, export), skipping those with nothing new",
    )
    run.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="run summary as a table (default) or one JSON object on stdout",
    )
    run.add_argument(
        "--plan",
        action="store_true",
        help="print what the run would do (as the plan command) and write nothing",
    )
    plan = stage(
        "plan",
        [common, features, engine, weeks, held],
        "what the next run would do (files per source, silver days, gold weeks and why, "
        "maintenance), computed by the run's own code, writing nothing",
    )
    plan.add_argument("--format", choices=["table", "json"], default="table")
    stage(
        "bronze",
        [common, engine, held, metrics],
        "take in new and corrected raw files as landed: every line in bronze or in quarantine "
        "with its reason, each file once",
    )
    stage(
        "silver",
        [common, engine, held, metrics],
        "rebuild the silver days whose bronze rows changed: clean, typed, one row per event",
    )
    stage(
        "gold",
        [common, features, engine, weeks, held, metrics],
        "rebuild the affected weeks of the gold feature table (click flag and lookback aggregates)",
    )
    stage("export", [common, metrics], "write gold as final.parquet/final.csv (LAKE_EXPORT)")
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

    fresh = stage(
        "freshness",
        [common],
        "how old each layer's newest data and last commit that changed rows are; exit 9 when "
        "one is older than --max-age (for a monitor or an Airflow check)",
    )
    fresh.add_argument(
        "--max-age",
        metavar="DURATION",
        help="e.g. 30m, 26h, 2d, 1w (default FRESHNESS_MAX_AGE, 26h)",
    )
    fresh.add_argument("--format", choices=["table", "json"], default="table")

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

    feats = stage(
        "features",
        [common, features],
        "point-in-time gold features for your own label rows (user_id, value_prop, day + any "
        "columns): each row gets what a print on its day gets in gold",
    )
    feats.add_argument(
        "--labels", required=True, metavar="FILE", help="label file: .parquet or .csv, local or s3://"
    )
    feats.add_argument(
        "--out", required=True, metavar="FILE", help="output: .parquet or .csv, local or s3://"
    )
    when = feats.add_mutually_exclusive_group()
    when.add_argument(
        "--known-at",
        metavar="TIMESTAMP",
        help="compute from silver as it was known at this moment (ISO, UTC if no zone): "
        "each silver table's newest version committed by then; no late data leaks in",
    )
    when.add_argument(
        "--version",
        type=int,
        metavar="N",
        help="compute from the silver versions gold version N was built from (and, unless "
        "given, with its lookback): the rows equal what gold N gives a print on that day",
    )

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
    describe = stage(
        "describe",
        [common],
        "the data dictionary: tables, columns, types, descriptions, partitioning and gold's feature "
        "definitions (what every Delta table and DuckDB view carries)",
    )
    describe.add_argument("table", nargs="?", help="one table as query names it, e.g. gold.print_features")
    describe.add_argument("--format", choices=["markdown", "json"], default="markdown")
    return top
