"""The result of a job, built from the recorder's tally when the job ends."""

from __future__ import annotations

from dataclasses import dataclass, field

from s3ferry.transfer.recorder import Failure, Tally


@dataclass(frozen=True, slots=True)
class JobReport:
    """What a job did. ``objects_done`` counts only verified objects.

    ``retries_by_kind`` counts requests sent again, by why (``throttled``,
    ``transient``, ``expired``); ``lowest_pace`` is the fewest requests in flight
    the store's throttling allowed (``None``: it never throttled).
    ``objects_resumed`` were verified done by an interrupted earlier run of the
    same job (not moved again); ``parts_reused`` are parts or ranges such a run
    had sent, verified against the local bytes and kept.
    """

    kind: str
    source: str
    destination: str
    objects_done: int
    bytes_done: int
    objects_skipped: int
    objects_failed: int
    seconds: float
    verified_by: dict[str, int]
    failures_by_reason: dict[str, int]
    skipped_by_reason: dict[str, int]
    failures: tuple[Failure, ...]
    # Copies between buckets: objects the store copied itself, bytes the client moved.
    server_side_objects: int = 0
    bytes_through_client: int = 0
    retries_by_kind: dict[str, int] = field(default_factory=dict)
    lowest_pace: int | None = None
    objects_resumed: int = 0
    parts_reused: int = 0

    @property
    def ok(self) -> bool:
        return self.objects_failed == 0

    @classmethod
    def from_tally(
        cls, kind: str, source: str, destination: str, tally: Tally, seconds: float
    ) -> JobReport:
        return cls(
            kind=kind,
            source=source,
            destination=destination,
            objects_done=tally.done_objects,
            bytes_done=tally.done_bytes,
            objects_skipped=tally.skipped_objects,
            objects_failed=tally.failed_objects,
            seconds=seconds,
            verified_by=dict(tally.verified_by),
            failures_by_reason=dict(tally.failures_by_reason),
            skipped_by_reason=dict(tally.skipped_by_reason),
            failures=tuple(tally.failures),
            retries_by_kind=dict(tally.retries_by_kind),
            lowest_pace=tally.lowest_pace,
            objects_resumed=tally.resumed_objects,
            parts_reused=tally.reused_parts,
        )
