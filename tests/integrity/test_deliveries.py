"""Real deliveries, exactly once: renamed, copied, deleted, compressed and binary raw files.

The real CLI as processes on a real local lake. After every trial and one normal rerun, every
raw line is in bronze or quarantine exactly once, counting identical files of a source as one
delivery and deleted files whose rows are kept (tests/integrity/invariants), silver is what
bronze says and gold equals the brute-force reference.
"""

from __future__ import annotations

import bz2
import gzip
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from infra.generator import generate
from tests.integrity.invariants import assert_exactly_once, cli, table

PRINTS = "prints/day=2020-11-03/part-0.json"
PAYS = "pays/day=2020-11-03/part-0.csv"
LINEAGE = ("source_file", "run_id", "ingested_at")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw files of 4 days with some bad lines (made once, copied per test)."""
    root = tmp_path_factory.mktemp("template")
    generate(out_dir=root / "raw", seed=11, scale=0.005, start=date(2020, 11, 2), days=4, bad_lines=6)
    return root


@pytest.fixture
def lake(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template / "raw", tmp_path / "raw")
    return tmp_path


def run(lake: Path, *, expect: int = 0, **env: str) -> dict[str, Any]:
    """One `python -m jobs run --format json`; the bronze stage's summary."""
    done = cli(lake, "run", "--format", "json", **env)
    assert done.returncode == expect, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    [bronze] = [s for s in json.loads(done.stdout)["stages"] if s["stage"] == "bronze"]
    return dict(bronze)


def rows_of(lake: Path, name: str, path: str) -> pl.DataFrame:
    frame = table(lake, "bronze", name)
    return frame.filter(pl.col("source_file") == path)


def manifest_of(lake: Path, path: str) -> list[tuple[str, str | None]]:
    """(status, reason) of every manifest row of ``path``, oldest first."""
    manifest = table(lake, "bronze", "_manifest").filter(pl.col("path") == path).sort("ingested_at")
    return list(manifest.select("status", "reason").iter_rows())


def rerun_and_check(lake: Path, **kwargs: Any) -> None:
    """The invariants, then one normal run with nothing left to do, then the invariants again."""
    assert_exactly_once(lake, **kwargs)
    again = run(lake)
    assert again["files"] == 0 and not again["duplicates"] and not again["deleted"], again
    assert_exactly_once(lake, **kwargs)


# -- redeliveries -----------------------------------------------------------------------------
def test_a_renamed_file_is_a_duplicate_of_the_rows_it_left_and_is_not_ingested_twice(lake: Path) -> None:
    run(lake)
    old = lake / "raw" / PRINTS
    content = old.read_bytes()
    old.rename(old.with_name("part-0-redelivered.json"))
    renamed = "prints/day=2020-11-03/part-0-redelivered.json"
    bronze = run(lake)
    assert bronze["duplicates"] == {renamed: PRINTS} and bronze["deleted"] == [PRINTS]
    assert "1 duplicate file(s) skipped" in bronze["note"] and "rows kept" in bronze["note"]
    assert manifest_of(lake, renamed) == [("duplicate", f"duplicate of {PRINTS}")]
    assert [s for s, _ in manifest_of(lake, PRINTS)] == ["ingested", "deleted"]
    assert rows_of(lake, "prints", renamed).is_empty() and not rows_of(lake, "prints", PRINTS).is_empty()
    rerun_and_check(lake, kept={PRINTS: content})


@pytest.mark.parametrize("copy", ["prints/copy-of-part-0.json", "prints/redelivered/2020-11-03/part-0.json"])
def test_a_copy_under_a_new_name_or_folder_is_skipped_as_a_duplicate(lake: Path, copy: str) -> None:
    run(lake)
    (lake / "raw" / copy).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(lake / "raw" / PRINTS, lake / "raw" / copy)
    bronze = run(lake)
    assert bronze["duplicates"] == {copy: PRINTS} and bronze["files"] == 0
    assert bronze["versions"] == {"manifest": bronze["versions"]["manifest"]}  # no data commit
    rerun_and_check(lake)


def test_identical_files_landed_in_one_run_are_one_delivery(lake: Path) -> None:
    shutil.copy(lake / "raw" / PAYS, lake / "raw" / "pays" / "zz-again.csv")
    bronze = run(lake)
    assert bronze["duplicates"] == {"pays/zz-again.csv": PAYS}
    rerun_and_check(lake)


def test_a_copy_becomes_its_own_delivery_in_the_run_that_corrects_its_original(lake: Path) -> None:
    run(lake)
    original = lake / "raw" / PRINTS
    shutil.copy(original, lake / "raw" / "prints" / "copy.json")
    assert run(lake)["duplicates"] == {"prints/copy.json": PRINTS}
    original.write_bytes(original.read_bytes() + original.read_bytes().splitlines(keepends=True)[0])
    corrected = run(lake)
    assert corrected["files"] == 2 and "1 corrected file(s) replaced" in corrected["note"]
    assert manifest_of(lake, "prints/copy.json")[-1] == ("ingested", None)
    rerun_and_check(lake)


def test_the_same_lines_in_a_different_file_stay_two_deliveries(lake: Path) -> None:
    run(lake)
    lines = (lake / "raw" / PRINTS).read_bytes().splitlines(keepends=True)
    (lake / "raw" / "prints" / "reordered.json").write_bytes(b"".join(reversed(lines)))
    bronze = run(lake)
    assert bronze["duplicates"] == {} and bronze["files"] == 1
    assert rows_of(lake, "prints", "prints/reordered.json").height == rows_of(lake, "prints", PRINTS).height
    rerun_and_check(lake)


def test_raw_on_duplicate_ingest_takes_a_copy_in_as_its_own_delivery(lake: Path) -> None:
    run(lake)
    shutil.copy(lake / "raw" / PRINTS, lake / "raw" / "prints" / "copy.json")
    bronze = run(lake, RAW_ON_DUPLICATE="ingest")
    assert bronze["duplicates"] == {} and bronze["files"] == 1
    assert_exactly_once(lake, duplicates="ingest")


def test_an_empty_file_is_never_a_duplicate(lake: Path) -> None:
    (lake / "raw" / "taps" / "empty-1.json").write_bytes(b"")
    (lake / "raw" / "taps" / "empty-2.json").write_bytes(b"")
    bronze = run(lake)
    assert bronze["duplicates"] == {}
    assert manifest_of(lake, "taps/empty-2.json") == [("ingested", None)]
    rerun_and_check(lake)


# -- deleted raw files ------------------------------------------------------------------------
def test_a_deleted_file_keeps_its_rows_and_is_recorded_once_under_keep(lake: Path) -> None:
    run(lake)
    gone = lake / "raw" / PRINTS
    content = gone.read_bytes()
    gone.unlink()
    bronze = run(lake)
    assert bronze["deleted"] == [PRINTS] and bronze["retracted"] == []
    assert "1 deleted file(s), rows kept" in bronze["note"]
    assert not rows_of(lake, "prints", PRINTS).is_empty()
    rerun_and_check(lake, kept={PRINTS: content})
    assert [s for s, _ in manifest_of(lake, PRINTS)] == ["ingested", "deleted"]  # once


def test_a_deleted_file_is_retracted_from_bronze_silver_and_gold_under_retract(lake: Path) -> None:
    run(lake)
    held = rows_of(lake, "prints", PRINTS).height
    silver_before = table(lake, "silver", "prints").height
    assert held
    (lake / "raw" / PRINTS).unlink()
    bronze = run(lake, RAW_ON_DELETE="retract")
    assert bronze["deleted"] == bronze["retracted"] == [PRINTS]
    assert "1 deleted file(s), rows retracted" in bronze["note"]
    assert rows_of(lake, "prints", PRINTS).is_empty() and rows_of(lake, "quarantine", PRINTS).is_empty()
    assert table(lake, "silver", "prints").height == silver_before - held
    assert [s for s, _ in manifest_of(lake, PRINTS)] == ["ingested", "retracted"]
    rerun_and_check(lake)  # gold equals the reference built from what is left


@pytest.mark.parametrize("policy", ["keep", "retract"])
def test_a_rename_to_an_upload_temporary_name_is_a_deletion(lake: Path, policy: str) -> None:
    run(lake)
    path = lake / "raw" / PAYS
    content = path.read_bytes()
    path.rename(path.with_name("part-0.csv.tmp"))
    bronze = run(lake, RAW_ON_DELETE=policy)
    assert bronze["deleted"] == [PAYS]
    assert rows_of(lake, "pays", PAYS).is_empty() == (policy == "retract")
    rerun_and_check(lake, kept={PAYS: content} if policy == "keep" else {})


def test_a_rename_under_retract_moves_the_rows_to_the_new_path(lake: Path) -> None:
    run(lake)
    held = rows_of(lake, "prints", PRINTS).height
    old = lake / "raw" / PRINTS
    old.rename(old.with_name("moved.json"))
    moved = "prints/day=2020-11-03/moved.json"
    bronze = run(lake, RAW_ON_DELETE="retract")
    assert bronze["retracted"] == [PRINTS] and bronze["duplicates"] == {}
    assert rows_of(lake, "prints", PRINTS).is_empty() and rows_of(lake, "prints", moved).height == held
    rerun_and_check(lake)


def test_a_deleted_file_that_comes_back_is_not_counted_twice_and_a_changed_one_replaces(
    lake: Path,
) -> None:
    run(lake)
    path = lake / "raw" / PRINTS
    content = path.read_bytes()
    path.unlink()
    run(lake)
    path.write_bytes(content)  # back, same bytes: nothing to take in again
    back = run(lake)
    assert back["files"] == 0 and manifest_of(lake, PRINTS)[-1][0] == "unchanged"
    rerun_and_check(lake)
    path.unlink()
    run(lake)
    path.write_bytes(content + content.splitlines(keepends=True)[0])  # back, changed
    changed = run(lake)
    assert changed["files"] == 1 and "1 corrected file(s) replaced" in changed["note"]
    rerun_and_check(lake)


def test_a_retracted_file_that_comes_back_is_ingested_as_new(lake: Path) -> None:
    run(lake)
    path = lake / "raw" / PRINTS
    content = path.read_bytes()
    path.unlink()
    run(lake, RAW_ON_DELETE="retract")
    path.write_bytes(content)
    back = run(lake, RAW_ON_DELETE="retract")
    assert back["files"] == 1 and manifest_of(lake, PRINTS)[-1][0] == "ingested"
    rerun_and_check(lake)


def test_pending_files_counts_a_deleted_file_until_it_is_recorded(lake: Path) -> None:
    from jobs.bronze.selection import pending_files
    from jobs.run import RunContext
    from jobs.settings import load_settings

    run(lake)
    (lake / "raw" / PRINTS).unlink()
    layers = {f"lake_{layer}": str(lake / layer) for layer in ("raw", "bronze", "silver", "gold")}
    assert pending_files(RunContext(load_settings(**layers))) == {"prints": 1, "taps": 0, "pays": 0}
    run(lake)
    assert pending_files(RunContext(load_settings(**layers))) == {"prints": 0, "taps": 0, "pays": 0}


# -- compressed and binary files --------------------------------------------------------------
def test_gzip_and_bz2_files_are_ingested_exactly_like_their_plain_versions(lake: Path) -> None:
    raw = lake / "raw"
    packed = {
        "prints/packed/part-0.jsonl.gz": (PRINTS, gzip.compress((raw / PRINTS).read_bytes())),
        "prints/packed/part-0.jsonl.bz2": (PRINTS, bz2.compress((raw / PRINTS).read_bytes())),
        "pays/packed/part-0.csv.gz": (PAYS, gzip.compress((raw / PAYS).read_bytes())),
    }
    for path, (_, content) in packed.items():
        (raw / path).parent.mkdir(parents=True, exist_ok=True)
        (raw / path).write_bytes(content)
    run(lake)
    for path, (plain, _) in packed.items():
        name = path.split("/", 1)[0]
        for layer in (name, "quarantine"):
            got, expected = rows_of(lake, layer, path), rows_of(lake, layer, plain)
            assert got.height == expected.height > 0 or layer == "quarantine"
            assert got.drop(LINEAGE).sort("line_number").equals(expected.drop(LINEAGE).sort("line_number"))
        manifest = table(lake, "bronze", "_manifest").filter(pl.col("path") == path)
        assert manifest["checksum"].to_list() == [__import__("hashlib").md5(packed[path][1]).hexdigest()]
    rerun_and_check(lake)


def test_a_corrupt_gzip_file_is_rejected_whole_and_the_rest_goes_on(lake: Path) -> None:
    whole = gzip.compress((lake / "raw" / PRINTS).read_bytes())
    (lake / "raw" / "prints" / "truncated.json.gz").write_bytes(whole[: len(whole) // 2])
    bronze = run(lake, expect=7)
    assert bronze["rejected"] == ["prints/truncated.json.gz"]
    [(status, reason)] = manifest_of(lake, "prints/truncated.json.gz")
    assert status == "rejected" and reason.startswith("cannot decompress: "), reason
    assert not rows_of(lake, "prints", PRINTS).is_empty()
    rerun_and_check(lake)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" * 20, "a NUL byte"),
        (b"\xff\xfe\xfa garbage \xc3\x28\n" * 30, "not valid UTF-8"),
    ],
)
def test_a_binary_file_under_the_rejection_threshold_is_rejected_whole(
    lake: Path, content: bytes, why: str
) -> None:
    (lake / "raw" / "taps" / "image.json").write_bytes(content)
    bronze = run(lake, expect=7)
    assert bronze["rejected"] == ["taps/image.json"]
    [(status, reason)] = manifest_of(lake, "taps/image.json")
    assert status == "rejected" and reason.startswith("not a text file: ") and why in reason, reason
    assert rows_of(lake, "taps", "taps/image.json").is_empty()
    rerun_and_check(lake)


@pytest.mark.slow
def test_on_the_dask_engine_compressed_duplicate_corrupt_and_retracted_files_are_handled_alike(
    lake: Path,
) -> None:
    raw = lake / "raw"
    (raw / "pays" / "packed.csv.gz").write_bytes(gzip.compress((raw / PAYS).read_bytes()))
    (raw / "prints" / "truncated.json.gz").write_bytes(gzip.compress((raw / PRINTS).read_bytes())[:-12])
    shutil.copy(raw / PRINTS, raw / "prints" / "zz-copy.json")
    bronze = run(lake, expect=7, ENGINE="dask")
    assert bronze["duplicates"] == {"prints/zz-copy.json": PRINTS}
    assert bronze["rejected"] == ["prints/truncated.json.gz"]
    assert (
        rows_of(lake, "pays", "pays/packed.csv.gz")
        .drop(LINEAGE)
        .sort("line_number")
        .equals(rows_of(lake, "pays", PAYS).drop(LINEAGE).sort("line_number"))
    )
    assert_exactly_once(lake)
    (raw / PRINTS).unlink()  # its copy is then the only delivery of that content: taken in now
    retracted = run(lake, RAW_ON_DELETE="retract", ENGINE="dask")
    assert retracted["retracted"] == [PRINTS] and rows_of(lake, "prints", PRINTS).is_empty()
    assert retracted["files"] == 1 and not rows_of(lake, "prints", "prints/zz-copy.json").is_empty()
    rerun_and_check(lake)
