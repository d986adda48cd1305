"""The tree hash against botocore's reference implementation of Glacier's definition."""

from __future__ import annotations

import hashlib
import io
import os
import random
from pathlib import Path

import pytest
from botocore.utils import calculate_tree_hash
from hypothesis import given, settings
from hypothesis import strategies as st

from s3ferry.transfer.treehash import LEAF_BYTES, TreeHash, file_tree_hash, tree_hash

MiB = LEAF_BYTES


def reference(data: bytes) -> str:
    return str(calculate_tree_hash(io.BytesIO(data)))


def patterned(size: int) -> bytes:
    """Bytes whose every leaf differs, so a leaf hashed twice or out of place is caught."""
    return random.Random(size).randbytes(size)


@pytest.mark.parametrize(
    "size", [0, 1, MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB + 5, 4 * MiB, 5 * MiB, 7 * MiB]
)
def test_whole_buffer_matches_reference(size: int) -> None:
    data = patterned(size)
    assert tree_hash(data) == reference(data)


def test_empty_input_is_sha256_of_nothing() -> None:
    assert TreeHash().hexdigest() == hashlib.sha256(b"").hexdigest()


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(0, 6 * MiB + 3),
    cuts=st.lists(st.integers(0, 6 * MiB + 3), max_size=12),
)
def test_any_chunking_gives_the_same_hash(size: int, cuts: list[int]) -> None:
    data = patterned(size)
    hasher = TreeHash()
    bounds = sorted({0, size, *(c for c in cuts if c <= size)})
    view = memoryview(data)
    for start, end in zip(bounds, bounds[1:], strict=False):
        hasher.update(view[start:end])
    assert hasher.hexdigest() == reference(data)


def test_hexdigest_can_be_taken_midway() -> None:
    data = patterned(3 * MiB + 7)
    hasher = TreeHash()
    hasher.update(data[: 2 * MiB + 1])
    assert hasher.hexdigest() == reference(data[: 2 * MiB + 1])
    hasher.update(data[2 * MiB + 1 :])
    assert hasher.hexdigest() == reference(data)


@pytest.mark.parametrize("size", [0, 8 * MiB, 9 * MiB + 11])
@pytest.mark.parametrize(
    ("chunk", "threads"),
    [(MiB, 1), (3 * MiB + 1, 1), (8 * MiB, 1), (MiB, 2), (2 * MiB, 3), (3 * MiB + 1, 2)],
)
def test_file_hash_matches_reference(tmp_path: Path, size: int, chunk: int, threads: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert file_tree_hash(tmp_path / "f", chunk, threads) == reference(data)


def test_leaves_hashed_elsewhere_follow_whole_leaves_only() -> None:
    hasher = TreeHash()
    hasher.update(bytes(MiB))
    hasher.add_leaves([hashlib.sha256(b"x").digest()])
    assert hasher.hexdigest() == reference(bytes(MiB) + b"x")
    pending = TreeHash()
    pending.update(b"y")
    with pytest.raises(ValueError, match="partial leaf"):
        pending.add_leaves([hashlib.sha256(b"z").digest()])
