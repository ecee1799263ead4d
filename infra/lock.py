"""``make lock`` (``python -m infra.lock``): re-hash the pinned locks after a pin changed.

``requirements.txt`` and ``requirements-dev.txt`` pin every package (``name==version``) and,
since pip then checks what it downloads, carry each release's ``--hash=sha256:`` lines:
``make venv`` and the images install with ``--require-hashes``, after upgrading pip to the one
pinned in ``infra/requirements-pip.txt`` (the pip a fresh venv ships cannot read the lock). Edit a
version in place, then run this: it reads the pins (ignoring the old hashes), asks pip-tools'
``pip-compile --generate-hashes`` for the hashes of every file of those exact releases (all
platforms, so an arm64 image build passes too) and rewrites the three files, keeping their
comments.
pip-tools is not in the lock; this uses ``--pip-compile PATH`` or the one on PATH (e.g. in a
throw-away venv: ``python3 -m venv /tmp/lock && /tmp/lock/bin/pip install pip-tools``).
It is slow (~13 minutes for requirements.txt here: the index is asked about every file).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME, DEV = ROOT / "requirements.txt", ROOT / "requirements-dev.txt"
PIP = ROOT / "infra/requirements-pip.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    """``name==version`` of every pinned line (hash continuation lines ignored)."""
    return {m.group(1): m.group(2) for line in text.splitlines() if (m := PIN.match(line))}


def header(text: str) -> str:
    """The comment and option lines before the first pin (what this file says about itself)."""
    kept = []
    for line in text.splitlines():
        if PIN.match(line):
            break
        kept.append(line)
    return "\n".join(kept).rstrip("\n") + "\n"


def hashed_blocks(compiled: str) -> dict[str, str]:
    """pip-compile's output -> {normalised name: its ``name==version \\`` block with hashes}."""
    blocks: dict[str, str] = {}
    current = None
    for line in compiled.splitlines():
        if m := PIN.match(line):
            current = normalise(m.group(1))
            blocks[current] = line
        elif current and line.startswith("    --hash="):
            blocks[current] += "\n" + line
        elif not line.strip() or line.startswith("#"):
            current = None
    return blocks


def compile_hashes(
    pip_compile: str, requirements: dict[str, str], constraints: Path | None
) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "lock.in", Path(tmp) / "lock.txt"
        lines = [f"{n}=={v}" for n, v in requirements.items()]
        if constraints:
            lines.append(f"-c {constraints}")
        source.write_text("\n".join(lines) + "\n")
        command = [pip_compile, "--quiet", "--generate-hashes", "--allow-unsafe", "--no-header"]
        command += ["--no-annotate", "--strip-extras", "--no-emit-index-url", "--no-emit-find-links"]
        subprocess.run([*command, "-o", str(out), str(source)], check=True, timeout=3600)
        return hashed_blocks(out.read_text())


def render(text: str, blocks: dict[str, str], only: set[str] | None = None) -> str:
    """``text``'s header, then each pinned package's hashed block (sorted as pip-compile does)."""
    chosen = sorted((n, b) for n, b in blocks.items() if only is None or n in only)
    return header(text) + "".join(f"{b}\n" for _, b in chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.lock", description=__doc__)
    parser.add_argument("--pip-compile", default=shutil.which("pip-compile"), help="pip-compile to use")
    args = parser.parse_args(argv)
    if not args.pip_compile:
        print("lock: pip-compile not found (pip install pip-tools, or --pip-compile PATH)", file=sys.stderr)
        return 1
    runtime_text, dev_text = RUNTIME.read_text(), DEV.read_text()
    runtime = compile_hashes(args.pip_compile, pins(runtime_text), None)
    RUNTIME.write_text(render(runtime_text, runtime))
    dev_pins = pins(dev_text)
    dev = compile_hashes(args.pip_compile, dev_pins, RUNTIME)
    own = {normalise(n) for n in dev_pins} | (set(dev) - set(runtime))  # their new dependencies too
    DEV.write_text(render(dev_text, dev, own - set(runtime)))
    pip_text = PIP.read_text()
    PIP.write_text(render(pip_text, compile_hashes(args.pip_compile, pins(pip_text), None)))
    print(f"lock: {len(runtime)} runtime and {len(own - set(runtime))} dev packages hashed, and pip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
