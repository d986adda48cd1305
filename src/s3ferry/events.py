"""Typed events: how the library reports progress. The library never prints.

A sink is any callable taking one event. Events are emitted from worker
threads, so a sink must be thread-safe and must not block for long (a
renderer records state under a lock and draws at its own pace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events."""


@dataclass(frozen=True, slots=True)
class JobStarted(Event):
    kind: str
    source: str
    destination: str


@dataclass(frozen=True, slots=True)
class ObjectQueued(Event):
    """The lister found an object to transfer (totals grow as the walk goes)."""

    key: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ListingFinished(Event):
    """The lister is done: the totals are final from here on."""

    objects: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class BytesTransferred(Event):
    """Part of a large object moved (small objects report only when done)."""

    key: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ObjectDone(Event):
    """One object moved and verified.

    ``verified_by`` names the check that passed: ``crc32c`` (server-side or
    composite checksum), ``md5`` (ETag), ``sha256``, ``sha256-tree`` (a
    restored file against the tree hash s3ferry stored) or ``size`` (no
    checksum was available from the store). ``in_parts`` is True when the object's
    bytes were already reported by :class:`BytesTransferred` events.
    """

    key: str
    path: str
    size_bytes: int
    verified_by: str
    seconds: float
    in_parts: bool = False


@dataclass(frozen=True, slots=True)
class ObjectResumed(Event):
    """The job's journal shows this object verified done by an interrupted earlier run."""

    key: str
    path: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class PartReused(Event):
    """A part (upload) or range (download) an earlier run sent was verified and kept."""

    key: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ObjectSkipped(Event):
    key: str
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class ObjectFailed(Event):
    """One object could not be moved; ``reason`` is the error class name."""

    key: str
    path: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class ShardWritten(Event):
    """One inventory shard file is complete and recorded in the manifest."""

    file: str
    objects: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class RangeRequested(Event):
    """One ranged GET was sent for bytes ``start`` to ``end`` (both inclusive) of ``key``."""

    key: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PartialRecordFound(Event):
    """A warning: ``record_bytes`` does not divide the object's size, so its last record
    (number ``last_record``) is only ``last_record_bytes`` long."""

    key: str
    size_bytes: int
    record_bytes: int
    last_record: int
    last_record_bytes: int


@dataclass(frozen=True, slots=True)
class Planned(Event):
    """A sync decided what to do with one key: ``copy``, ``skip`` or ``delete``, and why."""

    key: str
    path: str
    action: str
    reason: str


@dataclass(frozen=True, slots=True)
class Compared(Event):
    """One key of a comparison: ``identical``, ``different`` (``reason`` says how),
    ``only-source`` or ``only-target``."""

    key: str
    path: str
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class RestoreStatus(Event):
    """Where one object of a restore stood when first looked at: ``archived`` (a restore
    is asked for now), ``restoring`` (one was in flight), ``ready`` (readable now),
    ``done`` (already restored locally), ``exists`` (another file is in the way) or
    ``failed`` (it could not be looked at or its restore asked for: reported failed)."""

    key: str
    path: str
    state: str


@dataclass(frozen=True, slots=True)
class RestoreRequested(Event):
    """RestoreObject was sent for ``key``; ``outcome`` is ``started``, ``in-progress`` or
    ``restored`` (S3's answer: a new restore, one already running, a copy already there)."""

    key: str
    tier: str
    days: int
    outcome: str


@dataclass(frozen=True, slots=True)
class RestoresPending(Event):
    """``objects`` restores are still in flight; the next look is in ``next_check_s`` seconds."""

    objects: int
    next_check_s: float


@dataclass(frozen=True, slots=True)
class TaskFinished(Event):
    """A worker finished a queue task (``ok``) or gave it back to be tried again."""

    body: str
    attempt: int
    ok: bool
    objects: int
    size_bytes: int
    error: str
    seconds: float


@dataclass(frozen=True, slots=True)
class QueueProgress(Event):
    """Where a migration stands, across all its workers."""

    tasks_planned: int
    planning_done: bool
    queued: int
    in_flight: int
    done: int | None
    dead: int
    objects_copied: int
    bytes_copied: int


@dataclass(frozen=True, slots=True)
class Retried(Event):
    """A request failed and is sent again after ``delay_s`` seconds.

    ``kind`` is ``throttled`` (the store asked us to slow down), ``transient``
    (5xx, reset, timeout, truncated body) or ``expired`` (credentials refreshed);
    ``attempt`` is the number of the attempt that failed (1 for the first).
    """

    subject: str
    kind: str
    attempt: int
    delay_s: float
    message: str


@dataclass(frozen=True, slots=True)
class PaceChanged(Event):
    """The requests in flight allowed to ``endpoint`` (for one set of credentials) are now
    ``limit``: lowered when the store throttles, grown back as requests succeed."""

    endpoint: str
    limit: int


class EventSink(Protocol):
    def __call__(self, event: Event) -> None: ...


def discard(event: Event) -> None:
    """A sink that ignores everything."""
