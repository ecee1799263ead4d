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


def test_a_dangling_symlink_is_unreadable_with_a_reason_and_a_good_link_is_a_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "prints"
    raw.mkdir(parents=True)
    target = tmp_path / "elsewhere.json"
    target.write_text('{"x": 1}\n')
    os.symlink(target, raw / "linked.json")
    os.symlink(tmp_path / "gone.json", raw / "dangling.json")
    storage, found = listing(tmp_path / "raw")
    [linked] = found.files
    assert linked.rel_path == "prints/linked.json" and linked.size_bytes == target.stat().st_size
    assert restat(storage, linked) == linked  # the link is described by its target both times
    [bad] = found.unreadable
    assert bad.rel_path == "prints/dangling.json" and "dangling symbolic link" in bad.reason


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
