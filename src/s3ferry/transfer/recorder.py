"""Counts outcomes and emits the matching events; shared by every lane of a job (thread-safe)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from s3ferry.errors import LocalIOError, S3ferryError
from s3ferry.events import (
    BytesTransferred,
    Event,
    EventSink,
    ListingFinished,
    ObjectDone,
    ObjectFailed,
    ObjectQueued,
    ObjectResumed,
    ObjectSkipped,
    PaceChanged,
    PartReused,
    Retried,
)

# Failures kept for the final report; the rest are only counted (and were
# emitted as events), so memory does not grow with the number of failures.
MAX_FAILURES_KEPT = 100


@dataclass(frozen=True, slots=True)
class Failure:
    key: str
    path: str
    reason: str
    message: str


@dataclass(slots=True)
class Tally:
    """Running totals of one job."""

    queued_objects: int = 0
    queued_bytes: int = 0
    done_objects: int = 0
    done_bytes: int = 0
    skipped_objects: int = 0
    failed_objects: int = 0
    resumed_objects: int = 0
    reused_parts: int = 0
    verified_by: Counter[str] = field(default_factory=Counter)
    failures_by_reason: Counter[str] = field(default_factory=Counter)
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    retries_by_kind: Counter[str] = field(default_factory=Counter)
    lowest_pace: int | None = None  # None: the store never throttled the job


class Recorder:
    """The one place lanes report to."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self.tally = Tally()

    def queued(self, key: str, size_bytes: int) -> None:
        with self._lock:
            self.tally.queued_objects += 1
            self.tally.queued_bytes += size_bytes
        self._sink(ObjectQueued(key, size_bytes))

    def listing_finished(self) -> None:
        with self._lock:
            objects, size = self.tally.queued_objects, self.tally.queued_bytes
        self._sink(ListingFinished(objects, size))

    def progressed(self, key: str, size_bytes: int) -> None:
        self._sink(BytesTransferred(key, size_bytes))

    def done(
        self,
        key: str,
        path: str,
        size_bytes: int,
        verified_by: str,
        seconds: float,
        in_parts: bool = False,
    ) -> None:
        with self._lock:
            self.tally.done_objects += 1
            self.tally.done_bytes += size_bytes
            self.tally.verified_by[verified_by] += 1
        self._sink(ObjectDone(key, path, size_bytes, verified_by, seconds, in_parts))

    def skipped(self, key: str, path: str, reason: str) -> None:
        with self._lock:
            self.tally.skipped_objects += 1
            self.tally.skipped_by_reason[reason] += 1
        self._sink(ObjectSkipped(key, path, reason))

    def store_event(self, event: Event) -> None:
        """The sink of the job's stores: retries and pace changes are counted, then passed on."""
        if isinstance(event, Retried):
            with self._lock:
                self.tally.retries_by_kind[event.kind] += 1
        elif isinstance(event, PaceChanged):
            with self._lock:
                lowest = self.tally.lowest_pace
                self.tally.lowest_pace = event.limit if lowest is None else min(lowest, event.limit)
        self._sink(event)

    def resumed(self, key: str, path: str, size_bytes: int) -> None:
        with self._lock:
            self.tally.resumed_objects += 1
        self._sink(ObjectResumed(key, path, size_bytes))

    def part_reused(self, key: str, size_bytes: int) -> None:
        with self._lock:
            self.tally.reused_parts += 1
        self._sink(PartReused(key, size_bytes))

    @contextmanager
    def reporting(self, key: str, path: str) -> Iterator[None]:
        """Record as this object's failure an S3ferryError (or OSError) raised in the block.

        A BrokenPipeError passes: only a reader of stdout that went away (``| head``)
        raises it here (the storage layer translates its sockets' errors), and that
        reader has what it wanted.
        """
        try:
            yield
        except S3ferryError as e:
            self.failed(key, path, e)
        except BrokenPipeError:
            raise
        except OSError as e:
            self.failed(key, path, LocalIOError(e.filename or path, e.strerror or str(e)))

    def failed(self, key: str, path: str, error: S3ferryError) -> None:
        reason = type(error).__name__
        failure = Failure(key, path, reason, str(error))
        with self._lock:
            self.tally.failed_objects += 1
            self.tally.failures_by_reason[reason] += 1
            if len(self.tally.failures) < MAX_FAILURES_KEPT:
                self.tally.failures.append(failure)
        self._sink(ObjectFailed(key, path, reason, str(error)))
