"""Drive a stream of work through the two lanes of a job.

Small items run as asyncio tasks on the calling thread (at most
``small_workers`` at once); large items go through a bounded hand-off queue
to ``large_threads`` threads. The stream is consumed lazily: the caller's
iterator is only advanced when a lane has room, which is the back-pressure
that keeps memory independent of the number of items.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from s3ferry.config import StoreConfig, TransferConfig
from s3ferry.errors import UsageError
from s3ferry.events import EventSink, discard
from s3ferry.locations import S3Url
from s3ferry.storage.s3 import S3Store
from s3ferry.transfer.journal import Journal
from s3ferry.transfer.recorder import Recorder

T = TypeVar("T")

# Large items waiting for a lane thread; each is a few hundred bytes.
HANDOFF_DEPTH = 16
# Listed entries are handed over in batches to keep queue overhead per entry low.
PREFETCH_BATCH = 1000


class _LargeLane(Generic[T]):
    def __init__(self, run: Callable[[T], None], threads: int) -> None:
        self._queue: queue.Queue[T | None] = queue.Queue(HANDOFF_DEPTH)
        self._run = run
        self._errors: list[BaseException] = []
        self._closing = False
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
            import asyncio

            await asyncio.to_thread(self._queue.put, item)

    async def close(self) -> None:
        """Let the threads finish their queue and stop; a second call only waits."""
        import asyncio

        if not self._closing:
            self._closing = True
            for _ in self._threads:
                await self.put(None)  # type: ignore[arg-type]
        for t in self._threads:
            await asyncio.to_thread(t.join)
        if self._errors:
            raise self._errors[0]


def open_store(
    bucket: str, cfg: TransferConfig, store: StoreConfig | None, events: EventSink = discard
) -> S3Store:
    """The store for a job's bucket, with a connection per worker, checked before any work;
    its retry and pace events go to ``events`` (a job's ``Recorder.store_event``).

    Raises:
        NotFoundError / AccessDeniedError: the bucket is missing or refuses us.
    """
    assert cfg.small_file_workers is not None and cfg.large_file_workers is not None
    s3 = S3Store(
        bucket,
        store or StoreConfig(),
        max_connections=cfg.small_file_workers + cfg.large_file_workers,
    )
    s3.retrier.sink = events
    s3.check_bucket()
    return s3


def refuse_overlap(src: S3Store, src_url: S3Url, dst: S3Store, dst_url: S3Url) -> None:
    """Refuse a prefix copied into itself, below itself or above itself on one bucket: each
    run would copy its own copies again, and sync's deletions would remove source objects.

    Raises:
        UsageError: the two prefixes overlap.
    """
    if src.endpoint != dst.endpoint or src_url.bucket != dst_url.bucket:
        return
    a, b = src_url.as_prefix(), dst_url.as_prefix()
    if a.startswith(b) or b.startswith(a):
        raise UsageError(f"{src_url} -> {dst_url}", "the destination overlaps the source")


@contextmanager
def job_journal(
    state_dir: Path | None,
    recorder: Recorder,
    kind: str,
    source: str,
    destination: str,
    options: Mapping[str, object],
) -> Iterator[Journal | None]:
    """The job's journal in ``state_dir`` (``None``: no journal), closed when the block ends.

    It is deleted when the block ends normally with no object failed: a job
    that finished leaves nothing to resume. Otherwise (interrupted, killed,
    some objects failed) it stays, and the same job run again resumes from it.
    """
    if state_dir is None:
        yield None
        return
    journal = Journal.open(state_dir, kind, source, destination, options)
    complete = False
    try:
        yield journal
        complete = recorder.tally.failed_objects == 0
    finally:
        journal.close(complete=complete)


class Routable(Protocol):
    """An item the lanes can route: its key and size decide the lane and the events."""

    @property
    def key(self) -> str: ...

    @property
    def size_bytes(self) -> int: ...


R = TypeVar("R", bound=Routable)


def routed(
    items: Iterable[R], threshold_bytes: int, recorder: Recorder
) -> Iterator[tuple[bool, R]]:
    """Pair each item with "is it large" (size >= threshold) and emit the listing events."""
    for item in items:
        recorder.queued(item.key, item.size_bytes)
        yield item.size_bytes >= threshold_bytes, item
    recorder.listing_finished()


async def drive(
    items: Iterable[tuple[bool, T]],
    small: Callable[[T], Coroutine[Any, Any, None]],
    large: Callable[[T], None],
    small_workers: int,
    large_threads: int,
    cancel: Callable[[], None],
) -> None:
    """Run ``small(item)`` or ``large(item)`` for every ``(is_large, item)``; wait for all.

    If the run is interrupted (Ctrl-C cancels the event loop's main task),
    ``cancel()`` tells the large lane to stop before its threads are joined.
    """
    import asyncio  # here, not at the top: a no-op sync imports this module but never drives

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
        await lane.close()
    except BaseException:
        # Also reached when Ctrl-C lands while waiting for the large lane to drain.
        cancel()
        await lane.close()
        raise


def prefetched(items: Iterator[T], depth_batches: int = 2) -> Iterator[T]:
    """Iterate ``items`` on a thread of its own, at most ``depth_batches`` batches ahead.

    Used for bucket listings: the next page is requested while the transfer
    of the previous one runs. Errors of the producer are re-raised here.
    """
    handoff: queue.Queue[list[T] | BaseException | None] = queue.Queue(depth_batches)
    stop = threading.Event()

    def produce() -> None:
        try:
            batch: list[T] = []
            for item in items:
                batch.append(item)
                if len(batch) >= PREFETCH_BATCH:
                    _put_unless_stopped(handoff, batch, stop)
                    batch = []
            _put_unless_stopped(handoff, batch, stop)
            _put_unless_stopped(handoff, None, stop)
        except BaseException as e:  # handed to the consumer, which re-raises it
            _put_unless_stopped(handoff, e, stop)

    threading.Thread(target=produce, name="s3ferry-list", daemon=True).start()
    try:
        while (got := handoff.get()) is not None:
            if isinstance(got, BaseException):
                raise got
            yield from got
    finally:
        stop.set()


def _put_unless_stopped(q: queue.Queue[Any], value: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(value, timeout=0.1)
            return
        except queue.Full:
            continue
