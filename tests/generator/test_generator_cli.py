"""``python -m infra.generator`` as a person uses it: real subprocesses, real files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from infra.generator import generate

REPO = Path(__file__).resolve().parents[2]  # cwd of the command: ``-m infra.generator`` imports from it


def gen(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "LAKEHOUSE_ENV_FILE": "", **env}
    return subprocess.run(
        [sys.executable, "-m", "infra.generator", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        cwd=REPO,
    )


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_writes_into_lake_raw_the_bytes_generate_writes(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    res = gen(
        "--scale",
        "0.01",
        "--days",
        "3",
        "--seed",
        "5",
        "--layout",
        "single",
        "--bad-lines",
        "4",
        LAKE_RAW=str(raw),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"generated 3 files in {raw} in ")
    assert "prints " in res.stdout and "(4 bad)" in res.stdout
    generate(out_dir=tmp_path / "api", scale=0.01, days=3, seed=5, layout="single", bad_lines=4)
    assert tree(raw) == tree(tmp_path / "api") and len(tree(raw)) == 3


def test_if_empty_generates_once_then_leaves_the_raw_files_alone(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    first = gen("--out", str(out), "--scale", "0.005", "--days", "2", "--if-empty")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("generated 6 files")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = gen("--out", str(out), "--scale", "0.005", "--days", "5", "--if-empty")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"raw files already under {out}: nothing generated (--if-empty)"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_if_empty_ignores_hidden_and_marker_files_like_bronze_does(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    (out / "prints").mkdir(parents=True)
    (out / "prints" / "_SUCCESS").write_text("")
    (out / "prints" / ".part-0.json.tmp").write_text("half")
    res = gen("--out", str(out), "--scale", "0.005", "--days", "1", "--if-empty")
    assert res.returncode == 0, res.stderr
    assert (out / "prints" / "day=2020-11-01" / "part-0.json").is_file()


def test_env_file_sets_the_default_output(tmp_path: Path) -> None:
    env_file = tmp_path / "my.env"
    env_file.write_text(f"LAKE_RAW={tmp_path / 'from-env'}\n")
    res = gen("--env-file", str(env_file), "--scale", "0.005", "--days", "1")
    assert res.returncode == 0, res.stderr
    assert len(tree(tmp_path / "from-env")) == 3


def test_user_errors_are_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    cases = [
        (["--out", str(tmp_path), "--scale", "0"], {}, "error: scale must be > 0, got 0.0"),
        (
            ["--out", str(tmp_path), "--bad-fraction", "1"],
            {},
            "error: bad-fraction must be in [0, 1), got 1.0",
        ),
        (["--out", str(tmp_path), "--days", "0"], {}, "error: days must be >= 1, got 0"),
        (
            ["--env-file", str(tmp_path / "nope.env")],
            {},
            f"error: env file {tmp_path / 'nope.env'} not found",
        ),
        (
            [],
            {"LAKE_RAW": "s3://raw/prefix"},
            "error: the generator writes local files; upload them with `python -m infra.stack seed`",
        ),
    ]
    for args, env, line in cases:
        res = gen(*args, **env)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.strip().splitlines() == [line], args
    assert list(tmp_path.iterdir()) == []  # nothing written by a rejected call
