"""The hashed locks: every pin carries hashes, and ``make lock``'s parsing/rendering (offline)."""

from __future__ import annotations

from pathlib import Path

from infra import lock

ROOT = Path(__file__).resolve().parents[2]
H1, H2 = "a" * 64, "b" * 64


def test_every_pin_of_both_locks_carries_at_least_one_hash() -> None:
    for path in (lock.RUNTIME, lock.DEV):
        blocks = lock.hashed_blocks(path.read_text())
        assert set(blocks) == {lock.normalise(n) for n in lock.pins(path.read_text())}, path.name
        unhashed = [n for n, block in blocks.items() if "--hash=sha256:" not in block]
        assert not unhashed, f"{path.name}: {unhashed} (make lock)"
    assert "-r requirements.txt" in lock.header(lock.DEV.read_text())
    shared = set(lock.hashed_blocks(lock.RUNTIME.read_text())) & set(lock.hashed_blocks(lock.DEV.read_text()))
    assert not shared  # pip refuses one package with two different hash sets


def test_the_makefile_installs_with_require_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements-dev.txt" in makefile


def test_pins_headers_and_blocks_are_read_and_rendered_back() -> None:
    text = (
        "# about this lock\n-r base.txt\n\n"
        f"Foo_Bar==1.0 \\\n    --hash=sha256:{H1} \\\n    --hash=sha256:{H2}\n"
        "baz==2.0\n"
    )
    assert lock.pins(text) == {"Foo_Bar": "1.0", "baz": "2.0"}
    assert lock.header(text) == "# about this lock\n-r base.txt\n"
    compiled = f"baz==2.0 \\\n    --hash=sha256:{H2}\nfoo-bar==1.0 \\\n    --hash=sha256:{H1}\n"
    blocks = lock.hashed_blocks(compiled)
    assert set(blocks) == {"baz", "foo-bar"}
    assert (
        lock.render(text, blocks, only={"baz"})
        == f"# about this lock\n-r base.txt\nbaz==2.0 \\\n    --hash=sha256:{H2}\n"
    )
