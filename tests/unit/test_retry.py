from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from s3ferry.errors import (
    AccessDeniedError,
    CredentialsExpiredError,
    NotFoundError,
    ObjectArchivedError,
    S3ferryError,
    ThrottledError,
    TransientError,
)
from s3ferry.events import Event, PaceChanged, Retried
from s3ferry.storage.retry import Kind, Pacer, Retrier, RetryPolicy, classify


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(errors: list[S3ferryError], result: str = "ok") -> Callable[[], str]:
    """A request raising ``errors`` in turn, then returning ``result``."""
    pending = list(errors)

    def request() -> str:
        if pending:
            raise pending.pop(0)
        return result

    return request


def retrier(clock: Clock, events: list[Event], **kwargs: object) -> Retrier:
    r = Retrier(
        Pacer("http://s3", clock=clock),
        sleep=clock.sleep,
        clock=clock,
        draw=lambda: 1.0,
        **kwargs,  # type: ignore[arg-type]
    )
    r.sink = events.append
    return r


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ThrottledError("s", "SlowDown"), Kind.THROTTLED),
        (TransientError("s", "reset"), Kind.TRANSIENT),
        (CredentialsExpiredError("s", "ExpiredToken"), Kind.EXPIRED),
        (AccessDeniedError("s", "403"), Kind.PERMANENT),
        (NotFoundError("s", "404"), Kind.PERMANENT),
        (ObjectArchivedError("s", "InvalidObjectState"), Kind.PERMANENT),
    ],
)
def test_errors_are_classified_by_their_type(error: S3ferryError, kind: Kind) -> None:
    assert classify(error) is kind


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0)
    assert [policy.delay_s(n, 1.0) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert policy.delay_s(3, 0.5) == 0.2


def test_transient_failures_are_retried_and_reported() -> None:
    clock, events = Clock(), []
    r = retrier(clock, events)
    assert r.call(failing([TransientError("s3://b/k", "reset")] * 2)) == "ok"
    assert clock.slept == [0.1, 0.2]
    assert [e for e in events if isinstance(e, Retried)] == [
        Retried("s3://b/k", "transient", 1, 0.1, "reset"),
        Retried("s3://b/k", "transient", 2, 0.2, "reset"),
    ]


def test_permanent_errors_are_raised_at_once() -> None:
    clock, events = Clock(), []
    with pytest.raises(AccessDeniedError):
        retrier(clock, events).call(failing([AccessDeniedError("s3://b", "wrong key")]))
    assert clock.slept == [] and events == []


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    clock, events = Clock(), []
    r = retrier(clock, events, policy=RetryPolicy(max_attempts=3))
    errors: list[S3ferryError] = [TransientError("s", f"try {n}") for n in (1, 2, 3, 4)]
    with pytest.raises(TransientError, match="try 3"):
        r.call(failing(errors))
    assert len(clock.slept) == 2


def test_gives_up_when_the_next_wait_passes_the_deadline() -> None:
    clock, events = Clock(), []
    r = retrier(clock, events, policy=RetryPolicy(max_delay_s=10, deadline_s=0.5))
    with pytest.raises(TransientError):
        r.call(failing([TransientError("s", "down")] * 10))
    assert clock.slept == [0.1, 0.2]  # a third wait (0.4 s) would end at 0.7 s


def test_expired_credentials_are_refreshed_once_then_raised() -> None:
    clock, events = Clock(), []
    refreshed: list[bool] = []
    r = retrier(clock, events, refresh=lambda: refreshed.append(True))
    expired = CredentialsExpiredError("s", "ExpiredToken")
    assert r.call(failing([expired])) == "ok"
    with pytest.raises(CredentialsExpiredError):
        r.call(failing([expired, expired]))
    assert len(refreshed) == 2 and clock.slept == [0.0, 0.0]


def test_throttling_halves_the_limit_once_per_window_and_success_grows_it() -> None:
    clock = Clock()
    pacer = Pacer("http://s3", max_limit=64, window_s=1.0, clock=clock)
    for _ in range(40):
        pacer.acquire()
    assert pacer.throttled() == 20
    assert pacer.throttled() is None  # same window
    clock.now += 1.0
    assert pacer.throttled() == 10
    for _ in range(40):
        pacer.release(succeeded=False)
    # About one more per round of ``limit`` successes.
    grown = [pacer.release(succeeded=True) for _ in range(12) if pacer.acquire() is None]
    assert [g for g in grown if g is not None] == [11] and pacer.slots == 11


def test_throttled_retries_lower_the_pace_and_report_it() -> None:
    clock, events = Clock(), []
    r = retrier(clock, events)
    assert r.call(failing([ThrottledError("s3://b/k", "SlowDown")])) == "ok"
    assert PaceChanged("http://s3", 1) in events
    assert Retried("s3://b/k", "throttled", 1, 0.1, "SlowDown") in events


@pytest.mark.timeout(10)
def test_a_thread_waits_for_a_slot_and_gets_it_when_one_is_released() -> None:
    pacer = Pacer("http://s3", max_limit=1)
    pacer.acquire()
    got = threading.Event()

    def waiter() -> None:
        pacer.acquire()
        got.set()

    threading.Thread(target=waiter, daemon=True).start()
    assert not got.wait(0.05)
    pacer.release(succeeded=True)
    assert got.wait(5)


@pytest.mark.timeout(10)
def test_a_blocking_request_on_an_event_loop_thread_never_waits_for_that_loops_slots() -> None:
    pacer = Pacer("http://s3", max_limit=1)

    async def main() -> None:
        await pacer.acquire_async()
        pacer.acquire()  # a listing page fetched by a generator the loop consumes

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_tasks_wait_on_the_event_loop_and_cancelled_waiters_give_their_slot_back() -> None:
    pacer = Pacer("http://s3", max_limit=1)

    async def main() -> None:
        pacer.acquire()
        cancelled = asyncio.create_task(pacer.acquire_async())
        waiting = asyncio.create_task(pacer.acquire_async())
        await asyncio.sleep(0.01)
        cancelled.cancel()
        threading.Thread(target=pacer.release, args=(True,)).start()
        await asyncio.wait_for(waiting, 5)
        pacer.release(succeeded=True)
        await asyncio.wait_for(pacer.acquire_async(), 5)

    asyncio.run(main())


def test_async_requests_are_retried() -> None:
    clock, events = Clock(), []
    r = retrier(clock, events, policy=RetryPolicy(base_delay_s=0.001))
    request = failing([TransientError("s", "reset")])

    async def call() -> str:
        return request()

    assert asyncio.run(r.call_async(call)) == "ok"
    assert [e.kind for e in events if isinstance(e, Retried)] == ["transient"]
