"""``make audit`` (``python -m infra.audit``): dependency vulnerabilities, bandit rules, secrets.

1. **pip-audit** over ``requirements.txt`` (pinned). Its JSON report is read, not its summary:
   when every package was skipped (e.g. the package index answers 404 to its queries, or the
   vulnerability feed is unreachable) it still prints "No known vulnerabilities found". Here
   that is "NOT AUDITED", with the reason, and the audit fails; ``--feed-optional`` (CI: the feed
   is out of reach there) reports it and goes on. A vulnerability found always fails.
2. **ruff's ``S`` (bandit) rules** on ``jobs dags infra`` (also part of ``make lint``).
3. **A secret scan of the tracked tree** (``git ls-files``): private keys, AWS access key ids
   and ``*SECRET*``/``*PASSWORD*``/``*TOKEN*`` assignments whose value is not a placeholder
   (example, change-me, test, ``${VAR:?}``, ...).
4. **The compose file's rules** (:mod:`infra.compose.rules`): secrets as required overrides,
   each service only its own, loopback ports, an isolated Dask scheduler, images pinned by
   digest or allow-listed with a reason.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

PLACEHOLDERS = (
    "example",
    "change-me",
    "changeme",
    "dev-secret",
    "test",
    "dummy",
    "placeholder",
    "fake",
    "wrong",
    "nobody",
    "hidden",
    "secret-value",
    "xxx",
    "<",
    "${",
    "$$",
    "$(",
    "{",
    "getenv",
    "none",
    "null",
    "admin",
    "never-shown",
)
FILE_NAME = re.compile(r"[\w.-]+\.(json|generated|txt|toml|ya?ml|env|sql|pem|crt)")
PRIVATE_KEY = re.compile("-----BEGIN ([A-Z]+ )?" + "PRIVATE KEY-----")
AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
# An environment-style assignment (upper-case name) in config, shell, docs; in Python a quoted
# literal only (code passing secrets around by name is not a finding).
ASSIGNMENT = re.compile(
    r"""\b([A-Z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN)[A-Z0-9_]*)\s*[:=]\s*["']?([^\s"'#,;)]*)"""
)
PY_ASSIGNMENT = re.compile(
    r"""\b([A-Z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN)[A-Z0-9_]*)\s*[:=]\s*["']([^"']*)["']"""
)
NOT_SECRET_NAMES = ("_FILE", "_PATH", "_DIR", "_USER", "_NAME", "_URL", "_SECONDS", "TOKENS")


# -- 1. pip-audit ---------------------------------------------------------------------------
def pip_audit(feed_optional: bool) -> tuple[bool, str]:
    """(passed, one line). Not audited = failed unless ``feed_optional``."""
    found = BIN / "pip-audit"
    command = [str(found)] if found.is_file() else ([w] if (w := shutil.which("pip-audit")) else None)
    if command is None:
        return feed_optional, ("pip-audit: NOT AUDITED: pip-audit is not installed (pip install pip-audit)")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        res = subprocess.run(
            [
                *command,
                "-r",
                str(ROOT / "requirements.txt"),
                "--disable-pip",
                "--no-deps",
                "-f",
                "json",
                "-o",
                str(report),
                "--progress-spinner",
                "off",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        try:
            deps = json.loads(report.read_text())["dependencies"]
        except (OSError, ValueError, KeyError):
            last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            return feed_optional, f"pip-audit: NOT AUDITED: it produced no report ({last[0]})"
    return judge(deps, feed_optional)


def judge(deps: list[dict], feed_optional: bool) -> tuple[bool, str]:
    """The verdict on pip-audit's JSON ``dependencies``."""
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    if vulnerable:
        names = ", ".join(f"{d['name']} {d.get('version', '')}".strip() for d in vulnerable[:5])
        return False, f"pip-audit: {len(vulnerable)} vulnerable package(s): {names}"
    if not deps or len(skipped) == len(deps):
        reason = skipped[0]["skip_reason"] if skipped else "no packages"
        return feed_optional, (
            f"pip-audit: NOT AUDITED: all {len(deps)} packages were skipped (e.g. {reason!r}); "
            "the vulnerability feed or package index did not answer, so 'No known "
            "vulnerabilities found' would be a false all-clear"
        )
    note = f" ({len(skipped)} skipped, e.g. {skipped[0]['name']})" if skipped else ""
    return True, f"pip-audit: {len(deps) - len(skipped)} packages audited, none vulnerable{note}"


# -- 2. ruff S --------------------------------------------------------------------------------
def ruff_security() -> tuple[bool, str]:
    ruff = BIN / "ruff" if (BIN / "ruff").is_file() else shutil.which("ruff")
    if not ruff:
        return False, "ruff S: ruff is not installed (make venv)"
    res = subprocess.run(
        [str(ruff), "check", "--select", "S", "jobs", "dags", "infra"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if res.returncode == 0:
        return True, "ruff S (bandit rules): clean"
    return False, "ruff S (bandit rules):\n" + res.stdout.strip()


# -- 3. secrets ---------------------------------------------------------------------------------
def placeholder(value: str) -> bool:
    lowered = value.lower()
    return len(value) < 8 or any(p in lowered for p in PLACEHOLDERS)


def scan_text(text: str, python: bool = False) -> list[tuple[int, str]]:
    """(line number, what) for every likely secret in ``text``."""
    found = []
    assignment = PY_ASSIGNMENT if python else ASSIGNMENT
    for number, line in enumerate(text.splitlines(), 1):
        if PRIVATE_KEY.search(line):
            found.append((number, "private key"))
        if AWS_KEY_ID.search(line):
            found.append((number, "AWS access key id"))
        for name, value in assignment.findall(line):
            if name.endswith(NOT_SECRET_NAMES) or value.startswith("$") or FILE_NAME.fullmatch(value):
                continue
            if value and not placeholder(value):
                found.append((number, f"{name} has a value that is not a placeholder"))
    return found


def tracked_files() -> list[Path]:
    git = shutil.which("git")
    if not git:
        return []
    res = subprocess.run([git, "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60, check=True)
    return [ROOT / p for p in res.stdout.decode().split("\0") if p]


SKIPPED_SUFFIXES = (".png", ".jpg", ".gif", ".parquet", ".lock", ".svg", ".ico")


def secret_scan() -> tuple[bool, str]:
    findings = []
    files = tracked_files()
    for path in files:
        if path.suffix in SKIPPED_SUFFIXES or not path.is_file():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        hits = scan_text(text, python=path.suffix == ".py")
        findings += [f"{path.relative_to(ROOT)}:{n}: {what}" for n, what in hits]
    if not files:
        return False, "secret scan: no tracked files found (not a git checkout?)"
    if findings:
        shown = "\n  ".join(findings)
        return False, f"secret scan: {len(findings)} finding(s):\n  {shown}"
    return True, f"secret scan: {len(files)} tracked files, no secret found"


# -- 4. compose rules ----------------------------------------------------------------------------
def compose_rules() -> tuple[bool, str]:
    from infra.compose import pin, rules

    problems = rules.check_repository()
    if problems:
        return False, "compose rules:\n  " + "\n  ".join(problems)
    allowed = pin.parse_allow_list(pin.ALLOW_LIST.read_text()) if pin.ALLOW_LIST.exists() else {}
    note = f"; {len(allowed)} image(s) tag-only, allow-listed (make compose-pin)" if allowed else ""
    return True, f"compose rules: secrets, scope, ports, dask, images hold{note}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.audit", description=__doc__)
    parser.add_argument(
        "--feed-optional",
        action="store_true",
        help="an unavailable vulnerability feed is reported, not a failure (CI)",
    )
    parser.add_argument("--skip-pip-audit", action="store_true")
    args = parser.parse_args(argv)
    steps = [ruff_security, secret_scan, compose_rules]
    if not args.skip_pip_audit:
        steps.insert(0, lambda: pip_audit(args.feed_optional))
    failed = 0
    for step in steps:
        passed, line = step()
        print(("ok    " if passed else "FAIL  ") + line)
        failed += not passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
