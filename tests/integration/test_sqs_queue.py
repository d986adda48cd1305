"""The SQS task queue against moto's server: moto is used because no other local SQS
server is installable here. It implements SendMessageBatch (with its size limit), long
polling, visibility, ApproximateReceiveCount and the redrive to a dead-letter queue.

SQS counts time in whole seconds, so the visibility tests wait a second or two for real.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.moto import ACCESS, MOTO_KEYS, REGION, moto_server

from s3ferry.errors import AccessDeniedError, NotFoundError, UsageError
from s3ferry.queueing import Message, QueueStats, TaskQueue, open_queue

_names = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in MOTO_KEYS.items():
        monkeypatch.setenv(name, value)


def fresh(endpoint: str, **options: float) -> TaskQueue:
    """A new queue (and its dead-letter queue) on the moto server."""
    return open_queue(
        f"sqs://q{next(_names)}",
        endpoint_url=endpoint,
        create=True,
        visibility_timeout=options.get("visibility_timeout", 30),
        max_attempts=int(options.get("max_attempts", 3)),
    )


def drain(queue: TaskQueue) -> list[Message]:
    got: list[Message] = []
    while batch := queue.receive(max_messages=10):
        got += batch
    return got


def test_send_receive_ack_and_stats(endpoint: str) -> None:
    queue = fresh(endpoint)
    queue.send(["a", "b", "c"])
    assert queue.stats() == QueueStats(queued=3, in_flight=0, done=None, dead=0)
    got = drain(queue)
    assert sorted(m.body for m in got) == ["a", "b", "c"]
    assert {m.attempts for m in got} == {1}
    assert queue.stats() == QueueStats(queued=0, in_flight=3, done=None, dead=0)
    for m in got:
        queue.ack(m)
    assert queue.stats() == QueueStats(queued=0, in_flight=0, done=None, dead=0)
    queue.close()


def test_send_batches_by_count_and_by_size(endpoint: str) -> None:
    queue = fresh(endpoint)
    many = [f"task {i}" for i in range(25)]
    big = [c * (100 * 1024) for c in "xyz"]  # three fit no single 256 KiB request
    queue.send(many + big)
    assert sorted(m.body for m in drain(queue)) == sorted(many + big)
    with pytest.raises(UsageError, match="256 KiB"):
        queue.send(["x" * (256 * 1024 + 1)])


def test_receive_long_polls_until_a_message_arrives(endpoint: str) -> None:
    queue = fresh(endpoint)
    assert queue.receive(wait_seconds=1) == []
    sender = threading.Timer(0.5, queue.send, [["late"]])
    sender.start()
    got = queue.receive(wait_seconds=10)
    sender.join()
    assert [m.body for m in got] == ["late"]


def test_visibility_timeout_expiry_redelivers_with_one_more_attempt(endpoint: str) -> None:
    queue = fresh(endpoint, visibility_timeout=1)
    queue.send(["task"])
    first = queue.receive()[0]
    second = queue.receive(wait_seconds=5)[0]
    assert (second.body, second.attempts) == ("task", 2)
    assert second.receipt != first.receipt


def test_extend_keeps_the_message_invisible(endpoint: str) -> None:
    queue = fresh(endpoint, visibility_timeout=1)
    queue.send(["long task"])
    held = queue.receive()[0]
    queue.extend(held, 30)
    assert queue.receive(wait_seconds=2) == []
    queue.ack(held)


def test_released_messages_go_to_the_dead_letter_queue_after_max_attempts(
    endpoint: str,
) -> None:
    queue = fresh(endpoint, max_attempts=2)
    queue.send(["poison", "fine"])
    for attempt in (1, 2):
        got = {m.body: m for m in drain(queue)}
        assert got["poison"].attempts == attempt
        queue.release(got["poison"])
        if "fine" in got:
            queue.ack(got["fine"])
    assert queue.receive(max_messages=10) == []  # redriven as SQS delivers it a third time
    assert queue.stats() == QueueStats(queued=0, in_flight=0, done=None, dead=1)
    assert list(queue.dead_letters()) == ["poison"]


def test_receipts_that_are_not_in_flight(endpoint: str) -> None:
    queue = fresh(endpoint)
    queue.send(["task"])
    held = queue.receive()[0]
    bogus = Message(held.body, "not-a-receipt", 1)
    queue.ack(bogus)
    queue.release(bogus)
    with pytest.raises(NotFoundError, match="no longer held"):
        queue.extend(bogus, 60)
    assert queue.stats().in_flight == 1
    queue.ack(held)
    queue.ack(held)  # a second ack is harmless
    assert queue.stats() == QueueStats(queued=0, in_flight=0, done=None, dead=0)


def test_missing_queue_is_not_found_naming_the_url(endpoint: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        open_queue("sqs://absent", endpoint_url=endpoint)
    assert str(caught.value) == "sqs://absent: no such queue"
    by_url = open_queue(f"{endpoint}/123456789012/absent")
    with pytest.raises(NotFoundError):
        by_url.stats()


def test_open_by_queue_url_uses_its_host_as_the_endpoint(endpoint: str) -> None:
    created = fresh(endpoint)
    created.send(["hello"])
    queue_url = created._queue_url  # type: ignore[attr-defined]
    assert queue_url.startswith(endpoint)
    queue = open_queue(queue_url)
    assert [m.body for m in queue.receive()] == ["hello"]
    assert queue.stats().dead == 0


def test_an_aws_queue_url_names_its_region(endpoint: str) -> None:
    import boto3

    client = boto3.client("sqs", endpoint_url=endpoint, region_name="eu-west-1", **_keys())
    client.create_queue(QueueName="in-ireland")
    assert REGION != "eu-west-1"
    queue = open_queue(
        "https://sqs.eu-west-1.amazonaws.com/123456789012/in-ireland", endpoint_url=endpoint
    )
    queue.send(["hello"])
    assert [m.body for m in queue.receive()] == ["hello"]
    assert queue.stats().dead == 0  # no redrive policy: no dead letters
    assert list(queue.dead_letters()) == []


def test_create_is_idempotent_but_refuses_other_attributes(endpoint: str) -> None:
    url = f"sqs://again{next(_names)}"
    open_queue(url, endpoint_url=endpoint, create=True).send(["kept"])
    same = open_queue(url, endpoint_url=endpoint, create=True)
    assert same.stats().queued == 1
    with pytest.raises(UsageError, match="other attributes"):
        open_queue(url, endpoint_url=endpoint, create=True, visibility_timeout=5)


@pytest.mark.parametrize(
    "url", ["sqs://", "sqs://a.fifo", "sqs://" + "n" * 81, "https://sqs.example.com/"]
)
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        open_queue(url)


def test_no_credentials_is_access_denied(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ACCESS:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_CONFIG_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AccessDeniedError, match="no AWS credentials"):
        open_queue("sqs://anything", endpoint_url=endpoint)


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": ACCESS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": ACCESS["AWS_SECRET_ACCESS_KEY"],
    }


def test_dead_letters_leave_messages_in_the_dead_letter_queue(endpoint: str) -> None:
    queue = fresh(endpoint, max_attempts=1, visibility_timeout=1)
    queue.send(["gone wrong"])
    queue.release(queue.receive()[0])
    assert queue.receive() == []
    assert list(queue.dead_letters()) == ["gone wrong"]
    time.sleep(1.1)  # read messages are hidden for the visibility timeout (1 s here)
    assert list(queue.dead_letters()) == ["gone wrong"]
    assert queue.stats().dead == 1
