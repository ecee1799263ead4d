"""list_raw: which paths under a source are raw files, which are never data, which are unreadable."""

from __future__ import annotations

import os
from pathlib import Path

from jobs.raw.files import list_raw, restat
from jobs.settings import load_settings
from jobs.storage import Storage


def listing(raw: Path):  # type: ignore[no-untyped-def]
    storage = Storage(load_settings(lake_raw=str(raw)))
    return storage, list_raw(storage, str(raw), "prints")


def test_temporary_hidden_and_marker_names_are_never_raw_files(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "prints"
    raw.mkdir(parents=True)
    for name in ("a.json", ".a.json.swp", "_SUCCESS", "b.json.tmp", "c.json._COPYING_", "d.json.part"):
        (raw / name).write_text("{}\n")
    _, found = listing(tmp_path / "raw")
    assert [f.rel_path for f in found.files] == ["prints/a.json"] and found.unreadable == []


def test_dangling_and_outside_symlinks_are_unreadable_with_a_reason_and_a_link_inside_raw_is_a_file(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw" / "prints"
    raw.mkdir(parents=True)
    (tmp_path / "raw" / "_store").mkdir()
    target = tmp_path / "raw" / "_store" / "inside.json"  # under LAKE_RAW, not listed itself
    target.write_text('{"x": 1}\n')
    outside = tmp_path / "elsewhere.json"
    outside.write_text('{"x": 2}\n')
    os.symlink(target, raw / "linked.json")
    os.symlink(outside, raw / "outside.json")
    os.symlink(tmp_path / "gone.json", raw / "dangling.json")
    storage, found = listing(tmp_path / "raw")
    [linked] = found.files
    assert linked.rel_path == "prints/linked.json" and linked.size_bytes == target.stat().st_size
    assert restat(storage, linked) == linked  # the link is described by its target both times
    reasons = {bad.rel_path: bad.reason for bad in found.unreadable}
    assert set(reasons) == {"prints/dangling.json", "prints/outside.json"}
    assert "dangling symbolic link" in reasons["prints/dangling.json"]
    assert "outside LAKE_RAW" in reasons["prints/outside.json"]


def test_the_fingerprint_changes_when_a_file_is_rewritten_with_the_same_size(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "prints"
    raw.mkdir(parents=True)
    path = raw / "a.json"
    path.write_text("aaaa\n")
    storage, found = listing(tmp_path / "raw")
    before = found.files[0]
    path.write_text("bbbb\n")
    os.utime(path, (before.mtime + 10, before.mtime + 10))
    after = restat(storage, before)
    assert after.size_bytes == before.size_bytes and after.fingerprint != before.fingerprint
