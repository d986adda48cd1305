"""Range and record reads through the library against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import s3ferry
from s3ferry import StoreConfig, TransferConfig
from s3ferry.events import Event, PartialRecordFound, RangeRequested

MiB = 1024 * 1024
SMALL_PARTS = TransferConfig(multipart_threshold_bytes=5 * MiB, part_size_bytes=5 * MiB)


class Events(list[Event]):
    """A sink that keeps every event."""

    def __call__(self, event: Event) -> None:
        self.append(event)

    def requests(self) -> list[tuple[int, int]]:
        return [(e.start, e.end) for e in self if isinstance(e, RangeRequested)]


@pytest.fixture
def records_object(bucket: str, s3client: Any) -> tuple[str, bytes]:
    """``s3://bucket/records``: 10,000 records of 80 bytes, each unlike the others."""
    data = b"".join(f"{n:079d}\n".encode() for n in range(10_000))
    s3client.put_object(Bucket=bucket, Key="records", Body=data)
    return f"s3://{bucket}/records", data


def test_record_99_of_width_80_is_bytes_7920_to_7999(
    records_object: tuple[str, bytes], store_config: StoreConfig
) -> None:
    url, data = records_object
    events = Events()

    records = list(s3ferry.iter_records(url, 80, [99], store=store_config, sink=events))

    assert records == [(99, data[7920:8000])]
    assert len(records[0][1]) == 80 and records[0][1] == f"{99:079d}\n".encode()
    assert events.requests() == [(7920, 7999)]
    assert s3ferry.read_range(url, 7920, 7999, store=store_config) == data[7920:8000]
    assert s3ferry.read_range(url, 7920, length=80, store=store_config) == data[7920:8000]


def test_byte_range_forms(records_object: tuple[str, bytes], store_config: StoreConfig) -> None:
    url, data = records_object

    assert s3ferry.read_range(url, 0, 0, store=store_config) == data[:1]
    assert s3ferry.read_range(url, 799_990, store=store_config) == data[799_990:]
    assert s3ferry.read_range(url, -100, store=store_config) == data[-100:]
    assert s3ferry.read_range(url, store=store_config) == data


def test_records_equal_slices_of_the_source(
    bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(size=st.integers(1, 20_000), width=st.integers(1, 500), draw=st.data())
    def check(size: int, width: int, draw: st.DataObject) -> None:
        records = -(-size // width)
        first = draw.draw(st.integers(0, records), "first")  # records: one past the last
        count = draw.draw(st.integers(1, records - first + 1), "count")
        data = os.urandom(size)
        s3client.put_object(Bucket=bucket, Key=f"o{size}", Body=data)
        url = f"s3://{bucket}/o{size}"
        if first + count > records:
            with pytest.raises(s3ferry.UsageError, match="past the last record"):
                s3ferry.iter_records(url, width, [range(first, first + count)], store=store_config)
            return
        got = s3ferry.iter_records(url, width, [range(first, first + count)], store=store_config)
        assert b"".join(r for _, r in got) == data[first * width : (first + count) * width]

    check()


def test_coalescing_issues_fewer_requests_than_records(
    records_object: tuple[str, bytes], store_config: StoreConfig
) -> None:
    url, data = records_object
    asked = "5,17,99-120,4000,3,3"
    coalesced, separate = Events(), Events()

    got = list(
        s3ferry.iter_records(url, 80, asked, gap_bytes=8000, store=store_config, sink=coalesced)
    )
    apart = list(
        s3ferry.iter_records(url, 80, asked, gap_bytes=0, store=store_config, sink=separate)
    )

    numbers = [5, 17, *range(99, 121), 4000, 3, 3]
    assert got == apart == [(n, data[n * 80 : n * 80 + 80]) for n in numbers]
    assert len(coalesced.requests()) == 3 < len(numbers)
    assert coalesced.requests() == [(400, 9679), (320_000, 320_079), (240, 319)]
    assert len(separate.requests()) == 5  # the repeated 3 shares its request


def test_requests_are_bounded_by_max_request_bytes(
    records_object: tuple[str, bytes], store_config: StoreConfig
) -> None:
    url, data = records_object
    events = Events()

    got = s3ferry.iter_records(
        url, 80, "0-9999", max_request_bytes=8000, store=store_config, sink=events
    )

    assert b"".join(r for _, r in got) == data
    assert len(events.requests()) == 100
    assert all(end - start + 1 <= 8000 for start, end in events.requests())


def test_records_stream_from_an_endless_iterable(
    records_object: tuple[str, bytes], store_config: StoreConfig
) -> None:
    url, data = records_object
    endless = (n % 10_000 for n in itertools.count(9_990))

    first = itertools.islice(
        s3ferry.iter_records(url, 80, endless, max_request_bytes=800, store=store_config), 30
    )

    assert [n for n, _ in first] == [*range(9_990, 10_000), *range(20)]


def test_partial_last_record_warns_or_is_refused(
    bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    data = os.urandom(810)
    s3client.put_object(Bucket=bucket, Key="k", Body=data)
    url, events = f"s3://{bucket}/k", Events()

    got = list(s3ferry.iter_records(url, 80, [9, 10], store=store_config, sink=events))

    assert got == [(9, data[720:800]), (10, data[800:])]
    assert [e for e in events if isinstance(e, PartialRecordFound)] == [
        PartialRecordFound("k", 810, 80, 10, 10)
    ]
    with pytest.raises(s3ferry.UsageError, match="not a whole number of 80-byte records"):
        s3ferry.iter_records(url, 80, [0], strict=True, store=store_config)


def test_large_range_is_fetched_in_parallel_parts(
    bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    data = os.urandom(12 * MiB + 5)
    s3client.put_object(Bucket=bucket, Key="big", Body=data)
    events = Events()

    got = s3ferry.read_range(
        f"s3://{bucket}/big",
        1,
        len(data) - 2,
        transfer=SMALL_PARTS,
        store=store_config,
        sink=events,
    )

    assert got == data[1:-1]
    assert events.requests() == [
        (1, 5 * MiB),
        (5 * MiB + 1, 10 * MiB),
        (10 * MiB + 1, len(data) - 2),
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda url, s: s3ferry.read_range(url, 800_000, store=s), r"\(800000 bytes\)"),
        (lambda url, s: s3ferry.read_range(url, -800_001, store=s), r"\(800000 bytes\)"),
        (lambda url, s: s3ferry.read_range(url, 0, 800_000, store=s), "beyond the end"),
        (lambda url, s: s3ferry.iter_records(url, 80, [10_000], store=s), "10000 records"),
        (lambda url, s: s3ferry.iter_records(url, 80, "1,2,10000", store=s), "10000 records"),
        (lambda url, s: s3ferry.read_range(url, 5, 9, length=5, store=s), "not both"),
        (lambda url, s: s3ferry.iter_records(url, 0, [1], store=s), "record_size"),
        (lambda url, s: s3ferry.iter_records(url, 80, "1,x", store=s), "'x'"),
    ],
)
def test_bad_ranges_and_records_are_refused_before_any_get(
    records_object: tuple[str, bytes], store_config: StoreConfig, call: Any, message: str
) -> None:
    url, _ = records_object
    with pytest.raises(s3ferry.UsageError, match=message):
        call(url, store_config)


def test_record_past_the_end_in_an_iterable_is_refused_when_reached(
    records_object: tuple[str, bytes], store_config: StoreConfig
) -> None:
    url, _ = records_object
    records: Iterator[tuple[int, bytes]] = s3ferry.iter_records(
        url, 80, iter([1, 10_000]), gap_bytes=0, store=store_config
    )

    with pytest.raises(s3ferry.UsageError, match="record 10000 is past the last record"):
        list(records)


def test_missing_key_and_bucket(bucket: str, store_config: StoreConfig) -> None:
    with pytest.raises(s3ferry.NotFoundError, match="no such key"):
        s3ferry.read_range(f"s3://{bucket}/nope", 0, 1, store=store_config)
    with pytest.raises(s3ferry.NotFoundError, match="bucket"):
        s3ferry.iter_records("s3://no-such-bucket-s3ferry/k", 80, [1], store=store_config)
    with pytest.raises(s3ferry.NotFoundError, match="no such key"):
        s3ferry.download_to_stream(f"s3://{bucket}/nope", io.BytesIO(), store=store_config)
