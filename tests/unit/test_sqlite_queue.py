"""The SQLite task queue: delivery, visibility, attempts, dead letters, stale receipts, URLs,
and many processes draining one file.

Time is a fake clock except in the multi-process test, so no test sleeps.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from s3ferry.errors import NotFoundError, UsageError
from s3ferry.queueing import Message, QueueStats, open_queue
from s3ferry.queueing.sqlite import DEAD_PAGE_ROWS, SEND_ROWS, SqliteQueue

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier


class Clock:
    """Wall-clock seconds that move only when told to (or when the queue sleeps)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(tmp_path: Path, clock: Clock) -> Iterator[SqliteQueue]:
    q = make(tmp_path, clock)
    yield q
    q.close()


def make(tmp_path: Path, clock: Clock, **options: float) -> SqliteQueue:
    return SqliteQueue(
        f"sqlite://{tmp_path}/queue.db",
        create=True,
        clock=clock,
        sleep=clock.sleep,
        visibility_timeout=options.get("visibility_timeout", 30),
        max_attempts=int(options.get("max_attempts", 3)),
    )


def test_send_receive_ack(queue: SqliteQueue) -> None:
    queue.send(["a", "b", "c"])
    assert queue.stats() == QueueStats(queued=3, in_flight=0, done=0, dead=0)
    got = queue.receive(max_messages=2)
    assert [m.body for m in got] == ["a", "b"]
    assert [m.attempts for m in got] == [1, 1]
    assert queue.stats() == QueueStats(queued=1, in_flight=2, done=0, dead=0)
    for m in got:
        queue.ack(m)
    assert [m.body for m in queue.receive(max_messages=10)] == ["c"]
    assert queue.receive(max_messages=10) == []
    assert queue.stats() == QueueStats(queued=0, in_flight=1, done=2, dead=0)


def test_send_spans_several_transactions(queue: SqliteQueue) -> None:
    bodies = [str(i) for i in range(SEND_ROWS * 2 + 7)]
    queue.send(bodies)
    got = queue.receive(max_messages=len(bodies) + 1)
    assert [m.body for m in got] == bodies


def test_receive_waits_by_polling_and_returns_empty_at_the_deadline(
    queue: SqliteQueue, clock: Clock
) -> None:
    assert queue.receive(wait_seconds=0) == []
    assert clock.slept == 0
    assert queue.receive(wait_seconds=2) == []
    assert clock.slept == pytest.approx(2)


def test_receive_returns_a_message_that_arrives_while_it_waits(
    tmp_path: Path, clock: Clock
) -> None:
    queue = make(tmp_path, clock)

    def sleep_then_send(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.slept > 0.5:
            queue.send(["late"])

    queue._sleep = sleep_then_send
    got = queue.receive(wait_seconds=10)
    assert [m.body for m in got] == ["late"]
    assert clock.slept < 10
    queue.close()


def test_visibility_timeout_expiry_redelivers_with_one_more_attempt(
    queue: SqliteQueue, clock: Clock
) -> None:
    queue.send(["task"])
    first = queue.receive()[0]
    clock.now += 29
    assert queue.receive() == []
    clock.now += 1
    second = queue.receive()[0]
    assert (second.body, second.attempts) == ("task", 2)
    assert second.receipt != first.receipt


def test_dead_after_max_attempts(queue: SqliteQueue, clock: Clock) -> None:
    queue.send(["poison", "fine"])
    for attempt in (1, 2, 3):
        got = queue.receive(max_messages=10)
        assert [(m.body, m.attempts) for m in got] == [("poison", attempt), ("fine", attempt)][
            : len(got)
        ]
        if attempt == 1:
            queue.ack(got[1])
        clock.now += 30
    # The last attempt timed out: dead at once in the counts, before any receive looks.
    assert queue.stats() == QueueStats(queued=0, in_flight=0, done=1, dead=1)
    assert queue.receive() == []
    assert list(queue.dead_letters()) == ["poison"]
    assert list(queue.dead_letters()) == ["poison"]  # reading does not remove
    assert queue.stats() == QueueStats(queued=0, in_flight=0, done=1, dead=1)


def test_a_late_ack_on_the_last_attempt_still_counts(queue: SqliteQueue, clock: Clock) -> None:
    queue.send(["slow"])
    for _ in range(3):
        last = queue.receive()[0]
        clock.now += 30
    queue.ack(last)  # timed out, but nobody took it (nor buried it) since
    assert queue.stats() == QueueStats(queued=0, in_flight=0, done=1, dead=0)


def test_release_gives_the_message_back_now_and_counts_the_attempt(
    queue: SqliteQueue,
) -> None:
    queue.send(["task"])
    first = queue.receive()[0]
    queue.release(first)
    assert queue.stats() == QueueStats(queued=1, in_flight=0, done=0, dead=0)
    second = queue.receive()[0]
    assert second.attempts == 2
    queue.release(second)
    third = queue.receive()[0]
    queue.release(third)  # the last attempt, given back: dead
    assert queue.receive() == []
    assert queue.stats() == QueueStats(queued=0, in_flight=0, done=0, dead=1)


def test_extend_keeps_the_message_invisible(queue: SqliteQueue, clock: Clock) -> None:
    queue.send(["long task"])
    held = queue.receive()[0]
    clock.now += 25
    queue.extend(held, 60)
    clock.now += 59
    assert queue.receive() == []
    assert queue.stats().in_flight == 1
    clock.now += 1
    assert queue.receive()[0].attempts == 2


@pytest.mark.timeout(30)
def test_a_heartbeat_thread_shares_the_queue(queue: SqliteQueue) -> None:
    queue.send([f"t{i}" for i in range(200)])
    held = queue.receive()[0]
    stop = threading.Event()
    beats: list[float] = []

    def heartbeat() -> None:
        while not stop.is_set():
            queue.extend(held, 30)
            beats.append(30)

    beating = threading.Thread(target=heartbeat)
    beating.start()
    while messages := queue.receive(max_messages=7):
        for m in messages:
            queue.ack(m)
    stop.set()
    beating.join()
    queue.ack(held)
    assert beats
    assert queue.stats() == QueueStats(queued=0, in_flight=0, done=200, dead=0)


def test_stale_receipts_never_change_the_new_holders_message(
    queue: SqliteQueue, clock: Clock
) -> None:
    queue.send(["task"])
    stale = queue.receive()[0]
    clock.now += 30
    current = queue.receive()[0]

    queue.ack(stale)
    queue.release(stale)
    with pytest.raises(NotFoundError, match="no longer held"):
        queue.extend(stale, 600)
    assert queue.stats() == QueueStats(queued=0, in_flight=1, done=0, dead=0)
    assert queue.receive() == []

    queue.ack(current)
    queue.ack(current)  # a second ack is harmless
    with pytest.raises(NotFoundError):
        queue.extend(current, 600)
    queue.release(current)
    assert queue.stats() == QueueStats(queued=0, in_flight=0, done=1, dead=0)


def test_a_released_receipt_is_stale(queue: SqliteQueue) -> None:
    queue.send(["task"])
    held = queue.receive()[0]
    queue.release(held)
    queue.ack(held)
    assert queue.stats() == QueueStats(queued=1, in_flight=0, done=0, dead=0)


def test_a_receipt_from_elsewhere_is_a_usage_error(queue: SqliteQueue) -> None:
    with pytest.raises(UsageError):
        queue.ack(Message("x", "AQEB-not-ours", 1))


def test_dead_letters_are_read_in_pages_each_once(tmp_path: Path, clock: Clock) -> None:
    queue = make(tmp_path, clock, max_attempts=1)
    bodies = [f"t{i}" for i in range(DEAD_PAGE_ROWS * 2 + 5)]
    queue.send(bodies)
    assert len(queue.receive(max_messages=len(bodies))) == len(bodies)
    clock.now += 30  # all die in the same instant
    assert list(queue.dead_letters()) == bodies
    assert queue.stats().dead == len(bodies)
    queue.close()


def test_done_bodies_are_read_in_pages_in_the_order_sent(tmp_path: Path, clock: Clock) -> None:
    queue = make(tmp_path, clock)
    bodies = [f"t{i}" for i in range(DEAD_PAGE_ROWS * 2 + 5)]
    queue.send(bodies)
    received = queue.receive(max_messages=len(bodies))
    for message in reversed(received):
        if message.body != "t7":
            queue.ack(message)
    assert list(queue.done_bodies()) == [b for b in bodies if b != "t7"]
    queue.close()


def test_only_stats_reads_every_row(queue: SqliteQueue, clock: Clock) -> None:
    """Every other statement finds its rows through an index, so it stays cheap in millions."""
    queue.send([f"t{i}" for i in range(50)])
    statements: list[str] = []
    queue._db.set_trace_callback(statements.append)
    a, b, c = queue.receive(max_messages=3)
    queue.extend(a, 60)
    queue.release(b)
    queue.ack(c)
    list(queue.dead_letters())
    list(queue.done_bodies())
    queue._db.set_trace_callback(None)
    looked_up = [s for s in statements if s.lstrip().startswith(("SELECT", "UPDATE"))]
    assert len(looked_up) >= 8
    for statement in looked_up:
        plan = " ".join(row[3] for row in queue._db.execute("EXPLAIN QUERY PLAN " + statement))
        assert "SCAN" not in plan, (statement, plan)


def test_create_opens_an_existing_queue_and_open_shares_it(tmp_path: Path, clock: Clock) -> None:
    make(tmp_path, clock).send(["kept"])
    again = make(tmp_path, clock)
    other = open_queue(f"sqlite://{tmp_path}/queue.db")
    assert [m.body for m in other.receive()] == ["kept"]
    assert again.stats().in_flight == 1
    other.close()
    again.close()


def test_relative_url_is_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    open_queue("sqlite://sub.db", create=True).close()
    assert (tmp_path / "sub.db").is_file()
    open_queue("sqlite://sub.db").close()


def test_missing_database_is_an_error_naming_the_url(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/absent.db"
    with pytest.raises(NotFoundError) as caught:
        open_queue(url)
    assert str(caught.value).startswith(url)
    assert not (tmp_path / "absent.db").exists()


def test_a_file_that_is_not_a_queue_is_refused(tmp_path: Path) -> None:
    (tmp_path / "text.db").write_text("hello, I am not a database" * 100)
    with pytest.raises(UsageError, match="not an SQLite database"):
        open_queue(f"sqlite://{tmp_path}/text.db")
    import sqlite3

    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    for create in (False, True):
        with pytest.raises(UsageError, match="holds another application's tables; not a queue"):
            open_queue(f"sqlite://{tmp_path}/other.db", create=create)
    tables = sqlite3.connect(tmp_path / "other.db").execute("SELECT name FROM sqlite_master")
    assert [name for (name,) in tables] == ["t"]


@pytest.mark.parametrize(
    "url", ["ftp://x", "sqlite://", "sqlite:///", "sqlite:///tmp/", "sqs://", "queue.db", ""]
)
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        open_queue(url)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("options", [{"visibility_timeout": 0}, {"max_attempts": 0}])
def test_bad_options_are_usage_errors(tmp_path: Path, options: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        open_queue(f"sqlite://{tmp_path}/q.db", create=True, **options)  # type: ignore[arg-type]


def _drain(url: str, out: str, start: Barrier) -> None:
    """A worker process: receive and ack until the queue has nothing left, noting each body."""
    queue = open_queue(url, visibility_timeout=120)
    start.wait()
    with open(out, "w") as notes:
        while messages := queue.receive(max_messages=10):
            for message in messages:
                notes.write(f"{message.body} {message.attempts}\n")
                queue.ack(message)
    queue.close()


@pytest.mark.timeout(120)
def test_four_processes_drain_the_queue_each_message_exactly_once(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/queue.db"
    bodies = [f'{{"task": {i}}}' for i in range(2000)]
    queue = SqliteQueue(url, create=True)
    queue.send(bodies)
    queue.close()
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    outs = [tmp_path / f"worker{n}.txt" for n in range(4)]
    workers = [
        context.Process(target=_drain, args=(url, str(out), start), daemon=True) for out in outs
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(100)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    seen = [line.rsplit(" ", 1) for out in outs for line in out.read_text().splitlines()]
    assert sorted(body for body, _ in seen) == sorted(bodies)
    assert {attempts for _, attempts in seen} == {"1"}
    final = SqliteQueue(url)
    assert final.stats() == QueueStats(queued=0, in_flight=0, done=2000, dead=0)
    final.close()
