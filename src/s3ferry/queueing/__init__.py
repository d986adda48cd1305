"""Who does it: task queues behind one interface, opened by URL.

- ``sqlite:///abs/path/queue.db`` (or ``sqlite://relative.db``): the embedded
  default, for many worker processes on one machine (:mod:`.sqlite`);
- ``sqs://queue-name``, an SQS queue URL
  (``https://sqs.REGION.amazonaws.com/ACCOUNT/name``), or any http(s) queue URL
  of an SQS-compatible server: Amazon SQS, for workers on many machines
  (:mod:`.sqs`).

Example::

    queue = open_queue("sqlite:///tmp/plan.db", create=True)
    queue.send(['{"v": 1}'])
    for message in queue.receive(max_messages=10, wait_seconds=5):
        ...  # do the task, calling queue.extend(message, 300) now and then
        queue.ack(message)
"""

from __future__ import annotations

from dataclasses import dataclass

from s3ferry.errors import UsageError
from s3ferry.queueing.base import Message, QueueStats, TaskQueue

__all__ = ["Message", "QueueAccess", "QueueStats", "TaskQueue", "open_queue"]


@dataclass(frozen=True, slots=True)
class QueueAccess:
    """Everything :func:`open_queue` needs, in one picklable value (worker processes
    receive it). ``visibility_seconds`` and ``max_attempts`` also shape a queue it creates."""

    url: str
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    visibility_seconds: float = 300.0
    max_attempts: int = 5

    def open(self, create: bool = False) -> TaskQueue:
        return open_queue(
            self.url,
            visibility_timeout=self.visibility_seconds,
            max_attempts=self.max_attempts,
            endpoint_url=self.endpoint_url,
            profile=self.profile,
            region=self.region,
            create=create,
        )


def open_queue(
    url: str,
    *,
    visibility_timeout: float = 300,
    max_attempts: int = 5,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    create: bool = False,
) -> TaskQueue:
    """Open (or with ``create``, create) the queue at ``url``.

    ``visibility_timeout`` (seconds) is how long a received message stays
    invisible to other receivers; 300 s covers a task of a few hundred MB
    between regions, and workers extend it for longer ones. A task delivered
    ``max_attempts`` times without an ack goes to the dead letters (on SQS
    this is set as the redrive policy when the queue is created; an existing
    queue keeps its own). ``endpoint_url``, ``profile`` and ``region`` reach
    SQS as the AWS CLI would; the SQLite queue ignores them.

    Raises:
        UsageError: a malformed or unsupported URL, or a non-positive timeout or attempt count.
        NotFoundError: the queue does not exist and ``create`` is False.
        AccessDeniedError, StoreError, LocalIOError: the queue cannot be reached.
    """
    if visibility_timeout <= 0:
        raise UsageError("visibility_timeout", f"must be positive, not {visibility_timeout}")
    if max_attempts < 1:
        raise UsageError("max_attempts", f"must be at least 1, not {max_attempts}")
    if url.startswith("sqlite://"):
        from s3ferry.queueing.sqlite import SqliteQueue

        return SqliteQueue(
            url, visibility_timeout=visibility_timeout, max_attempts=max_attempts, create=create
        )
    if url.startswith(("sqs://", "http://", "https://")):
        from s3ferry.queueing.sqs import SqsQueue

        return SqsQueue(
            url,
            visibility_timeout=visibility_timeout,
            max_attempts=max_attempts,
            endpoint_url=endpoint_url,
            profile=profile,
            region=region,
            create=create,
        )
    raise UsageError(url, "not a queue URL; use sqlite:///path/queue.db, sqs://name or an SQS URL")
