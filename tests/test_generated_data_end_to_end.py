"""Generated data with every kind of bad line: all quarantined, and gold equals the reference
computed independently from the same data generated without them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from infra.generator import BAD_LINE_KINDS, generate
from tests.conftest import LocalLake
from tests.reference import canonical, reference_gold


def read_clean_raw(root: Path) -> dict[str, pl.DataFrame]:
    """Plain readers, no pipeline code: the files are known to be clean."""
    events = {}
    for source in ("prints", "taps"):
        frame = pl.concat([pl.read_ndjson(p) for p in sorted((root / source).rglob("*.json"))])
        events[source] = frame.select(
            pl.col("day").str.to_date(),
            pl.col("user_id").cast(pl.Int64),
            pl.col("event_data").struct.field("value_prop"),
            pl.col("event_data").struct.field("position").cast(pl.Int64),
        )
    pays = pl.concat(
        [
            pl.read_csv(p, schema_overrides={"total": pl.String})
            for p in sorted((root / "pays").rglob("*.csv"))
        ]
    )
    events["pays"] = pays.select(
        pl.col("pay_date").str.to_date().alias("day"),
        pl.col("user_id").cast(pl.Int64),
        "value_prop",
        pl.col("total").cast(pl.Decimal(18, 2)),
    )
    return events


@pytest.mark.parametrize(("mode", "n_weeks"), [("calendar", 3), ("rolling", 2)])
def test_gold_on_dirty_data_equals_reference_on_clean_data(
    lake: LocalLake, tmp_path: Path, mode: str, n_weeks: int
) -> None:
    dirty = generate(out_dir=lake.raw, seed=7, scale=0.01, days=22, bad_lines=60)
    generate(out_dir=tmp_path / "clean", seed=7, scale=0.01, days=22)
    results = lake.run(lookback_mode=mode, lookback_weeks=n_weeks)

    bad_total = sum(dirty.bad(s) for s in ("prints", "taps", "pays"))
    assert results["bronze"].quarantined == bad_total == 180
    quarantine = lake.table("bronze", "quarantine")
    assert quarantine.group_by("source").len().sort("source").rows() == [
        ("pays", 60),
        ("prints", 60),
        ("taps", 60),
    ]
    # every kind produced a distinct reason (a kind can share a reason with a sibling kind)
    assert quarantine.filter(pl.col("source") == "prints")["reason"].n_unique() >= 10
    assert quarantine.filter(pl.col("source") == "pays")["reason"].n_unique() >= 7
    assert len(BAD_LINE_KINDS["prints"]) >= 10

    manifest = lake.table("bronze", "_manifest")
    per_file = {f.path.relative_to(lake.raw).as_posix(): f for f in dirty.files}
    for row in manifest.iter_rows(named=True):
        generated = per_file[row["path"]]
        assert row["lines"] == generated.lines
        assert row["quarantined_rows"] == generated.bad_lines
        assert row["lines"] == row["bronze_rows"] + row["quarantined_rows"]

    clean = read_clean_raw(tmp_path / "clean")
    expected = reference_gold(clean["prints"], clean["taps"], clean["pays"], mode=mode, n_weeks=n_weeks)
    assert_frame_equal(canonical(lake.table("gold", "print_features")), canonical(expected))


def test_single_file_layout_gives_the_same_gold_as_daily_files(tmp_path: Path) -> None:
    daily, single = LocalLake(tmp_path / "daily"), LocalLake(tmp_path / "single")
    generate(out_dir=daily.raw, seed=3, scale=0.005, days=16)
    generate(out_dir=single.raw, seed=3, scale=0.005, days=16, layout="single")
    daily.run()
    single.run()
    assert_frame_equal(
        canonical(daily.table("gold", "print_features")), canonical(single.table("gold", "print_features"))
    )
