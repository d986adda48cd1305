"""Pieces of restore that need no server: the polling back-off, reading recorded POSIX
attributes, the same-file test, and refusing to write through symbolic links."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from s3ferry.errors import LocalIOError
from s3ferry.events import Event, RestoresPending
from s3ferry.jobs.download import SafeParents
from s3ferry.jobs.restore import MAX_POLL_INTERVAL_S, _Poller
from s3ferry.transfer.attributes import Attributes, Local, local_state


def test_poll_delays_double_to_the_cap_and_reset_on_progress() -> None:
    slept: list[float] = []
    events: list[Event] = []
    poller = _Poller(100.0, slept.append, lambda: 0.5, events.append)

    for progress in [False] * 6 + [True, False]:
        poller.pause(7)
        poller.progressed(progress)

    assert slept == [100, 200, 400, 800, 1600, MAX_POLL_INTERVAL_S, MAX_POLL_INTERVAL_S, 100]
    assert events[0] == RestoresPending(7, 100.0)


@pytest.mark.parametrize(("draw", "delay"), [(0.0, 90.0), (0.999_999, 110.0)])
def test_poll_jitter_is_ten_percent_either_way(draw: float, delay: float) -> None:
    slept: list[float] = []

    _Poller(100.0, slept.append, lambda: draw, lambda e: None).pause(1)

    assert slept == [pytest.approx(delay, abs=1e-3)]


def test_attributes_are_read_from_metadata() -> None:
    meta = {
        "s3ferry-mode": "4755",
        "s3ferry-uid": "1000",
        "s3ferry-gid": "x",
        "s3ferry-mtime-ns": "17",
        "s3ferry-symlink": "../t",
    }

    assert Attributes.of(meta) == Attributes(17, 0o4755, 1000, None, "../t")
    assert not Attributes.of({}).settable and Attributes(mode=0o644).settable


def test_same_file_by_stored_mtime_or_else_by_last_modified(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    os.utime(path, ns=(10**18, 10**18))
    long_ago, later = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)

    assert local_state(str(path), Attributes(mtime_ns=10**18), 5, None) is Local.SAME
    assert local_state(str(path), Attributes(mtime_ns=10**18 + 1), 5, None) is Local.OTHER
    assert local_state(str(path), Attributes(mtime_ns=10**18), 6, None) is Local.OTHER
    assert local_state(str(path), Attributes(), 5, long_ago) is Local.SAME
    assert local_state(str(path), Attributes(), 5, later) is Local.OTHER
    assert local_state(str(path), Attributes(symlink="f"), 0, None) is Local.OTHER
    assert local_state(str(tmp_path / "none"), Attributes(), 5, None) is Local.ABSENT


def test_links_compare_by_target_and_are_never_followed(tmp_path: Path) -> None:
    (tmp_path / "l").symlink_to("target")

    assert local_state(str(tmp_path / "l"), Attributes(symlink="target"), 0, None) is Local.SAME
    assert local_state(str(tmp_path / "l"), Attributes(symlink="other"), 0, None) is Local.OTHER
    assert local_state(str(tmp_path / "l"), Attributes(), 0, None) is Local.OTHER


def test_parents_must_be_real_directories(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "link").symlink_to(tmp_path / "d" / "e")
    (tmp_path / "file").write_bytes(b"")
    parents = SafeParents(tmp_path)

    parents.make(tmp_path / "d" / "e" / "x")
    parents.make(tmp_path / "new" / "deeper" / "x")
    parents.make(tmp_path / "top")
    with pytest.raises(LocalIOError, match="is a symbolic link; refusing to write through it"):
        parents.make(tmp_path / "d" / "link" / "x")
    with pytest.raises(LocalIOError, match="is not a directory"):
        parents.make(tmp_path / "file" / "x")
    assert (tmp_path / "new" / "deeper").is_dir()
    assert sorted(os.listdir(tmp_path)) == ["d", "file", "new"]
