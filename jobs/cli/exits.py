"""The exit codes of ``python -m jobs`` and what each means (the help's epilog lists them).

``python -m jobs.cli.exits N`` prints what code N means: the Makefile's targets name the
command's own exit code with it when the command fails (GNU make itself always exits 2).
"""

from __future__ import annotations

import sys

EXIT_CODES = {
    0: "done",
    1: "a bug (traceback)",
    2: "usage or settings",
    3: "storage",
    4: "data (a quality gate held a commit)",
    5: "another run holds the lake lease",
    6: "this run lost the lease",
    7: "done, with raw files rejected whole",
    8: "a table is damaged (python -m jobs doctor)",
    9: "stale: a layer changed no rows within the maximum age (python -m jobs freshness)",
    130: "interrupted",
}


def epilog() -> str:
    """The exit-code table of ``python -m jobs --help``."""
    return "exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items() if code < 100)


def meaning(code: int) -> str:
    return EXIT_CODES.get(code, "see python -m jobs --help")


if __name__ == "__main__":
    print(meaning(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else -1))
