from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3ferry.listing.local import LocalEntry, WalkProblem, walk

_names = st.text(st.sampled_from("ab-/._~é0"), min_size=1, max_size=6).filter(
    lambda s: all(p not in ("", ".", "..") for p in s.split("/"))
)


def test_key_order_is_utf8_byte_order(tmp_path: Path) -> None:
    for rel in ["a-b", "a/b", "a.txt", "ab", "a/a-", "é", "z/y/x", "Z"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    rels = [e.relative for e in walk(str(tmp_path)) if isinstance(e, LocalEntry)]
    assert rels == sorted(rels, key=lambda r: r.encode())
    assert rels[1:6] == ["a-b", "a.txt", "a/a-", "a/b", "ab"]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(_names, min_size=1, max_size=12))
def test_walk_order_matches_sorted_keys(tmp_path_factory: object, names: set[str]) -> None:
    import tempfile

    root = Path(tempfile.mkdtemp())
    made = set()
    for rel in sorted(names):
        path = root / rel
        if any(p.is_file() for p in path.parents) or path.is_dir():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        made.add(rel)
    rels = [e.relative for e in walk(str(root)) if isinstance(e, LocalEntry)]
    assert set(rels) == made
    assert rels == sorted(rels, key=lambda r: r.encode())


def test_problems_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "f").write_bytes(b"1")
    os.symlink(tmp_path / "f", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    entries = list(walk(str(tmp_path)))
    problems = {e.relative: e.reason for e in entries if isinstance(e, WalkProblem)}
    assert problems == {
        "empty/": "empty directory",
        "link": "symbolic link (not followed)",
        "fifo": "not a regular file",
    }
    assert [e.relative for e in entries if isinstance(e, LocalEntry)] == ["f"]
