"""``python -m infra.generator``: write synthetic raw files, by default into ``LAKE_RAW``.

``--if-empty`` generates only when the raw location has no raw files yet, so ``make run-local``
can seed a fresh clone and leave existing data alone. Errors a user can hit (a missing env file,
an invalid argument, a remote ``LAKE_RAW``) print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

from jobs.errors import ConfigError, PipelineError, exit_code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.generator", description="Write synthetic raw files (prints, taps, pays)."
    )
    parser.add_argument("--out", help="output directory (default: LAKE_RAW, local only)")
    parser.add_argument("--scale", type=float, default=1.0, help="1 ≈ the real data set")
    parser.add_argument(
        "--seed", type=int, default=42, help="random seed: same seed, same files (default 42)"
    )
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2020, 11, 1),
        metavar="YYYY-MM-DD",
        help="first day of data (default 2020-11-01)",
    )
    parser.add_argument("--days", type=int, default=30, help="how many days from --start (default 30)")
    parser.add_argument(
        "--layout",
        choices=["daily", "single"],
        default="daily",
        help="one file per source and day (default), or one file per source appended day by day",
    )
    parser.add_argument(
        "--bad-fraction",
        type=float,
        default=0.0,
        help="fraction of lines made deliberately bad, in [0, 1) (default 0)",
    )
    parser.add_argument(
        "--bad-lines",
        type=int,
        default=0,
        help="deliberately bad lines per source, spread over the files, each kind in turn (default 0)",
    )
    parser.add_argument(
        "--if-empty", action="store_true", help="generate only if the output has no raw files yet"
    )
    parser.add_argument("--env-file", help="env file with settings (default envs/local.env)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _has_raw_files(settings: object, out: str) -> bool:
    """Whether bronze would find raw files under ``out`` (the same listing rule)."""
    from jobs.raw.files import list_raw_files
    from jobs.schemas import SOURCES
    from jobs.storage import Storage

    storage = Storage(settings)  # type: ignore[arg-type]
    return any(list_raw_files(storage, out, source) for source in SOURCES)


def run(args: argparse.Namespace) -> None:
    from infra.generator.write import check_arguments, generate
    from jobs.settings import load_settings
    from jobs.storage import is_remote

    if args.env_file:
        if not Path(args.env_file).is_file():
            raise ConfigError(f"env file {args.env_file} not found")
        os.environ["LAKEHOUSE_ENV_FILE"] = args.env_file
    settings = load_settings()
    out = args.out or settings.lake_raw
    if is_remote(out):
        raise ConfigError("the generator writes local files; upload them with `python -m infra.stack seed`")
    out = str(Path(out).resolve())
    try:
        check_arguments(
            seed=args.seed,
            scale=args.scale,
            days=args.days,
            layout=args.layout,
            bad_fraction=args.bad_fraction,
            bad_lines=args.bad_lines,
        )
    except ValueError as exc:
        raise ConfigError(str(exc).replace("_", "-")) from exc
    if args.if_empty and _has_raw_files(settings, out):
        print(f"raw files already under {out}: nothing generated (--if-empty)")
        return
    started = time.perf_counter()
    res = generate(
        out_dir=out,
        seed=args.seed,
        scale=args.scale,
        start=args.start,
        days=args.days,
        layout=args.layout,
        bad_fraction=args.bad_fraction,
        bad_lines=args.bad_lines,
    )
    print(
        f"generated {len(res.files)} files in {out} in {time.perf_counter() - started:.1f}s: "
        + ", ".join(f"{s} {res.total(s):,} lines ({res.bad(s):,} bad)" for s in ("prints", "taps", "pays"))
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        run(args)
    except PipelineError as exc:
        return exit_code(exc, debug=args.debug)
    except KeyboardInterrupt:
        print("interrupted: a half-written file keeps its hidden .tmp name", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
