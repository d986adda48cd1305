"""Packing and splitting of migration tasks, and their versioned JSON form."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3ferry.errors import UsageError
from s3ferry.planning.tasks import (
    ObjectRef,
    ObjectsTask,
    PartTask,
    PlanLimits,
    decode,
    encode,
    parts_of,
    plan_tasks,
)

MiB = 1024 * 1024
LIMITS = PlanLimits()


def _plan(sizes: list[int], limits: PlanLimits = LIMITS) -> list[ObjectsTask | PartTask]:
    objects = [ObjectRef(f"k{i:05d}", s, f"e{i}") for i, s in enumerate(sizes)]
    return list(plan_tasks(objects, "s3://a/p/", "s3://b/q/", limits, lambda o: f"up-{o.key}"))


@given(st.lists(st.integers(0, 30_000_000), max_size=60))
def test_every_object_planned_once_within_the_limits(sizes: list[int]) -> None:
    tasks = _plan(sizes)
    whole = [o.key for t in tasks if isinstance(t, ObjectsTask) for o in t.objects]
    split: dict[str, list[PartTask]] = {}
    for t in tasks:
        if isinstance(t, PartTask):
            split.setdefault(t.object.key, []).append(t)
    assert sorted(whole + list(split)) == [f"k{i:05d}" for i in range(len(sizes))]
    for t in tasks:
        if isinstance(t, ObjectsTask):
            assert 1 <= len(t.objects) <= LIMITS.max_objects
            assert t.size_bytes <= LIMITS.max_bytes
            assert all(o.size_bytes <= LIMITS.split_threshold for o in t.objects)
    for key, parts in split.items():
        size = parts[0].object.size_bytes
        assert size > LIMITS.split_threshold
        assert [p.part for p in parts] == list(range(1, parts[0].parts + 1))
        assert {p.upload_id for p in parts} == {f"up-{key}"}
        ranges = [p.range for p in parts]
        assert ranges[0][0] == 0 and ranges[-1][1] == size
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        assert all(p.size_bytes >= 5 * MiB for p in parts[:-1])


def test_parts_grow_to_stay_within_ten_thousand() -> None:
    part, count = parts_of(5 * 1024**4, 5 * MiB)
    assert count <= 10_000 and part * count >= 5 * 1024**4
    assert parts_of(12 * MiB, 5 * MiB) == (5 * MiB, 3)


def test_round_trip_of_both_task_kinds() -> None:
    for task in _plan([10, 20, 12 * MiB]):
        assert decode(encode(task)) == task
    body = json.loads(encode(_plan([1])[0]))
    assert body["v"] == 1 and body["type"] == "objects"


@pytest.mark.parametrize(
    "body",
    ['{"v": 2, "type": "objects"}', "not json", '{"v": 1, "type": "other"}', "[1]"],
)
def test_unknown_or_broken_bodies_are_refused(body: str) -> None:
    with pytest.raises(UsageError):
        decode(body)


@pytest.mark.parametrize("size", [5_000_000, 5 * 1024**3 + 1])
def test_chunks_outside_s3_part_sizes_are_refused(size: int) -> None:
    with pytest.raises(UsageError, match=f"chunk-size {size}: .* from 5 MiB to 5 GiB"):
        PlanLimits(chunk_size=size).check()
