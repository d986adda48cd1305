"""Amazon SQS (or an SQS-compatible server) as the task queue, for workers on many machines.

URLs: ``sqs://queue-name`` (found with GetQueueUrl where the AWS CLI would
look: profile, region and endpoint from the arguments, the environment or the
config files), ``https://sqs.REGION.amazonaws.com/ACCOUNT/name`` (its region
wins), or any other http(s) queue URL (its scheme and host are the endpoint
unless ``endpoint_url`` names one).

With ``create=True`` the queue and a dead-letter queue ``<name>-dead`` are
created, the first with ``VisibilityTimeout`` and a ``RedrivePolicy`` of
``maxReceiveCount = max_attempts``; both keep messages for 14 days, SQS's
maximum, since a migration may outlast the default 4. Creating an existing
queue with the same attributes is harmless.

What SQS decides, and so differs from the SQLite queue:

- counts are SQS's approximate ones, and ``done`` is None (acked messages are deleted);
- ``attempts`` is ``ApproximateReceiveCount``; ``max_attempts`` acts only
  through the redrive policy, which an existing queue keeps as it is;
- times are whole seconds: visibility is rounded up (and sent with every
  ReceiveMessage, so this opener's timeout applies), waits are rounded down,
  and a wait over 20 s is several long polls;
- ``receive`` returns at most 10 messages; ``send`` batches 10 messages or
  256 KiB, and a failed batch raises after earlier batches were sent (send
  again: delivery is at least once anyway);
- stale receipts: ``ack`` and ``release`` ignore SQS's "not in flight" and
  "invalid receipt" answers, ``extend`` raises ``NotFoundError`` on them;
  AWS documents that DeleteMessage with an old receipt succeeds but may
  delete nothing, and some servers (moto) do delete;
- ``dead_letters`` receives from the dead-letter queue without deleting: the
  messages read are hidden while it iterates and made visible again at the
  end (it keeps their receipts meanwhile), and every read adds to their
  receive count.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from s3ferry.errors import (
    AccessDeniedError,
    NotFoundError,
    StoreError,
    TransientError,
    UsageError,
)
from s3ferry.queueing.base import Message, QueueStats
from s3ferry.storage.clients import DEFAULT_REGION

MAX_BATCH_MESSAGES = 10  # SendMessageBatch and ReceiveMessage take at most 10
MAX_BATCH_BYTES = 256 * 1024  # the classic SQS message and batch size limit
LONG_POLL_MAX_S = 20  # the longest WaitTimeSeconds SQS accepts
MAX_VISIBILITY_S = 12 * 3600
RETENTION_S = 14 * 24 * 3600
DEAD_SUFFIX = "-dead"

_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_AWS_HOST = re.compile(r"sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?")

_NOT_FOUND = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_EXISTS = {"QueueAlreadyExists", "QueueNameExists"}
_LOST_RECEIPT = {
    "ReceiptHandleIsInvalid",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
}
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "ExpiredToken",
    "InvalidClientTokenId",
    "InvalidSecurity",
    "MissingAuthenticationToken",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
}
_TRANSIENT = {
    "AWS.SimpleQueueService.QueueDeletedRecently",
    "InternalError",
    "InternalFailure",
    "KmsThrottled",
    "OverLimit",
    "QueueDeletedRecently",
    "RequestThrottled",
    "ServiceUnavailable",
    "ThrottlingException",
}


class SqsQueue:
    """A :class:`~s3ferry.queueing.base.TaskQueue` on SQS (see the module docstring).

    Safe to share between threads (botocore clients are).

    Raises:
        UsageError: a malformed URL or queue name, an unknown profile, or
            ``create`` on a queue that exists with other attributes.
        NotFoundError: the queue does not exist (named queues are looked up at once;
            a queue given by URL on first use).
        AccessDeniedError, TransientError, StoreError: as SQS answers.
    """

    def __init__(
        self,
        url: str,
        *,
        visibility_timeout: float = 300,
        max_attempts: int = 5,
        endpoint_url: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        create: bool = False,
    ) -> None:
        self.url = url
        name, queue_url, url_region, url_endpoint = _parse(url)
        if create and len(name) + len(DEAD_SUFFIX) > 80:
            raise UsageError(
                url, f"queue name too long for a '{name}{DEAD_SUFFIX}' dead-letter queue"
            )
        self._visibility_s = _whole_seconds(visibility_timeout)
        self._client = _client(profile, url_region or region, endpoint_url or url_endpoint)
        if create:
            self._queue_url = self._create(name, max_attempts)
        else:
            self._queue_url = (
                queue_url or self._request("get_queue_url", QueueName=name)["QueueUrl"]
            )

    def _create(self, name: str, max_attempts: int) -> str:
        retention = {"MessageRetentionPeriod": str(RETENTION_S)}
        dead_url = self._request(
            "create_queue", QueueName=name + DEAD_SUFFIX, Attributes=retention
        )["QueueUrl"]
        dead_arn = self._attributes(dead_url, "QueueArn")["QueueArn"]
        redrive = {"deadLetterTargetArn": dead_arn, "maxReceiveCount": str(max_attempts)}
        attributes = {
            **retention,
            "VisibilityTimeout": str(self._visibility_s),
            "RedrivePolicy": json.dumps(redrive),
        }
        return str(self._request("create_queue", QueueName=name, Attributes=attributes)["QueueUrl"])

    def send(self, bodies: Sequence[str]) -> None:
        """Enqueue ``bodies`` with SendMessageBatch (10 messages or 256 KiB a request).

        Raises:
            UsageError: a body is over 256 KiB.
            StoreError: SQS refused some messages (``TransientError`` when it may pass).
        """
        for batch in self._batches(bodies):
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(batch)]
            failed = self._request(
                "send_message_batch", QueueUrl=self._queue_url, Entries=entries
            ).get("Failed")
            if failed:
                first = failed[0]
                kind = StoreError if first.get("SenderFault") else TransientError
                raise kind(
                    self.url,
                    f"{len(failed)} of {len(batch)} messages not sent:"
                    f" {first.get('Code')}: {first.get('Message', '')}",
                )

    def _batches(self, bodies: Sequence[str]) -> Iterator[list[str]]:
        batch: list[str] = []
        size = 0
        for body in bodies:
            length = len(body.encode())
            if length > MAX_BATCH_BYTES:
                raise UsageError(self.url, f"a task of {length} bytes is over SQS's 256 KiB limit")
            if len(batch) == MAX_BATCH_MESSAGES or size + length > MAX_BATCH_BYTES:
                yield batch
                batch, size = [], 0
            batch.append(body)
            size += length
        if batch:
            yield batch

    def receive(self, max_messages: int = 1, wait_seconds: float = 0) -> list[Message]:
        """Up to ``min(max_messages, 10)`` messages, long polling up to ``wait_seconds``."""
        deadline = time.monotonic() + wait_seconds
        while True:
            wait = min(LONG_POLL_MAX_S, max(0, int(deadline - time.monotonic())))
            response = self._request(
                "receive_message",
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(max_messages, MAX_BATCH_MESSAGES),
                WaitTimeSeconds=wait,
                VisibilityTimeout=self._visibility_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            messages = [
                Message(
                    m["Body"], m["ReceiptHandle"], int(m["Attributes"]["ApproximateReceiveCount"])
                )
                for m in response.get("Messages", ())
            ]
            if messages or wait == 0:
                return messages

    def extend(self, message: Message, seconds: float) -> None:
        """ChangeMessageVisibility to ``seconds`` (rounded up) from now.

        Raises:
            NotFoundError: SQS no longer knows the receipt as in flight.
        """
        self._request(
            "change_message_visibility",
            QueueUrl=self._queue_url,
            ReceiptHandle=message.receipt,
            VisibilityTimeout=_whole_seconds(seconds),
        )

    def ack(self, message: Message) -> None:
        """DeleteMessage; a receipt SQS calls stale or invalid is ignored."""
        self._request(
            "delete_message",
            lost_ok=True,
            QueueUrl=self._queue_url,
            ReceiptHandle=message.receipt,
        )

    def release(self, message: Message) -> None:
        """ChangeMessageVisibility to 0; a receipt SQS calls stale or invalid is ignored."""
        self._request(
            "change_message_visibility",
            lost_ok=True,
            QueueUrl=self._queue_url,
            ReceiptHandle=message.receipt,
            VisibilityTimeout=0,
        )

    def stats(self) -> QueueStats:
        """SQS's approximate counts; ``dead`` counts the dead-letter queue (0 without one)."""
        queued, in_flight = self._counts(self._queue_url)
        dead = sum(self._counts(self._dead_url)) if self._dead_url else 0
        return QueueStats(queued=queued, in_flight=in_flight, done=None, dead=dead)

    def done_bodies(self) -> Iterator[str]:
        """Nothing: SQS deletes a message once it is acknowledged."""
        return iter(())

    def dead_letters(self) -> Iterator[str]:
        """Bodies in the dead-letter queue, left there (see the module docstring for the limits).

        Each message read is hidden while the iteration runs and made visible
        again when it ends, so the next reader sees them all.
        """
        if not self._dead_url:
            return
        seen: list[str] = []
        try:
            while True:
                # A long poll asks every SQS server, so an empty answer means an empty queue.
                response = self._request(
                    "receive_message",
                    QueueUrl=self._dead_url,
                    MaxNumberOfMessages=MAX_BATCH_MESSAGES,
                    WaitTimeSeconds=1,
                    VisibilityTimeout=self._visibility_s,
                )
                messages = response.get("Messages", ())
                if not messages:
                    return
                for m in messages:
                    seen.append(m["ReceiptHandle"])
                    yield m["Body"]
        finally:
            for i in range(0, len(seen), MAX_BATCH_MESSAGES):
                entries = [
                    {"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": 0}
                    for n, r in enumerate(seen[i : i + MAX_BATCH_MESSAGES])
                ]
                self._request(
                    "change_message_visibility_batch", QueueUrl=self._dead_url, Entries=entries
                )

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    @cached_property
    def _dead_url(self) -> str | None:
        """The dead-letter queue named by the redrive policy, or None."""
        policy = self._attributes(self._queue_url, "RedrivePolicy").get("RedrivePolicy")
        if not policy:
            return None
        *_, account, name = json.loads(policy)["deadLetterTargetArn"].split(":")
        found = self._request("get_queue_url", QueueName=name, QueueOwnerAWSAccountId=account)
        return str(found["QueueUrl"])

    def _counts(self, queue_url: str) -> tuple[int, int]:
        attributes = self._attributes(
            queue_url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
        )
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def _attributes(self, queue_url: str, *names: str) -> dict[str, str]:
        response = self._request("get_queue_attributes", QueueUrl=queue_url, AttributeNames=names)
        return dict(response.get("Attributes", {}))

    def _request(self, operation: str, *, lost_ok: bool = False, **params: Any) -> dict[str, Any]:
        """Call ``operation``, translating botocore's errors (the only place that sees them)."""
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**params)
        except Exception as e:  # noqa: BLE001 - classified below, re-raised if unknown
            if lost_ok and _code(e) in _LOST_RECEIPT:
                return {}
            error = _translate(e, self.url)
            if error is None:
                raise
            raise error from e
        return response


def _parse(url: str) -> tuple[str, str | None, str | None, str | None]:
    """``(name, queue URL or None, region from the URL, endpoint from the URL)``."""
    if url.startswith("sqs://"):
        name = url.removeprefix("sqs://")
        if not _NAME.fullmatch(name):
            raise UsageError(url, "not an SQS queue name (1-80 of A-Z a-z 0-9 _ -; no FIFO)")
        return name, None, None, None
    parts = urlsplit(url)
    name = parts.path.rstrip("/").rpartition("/")[2]
    if not parts.hostname or not _NAME.fullmatch(name):
        raise UsageError(
            url, "not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
        )
    aws = _AWS_HOST.fullmatch(parts.hostname)
    if aws:
        return name, url, aws.group(1), None
    return name, url, None, f"{parts.scheme}://{parts.netloc}"


def _client(profile: str | None, region: str | None, endpoint_url: str | None) -> Any:
    """A botocore SQS client resolved as the AWS CLI would."""
    import botocore.exceptions
    import botocore.session
    from botocore.config import Config

    try:
        session = botocore.session.Session(profile=profile)
        region = region or session.get_config_variable("region") or DEFAULT_REGION
    except botocore.exceptions.ProfileNotFound as e:
        raise UsageError(f"--profile {profile}", "no such profile") from e
    return session.create_client(
        "sqs",
        region_name=region,
        endpoint_url=endpoint_url,
        # A long poll holds the connection for up to 20 s; read_timeout must outlast it.
        config=Config(retries={"mode": "standard", "max_attempts": 5}, read_timeout=60),
    )


def _whole_seconds(seconds: float) -> int:
    return min(MAX_VISIBILITY_S, max(0, math.ceil(seconds)))


def _code(e: Exception) -> str | None:
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code", "")) or None


def _translate(e: Exception, url: str) -> Exception | None:
    """Our error for a botocore exception, or None for anything else."""
    import botocore.exceptions

    text = " ".join(str(e).split())
    code = _code(e)
    if code is not None:
        return _by_code(code, getattr(e, "response", {}), text, url)
    if isinstance(e, botocore.exceptions.NoCredentialsError):
        return AccessDeniedError(
            url, "no AWS credentials found (environment, profile or config files)"
        )
    if isinstance(e, botocore.exceptions.ParamValidationError):
        return UsageError(url, text)
    if isinstance(e, botocore.exceptions.BotoCoreError):
        return TransientError(url, text)
    return None


def _by_code(code: str, response: dict[str, Any], text: str, url: str) -> Exception:
    if code in _NOT_FOUND:
        return NotFoundError(url, "no such queue")
    if code in _LOST_RECEIPT:
        return NotFoundError(
            url, "message no longer held by this receipt (acked or delivered again)"
        )
    if code in _EXISTS:
        return UsageError(url, "queue exists with other attributes; open it without create")
    if code in _DENIED:
        return AccessDeniedError(url, text)
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    if code in _TRANSIENT or status >= 500:
        return TransientError(url, text)
    return StoreError(url, text)
