"""One retry policy and one pacer for every request s3ferry sends to a store.

Errors are classified once, from the s3ferry errors the store translated them into:

=============================  ==========  ===============================================
error                          kind        what happens
=============================  ==========  ===============================================
ThrottledError (SlowDown, 503,  throttled   the endpoint's pacer lowers its limit; back off,
429, also inside a 200)                     retry
TransientError (5xx, reset,     transient   back off, retry
timeout, truncated body)
CredentialsExpiredError         expired     refresh the credentials once and retry at once;
                                            expired again: raised
anything else (403, 404,        permanent   raised at once
InvalidObjectState, ...)
=============================  ==========  ===============================================

Back-off is exponential with full jitter: after attempt ``n`` fails, wait
``uniform(0, min(max_delay_s, base_delay_s * 2**(n-1)))`` seconds. A request
gives up (raising its last error) after ``max_attempts`` attempts, or when the
next wait would end more than ``deadline_s`` seconds after its first failure.

The pacer bounds the requests in flight to one endpoint for one set of
credentials, across every thread and event loop of the process (additive
increase, multiplicative decrease): a throttled answer halves the limit (at
most once per :data:`DECREASE_WINDOW_S`, so one burst of SlowDowns counts
once), each success adds ``1/limit`` (about one per round of ``limit``
requests) until the limit is back at its ceiling, where the pacer costs a lock
and a comparison per request.
"""

from __future__ import annotations

import functools
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from s3ferry.errors import CredentialsExpiredError, S3ferryError, ThrottledError, TransientError
from s3ferry.events import EventSink, PaceChanged, Retried, discard

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")
P = ParamSpec("P")

# The pacer's ceiling: more requests than any job keeps in flight, so an
# unthrottled process is never held back by it.
MAX_LIMIT = 1024
# A burst of SlowDowns answering requests sent together is one signal, not many.
DECREASE_WINDOW_S = 1.0


class Kind(Enum):
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    EXPIRED = "expired"
    PERMANENT = "permanent"


def classify(error: BaseException) -> Kind:
    """What kind of failure ``error`` is (see the module docstring)."""
    if isinstance(error, ThrottledError):
        return Kind.THROTTLED
    if isinstance(error, TransientError):
        return Kind.TRANSIENT
    if isinstance(error, CredentialsExpiredError):
        return Kind.EXPIRED
    return Kind.PERMANENT


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds of the retries of one request.

    The defaults survive a store failing one request in four for minutes
    (0.25**10: one request in a million gives up) while a store that is down
    fails a job within ``deadline_s``.
    """

    max_attempts: int = 10
    base_delay_s: float = 0.1
    max_delay_s: float = 20.0
    deadline_s: float = 300.0

    def delay_s(self, attempt: int, draw: float) -> float:
        """The wait after attempt ``attempt`` (1-based) failed; ``draw`` is uniform in [0, 1)."""
        return draw * min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))


class Pacer:
    """The requests in flight allowed to one endpoint for one set of credentials; thread-safe,
    and usable from event loops (:meth:`acquire_async`) and threads (:meth:`acquire`) at once.

    Every acquire must be followed by exactly one :meth:`release`.
    """

    def __init__(
        self,
        endpoint: str,
        max_limit: int = MAX_LIMIT,
        window_s: float = DECREASE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self._max = float(max_limit)
        self._limit = float(max_limit)
        self.slots = max_limit  # int(self._limit): what acquire compares with
        self._window_s = window_s
        self._clock = clock
        self._last_decrease = -window_s
        self._in_flight = 0
        self._waiters: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take a slot, blocking this thread while the limit is reached.

        On a thread running an event loop it never blocks (it takes a slot over
        the limit): the slots it would wait for may be held by that loop's own
        tasks, which could then never finish.
        """
        with self._lock:
            if self._in_flight < self.slots and not self._waiters:
                self._in_flight += 1
                return
            # No loop runs where asyncio was never imported (a listing, a no-op sync).
            aio = sys.modules.get("asyncio")
            if aio is not None and aio._get_running_loop() is not None:
                self._in_flight += 1
                return
            handed = threading.Lock()
            handed.acquire()
            self._waiters.append(handed.release)
        handed.acquire()  # a releasing request hands its slot over

    async def acquire_async(self) -> None:
        """Take a slot, suspending this task (not the event loop) while the limit is reached."""
        import asyncio

        with self._lock:
            if self._in_flight < self.slots and not self._waiters:
                self._in_flight += 1
                return
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()

            def wake() -> None:
                loop.call_soon_threadsafe(_resolve, future)

            self._waiters.append(wake)
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                handed = wake not in self._waiters
                if not handed:
                    self._waiters.remove(wake)
            if handed:
                self.release(succeeded=False)
            raise

    def release(self, succeeded: bool) -> int | None:
        """Give the slot back; a success grows the limit. Returns the new limit if it changed."""
        changed = None
        with self._lock:
            self._in_flight -= 1
            if succeeded and self._limit < self._max:
                self._limit = min(self._max, self._limit + 1 / self._limit)
                if int(self._limit) != self.slots:
                    self.slots = changed = int(self._limit)
            if not self._waiters:
                return changed
            wakes = []
            while self._waiters and self._in_flight < self.slots:
                self._in_flight += 1
                wakes.append(self._waiters.popleft())
        for wake in wakes:
            wake()
        return changed

    def throttled(self) -> int | None:
        """The store throttled a request still holding its slot: halve the limit (from the
        requests in flight, if fewer), at most once per window. Returns the new limit if it
        changed."""
        now = self._clock()
        with self._lock:
            if now - self._last_decrease < self._window_s:
                return None
            self._last_decrease = now
            self._limit = max(1.0, min(self._limit, self._in_flight) / 2)
            if int(self._limit) == self.slots:
                return None
            self.slots = int(self._limit)
            return self.slots


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# One pacer per (endpoint, access key) in the process: every store, thread and
# event loop talking to the same endpoint as the same identity shares its limit.
_pacers: dict[tuple[str, str], Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(endpoint: str, access_key: str) -> Pacer:
    """The process's pacer for ``endpoint`` and ``access_key`` (created on first use)."""
    with _pacers_lock:
        pacer = _pacers.get((endpoint, access_key))
        if pacer is None:
            pacer = _pacers[endpoint, access_key] = Pacer(endpoint)
        return pacer


def _nothing() -> None:
    """No credentials to refresh."""


class Retrier:
    """Runs requests under a :class:`RetryPolicy` and a :class:`Pacer`; thread-safe.

    ``refresh`` renews the credentials after the store called them expired.
    ``sink`` receives :class:`Retried` and :class:`PaceChanged` events; a job
    sets it to count them in its report. ``sleep``, ``clock`` and ``draw``
    (uniform in [0, 1)) are injected so tests need no real waits.
    """

    def __init__(
        self,
        pacer: Pacer,
        policy: RetryPolicy = RetryPolicy(),
        refresh: Callable[[], None] = _nothing,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.pacer = pacer
        self.policy = policy
        self.sink: EventSink = discard
        self._refresh = refresh
        self._sleep = sleep
        self._clock = clock
        self._draw = draw

    def call(self, request: Callable[[], T]) -> T:
        """``request()``, sent again while it fails in a retryable way (see the module
        docstring); its last error is raised when the policy gives up."""
        pacer = self.pacer
        pacer.acquire()
        failures: _Failures | None = None
        while True:
            try:
                result = request()
            except S3ferryError as e:
                failures = failures or _Failures(self._clock())
                delay = self._next_delay(e, failures)
                pacer.release(succeeded=False)
                self._sleep(delay)
                pacer.acquire()
                continue
            except BaseException:
                pacer.release(succeeded=False)
                raise
            if pacer.release(succeeded=True) is not None:
                self.sink(PaceChanged(pacer.endpoint, pacer.slots))
            return result

    async def call_async(self, request: Callable[[], Awaitable[T]]) -> T:
        """:meth:`call` for a coroutine: waits suspend the task, never the event loop."""
        import asyncio

        pacer = self.pacer
        await pacer.acquire_async()
        failures: _Failures | None = None
        while True:
            try:
                result = await request()
            except S3ferryError as e:
                failures = failures or _Failures(self._clock())
                delay = self._next_delay(e, failures)
                pacer.release(succeeded=False)
                await asyncio.sleep(delay)
                await pacer.acquire_async()
                continue
            except BaseException:
                pacer.release(succeeded=False)
                raise
            if pacer.release(succeeded=True) is not None:
                self.sink(PaceChanged(pacer.endpoint, pacer.slots))
            return result

    def _next_delay(self, error: S3ferryError, failures: _Failures) -> float:
        """The wait before sending again after ``error`` (whose request still holds its
        slot); raises ``error`` (releasing the slot) when it must not be sent again."""
        try:
            delay = self._decide(error, failures)
        except BaseException:  # ``error`` given up on, or a failing sink or refresh
            self.pacer.release(succeeded=False)
            raise
        failures.count += 1
        return delay

    def _decide(self, error: S3ferryError, failures: _Failures) -> float:
        kind = classify(error)
        policy = self.policy
        if kind is Kind.PERMANENT or failures.count >= policy.max_attempts:
            raise error
        if kind is Kind.EXPIRED:
            if failures.refreshed:
                raise error
            self._refresh()
            failures.refreshed = True
            delay = 0.0
        else:
            delay = policy.delay_s(failures.count, self._draw())
            if self._clock() + delay - failures.first_s > policy.deadline_s:
                raise error
        if kind is Kind.THROTTLED and (limit := self.pacer.throttled()) is not None:
            self.sink(PaceChanged(self.pacer.endpoint, limit))
        self.sink(Retried(error.subject, kind.value, failures.count, delay, error.message))
        return delay


@dataclass(slots=True)
class _Failures:
    """The failed attempts of one request so far."""

    first_s: float  # clock when the first attempt failed
    count: int = 1
    refreshed: bool = False


class HasRetrier(Protocol):
    retrier: Retrier


S = TypeVar("S", bound=HasRetrier)


def retried(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """Decorate a method making ONE request so it goes through ``self.retrier``."""

    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.retrier.call(lambda: method(self, *args, **kwargs))

    functools.update_wrapper(wrapper, method)
    return wrapper


def retried_async(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """:func:`retried` for a coroutine method."""

    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.retrier.call_async(lambda: method(self, *args, **kwargs))

    functools.update_wrapper(wrapper, method)
    return wrapper
