"""write_at: every byte lands at its offset, whatever the pieces and the short writes."""

from __future__ import annotations

import os
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
        assert max(lengths) == WRITE_PIECE_BYTES
        lengths.clear()
        write_at(fd, memoryview(data), 0, piece=1000)
    finally:
        os.close(fd)
    assert path.read_bytes() == data
    assert max(lengths) == 1000
