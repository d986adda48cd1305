"""A worker: takes copy tasks from a queue and carries them out, until told to stop.

Stateless and idempotent: everything a task needs is in its message and in
the buckets. A task delivered again (its worker died, or failed it) skips
the objects already at the destination with the same size and checksum; a
part task whose multipart upload was completed meanwhile is done. Whoever
sends the last part of a split object completes its upload; a second
completion finds the object there and is not an error.

Each worker process runs a few task loops on threads, one task at a time
each; a heartbeat keeps a running task invisible to other workers. On stop
(SIGTERM) the loops take no new task, and tasks still running when the
deadline passes are given back to the queue.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from s3ferry.config import StoreConfig, TransferConfig, resolve
from s3ferry.errors import NotFoundError, S3ferryError, StoreError
from s3ferry.events import EventSink, TaskFinished, discard
from s3ferry.jobs.copy import probe, run_copies
from s3ferry.locations import parse_s3_url
from s3ferry.planning.tasks import ObjectRef, ObjectsTask, PartTask, Task, already_copied, decode
from s3ferry.queueing import QueueAccess
from s3ferry.queueing.base import Message, QueueStats, TaskQueue
from s3ferry.storage.s3 import S3Store
from s3ferry.transfer.copy import CopyItem, CopyPools, ServerSideProbe, copy_tags
from s3ferry.transfer.recorder import Recorder

# Worker processes that die are replaced, this many times per process on average.
RESTARTS_PER_WORKER = 5


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How a worker reaches both sides and paces itself.

    Attributes:
        tasks_at_once: task loops (threads) per worker process.
        wait_seconds: how long one receive waits for a message (long polling).
        stop_seconds: after a stop request, how long running tasks may take to finish.
        visibility_seconds: the queue's visibility timeout; heartbeats come thrice per period.
    """

    source_store: StoreConfig = field(default_factory=StoreConfig)
    dest_store: StoreConfig = field(default_factory=StoreConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    server_side: bool | None = None  # None: probe once per pair of buckets
    tasks_at_once: int = 4
    wait_seconds: float = 5.0
    stop_seconds: float = 30.0
    visibility_seconds: float = 300.0


@dataclass(slots=True)
class WorkerTally:
    """What one worker process did (thread-safe through its lock)."""

    tasks_done: int = 0
    tasks_failed: int = 0
    objects_copied: int = 0
    objects_present: int = 0
    bytes_copied: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, done: bool, copied: int, present: int, size: int) -> None:
        with self.lock:
            self.tasks_done += done
            self.tasks_failed += not done
            self.objects_copied += copied
            self.objects_present += present
            self.bytes_copied += size


class TaskRunner:
    """Carries out tasks; keeps one store per bucket and one probe per pair of buckets."""

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._cfg = resolve(config.transfer)
        self._stores: dict[tuple[str, str], S3Store] = {}
        self._probes: dict[tuple[str, str], ServerSideProbe] = {}
        # Per pair of buckets, whether the store copies parts (asked once, see _part).
        self._part_copies: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()
        self._part_copies_lock = threading.Lock()
        self._pools = CopyPools.sized(self._cfg)

    def _store(self, side: str, bucket: str) -> S3Store:
        with self._lock:
            store = self._stores.get((side, bucket))
            if store is None:
                cfg = self._config.source_store if side == "source" else self._config.dest_store
                assert self._cfg.small_file_workers is not None
                assert self._cfg.large_file_workers is not None
                connections = self._cfg.small_file_workers + self._cfg.large_file_workers
                store = S3Store(bucket, cfg, max_connections=connections)
                self._stores[(side, bucket)] = store
            return store

    def _probe(self, src: S3Store, dst: S3Store) -> ServerSideProbe:
        with self._lock:
            found = self._probes.get((src.bucket, dst.bucket))
            if found is None:
                if self._config.server_side is not None:
                    found = ServerSideProbe(self._config.server_side)
                else:
                    found = probe(
                        src, dst, self._config.source_store, self._config.dest_store, "auto"
                    )
                self._probes[(src.bucket, dst.bucket)] = found
            return found

    def run(self, task: Task, again: bool) -> tuple[int, int, int]:
        """Carry out ``task``; ``again`` when it was delivered before.
        Returns (objects copied, objects already there, bytes copied).

        Raises:
            S3ferryError: the task did not finish; the first failure says why.
        """
        source, dest = parse_s3_url(task.source), parse_s3_url(task.dest)
        src = self._store("source", source.bucket)
        dst = self._store("dest", dest.bucket)
        if isinstance(task, PartTask):
            return self._part(task, src, dst, source.key, dest.key)
        return self._objects(task, src, dst, source.key, dest.key, again)

    def _objects(
        self, task: ObjectsTask, src: S3Store, dst: S3Store, sp: str, dp: str, again: bool
    ) -> tuple[int, int, int]:
        refs = list(task.objects)
        present = [r for r in refs if _present(dst, dp + r.key, r)] if again else []
        todo = [r for r in refs if r not in present]
        recorder = Recorder(discard)
        items: Iterator[CopyItem] = (
            CopyItem(sp + r.key, r.size_bytes, r.etag, dp + r.key) for r in todo
        )
        run_copies(src, dst, self._cfg, items, recorder, self._probe(src, dst), self._pools)
        if recorder.tally.failures:
            failure = recorder.tally.failures[0]
            raise StoreError(failure.path or failure.key, failure.message)
        return len(todo), len(present), sum(r.size_bytes for r in todo)

    def _part(
        self, task: PartTask, src: S3Store, dst: S3Store, sp: str, dp: str
    ) -> tuple[int, int, int]:
        """Send one part; whoever then finds every part there completes the upload and
        gives it the source's tags.

        Two workers finishing the last parts at once may both complete it: a
        store that accepts the second completion counts the object twice in
        the progress counts; one that refuses it (NoSuchUpload) finds the
        object complete, which is success.
        """
        key, source_key = dp + task.object.key, sp + task.object.key
        start, end = task.range
        sent = 0
        try:
            if self._probe(src, dst)(source_key) and self._copies_parts(src, dst, source_key, key):
                dst.upload_part_copy(
                    key, task.upload_id, task.part, src, source_key, start, end, task.object.etag
                )
            else:
                buf = bytearray(end - start)
                view = memoryview(buf)

                def put(chunk: memoryview, offset: int) -> None:
                    view[offset - start : offset - start + len(chunk)] = chunk

                src.read_range(source_key, start, end, put, task.object.etag)
                dst.upload_part_md5(key, task.upload_id, task.part, buf)
            sent = end - start
            parts = dst.list_parts(key, task.upload_id)  # in part-number order
            if len(parts) < task.parts:
                return 0, 0, sent
            dst.complete_copy_multipart(key, task.upload_id, parts)
        except NotFoundError:
            # The upload is gone: fine if someone completed it, else the task cannot succeed.
            # Its tags are put again: who completed it may have died before putting them.
            _check_complete(dst, key, task.object)
            copy_tags(src, source_key, dst, key)
            return 0, int(not sent), sent
        _check_complete(dst, key, task.object)
        copy_tags(src, source_key, dst, key)
        return 1, 0, sent

    def _copies_parts(self, src: S3Store, dst: S3Store, source_key: str, key: str) -> bool:
        """Whether ``dst`` copies parts from ``src`` server-side: asked once per pair, on
        an upload of its own (a store without UploadPartCopy may spoil the part it was
        asked to copy, and the task's upload is shared by every part of the object)."""
        pair = (src.bucket, dst.bucket)
        with self._part_copies_lock:
            found = self._part_copies.get(pair)
            if found is None:
                found = self._part_copies[pair] = dst.part_copy_works(src, source_key, key)
            return found


def _present(dst: S3Store, key: str, ref: ObjectRef) -> bool:
    """The object is already at the destination: same size, and same MD5 where both tell it."""
    info = dst.head(key)
    return info is not None and already_copied(ref.size_bytes, ref.etag, info.size_bytes, info.etag)


def _check_complete(dst: S3Store, key: str, ref: ObjectRef) -> None:
    info = dst.head(key)
    if info is None or info.size_bytes != ref.size_bytes:
        raise StoreError(dst.url(key), "multipart upload is gone and the object is not complete")


def work(
    open_queue: Callable[[], TaskQueue],
    config: WorkerConfig,
    stop: threading.Event,
    *,
    finished: Callable[[], bool] | None = None,
    tally: WorkerTally | None = None,
    sink: EventSink = discard,
) -> WorkerTally:
    """Run task loops until ``stop`` is set (or, with ``finished``, until it says the queue
    will get no more tasks and none is left). Returns what this process did.

    ``open_queue`` gives each loop a queue client of its own.
    """
    tally = tally or WorkerTally()
    runner = TaskRunner(config)
    running: dict[int, tuple[TaskQueue, Message]] = {}
    lock = threading.Lock()

    def loop() -> None:
        queue = open_queue()
        try:
            while not stop.is_set():
                # Told when to finish, a loop looks again soon after the queue runs dry.
                wait = config.wait_seconds if finished is None else min(config.wait_seconds, 1.0)
                got = queue.receive(1, wait_seconds=wait)
                if not got:
                    if finished is not None and finished():
                        return
                    continue
                with lock:
                    running[threading.get_ident()] = (queue, got[0])
                try:
                    _handle(queue, got[0], runner, config, tally, sink)
                finally:
                    with lock:
                        running.pop(threading.get_ident(), None)
        finally:
            queue.close()

    threads = [
        threading.Thread(target=loop, name=f"s3ferry-task-{i}", daemon=True)
        for i in range(config.tasks_at_once)
    ]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads) and not stop.wait(0.2):
        pass
    deadline = time.monotonic() + config.stop_seconds
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    with lock:
        for queue, message in running.values():
            queue.release(message)
    return tally


def _handle(
    queue: TaskQueue,
    message: Message,
    runner: TaskRunner,
    config: WorkerConfig,
    tally: WorkerTally,
    sink: EventSink,
) -> None:
    """Run one task with heartbeats; ack it when done, give it back when it failed."""
    beating = threading.Event()

    def heartbeat() -> None:
        while not beating.wait(config.visibility_seconds / 3):
            try:
                queue.extend(message, config.visibility_seconds)
            except S3ferryError:
                return  # the task will be delivered again; it is idempotent

    beat = threading.Thread(target=heartbeat, name="s3ferry-heartbeat", daemon=True)
    beat.start()
    started = time.monotonic()
    try:
        task = decode(message.body)
        copied, present, size = runner.run(task, again=message.attempts > 1)
    except Exception as e:
        # Anything else is a fault of s3ferry's: the task still goes back (and to the
        # dead letters after its attempts), and the worker goes on with the next.
        why = str(e) if isinstance(e, S3ferryError) else f"internal error: {e!r}"
        beating.set()
        queue.release(message)
        tally.add(False, 0, 0, 0)
        sink(TaskFinished(message.body, message.attempts, False, 0, 0, why, _since(started)))
        return
    beating.set()
    queue.ack(message)
    tally.add(True, copied, present, size)
    sink(TaskFinished(message.body, message.attempts, True, copied, size, "", _since(started)))


def _since(started: float) -> float:
    return time.monotonic() - started


def drained(stats: QueueStats) -> bool:
    """Nothing waits and nothing is being worked on (dead tasks aside)."""
    return stats.queued == 0 and stats.in_flight == 0


class WorkerPool:
    """Worker processes on this machine; those that die (kill -9, OOM) are replaced, at
    most :data:`RESTARTS_PER_WORKER` times each on average.

    ``no_more_tasks`` set means a process exits once the queue is drained;
    ``counts`` (tasks done, objects and bytes copied) is added to by all of them.
    """

    def __init__(self, access: QueueAccess, config: WorkerConfig, size: int) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self.no_more_tasks = self._ctx.Event()
        self.counts: Any = self._ctx.Array("q", 3)
        self._args = (access, config, self.no_more_tasks, self.counts)
        self._size = size
        self._procs: list[Any] = []
        self.restarted = 0

    def _spawn(self) -> Any:
        p = self._ctx.Process(target=_worker_process, args=self._args, daemon=True)
        p.start()
        return p

    def start(self, stop: threading.Event | None = None) -> None:
        """Start the processes; no more once ``stop`` is set (a SIGTERM while they start)."""
        for _ in range(self._size):
            if stop is not None and stop.is_set():
                break
            self._procs.append(self._spawn())

    def replace_dead(self) -> None:
        for i, p in enumerate(self._procs):
            if p.exitcode not in (None, 0) and self.restarted < RESTARTS_PER_WORKER * self._size:
                self._procs[i] = self._spawn()
                self.restarted += 1

    def finished(self) -> bool:
        """Every process has exited (those that died are replaced first, while allowed)."""
        self.replace_dead()
        return all(p.exitcode is not None for p in self._procs)

    def totals(self) -> tuple[int, int, int]:
        with self.counts.get_lock():
            return int(self.counts[0]), int(self.counts[1]), int(self.counts[2])

    def stop(self, grace_seconds: float) -> None:
        """SIGTERM every process; those still running after ``grace_seconds`` are killed."""
        for p in self._procs:
            if p.exitcode is None:
                p.terminate()
        deadline = time.monotonic() + grace_seconds
        for p in self._procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.exitcode is None:
                p.kill()
                p.join()


def _worker_process(
    access: QueueAccess,
    config: WorkerConfig,
    no_more_tasks: multiprocessing.synchronize.Event,
    counts: Any,
) -> None:
    """One worker process: exits when ``no_more_tasks`` is set and the queue is drained, or
    on SIGTERM (after finishing, or giving back, its running tasks)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and sends SIGTERM
    watcher = access.open()

    def finished() -> bool:
        return no_more_tasks.is_set() and drained(watcher.stats())

    def count(event: object) -> None:
        if isinstance(event, TaskFinished) and event.ok:
            with counts.get_lock():
                counts[0] += 1
                counts[1] += event.objects
                counts[2] += event.size_bytes

    try:
        work(access.open, config, stop, finished=finished, sink=count)
    finally:
        watcher.close()


@dataclass(frozen=True, slots=True)
class ServeReport:
    tasks_done: int
    objects_copied: int
    bytes_copied: int
    workers_restarted: int
    seconds: float


def serve(
    access: QueueAccess,
    config: WorkerConfig,
    *,
    processes: int = 1,
    exit_when_empty: bool = False,
    stop: threading.Event | None = None,
) -> ServeReport:
    """Run ``processes`` worker processes on ``access``'s queue until ``stop`` is set (the
    CLI sets it on SIGTERM) or, with ``exit_when_empty``, until the queue is drained."""
    stop = stop or threading.Event()
    started = time.monotonic()
    pool = WorkerPool(access, config, processes)
    if exit_when_empty:
        pool.no_more_tasks.set()
    pool.start(stop)
    try:
        while not stop.wait(0.5) and not pool.finished():
            pass
    finally:
        pool.stop(config.stop_seconds + 5)
    tasks, objects, size = pool.totals()
    return ServeReport(tasks, objects, size, pool.restarted, time.monotonic() - started)
