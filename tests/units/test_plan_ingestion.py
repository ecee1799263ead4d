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


def manifest(*rows: tuple[str, int, str | None, str], old_layout: bool = False) -> pl.DataFrame:
    """rows: (path, size, fingerprint, checksum), ingested one minute apart in that order."""
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
                "status": "ingested",
                "reason": None,
                "replaces": None,
            }
            for i, (p, s, fp, c) in enumerate(rows)
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
