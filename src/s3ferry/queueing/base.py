"""The task queue seam: what a planner sends and a worker receives, whatever the backend.

Delivery is at least once. A received message is invisible to other
receivers for the queue's visibility timeout; a worker that takes longer keeps
it with :meth:`TaskQueue.extend`, and one that stops early gives it back with
:meth:`TaskQueue.release`. A message not acked in time is delivered again with
``attempts + 1``; once it has been delivered ``max_attempts`` times and is due
again, it goes to the dead letters instead. Tasks must therefore be idempotent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery of a task.

    ``receipt`` names this delivery, not the task: after the visibility timeout
    passes and the task is delivered again, the old receipt is stale.
    """

    body: str  # the task JSON (opaque to the queue)
    receipt: str  # handle for extend/ack/release
    attempts: int  # 1 on first delivery


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts of tasks by state.

    ``queued`` are ready to deliver, ``in_flight`` delivered and not yet acked
    (within their visibility timeout), ``done`` acked (None where the backend
    cannot know: SQS deletes acked messages), ``dead`` given up on.
    """

    queued: int
    in_flight: int
    done: int | None
    dead: int


class TaskQueue(Protocol):
    """A queue of task bodies (strings) shared by a planner and many workers.

    Every method raises :class:`~s3ferry.errors.S3ferryError` subclasses only:
    ``NotFoundError`` (no such queue), ``AccessDeniedError``,
    ``TransientError`` (throttling, a busy database, a broken connection; try
    again), ``StoreError`` for other refusals.
    """

    url: str

    def send(self, bodies: Sequence[str]) -> None:
        """Enqueue ``bodies`` (batched internally); each is delivered at least once."""
        ...

    def receive(self, max_messages: int = 1, wait_seconds: float = 0) -> list[Message]:
        """Up to ``max_messages`` messages, waiting up to ``wait_seconds`` for the first.

        Returns an empty list when nothing arrived in time. Each message is
        invisible to other receivers for the visibility timeout.
        """
        ...

    def extend(self, message: Message, seconds: float) -> None:
        """Heartbeat: keep ``message`` invisible for ``seconds`` from now."""
        ...

    def ack(self, message: Message) -> None:
        """The task is done: never deliver it again."""
        ...

    def release(self, message: Message) -> None:
        """Give ``message`` back now (e.g. on SIGTERM); the delivery still counts as an attempt."""
        ...

    def stats(self) -> QueueStats:
        """Counts of tasks by state (approximate on SQS)."""
        ...

    def dead_letters(self) -> Iterator[str]:
        """Bodies of the tasks given up on, without removing them."""
        ...

    def done_bodies(self) -> Iterator[str]:
        """Bodies of the tasks done, in the order they were sent; nothing where the backend
        does not keep them (``stats().done`` is then ``None``)."""
        ...

    def close(self) -> None:
        """Release connections; the queue object is unusable afterwards."""
        ...
