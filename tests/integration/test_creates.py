"""Small downloads whose files are made ahead, on the creator's thread, when creates are slow.

Creates are made to count as slow by lowering the thresholds; the files are then
unnamed (O_TMPFILE) until linked into place, and everything a download promises
must hold as it does for files created on the event loop.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from support.trees import random_files, read_tree, write_tree

import s3ferry
from s3ferry import StoreConfig, TransferConfig
from s3ferry.events import Event, ObjectDone, ObjectFailed
from s3ferry.transfer import creates

OLD_MTIME_NS = 1_600_000_000_123_456_789
# One object at a time: the first file is created on the loop (its create is what is
# timed first), every later one ahead.
ONE_AT_A_TIME = TransferConfig(small_file_workers=1)


@pytest.fixture
def slow_creates(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every create counts as slow; returns the directories files were made ahead in."""
    monkeypatch.setattr(creates, "SLOW_CREATE_S", -1.0)
    monkeypatch.setattr(creates, "FAST_CREATE_S", -1.0)
    made: list[str] = []
    unnamed = creates.Creator._unnamed

    def counted(self: creates.Creator, directory: str) -> int | None:
        made.append(directory)
        return unnamed(self, directory)

    monkeypatch.setattr(creates.Creator, "_unnamed", counted)
    return made


def _upload(tmp_path: Path, bucket: str, store: StoreConfig, files: dict[str, bytes]) -> None:
    src = tmp_path / "src"
    write_tree(src, files)
    for rel in files:
        os.utime(src / rel, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    assert s3ferry.upload(src, f"s3://{bucket}/p/", store=store).ok


def test_files_made_ahead_are_linked_into_place_whole_and_dated(
    tmp_path: Path, bucket: str, store_config: StoreConfig, slow_creates: list[str]
) -> None:
    files = random_files(60, (0, 1, 4096, 70_000))
    files["over/old.txt"] = b"new content"
    _upload(tmp_path, bucket, store_config, files)
    out = tmp_path / "out"
    write_tree(out, {"over/old.txt": b"an older file, replaced"})
    umask = os.umask(0)
    os.umask(umask)

    report = s3ferry.download(f"s3://{bucket}/p/", out, transfer=ONE_AT_A_TIME, store=store_config)

    assert (report.objects_done, report.ok) == (61, True), report.failures
    assert len(slow_creates) == 60
    assert read_tree(out) == files
    for rel in files:
        st = (out / rel).stat()
        assert st.st_mtime_ns == OLD_MTIME_NS
        assert st.st_mode & 0o777 == 0o666 & ~umask
    assert list(out.rglob(".*.s3ferry-*")) == []


def test_a_special_file_in_the_way_is_kept_when_files_are_made_ahead(
    tmp_path: Path, bucket: str, store_config: StoreConfig, slow_creates: list[str]
) -> None:
    _upload(tmp_path, bucket, store_config, {f"f{i}": b"x" * i for i in range(5)} | {"fifo": b"y"})
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "fifo")
    events: list[Event] = []

    report = s3ferry.download(
        f"s3://{bucket}/p/", out, transfer=ONE_AT_A_TIME, store=store_config, sink=events.append
    )

    failed = [e for e in events if isinstance(e, ObjectFailed)]
    assert [(e.key, e.reason) for e in failed] == [("p/fifo", "LocalIOError")]
    assert "FIFO" in failed[0].message
    assert report.objects_done == 5
    assert len(slow_creates) == 5
    assert (out / "fifo").is_fifo()
    assert sorted(p.name for p in out.iterdir()) == ["f0", "f1", "f2", "f3", "f4", "fifo"]


def test_where_unnamed_files_cannot_be_linked_files_are_named_after_all(
    tmp_path: Path,
    bucket: str,
    store_config: StoreConfig,
    slow_creates: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file system that refuses the link (EXDEV here): the bytes go to a named temporary
    file instead, and no more files are made ahead."""
    files = random_files(30, (10, 5000))
    _upload(tmp_path, bucket, store_config, files)

    def refused(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(creates.os, "link", refused)
    events: list[Event] = []

    report = s3ferry.download(
        f"s3://{bucket}/p/",
        tmp_path / "out",
        transfer=ONE_AT_A_TIME,
        store=store_config,
        sink=events.append,
    )

    assert (report.objects_done, report.ok) == (30, True), report.failures
    assert read_tree(tmp_path / "out") == files
    assert len([e for e in events if isinstance(e, ObjectDone)]) == 30
    assert len(slow_creates) == 1  # the first refused link stops files being made ahead
    assert list((tmp_path / "out").rglob(".*.s3ferry-*")) == []
