"""Drive a stream of work through the two lanes of a job.

Small items run as asyncio tasks on the calling thread (at most
``small_workers`` at once); large items go through a bounded hand-off queue
to ``large_threads`` threads. The stream is consumed lazily: the caller's
iterator is only advanced when a lane has room, which is the back-pressure
that keeps memory independent of the number of items.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# Large items waiting for a lane thread; each is a few hundred bytes.
HANDOFF_DEPTH = 16


class _LargeLane(Generic[T]):
    def __init__(self, run: Callable[[T], None], threads: int) -> None:
        self._queue: queue.Queue[T | None] = queue.Queue(HANDOFF_DEPTH)
        self._run = run
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"s3ferry-large-{i}", daemon=True)
            for i in range(threads)
        ]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._run(item)
            except BaseException as e:  # a bug: re-raised on the caller's thread at the end
                self._errors.append(e)

    async def put(self, item: T) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            await asyncio.to_thread(self._queue.put, item)

    async def close(self) -> None:
        for _ in self._threads:
            await self.put(None)  # type: ignore[arg-type]
        for t in self._threads:
            await asyncio.to_thread(t.join)
        if self._errors:
            raise self._errors[0]


async def drive(
    items: Iterable[tuple[bool, T]],
    small: Callable[[T], Coroutine[Any, Any, None]],
    large: Callable[[T], None],
    small_workers: int,
    large_threads: int,
) -> None:
    """Run ``small(item)`` or ``large(item)`` for every ``(is_large, item)``; wait for all."""
    slots = asyncio.Semaphore(small_workers)
    tasks: set[asyncio.Task[None]] = set()
    lane: _LargeLane[T] = _LargeLane(large, large_threads)

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        slots.release()

    try:
        for is_large, item in items:
            if is_large:
                await lane.put(item)
                continue
            await slots.acquire()
            task = asyncio.get_running_loop().create_task(small(item))
            tasks.add(task)
            task.add_done_callback(finished)
        await asyncio.gather(*list(tasks))
    finally:
        await lane.close()
