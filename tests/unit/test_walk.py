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
    by_path = [e.relative for e in walk(str(root), path_ordered=True) if isinstance(e, LocalEntry)]
    assert by_path == sorted(rels, key=lambda r: [s.encode() for s in r.split("/")])


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


def _linked_tree(tmp_path: Path) -> Path:
    """src/ with a file, a link out of the tree, a link loop and a link to an ancestor."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.txt").write_bytes(b"o")
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f.txt").write_bytes(b"f")
    (src / "ext").symlink_to(outside)
    (src / "ext-file").symlink_to(outside / "o.txt")
    (src / "loop1").symlink_to("loop2")
    (src / "loop2").symlink_to("loop1")
    (src / "d" / "up").symlink_to("..")
    return src


def test_links_are_not_followed_by_default(tmp_path: Path) -> None:
    entries = list(walk(str(_linked_tree(tmp_path))))

    assert [e.relative for e in entries if isinstance(e, LocalEntry)] == ["d/f.txt"]
    problems = {e.relative: e.reason for e in entries if isinstance(e, WalkProblem)}
    assert set(problems) == {"d/up", "ext", "ext-file", "loop1", "loop2"}
    assert set(problems.values()) == {"symbolic link (not followed)"}


def test_follow_symlinks_reads_through_links_but_not_loops(tmp_path: Path) -> None:
    entries = list(walk(str(_linked_tree(tmp_path)), follow_symlinks=True))

    files = [e.relative for e in entries if isinstance(e, LocalEntry)]
    assert files == ["d/f.txt", "ext-file", "ext/o.txt"]
    problems = {e.relative: (e.reason, e.unreadable) for e in entries if isinstance(e, WalkProblem)}
    assert problems["d/up"] == ("symbolic link loop (not followed)", False)
    for name in ("loop1", "loop2"):
        assert problems[name] == ("cannot stat: Too many levels of symbolic links", True)
