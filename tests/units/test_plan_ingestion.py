"""plan_ingestion: which listed raw files are new, changed or already held by bronze."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from jobs.bronze.manifest import plan_ingestion
from jobs.raw.files import RawFile
from jobs.schemas import MANIFEST

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def raw(rel: str, size: int, fingerprint: str = "") -> RawFile:
    return RawFile(rel.split("/", 1)[0], f"/lake/raw/{rel}", rel, size, fingerprint=fingerprint)


def manifest(
    *rows: tuple[str, int, str | None, str] | tuple[str, int, str | None, str, str], old_layout: bool = False
) -> pl.DataFrame:
    """rows: (path, size, fingerprint, checksum[, status]), one minute apart in that order."""
    frame = pl.DataFrame(
        [
            {
                "source": p.split("/")[0],
                "path": p,
                "size_bytes": s,
                "checksum": c,
                "lines": 1,
                "bronze_rows": 1,
                "quarantined_rows": 0,
                "run_id": "r",
                "ingested_at": T0.replace(minute=i),
                "fingerprint": fp,
                "status": status[0] if status else "ingested",
                "reason": None,
                "replaces": None,
            }
            for i, (p, s, fp, c, *status) in enumerate(rows)
        ],
        schema=MANIFEST,
    )
    return frame.drop("fingerprint", "status", "reason", "replaces") if old_layout else frame


def test_files_not_in_the_manifest_are_new_in_listing_order() -> None:
    listed = [raw("prints/a.json", 10), raw("prints/b.json", 20)]
    plan = plan_ingestion(listed, manifest())
    assert plan.new == listed and plan.changed == [] and plan.known == 0


def test_a_known_file_with_the_same_fingerprint_is_not_planned_again() -> None:
    plan = plan_ingestion(
        [raw("prints/a.json", 10, "etag:1")], manifest(("prints/a.json", 10, "etag:1", "c1"))
    )
    assert (plan.new, plan.changed, plan.known) == ([], [], 1)


def test_a_same_size_correction_is_changed_because_its_fingerprint_differs() -> None:
    corrected = raw("prints/a.json", 10, "etag:2")
    plan = plan_ingestion([corrected], manifest(("prints/a.json", 10, "etag:1", "c1")))
    assert plan.changed == [corrected]
    assert plan.current["prints/a.json"].checksum == "c1"


def test_the_newest_manifest_row_of_a_path_is_the_version_held() -> None:
    history = manifest(("prints/a.json", 10, "etag:1", "c1"), ("prints/a.json", 12, "etag:2", "c2"))
    assert plan_ingestion([raw("prints/a.json", 12, "etag:2")], history).known == 1
    plan = plan_ingestion([raw("prints/a.json", 10, "etag:1")], history)
    assert plan.current["prints/a.json"].checksum == "c2"  # back to v1 is a change too


def test_rows_from_before_fingerprints_compare_by_size() -> None:
    old = manifest(("prints/a.json", 10, None, "c1"), old_layout=True)
    assert plan_ingestion([raw("prints/a.json", 10, "local:10:1.0")], old).known == 1
    assert len(plan_ingestion([raw("prints/a.json", 11, "local:11:1.0")], old).changed) == 1


def test_a_retracted_path_listed_again_is_new() -> None:
    back = raw("prints/a.json", 10, "etag:1")
    history = manifest(
        ("prints/a.json", 10, "etag:1", "c1"), ("prints/a.json", 10, "etag:1", "c1", "retracted")
    )
    plan = plan_ingestion([back], history)
    assert plan.new == [back] and plan.current == {}


def test_a_deleted_path_listed_again_is_compared_by_content_even_with_its_old_fingerprint() -> None:
    back = raw("prints/a.json", 10, "etag:1")
    history = manifest(
        ("prints/a.json", 10, "etag:1", "c1"), ("prints/a.json", 10, "etag:1", "c1", "deleted")
    )
    plan = plan_ingestion([back], history)
    assert plan.changed == [back] and plan.current["prints/a.json"].checksum == "c1"


def test_held_paths_listed_no_more_are_gone_once_and_only_for_their_source() -> None:
    history = manifest(
        ("prints/a.json", 10, "etag:1", "c1"),
        ("prints/b.json", 10, "etag:2", "c2", "rejected"),
        ("prints/c.json", 10, "etag:3", "c3", "deleted"),
        ("prints/d.json", 10, "etag:4", "c1", "duplicate"),
        ("taps/a.json", 10, "etag:5", "c5"),
    )
    plan = plan_ingestion([], history, source="prints")
    assert [k.path for k in plan.gone] == ["prints/a.json", "prints/b.json"]
    assert plan_ingestion([], history).gone == []  # no source: nothing is gone
    listed_unreadable = plan_ingestion([], history, source="prints", unreadable=["prints/b.json"])
    assert [k.path for k in listed_unreadable.gone] == ["prints/a.json"]


def test_a_touched_file_holds_what_its_row_before_said() -> None:
    history = manifest(
        ("prints/a.json", 10, "etag:1", "c1", "deleted"), ("prints/a.json", 10, "etag:2", "c1", "unchanged")
    )
    plan = plan_ingestion([], history, source="prints")
    assert [(k.path, k.holds) for k in plan.gone] == [("prints/a.json", "deleted")]


def test_a_duplicate_is_not_planned_again_until_the_content_it_duplicates_is_held_no_more() -> None:
    dup = raw("prints/copy.json", 10, "etag:9")
    held = manifest(
        ("prints/a.json", 10, "etag:1", "c1"), ("prints/copy.json", 10, "etag:9", "c1", "duplicate")
    )
    assert plan_ingestion([dup], held).known == 1
    retracted = manifest(
        ("prints/a.json", 10, "etag:1", "c1"),
        ("prints/copy.json", 10, "etag:9", "c1", "duplicate"),
        ("prints/a.json", 10, "etag:1", "c1", "retracted"),
    )
    assert plan_ingestion([dup], retracted).new == [dup]
