"""``python -m jobs``: the command-line entry point."""

from jobs.cli import main

raise SystemExit(main())
