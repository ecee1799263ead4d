"""plan_ingestion: which listed raw files are new, changed or already in the manifest."""

from __future__ import annotations

import polars as pl

from jobs.bronze.manifest import plan_ingestion
from jobs.raw.files import RawFile
from jobs.schemas import MANIFEST


def raw(rel: str, size: int) -> RawFile:
    return RawFile(rel.split("/", 1)[0], f"/lake/raw/{rel}", rel, size)


def manifest(*rows: tuple[str, int]) -> pl.DataFrame:
    return pl.DataFrame({"path": [p for p, _ in rows], "size_bytes": [s for _, s in rows]},
                        schema={"path": MANIFEST["path"], "size_bytes": MANIFEST["size_bytes"]})


def test_files_not_in_the_manifest_are_new_in_listing_order() -> None:
    listed = [raw("prints/a.json", 10), raw("prints/b.json", 20)]
    plan = plan_ingestion(listed, manifest())
    assert plan.new == listed and plan.changed == [] and plan.known == 0


def test_a_known_file_of_the_same_size_is_not_planned_again() -> None:
    plan = plan_ingestion([raw("prints/a.json", 10)], manifest(("prints/a.json", 10)))
    assert (plan.new, plan.changed, plan.known) == ([], [], 1)


def test_a_known_file_whose_size_changed_is_reported_as_changed() -> None:
    changed = raw("prints/a.json", 11)
    plan = plan_ingestion([changed, raw("prints/b.json", 5)], manifest(("prints/a.json", 10)))
    assert plan.changed == [changed]
    assert [f.rel_path for f in plan.new] == ["prints/b.json"]
