"""``python -m jobs features`` as a person uses it: real processes, CSV and Parquet label files,
and unusable label files as one line and exit 2 (no output file)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs.gold.labels import label_features
from tests.conftest import LocalLake
from tests.test_cli import cli

ND = date(2020, 11, 2)  # a Monday


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labels-cli")
    lake = LocalLake(root)
    lake.land_events(
        "prints", [(ND + timedelta(days=i % 17), i % 5, "point", i % 3) for i in range(40)], "a.json"
    )
    lake.land_events("taps", [(ND + timedelta(days=i % 13), i % 5, "point", 0) for i in range(15)], "a.json")
    lake.land_pays(
        [(ND + timedelta(days=i % 11), f"{i}.{i:02d}", i % 5, "point") for i in range(20)], "a.csv"
    )
    lake.run()
    return root


def _labels() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "day": [ND + timedelta(days=i) for i in (-3, 0, 8, 8, 15, 22, 60)],
            "user_id": [1, 2, 1, 1, 3, 9, 1],
            "value_prop": ["point", "point", "point", "point", "point", "point", "other"],
            "label": [0, 1, 1, 1, 0, 1, 0],
            "note": ["a", None, "c", "c", "e", "f", "g"],
        }
    )


def _expected(root: Path, mode: str, windows: list[int]) -> pl.DataFrame:
    silver = {s: pl.scan_delta(str(root / "silver" / s)) for s in ("prints", "taps", "pays")}
    return label_features(_labels(), **silver, mode=mode, windows=windows).collect()  # type: ignore[arg-type]


def test_csv_labels_to_parquet_and_parquet_labels_to_csv(built: Path, tmp_path: Path) -> None:
    _labels().write_csv(tmp_path / "labels.csv")
    res = cli(
        "features",
        "--labels",
        str(tmp_path / "labels.csv"),
        "--out",
        str(tmp_path / "out.parquet"),
        root=built,
    )
    assert res.returncode == 0, res.stderr
    assert "wrote 7 label row(s)" in res.stdout
    assert_frame_equal(pl.read_parquet(tmp_path / "out.parquet"), _expected(built, "calendar", [3]))

    _labels().write_parquet(tmp_path / "labels.parquet")
    res = cli(
        "features",
        "--labels",
        str(tmp_path / "labels.parquet"),
        "--out",
        str(tmp_path / "out.csv"),
        "--lookback-mode",
        "rolling",
        "--lookback-weeks",
        "2",
        root=built,
    )
    assert res.returncode == 0, res.stderr
    got = pl.read_csv(tmp_path / "out.csv", schema=_expected(built, "rolling", [2]).schema)
    assert_frame_equal(got, _expected(built, "rolling", [2]))


def test_known_at_and_gold_version(built: Path, tmp_path: Path) -> None:
    _labels().write_parquet(tmp_path / "labels.parquet")
    outs = {}
    for name, extra in {
        "now": [],
        "known": ["--known-at", datetime.now(UTC).isoformat()],
        "gold": ["--version", "0"],
    }.items():
        out = tmp_path / f"{name}.parquet"
        res = cli(
            "features", "--labels", str(tmp_path / "labels.parquet"), "--out", str(out), *extra, root=built
        )
        assert res.returncode == 0, res.stderr
        outs[name] = pl.read_parquet(out)
    assert_frame_equal(outs["now"], outs["known"])
    assert_frame_equal(outs["now"], outs["gold"])
    res = cli(
        "features",
        "--labels",
        str(tmp_path / "labels.parquet"),
        "--out",
        str(tmp_path / "x.parquet"),
        "--known-at",
        "1999-01-01",
        root=built,
    )
    assert res.returncode == 0, res.stderr  # nothing was known then: zeros
    assert pl.read_parquet(tmp_path / "x.parquet")["prior_views"].sum() == 0


BAD = {
    "missing.csv": ("user_id,day\n1,2020-11-02\n", "missing column(s) value_prop"),
    "type.parquet": (
        pl.DataFrame({"user_id": [1.5], "value_prop": ["a"], "day": [ND]}),
        "user_id is Float64",
    ),
    "id.csv": (
        "user_id,value_prop,day\n1,a,2020-11-02\nx,a,2020-11-02\n",
        "row 2: user_id 'x' is not an integer",
    ),
    "day.csv": ("user_id,value_prop,day\n1,a,2020-11-31\n", "row 1: day '2020-11-31' is not a date"),
    "empty.csv": ("", "is empty"),
    "header.csv": ("user_id,value_prop,day\n", "no label rows"),
    "labels.json": ("{}", "name a .parquet or .csv file"),
    "absent.csv": (None, "not found"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_an_unusable_label_file_is_one_line_and_exit_2(built: Path, tmp_path: Path, name: str) -> None:
    content, problem = BAD[name]
    path = tmp_path / name
    if isinstance(content, pl.DataFrame):
        content.write_parquet(path)
    elif content is not None:
        path.write_text(content)
    out = tmp_path / "out.parquet"
    res = cli("features", "--labels", str(path), "--out", str(out), root=built)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0], res.stderr
    assert not out.exists() and not list(tmp_path.glob("out.parquet*"))
