"""Inclusive byte ranges, record arithmetic and request coalescing (pure, no server)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3ferry.ranges import (
    ByteRange,
    RangeSpec,
    RecordRun,
    Records,
    parse_range,
    parse_records,
    plan_requests,
    range_spec,
)

# How long an example takes on a loaded machine is not part of any property here.
UNTIMED = settings(deadline=None)


def test_record_99_of_width_80_is_bytes_7920_to_7999() -> None:
    span = Records(10_000, 80).span(RecordRun(99))

    assert (span.start, span.end, span.length) == (7920, 7999, 80)
    assert str(span) == "bytes=7920-7999"


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("0-99", RangeSpec(0, 99)),
        ("7920-7999", RangeSpec(7920, 7999)),
        ("5-5", RangeSpec(5, 5)),
        ("100-", RangeSpec(100)),
        ("-100", RangeSpec(suffix_bytes=100)),
        (" 1-2 ", RangeSpec(1, 2)),
    ],
)
def test_parse_range_forms(text: str, spec: RangeSpec) -> None:
    assert parse_range(text) == spec


@pytest.mark.parametrize("text", ["", "-", "5", "a-b", "1-2-3", "9-3", "-0", "1.5-2", "²-3"])
def test_parse_range_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="range"):
        parse_range(text)


@pytest.mark.parametrize(
    ("spec", "size", "expected"),
    [
        (RangeSpec(0, 9), 10, ByteRange(0, 9)),
        (RangeSpec(3), 10, ByteRange(3, 9)),
        (RangeSpec(suffix_bytes=4), 10, ByteRange(6, 9)),
        (RangeSpec(suffix_bytes=10), 10, ByteRange(0, 9)),
    ],
)
def test_resolve_inside_the_object(spec: RangeSpec, size: int, expected: ByteRange) -> None:
    assert spec.resolve(size) == expected


@pytest.mark.parametrize(
    "spec", [RangeSpec(0, 10), RangeSpec(10), RangeSpec(suffix_bytes=11), RangeSpec(20, 30)]
)
def test_resolve_beyond_the_end_says_how_long_the_object_is(spec: RangeSpec) -> None:
    with pytest.raises(ValueError, match=r"beyond the end of the object \(10 bytes\)"):
        spec.resolve(10)


def test_library_arguments_to_spec() -> None:
    assert range_spec(5) == RangeSpec(5)
    assert range_spec(5, 9) == RangeSpec(5, 9)
    assert range_spec(5, length=5) == RangeSpec(5, 9)
    assert range_spec(-3) == RangeSpec(suffix_bytes=3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((5, 9, 5), "not both"),
        ((-3, 9, None), "suffix"),
        ((5, None, 0), "length must be at least 1"),
        ((5, 4, None), "ends"),
    ],
)
def test_library_arguments_refused(args: tuple[int, int | None, int | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        range_spec(*args)


def test_parse_records_in_the_order_written() -> None:
    assert list(parse_records("5,17,99-120, 3,5")) == [
        RecordRun(5),
        RecordRun(17),
        RecordRun(99, 22),
        RecordRun(3),
        RecordRun(5),
    ]


def test_parse_records_is_lazy() -> None:
    runs = parse_records("7,oops")

    assert next(runs) == RecordRun(7)
    with pytest.raises(ValueError, match="'oops'"):
        next(runs)


@pytest.mark.parametrize("text", ["", "5,", ",5", "5,,6", "-3", "3-", "9-3", "a", "1-2-3"])
def test_parse_records_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="record"):
        list(parse_records(text))


def test_records_counts_a_partial_last_record() -> None:
    assert (Records(800, 80).count, Records(800, 80).partial_bytes) == (10, 0)
    assert (Records(810, 80).count, Records(810, 80).partial_bytes) == (11, 10)
    assert Records(810, 80).span(RecordRun(10)) == ByteRange(800, 809)


def test_record_past_the_last_says_how_many_there_are() -> None:
    with pytest.raises(ValueError, match=r"record 10 is past .* 10 records of 80 bytes, numbered"):
        Records(800, 80).span(RecordRun(8, 3))


def test_no_records_in_an_empty_object() -> None:
    with pytest.raises(ValueError, match="has 0 records"):
        Records(0, 80).check(RecordRun(0))


@UNTIMED
@given(
    size=st.integers(0, 5000),
    width=st.integers(1, 300),
    first=st.integers(0, 80),
    count=st.integers(1, 30),
)
def test_record_span_is_the_slice_of_the_source(
    size: int, width: int, first: int, count: int
) -> None:
    records = Records(size, width)
    data = bytes(i % 251 for i in range(size))
    run = RecordRun(first, count)
    if run.last >= records.count:
        with pytest.raises(ValueError, match="past the last record"):
            records.span(run)
        return
    span = records.span(run)
    assert data[span.start : span.stop] == data[first * width : (first + count) * width]


@UNTIMED
@given(start=st.integers(0, 1000), length=st.integers(1, 1000), size=st.integers(1, 100))
def test_split_covers_the_range_in_order(start: int, length: int, size: int) -> None:
    whole = ByteRange(start, start + length - 1)
    pieces = list(whole.split(size))

    assert pieces[0].start == whole.start and pieces[-1].end == whole.end
    assert all(a.stop == b.start for a, b in itertools.pairwise(pieces))
    assert all(p.length <= size for p in pieces)


@UNTIMED
@given(
    size=st.integers(1, 4000),
    width=st.integers(1, 120),
    picks=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 40)), min_size=1),
    gap=st.integers(0, 500),
    limit=st.integers(1, 1000),
)
def test_requests_deliver_the_runs_in_order_within_limits(
    size: int,
    width: int,
    picks: list[tuple[int, int]],
    gap: int,
    limit: int,
) -> None:
    records = Records(size, width)
    data = bytes(i % 251 for i in range(size))
    runs = [
        RecordRun(f % records.count, min(n, records.count - f % records.count)) for f, n in picks
    ]

    requests = list(plan_requests(runs, records, gap_bytes=gap, max_request_bytes=limit))

    delivered = b"".join(data[p.span.start : p.span.stop] for r in requests for p in r.pieces)
    assert delivered == b"".join(data[r.first * width : (r.last + 1) * width] for r in runs)
    for r in requests:
        assert r.span.length <= max(limit, width)
        assert all(r.span.start <= p.span.start and p.span.end <= r.span.end for p in r.pieces)
    assert len(requests) <= sum(len(r.pieces) for r in requests)


def test_nearby_records_share_a_request_and_far_ones_do_not() -> None:
    records = Records(80 * 10_000, 80)
    runs = [RecordRun(n) for n in (5, 6, 8, 99, 5000, 4999)]

    requests = list(plan_requests(runs, records, gap_bytes=80 * 100, max_request_bytes=1 << 20))

    assert [r.span for r in requests] == [
        ByteRange(400, 7999),
        ByteRange(400_000, 400_079),
        ByteRange(399_920, 399_999),
    ]
    assert [len(r.pieces) for r in requests] == [4, 1, 1]


def test_duplicates_are_served_from_one_request() -> None:
    requests = list(plan_requests([RecordRun(3)] * 5, Records(800, 80)))

    assert len(requests) == 1 and len(requests[0].pieces) == 5


def test_long_runs_are_split_at_the_request_limit() -> None:
    requests = list(plan_requests([RecordRun(0, 100)], Records(8000, 80), max_request_bytes=800))

    assert [r.span.length for r in requests] == [800] * 10


def test_a_record_past_the_end_is_refused_when_reached() -> None:
    planned = plan_requests([RecordRun(1), RecordRun(10)], Records(800, 80), gap_bytes=0)

    with pytest.raises(ValueError, match="record 10 is past"):
        list(planned)
