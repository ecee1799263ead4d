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

from jobs.options import ENGINES, LOOKBACK_MODES


def parser() -> argparse.ArgumentParser:
    """Every command with its options (:data:`jobs.cli.COMMANDS` has their handlers)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", help="env file with settings (default envs/local.env)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    common.add_argument("--log-json", action="store_true", help="JSON-lines logs on stderr")
    # Options of the gold features: only the commands that build gold take them.
    features = argparse.ArgumentParser(add_help=False)
    features.add_argument("--lookback-mode", choices=LOOKBACK_MODES, help="lookback windows (LOOKBACK_MODE)")
    features.add_argument("--lookback-weeks", metavar="N", help="weeks each lookback covers (LOOKBACK_WEEKS)")
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

    invoked = os.path.basename(sys.argv[0])
    top = argparse.ArgumentParser(
        prog="lakehouse" if invoked == "lakehouse" else "python -m jobs",
        description="Value-prop lakehouse: raw → bronze → silver → gold.",
        epilog="exit codes: 0 done; 1 a bug (traceback); 2 usage or settings; 3 storage; 4 data "
        "(a quality gate held a commit); 5 another run holds the lake lease; 6 this run "
        "lost the lease; 7 done, with raw files rejected whole; 8 a table is damaged (python -m jobs doctor)",
        parents=[common],
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
    return top
