from __future__ import annotations

import pytest

from s3ferry.config import (
    S3_MAX_PARTS,
    GiB,
    Machine,
    MiB,
    TransferConfig,
    part_size_for,
    resolve,
)


def test_resolve_fills_every_field() -> None:
    r = resolve(TransferConfig(), Machine(cpus=2, memory_bytes=24 * GiB))
    assert all(getattr(r, f) is not None for f in r.__slots__)
    assert r.large_file_workers == 8
    assert r.large_file_buffers == 10


def test_resolve_keeps_given_values() -> None:
    cfg = TransferConfig(
        part_size_bytes=8 * MiB,
        large_file_buffers=3,
        large_file_workers=2,
        small_file_workers=5,
        multipart_threshold_bytes=9 * MiB,
    )
    r = resolve(cfg, Machine(cpus=64, memory_bytes=1 * GiB))
    assert (r.part_size_bytes, r.large_file_buffers, r.large_file_workers) == (8 * MiB, 3, 2)
    assert (r.small_file_workers, r.multipart_threshold_bytes) == (5, 9 * MiB)


def test_downloads_take_a_lower_threshold_and_larger_ranges_unless_given() -> None:
    machine = Machine(cpus=2, memory_bytes=24 * GiB)
    up, down = resolve(TransferConfig(), machine), resolve(TransferConfig(), machine, True)
    assert (up.multipart_threshold_bytes, up.part_size_bytes) == (16 * MiB, 16 * MiB)
    assert (down.multipart_threshold_bytes, down.part_size_bytes) == (4 * MiB, 64 * MiB)
    given = resolve(TransferConfig(part_size_bytes=8 * MiB), machine, downloading=True)
    assert given.part_size_bytes == 8 * MiB


def test_small_machine_caps_the_pool_at_an_eighth_of_memory() -> None:
    r = resolve(TransferConfig(), Machine(cpus=8, memory_bytes=1 * GiB))
    assert r.large_file_buffers is not None and r.part_size_bytes is not None
    assert r.large_file_buffers * r.part_size_bytes <= 1 * GiB // 8


def test_memory_bound_formula() -> None:
    cfg = TransferConfig(part_size_bytes=8 * MiB, large_file_buffers=4, small_lane_bytes=32 * MiB)
    assert cfg.memory_bound_bytes() == 4 * 8 * MiB + 32 * MiB


@pytest.mark.parametrize(
    "bad",
    [
        TransferConfig(part_size_bytes=1 * MiB),
        TransferConfig(large_file_workers=0),
        TransferConfig(part_size_bytes=6 * GiB),
        TransferConfig(small_file_workers=-1),
    ],
)
def test_out_of_range_values_are_refused(bad: TransferConfig) -> None:
    with pytest.raises(ValueError):
        resolve(bad)


@pytest.mark.parametrize(
    "size", [0, 1, 16 * MiB * S3_MAX_PARTS, 16 * MiB * S3_MAX_PARTS + 1, 5 * 1024 * GiB]
)
def test_part_size_grows_to_fit_ten_thousand_parts(size: int) -> None:
    part = part_size_for(size, 16 * MiB)
    assert part >= 16 * MiB
    assert -(-size // part) <= S3_MAX_PARTS
    assert part % MiB == 0


def test_five_tib_file() -> None:
    assert part_size_for(5 * 1024 * GiB, 16 * MiB) == 525 * MiB
