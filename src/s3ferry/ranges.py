"""Byte ranges and fixed-length records: pure arithmetic, no I/O.

Ranges are inclusive at both ends, as in HTTP's ``Range: bytes=START-END``:
record ``N`` of width ``W`` is bytes ``N*W`` to ``N*W + W - 1``. Example:
record 99 of width 80 is ``bytes=7920-7999`` (80 bytes); ``bytes=7920-8000``
would be 81 bytes.

Bad input raises :class:`ValueError` with a one-line message; the job that
knows the object's URL turns it into a :class:`~s3ferry.errors.UsageError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB

# Reading a gap is cheaper than another request while the gap takes less time
# to transfer than a request's round trip: ~20 ms at ~100 MB/s is ~2 MB.
DEFAULT_GAP_BYTES = 1 * MiB
# One coalesced request holds at most this much (also bounds the buffer it fills).
DEFAULT_MAX_REQUEST_BYTES = 8 * MiB

_RANGE = re.compile(r"([0-9]*)-([0-9]*)")
_RECORDS = re.compile(r"([0-9]+)(?:-([0-9]+))?")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` to ``end`` of an object, both inclusive (``end >= start >= 0``)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"not a byte range: {self.start}-{self.end}")

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def stop(self) -> int:
        """One past the last byte (Python's exclusive end)."""
        return self.end + 1

    def __str__(self) -> str:
        return f"bytes={self.start}-{self.end}"

    def split(self, size_bytes: int) -> Iterator[ByteRange]:
        """Consecutive pieces of at most ``size_bytes`` covering this range."""
        for start in range(self.start, self.stop, size_bytes):
            yield ByteRange(start, min(start + size_bytes, self.stop) - 1)


@dataclass(frozen=True, slots=True)
class RangeSpec:
    """A range as asked, before the object's size is known.

    ``START-END`` is ``RangeSpec(START, END)``; ``START-`` (to the end) is
    ``RangeSpec(START)``; ``-SUFFIX`` (the last SUFFIX bytes) is
    ``RangeSpec(suffix_bytes=SUFFIX)``.
    """

    start: int = 0
    end: int | None = None
    suffix_bytes: int | None = None

    def __str__(self) -> str:
        if self.suffix_bytes is not None:
            return f"bytes=-{self.suffix_bytes}"
        return f"bytes={self.start}-{'' if self.end is None else self.end}"

    def resolve(self, size_bytes: int) -> ByteRange:
        """The bytes this spec names in an object of ``size_bytes``.

        Raises:
            ValueError: the range reaches past the object's end (the message
                says how long the object is).
        """
        if self.suffix_bytes is not None:
            start = size_bytes - self.suffix_bytes
            end = size_bytes - 1
        else:
            start, end = self.start, size_bytes - 1 if self.end is None else self.end
        if not 0 <= start < size_bytes or end >= size_bytes:
            raise ValueError(f"{self} is beyond the end of the object ({size_bytes} bytes)")
        return ByteRange(start, end)


def range_spec(start: int, end: int | None = None, length: int | None = None) -> RangeSpec:
    """The spec for the library's ``(start, end, length)`` arguments.

    ``end`` is inclusive; ``length`` counts bytes from ``start``; with neither
    the range runs to the object's end. A negative ``start`` names the last
    ``-start`` bytes (HTTP's ``bytes=-N``), like Python's ``data[-N:]``.

    Raises:
        ValueError: both ``end`` and ``length``, ``end`` before ``start``, or a
            ``length`` below 1.
    """
    if end is not None and length is not None:
        raise ValueError("give an end or a length, not both")
    if start < 0:
        if end is not None or length is not None:
            raise ValueError("a suffix range (negative start) takes no end or length")
        return RangeSpec(suffix_bytes=-start)
    if length is not None:
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        return RangeSpec(start, start + length - 1)
    if end is not None and end < start:
        raise ValueError(f"range ends ({end}) before it starts ({start})")
    return RangeSpec(start, end)


def parse_range(text: str) -> RangeSpec:
    """Parse ``START-END`` (inclusive), ``START-`` or ``-SUFFIX``.

    Raises:
        ValueError: anything else, an end before its start, or ``-0``.
    """
    m = _RANGE.fullmatch(text.strip())
    if m is None or not (m[1] or m[2]):
        raise ValueError(f"not a byte range: {text!r} (e.g. 0-99, 100- or -100)")
    if not m[1]:
        if int(m[2]) < 1:
            raise ValueError(f"an empty suffix range: {text!r}")
        return RangeSpec(suffix_bytes=int(m[2]))
    return range_spec(int(m[1]), int(m[2]) if m[2] else None)


@dataclass(frozen=True, slots=True)
class RecordRun:
    """Records ``first`` to ``first + count - 1`` (numbered from 0)."""

    first: int
    count: int = 1

    def __post_init__(self) -> None:
        if self.first < 0 or self.count < 1:
            raise ValueError(f"not a run of records: first {self.first}, count {self.count}")

    @property
    def last(self) -> int:
        return self.first + self.count - 1


def parse_records(text: str) -> Iterator[RecordRun]:
    """The runs in ``"5,17,99-120"`` (``99-120`` is inclusive), in the order written.

    Parsed lazily, one item at a time, so a long list costs no more memory
    than its text. Duplicates and any order are allowed.

    Raises:
        ValueError: an item that is not ``N`` or ``FIRST-LAST`` with ``FIRST <= LAST``.
    """
    at = 0
    while at <= len(text):
        comma = text.find(",", at)
        stop = len(text) if comma < 0 else comma
        yield _record_item(text[at:stop].strip())
        at = stop + 1


def _record_item(item: str) -> RecordRun:
    m = _RECORDS.fullmatch(item)
    if m is None:
        raise ValueError(f"not a record number or FIRST-LAST range: {item!r}")
    first, last = int(m[1]), int(m[2] or m[1])
    if last < first:
        raise ValueError(f"record range ends before it starts: {item!r}")
    return RecordRun(first, last - first + 1)


@dataclass(frozen=True, slots=True)
class Records:
    """An object of ``size_bytes`` seen as records of ``record_bytes`` each.

    When ``record_bytes`` does not divide the size, the last record is
    partial (shorter); :attr:`partial_bytes` says how long it is.
    """

    size_bytes: int
    record_bytes: int

    def __post_init__(self) -> None:
        if self.record_bytes < 1:
            raise ValueError(f"record size must be at least 1 byte, got {self.record_bytes}")

    @property
    def count(self) -> int:
        """Records in the object, a partial last one included."""
        return -(-self.size_bytes // self.record_bytes)

    @property
    def partial_bytes(self) -> int:
        """Bytes in the last record if it is partial, else 0."""
        return self.size_bytes % self.record_bytes

    def check(self, run: RecordRun) -> RecordRun:
        """``run`` itself, if every record of it exists.

        Raises:
            ValueError: a record past the last one (the message says how many there are).
        """
        if run.last >= self.count:
            numbered = f", numbered 0-{self.count - 1}" if self.count else ""
            raise ValueError(
                f"record {run.last} is past the last record (the object has {self.count} "
                f"records of {self.record_bytes} bytes{numbered})"
            )
        return run

    def span(self, run: RecordRun) -> ByteRange:
        """The bytes of ``run`` (the partial last record is shorter).

        Example: ``Records(10_000, 80).span(RecordRun(99))`` is ``bytes=7920-7999``.
        """
        self.check(run)
        stop = min((run.last + 1) * self.record_bytes, self.size_bytes)
        return ByteRange(run.first * self.record_bytes, stop - 1)


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of records that one request delivers: its bytes are ``span`` of the object."""

    run: RecordRun
    span: ByteRange


@dataclass(frozen=True, slots=True)
class Request:
    """One ranged GET and the pieces, in the order asked, cut from what it returns."""

    span: ByteRange
    pieces: tuple[Piece, ...]


def plan_requests(
    runs: Iterable[RecordRun],
    records: Records,
    gap_bytes: int = DEFAULT_GAP_BYTES,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> Iterator[Request]:
    """Coalesce the runs, in the order asked, into as few ranged GETs as the limits allow.

    A piece joins the request before it when it starts no earlier than that
    request, at most ``gap_bytes`` after its end, and the request then spans
    and delivers at most ``max_request_bytes`` (a single record longer than
    that gets a request of its own). Runs longer than the limit are split.
    Pieces keep the order asked, duplicates included; a run that goes back
    in the object starts a new request. Lazy: memory holds one request.

    Raises:
        ValueError: a record past the last one (raised when that run is reached).
    """
    per_request = max(1, max_request_bytes // records.record_bytes)
    start = end = delivered = 0
    pieces: list[Piece] = []
    for run in runs:
        for piece in _split(records, records.check(run), per_request):
            joins = (
                pieces
                and start <= piece.span.start <= end + 1 + gap_bytes
                and max(end, piece.span.end) - start < max_request_bytes
                and delivered + piece.span.length <= max_request_bytes
            )
            if not joins:
                if pieces:
                    yield Request(ByteRange(start, end), tuple(pieces))
                pieces, start, end, delivered = [], piece.span.start, piece.span.end, 0
            pieces.append(piece)
            end = max(end, piece.span.end)
            delivered += piece.span.length
    if pieces:
        yield Request(ByteRange(start, end), tuple(pieces))


def _split(records: Records, run: RecordRun, per_request: int) -> Iterator[Piece]:
    for first in range(run.first, run.last + 1, per_request):
        part = RecordRun(first, min(per_request, run.last + 1 - first))
        yield Piece(part, records.span(part))
