"""``cat``: a byte range of one object, or fixed-length records of it, read with ranged GETs.

Ranges are inclusive, as in HTTP (see :mod:`s3ferry.ranges`): record 99 of
width 80 is bytes 7920-7999. Everything that can be checked is checked
before the first byte is delivered: the URL, the bucket, the key, the
storage class (archived objects must be restored first), the range against
the object's size and the record numbers of a ``"5,17,99-120"`` spec.

Ranges go through the same engine as streamed downloads
(:func:`s3ferry.transfer.download.fetched_in_order`): up to
``large_file_buffers`` ranges are fetched ahead in parallel and delivered in
order, so memory is ``large_file_buffers x`` the largest request (a part for
byte ranges, ``max_request_bytes`` for records), never the number of records.
Every GET is reported as a :class:`~s3ferry.events.RangeRequested` event.

A range is checked for its length; a checksum covers a whole object only,
so whole objects are read with :func:`s3ferry.jobs.download.download_to_stream`.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from s3ferry.config import StoreConfig, TransferConfig, resolve
from s3ferry.errors import LocalIOError, NotFoundError, UsageError
from s3ferry.events import EventSink, PartialRecordFound, RangeRequested, discard
from s3ferry.jobs.lanes import open_store
from s3ferry.locations import parse_s3_url
from s3ferry.ranges import (
    DEFAULT_GAP_BYTES,
    DEFAULT_MAX_REQUEST_BYTES,
    ByteRange,
    RecordRun,
    Records,
    Request,
    parse_records,
    plan_requests,
    range_spec,
)
from s3ferry.storage.glacier import require_readable
from s3ferry.storage.s3 import ObjectInfo, S3Store
from s3ferry.transfer.buffers import BufferPool
from s3ferry.transfer.download import fetched_in_order, write_pieces

T = TypeVar("T")
RecordsAsked = str | Iterable[int | range]


def read_range(
    source: str,
    start: int = 0,
    end: int | None = None,
    *,
    length: int | None = None,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    sink: EventSink = discard,
) -> bytes:
    """Bytes ``start`` to ``end`` (inclusive) of the object ``source`` (``s3://bucket/key``).

    Give ``end`` or ``length`` (or neither: to the object's end). A negative
    ``start`` means the last ``-start`` bytes. Example: ``read_range(url,
    7920, 7999)`` and ``read_range(url, 7920, length=80)`` are the same 80 bytes.

    Raises:
        UsageError: malformed URL or arguments, or a range past the object's end
            (the message says how long the object is).
        NotFoundError / AccessDeniedError: the bucket or key is missing or refuses us.
        ObjectArchivedError: the object is archived and not restored.
        IntegrityError: the store returned a different number of bytes.
    """
    out = io.BytesIO()
    write_range(source, out, start, end, length=length, transfer=transfer, store=store, sink=sink)
    return out.getvalue()


def write_range(
    source: str,
    stream: BinaryIO,
    start: int = 0,
    end: int | None = None,
    *,
    length: int | None = None,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    sink: EventSink = discard,
) -> int:
    """Write the range :func:`read_range` names to ``stream``, in order; returns its length.

    Ranges longer than a part are fetched as parallel ranged GETs of
    ``part_size_bytes``. Raises what :func:`read_range` raises, and
    :class:`LocalIOError` if ``stream`` cannot be written.
    """
    spec = _checked(source, lambda: range_spec(start, end, length))
    obj = _open(source, transfer, store, sink)
    span = _checked(source, lambda: spec.resolve(obj.info.size_bytes))
    assert obj.cfg.part_size_bytes is not None
    with closing(obj.fetched(span.split(obj.cfg.part_size_bytes), lambda s: s)) as views:
        for _, view in views:
            _write(stream, view)
    return span.length


def iter_records(
    source: str,
    record_size: int,
    records: RecordsAsked,
    *,
    strict: bool = False,
    gap_bytes: int = DEFAULT_GAP_BYTES,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    sink: EventSink = discard,
) -> Iterator[tuple[int, bytes]]:
    """``(record number, bytes)`` for each record asked, in the order asked.

    Records of ``record_size`` bytes are numbered from 0. ``records`` is a
    spec such as ``"5,17,99-120"`` (ranges inclusive) or an iterable of
    record numbers and ``range`` objects (step 1), read lazily; duplicates
    and any order are allowed. Nearby records are coalesced into one ranged GET when the
    gap between them is at most ``gap_bytes`` and the request stays within
    ``max_request_bytes``; requests run in parallel.

    When ``record_size`` does not divide the object's size the last record
    is partial: a :class:`~s3ferry.events.PartialRecordFound` event warns,
    or with ``strict`` a UsageError refuses. The object, the options and the
    records of a string or a sequence are checked when this is called;
    numbers from any other iterable are checked as they are reached.

    Raises:
        UsageError: bad arguments, a record past the last (the message says
            how many there are), or a partial last record with ``strict``.
        NotFoundError / AccessDeniedError / ObjectArchivedError / IntegrityError:
            as :func:`read_range`.
    """
    obj, requests = _records_plan(
        source, record_size, records, strict, gap_bytes, max_request_bytes, transfer, store, sink
    )
    return _each_record(obj, requests, record_size)


def write_records(
    source: str,
    stream: BinaryIO,
    record_size: int,
    records: RecordsAsked,
    *,
    strict: bool = False,
    gap_bytes: int = DEFAULT_GAP_BYTES,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    sink: EventSink = discard,
) -> int:
    """Write the records :func:`iter_records` yields to ``stream``; returns the bytes written.

    Runs of records are written as they arrive, one write per run. Raises
    what :func:`iter_records` raises, and LocalIOError if ``stream`` cannot
    be written.
    """
    obj, requests = _records_plan(
        source, record_size, records, strict, gap_bytes, max_request_bytes, transfer, store, sink
    )
    written = 0
    with closing(_pieces(obj, requests)) as pieces:
        for _, view in pieces:
            _write(stream, view)
            written += len(view)
    return written


@dataclass(frozen=True, slots=True)
class _Object:
    """One object that can be read now: its store, what HEAD said and the job's settings."""

    url: str
    store: S3Store
    info: ObjectInfo
    cfg: TransferConfig
    sink: EventSink

    def fetched(
        self, items: Iterable[T], span_of: Callable[[T], ByteRange]
    ) -> Generator[tuple[T, memoryview], None, None]:
        """Each item and the bytes of its span, in order; a view is valid until the next."""
        assert self.cfg.large_file_workers is not None
        assert self.cfg.large_file_buffers is not None
        asked: deque[T] = deque()

        def requested() -> Iterator[tuple[int, int]]:
            for item in items:
                span = span_of(item)
                asked.append(item)
                self.sink(RangeRequested(self.info.key, span.start, span.end))
                yield span.start, span.stop

        pool = BufferPool(self.cfg.large_file_buffers)
        with ThreadPoolExecutor(self.cfg.large_file_workers) as fetchers:
            views = fetched_in_order(self.store, self.info.key, requested(), pool, fetchers)
            with closing(views):
                for view in views:
                    yield asked.popleft(), view


def _open(
    source: str, transfer: TransferConfig | None, store: StoreConfig | None, sink: EventSink
) -> _Object:
    url = parse_s3_url(source)
    if url.is_prefix:
        raise UsageError(str(url), "names a prefix; a range or records come from one object")
    cfg = _checked("transfer", lambda: resolve(transfer or TransferConfig()))
    s3 = open_store(url.bucket, cfg, store, sink)
    info = s3.head(url.key)
    if info is None:
        raise NotFoundError(str(url), "no such key")
    require_readable(info, str(url))
    return _Object(str(url), s3, info, cfg, sink)


def _records_plan(
    source: str,
    record_size: int,
    asked: RecordsAsked,
    strict: bool,
    gap_bytes: int,
    max_request_bytes: int,
    transfer: TransferConfig | None,
    store: StoreConfig | None,
    sink: EventSink,
) -> tuple[_Object, Iterator[Request]]:
    """Check all that can be checked before the first GET; the requests stay lazy."""
    for name, value, least in (
        ("record_size", record_size, 1),
        ("gap_bytes", gap_bytes, 0),
        ("max_request_bytes", max_request_bytes, 1),
    ):
        if value < least:
            raise UsageError(name, f"must be at least {least}, got {value}")
    if isinstance(asked, str):
        _checked("records", lambda: _exhaust(parse_records(asked)))
    obj = _open(source, transfer, store, sink)
    layout = Records(obj.info.size_bytes, record_size)
    _check_partial(obj, layout, strict)
    if isinstance(asked, str | Sequence):  # in memory already: check it all before a GET
        _checked(obj.url, lambda: _exhaust(map(layout.check, _runs_of(asked))))
    requests = plan_requests(_runs_of(asked), layout, gap_bytes, max_request_bytes)
    return obj, _usage_errors(obj.url, requests)


def _check_partial(obj: _Object, layout: Records, strict: bool) -> None:
    if not layout.partial_bytes:
        return
    last = layout.count - 1
    if strict:
        raise UsageError(
            obj.url,
            f"{layout.size_bytes} bytes is not a whole number of {layout.record_bytes}-byte "
            f"records (the last, record {last}, is {layout.partial_bytes} bytes)",
        )
    obj.sink(
        PartialRecordFound(
            obj.info.key, layout.size_bytes, layout.record_bytes, last, layout.partial_bytes
        )
    )


def _runs_of(asked: RecordsAsked) -> Iterator[RecordRun]:
    if isinstance(asked, str):
        yield from parse_records(asked)
        return
    for item in asked:
        if not isinstance(item, range):
            yield RecordRun(item)
        elif item.step != 1:
            raise ValueError(f"a range of records needs step 1, got {item}")
        elif item:
            yield RecordRun(item.start, len(item))


def _pieces(
    obj: _Object, requests: Iterator[Request]
) -> Generator[tuple[RecordRun, memoryview], None, None]:
    """Each run asked and its bytes, in the order asked; a view is valid until the next."""
    with closing(obj.fetched(requests, lambda r: r.span)) as fetched:
        for request, view in fetched:
            for piece in request.pieces:
                at = piece.span.start - request.span.start
                part = view[at : at + piece.span.length]
                try:
                    yield piece.run, part
                finally:
                    part.release()


def _each_record(
    obj: _Object, requests: Iterator[Request], width: int
) -> Iterator[tuple[int, bytes]]:
    with closing(_pieces(obj, requests)) as pieces:
        for run, view in pieces:
            for i in range(run.count):
                yield run.first + i, bytes(view[i * width : (i + 1) * width])


def _usage_errors(subject: str, items: Iterator[T]) -> Iterator[T]:
    """``items``, with a ValueError raised while making them reported as a UsageError."""
    try:
        yield from items
    except ValueError as e:
        raise UsageError(subject, str(e)) from e


def _checked(subject: str, make: Callable[[], T]) -> T:
    try:
        return make()
    except ValueError as e:
        raise UsageError(subject, str(e)) from e


def _exhaust(items: Iterator[object]) -> None:
    for _ in items:
        pass


def _write(stream: BinaryIO, data: memoryview) -> None:
    """Write to the output; a reader that went away (BrokenPipeError) is the caller's to judge."""
    try:
        write_pieces(stream, data)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise LocalIOError("output", e.strerror or str(e)) from e
