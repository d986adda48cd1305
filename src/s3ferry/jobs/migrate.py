"""``plan``, ``migrate``, ``status`` and ``cleanup``: a bucket-to-bucket copy through a task queue.

``plan`` streams a listing (or an s3ferry inventory) of the source, merge-joined
with the destination's listing, into tasks on a queue: objects already at the
destination (same size, and same MD5 where both ETags are one) are left out,
small objects are packed, large ones split into part tasks of one multipart
upload each. ``migrate`` is plan + local worker processes in one command, and
is resumable: run again, it first lets the workers finish what the queue
still holds, then plans again, which finds only what is still missing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from s3ferry.config import StoreConfig, TransferConfig, cache_dir, resolve
from s3ferry.errors import S3ferryError, UsageError
from s3ferry.events import EventSink, JobStarted, QueueProgress, discard
from s3ferry.jobs.inventory import read_inventory
from s3ferry.jobs.lanes import open_store, refuse_overlap
from s3ferry.jobs.listing import default_list_workers
from s3ferry.jobs.worker import WorkerConfig, WorkerPool, drained
from s3ferry.listing.bucket import list_objects
from s3ferry.listing.external_sort import sorted_entries
from s3ferry.listing.inventory_report import read_inventory_report
from s3ferry.listing.keyspace import key_order
from s3ferry.locations import is_s3_url, parse_s3_url
from s3ferry.planning.diff import merge_join
from s3ferry.planning.tasks import (
    ObjectRef,
    ObjectsTask,
    PartTask,
    PlanLimits,
    already_copied,
    decode,
    encode,
    plan_tasks,
)
from s3ferry.queueing import QueueAccess, TaskQueue
from s3ferry.queueing.base import QueueStats
from s3ferry.storage.listing import Entry
from s3ferry.storage.s3 import S3Store

SEND_BATCH = 100
PROGRESS_SECONDS = 1.0
MAX_DEAD_REPORTED = 100


@dataclass(frozen=True, slots=True)
class PlanReport:
    tasks: int
    part_tasks: int
    objects: int
    size_bytes: int
    objects_present: int
    uploads_started: int


@dataclass(frozen=True, slots=True)
class MigrateReport:
    """What a migration did; ``dead_tasks`` lists (up to 100) bodies of tasks given up on."""

    plan: PlanReport
    objects_copied: int
    bytes_copied: int
    tasks_done: int
    dead: int
    dead_tasks: tuple[str, ...]
    uploads_aborted: int
    workers_restarted: int
    seconds: float
    queue: str

    @property
    def ok(self) -> bool:
        return self.dead == 0


def plan(
    source: str,
    dest: str,
    queue: QueueAccess | str,
    *,
    limits: PlanLimits | None = None,
    source_store: StoreConfig | None = None,
    dest_store: StoreConfig | None = None,
    sink: EventSink = discard,
    inventory_report: str | None = None,
) -> PlanReport:
    """Put on ``queue`` (created if missing) the tasks that copy ``source`` (``s3://bucket/
    prefix`` or the directory of an s3ferry inventory) to ``dest``, leaving out what is there.
    A queue holding tasks not done yet (queued or in flight) is refused.

    ``inventory_report``: an AWS S3 Inventory report of the source bucket (a local
    ``manifest.json`` or its folder, or the same in a bucket, read with
    ``source_store``) whose objects under the prefix are planned instead of
    listing the source; they are sorted on disk first to be merged with the
    destination's listing (see :mod:`s3ferry.listing.external_sort`).

    A plan that fails keeps on the queue the tasks it sent (each split object's parts
    are sent before the next object is read) and aborts the multipart upload of a split
    object whose parts it had not all sent (a failing queue or an interrupt leaves one).

    Raises:
        UsageError: bad limits, URL, inventory or report; a queue URL that names nothing known;
            a queue that holds unfinished tasks.
        NotFoundError / AccessDeniedError: a bucket or queue is missing or refuses us.
    """
    q = _access(queue).open(create=True)
    try:
        return _plan_into(
            q,
            source,
            dest,
            limits or PlanLimits(),
            source_store,
            dest_store,
            sink,
            inventory_report,
            refuse_unfinished=True,
        )
    finally:
        q.close()


def _refuse_unfinished(q: TaskQueue) -> None:
    """A queue still holding tasks would get them twice, with a second multipart upload
    for each split object: planning into it is refused (dead tasks do not count)."""
    stats = q.stats()
    unfinished = stats.queued + stats.in_flight
    if unfinished:
        raise UsageError(
            q.url,
            f"already holds {unfinished} unfinished task{'s' * (unfinished != 1)};"
            " plan into an empty queue or let workers finish",
        )


def _plan_into(
    queue: TaskQueue,
    source: str,
    dest: str,
    limits: PlanLimits,
    source_store: StoreConfig | None,
    dest_store: StoreConfig | None,
    sink: EventSink,
    inventory_report: str | None = None,
    planned: Callable[[int], None] | None = None,
    *,
    refuse_unfinished: bool = False,
) -> PlanReport:
    limits.check()
    inventoried: Iterator[Entry] | None = None
    if is_s3_url(source):
        src_url = parse_s3_url(source)
        if inventory_report is not None:
            inventoried = read_inventory_report(
                inventory_report,
                store=source_store,
                prefix=src_url.as_prefix(),
                bucket=src_url.bucket,
            )
    elif inventory_report is not None:
        raise UsageError(source, "an inventory report goes with an s3:// source, not a directory")
    else:
        listed_source, inventoried = read_inventory(source)
        src_url = parse_s3_url(listed_source)
    dst_url = parse_s3_url(dest)
    cfg = resolve(TransferConfig(small_file_workers=8, large_file_workers=8))
    src = open_store(src_url.bucket, cfg, source_store, sink)
    dst = open_store(dst_url.bucket, cfg, dest_store, sink)
    refuse_overlap(src, src_url, dst, dst_url)
    if refuse_unfinished:
        _refuse_unfinished(queue)
    sink(JobStarted("plan", str(src_url), str(dst_url)))
    src_prefix, dst_prefix = src_url.as_prefix(), dst_url.as_prefix()
    entries = inventoried or list_objects(src, src_prefix, workers=default_list_workers())
    counts = {"objects": 0, "bytes": 0, "present": 0, "uploads": 0}

    def missing() -> Iterator[ObjectRef]:
        for e in _missing(
            entries, dst, src_prefix, dst_prefix, counts, inventory_report is not None
        ):
            counts["objects"] += 1
            counts["bytes"] += e.size_bytes
            yield e

    unsent: dict[str, str] = {}  # upload id -> key, of an upload whose parts are not all sent

    def start_upload(ref: ObjectRef) -> str:
        info = src.head(src_prefix + ref.key)
        counts["uploads"] += 1
        attributes = info.attributes if info is not None else {}
        key = dst_prefix + ref.key
        upload_id = dst.create_multipart(key, attributes, part_checksums=False)
        unsent[upload_id] = key
        return upload_id

    tasks = parts = 0
    batch: list[str] = []
    try:
        for task in plan_tasks(missing(), str(src_url), str(dst_url), limits, start_upload):
            tasks += 1
            parts += isinstance(task, PartTask)
            batch.append(encode(task))
            # A split object's last part is sent at once: a listing or inventory that
            # fails later then leaves no upload whose parts are not all on the queue.
            last_part = isinstance(task, PartTask) and task.part == task.parts
            if len(batch) == SEND_BATCH or last_part:
                queue.send(batch)
                batch = []
                if last_part:
                    unsent.clear()
                if planned is not None:
                    planned(tasks)
        if batch:
            queue.send(batch)
    except BaseException:
        # An upload some of whose parts never reached the queue would stay open for good.
        for upload_id, key in unsent.items():
            with suppress(S3ferryError):
                dst.abort_multipart(key, upload_id)
        raise
    if planned is not None:
        planned(tasks)
    return PlanReport(
        tasks, parts, counts["objects"], counts["bytes"], counts["present"], counts["uploads"]
    )


def _missing(
    entries: Iterator[Entry],
    dst: S3Store,
    src_prefix: str,
    dst_prefix: str,
    counts: dict[str, int],
    unsorted: bool,
) -> Iterator[ObjectRef]:
    """Source objects (keys relative to the prefix) the destination lacks or holds otherwise;
    ``unsorted`` entries are sorted into the destination's order first."""
    order = key_order(dst.path_ordered())
    there = ((e.key[len(dst_prefix) :], e) for e in list_objects(dst, dst_prefix))
    ours = (
        e._replace(key=e.key[len(src_prefix) :]) for e in entries if e.key.startswith(src_prefix)
    )
    here = ((e.key, e) for e in (sorted_entries(ours, order) if unsorted else ours))
    for pair in merge_join(here, there, order):
        a, b = pair.left, pair.right
        if a is None:
            continue
        if b is not None and already_copied(a.size_bytes, a.etag, b.size_bytes, b.etag):
            counts["present"] += 1
            continue
        yield ObjectRef(pair.key, a.size_bytes, a.etag)


def _access(queue: QueueAccess | str) -> QueueAccess:
    return QueueAccess(queue) if isinstance(queue, str) else queue


def default_queue(state_dir: Path, source: str, dest: str) -> str:
    """The embedded queue of one migration, named after its two ends."""
    name = hashlib.sha256(f"{source}\n{dest}".encode()).hexdigest()[:16]
    return f"sqlite:///{state_dir / f'migrate-{name}.db'}"


def migrate(
    source: str,
    dest: str,
    *,
    workers: int = 4,
    queue: QueueAccess | None = None,
    state_dir: str | Path | None = None,
    limits: PlanLimits | None = None,
    worker: WorkerConfig | None = None,
    sink: EventSink = discard,
    inventory_report: str | None = None,
) -> MigrateReport:
    """Copy ``source`` to ``dest`` (both ``s3://bucket/prefix``) by planning into a queue
    (by default a SQLite queue under ``state_dir``) and running ``workers`` local worker
    processes until it is drained. ``inventory_report``: an S3 Inventory report to plan from, as
    for :func:`plan`.

    Raises:
        UsageError: bad options or URLs.
        NotFoundError / AccessDeniedError: a bucket or queue is missing or refuses us.
    """
    if workers < 1:
        raise UsageError(f"--workers {workers}", "must be at least 1")
    wcfg = worker or WorkerConfig()
    started = time.monotonic()
    state = Path(state_dir) if state_dir else cache_dir() / "migrate"
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(str(state), f"cannot create the state directory: {e.strerror}") from e
    # A missing or refused bucket, or overlapping prefixes, are told before any worker starts.
    dst_url = parse_s3_url(dest)
    dst = open_store(dst_url.bucket, resolve(TransferConfig()), wcfg.dest_store)
    if is_s3_url(source):
        src_url = parse_s3_url(source)
        src = open_store(src_url.bucket, resolve(TransferConfig()), wcfg.source_store)
        refuse_overlap(src, src_url, dst, dst_url)
    access = queue or QueueAccess(
        default_queue(state, source, dest), visibility_seconds=wcfg.visibility_seconds
    )
    q = access.open(create=True)
    pool = WorkerPool(access, wcfg, workers)
    planned_tasks = 0

    def progress() -> None:
        s = q.stats()
        _, objects, size = pool.totals()
        done = pool.no_more_tasks.is_set()
        sink(
            QueueProgress(planned_tasks, done, s.queued, s.in_flight, s.done, s.dead, objects, size)
        )

    def planned(n: int) -> None:
        nonlocal planned_tasks
        planned_tasks = n

    sink(JobStarted("migrate", source, dest))
    try:
        pool.start()
        # What an earlier run left on the queue is done first; planning then finds the rest.
        _wait(lambda: drained(q.stats()), pool, progress)
        report = _plan_into(
            q,
            source,
            dest,
            limits or PlanLimits(),
            wcfg.source_store,
            wcfg.dest_store,
            sink,
            inventory_report,
            planned,
        )
        pool.no_more_tasks.set()
        _wait(pool.finished, pool, progress)
        progress()
        stats = q.stats()
        dead = tuple(islice(q.dead_letters(), MAX_DEAD_REPORTED))
    finally:
        pool.stop(wcfg.stop_seconds + 5)
        q.close()
    aborted = _abort_stale(dest, wcfg.dest_store) if drained(stats) else 0
    tasks_done, objects, size = pool.totals()
    return MigrateReport(
        report,
        objects,
        size,
        tasks_done,
        stats.dead,
        dead,
        aborted,
        pool.restarted,
        time.monotonic() - started,
        access.url,
    )


def _wait(done: Callable[[], bool], pool: WorkerPool, tick: Callable[[], None]) -> None:
    while not done():
        pool.replace_dead()
        tick()
        time.sleep(PROGRESS_SECONDS)


def status(queue: QueueAccess | str) -> QueueStatus:
    """Tasks by state, and the objects and bytes of the done and the dead ones, of ``queue``.

    Done objects and bytes are ``None`` where the queue forgets done tasks (SQS).
    A multipart object counts as done once all its parts are.
    """
    q = _access(queue).open()
    try:
        stats = q.stats()
        dead = _tally(q.dead_letters())
        done = _tally(q.done_bodies()) if stats.done is not None else None
    finally:
        q.close()
    return QueueStatus(
        stats,
        dead.objects,
        dead.bytes,
        done.objects if done else None,
        done.bytes if done else None,
    )


@dataclass(slots=True)
class _Tally:
    objects: int = 0
    bytes: int = 0


def _tally(bodies: Iterable[str]) -> _Tally:
    """Objects and bytes of task bodies; a multipart object counts once all its parts are
    among them (its parts are sent one after another, so few are pending at a time)."""
    tally = _Tally()
    parts_seen: dict[tuple[str, str], int] = {}
    for body in bodies:
        try:
            task = decode(body)
        except UsageError:
            continue
        tally.bytes += task.size_bytes
        if isinstance(task, ObjectsTask):
            tally.objects += len(task.objects)
            continue
        upload = (task.dest, task.upload_id)
        seen = parts_seen.pop(upload, 0) + 1
        if seen == task.parts:
            tally.objects += 1
        else:
            parts_seen[upload] = seen
    return tally


@dataclass(frozen=True, slots=True)
class QueueStatus:
    stats: QueueStats
    dead_objects: int
    dead_bytes: int
    done_objects: int | None = None
    done_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class StaleUpload:
    key: str
    upload_id: str
    initiated: datetime
    aborted: bool
    error: str = ""


def cleanup(
    target: str,
    *,
    older_than: timedelta = timedelta(days=1),
    dry_run: bool = False,
    store: StoreConfig | None = None,
) -> Iterator[StaleUpload]:
    """Abort the multipart uploads under ``target`` (``s3://bucket[/prefix]``) started more
    than ``older_than`` ago; yields each one found, aborted or (``dry_run``) not."""
    url = parse_s3_url(target)
    s3 = open_store(url.bucket, resolve(TransferConfig()), store)
    cutoff = datetime.now(UTC) - older_than
    for upload in s3.multipart_uploads(url.key):
        if upload.initiated > cutoff:
            continue
        if dry_run:
            yield StaleUpload(upload.key, upload.upload_id, upload.initiated, False)
            continue
        try:
            s3.abort_multipart(upload.key, upload.upload_id)
            yield StaleUpload(upload.key, upload.upload_id, upload.initiated, True)
        except S3ferryError as e:
            yield StaleUpload(upload.key, upload.upload_id, upload.initiated, False, str(e))


def _abort_stale(dest: str, store: StoreConfig) -> int:
    """Once a migration's queue is drained, any upload left open under its destination
    belongs to a task given up on or a plan cut short: abort it."""
    return sum(u.aborted for u in cleanup(dest, older_than=timedelta(0), store=store))
