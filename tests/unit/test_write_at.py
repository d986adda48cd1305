"""write_at: every byte lands at its offset, whatever the pieces and the short writes."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from s3ferry.transfer import download
from s3ferry.transfer.download import WRITE_PIECE_BYTES, write_at


@pytest.mark.parametrize("size", [0, 1, WRITE_PIECE_BYTES, 3 * WRITE_PIECE_BYTES + 17])
def test_writes_all_bytes_at_the_offset(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(b"\0" * 5)
    fd = os.open(path, os.O_RDWR)
    try:
        write_at(fd, memoryview(data), 5)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"\0" * 5 + data


def test_short_writes_are_continued_and_no_piece_exceeds_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lengths: list[int] = []
    real = os.pwrite

    def short(fd: int, data: memoryview, offset: int) -> int:
        lengths.append(len(data))
        return real(fd, data[: max(1, len(data) // 3)], offset)

    monkeypatch.setattr(download.os, "pwrite", short)
    data = os.urandom(2 * WRITE_PIECE_BYTES + 5)
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        write_at(fd, memoryview(data), 0)
    finally:
        os.close(fd)
    assert path.read_bytes() == data
    assert max(lengths) == WRITE_PIECE_BYTES


def test_preallocate_gives_the_size_and_the_blocks(tmp_path: Path) -> None:
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        download.preallocate(fd, 3 * 1024 * 1024 + 5)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    assert st.st_size == 3 * 1024 * 1024 + 5
    if download._fallocate() is not None:  # a C library with fallocate(2): blocks, no hole
        assert st.st_blocks * 512 >= st.st_size


def _failing(code: int) -> Callable[[int, int, int, int], int]:
    def fallocate(fd: int, mode: int, offset: int, length: int) -> int:
        ctypes.set_errno(code)
        return -1

    return fallocate


def test_without_fallocate_the_file_is_a_hole_of_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download, "_fallocate", lambda: _failing(errno.EOPNOTSUPP))
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        download.preallocate(fd, 1024 * 1024)
    finally:
        os.close(fd)
    assert path.stat().st_size == 1024 * 1024
    assert path.stat().st_blocks == 0


def test_a_disk_too_full_for_the_file_fails_before_any_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download, "_fallocate", lambda: _failing(errno.ENOSPC))
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(OSError) as raised:
            download.preallocate(fd, 1024 * 1024)
    finally:
        os.close(fd)
    assert raised.value.errno == errno.ENOSPC
