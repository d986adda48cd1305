"""The buffer pool and the byte budget: the two things that bound a transfer's memory.

A large file is read by one sequential reader into buffers taken from a
:class:`BufferPool`; a buffer returns to the pool when its part has been
sent. Small files wait in a :class:`ByteBudget` until their bytes fit.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque


class BufferPool:
    """At most ``count`` reusable buffers; :meth:`acquire` blocks while all are in use.

    Buffers are allocated on first use and keep the largest size asked of
    them, so the pool holds at most ``count x largest part size`` bytes.
    """

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("a buffer pool needs at least one buffer")
        self._free: list[bytearray] = []
        self._slots = threading.Semaphore(count)
        self._lock = threading.Lock()
        self.count = count

    def acquire(self, size: int) -> bytearray:
        """A buffer of at least ``size`` bytes (blocks until one is free)."""
        self._slots.acquire()
        with self._lock:
            buf = self._free.pop() if self._free else bytearray()
        if len(buf) < size:
            buf.extend(bytes(size - len(buf)))
        return buf

    def release(self, buf: bytearray) -> None:
        with self._lock:
            self._free.append(buf)
        self._slots.release()

    def held_bytes(self) -> int:
        """Bytes allocated in free buffers (for tests of the bound)."""
        with self._lock:
            return sum(len(b) for b in self._free)


class ByteBudget:
    """An asyncio budget of bytes in flight; an item larger than the budget takes all of it.

    Waiters are served in arrival order, so a large item is not starved by a
    stream of small ones. Taking room that is free costs no await.
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, size: int) -> int:
        """Wait until ``size`` bytes fit; returns the amount taken (pass it to :meth:`release`)."""
        take = min(size, self.limit_bytes)
        if not self._waiters and self._used + take <= self.limit_bytes:
            self._used += take
            return take
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((take, waiter))
        await waiter
        return take

    def release(self, taken: int) -> None:
        self._used -= taken
        while self._waiters and self._used + self._waiters[0][0] <= self.limit_bytes:
            take, waiter = self._waiters.popleft()
            self._used += take
            waiter.set_result(None)


class ThreadByteBudget:
    """A budget of bytes in flight shared by threads; an item larger than the budget waits
    until nothing else is in flight, then takes it all."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._used = 0
        self._room = threading.Condition()

    def acquire(self, size: int) -> int:
        """Block until ``size`` bytes fit; returns the amount taken (pass it to :meth:`release`)."""
        take = min(size, self.limit_bytes)
        with self._room:
            while self._used and self._used + take > self.limit_bytes:
                self._room.wait()
            self._used += take
        return take

    def release(self, taken: int) -> None:
        with self._room:
            self._used -= taken
            self._room.notify_all()
