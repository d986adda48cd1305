"""``copy``: one object, or every object under a prefix, from one bucket to another.

Each side has its own endpoint and credentials. Objects copy server-side when
the destination's credentials can read the source on the same endpoint
(asked once, see :class:`~s3ferry.transfer.copy.ServerSideProbe`), and are
streamed through the client otherwise; see :mod:`s3ferry.transfer.copy`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Literal, TypeVar

from s3ferry.config import StoreConfig, TransferConfig, resolve
from s3ferry.errors import UsageError
from s3ferry.events import EventSink, JobStarted, discard
from s3ferry.jobs.lanes import drive, open_store, refuse_overlap, routed
from s3ferry.jobs.listing import default_list_workers
from s3ferry.jobs.report import JobReport
from s3ferry.listing.bucket import list_key_or_prefix
from s3ferry.locations import S3Url, parse_s3_url
from s3ferry.storage.s3 import S3Store
from s3ferry.transfer.copy import (
    LARGE_OBJECTS_AT_ONCE,
    SINGLE_COPY_MAX_BYTES,
    Copier,
    CopyItem,
    CopyPools,
    ServerSideProbe,
)
from s3ferry.transfer.recorder import Recorder

CopyPath = Literal["auto", "server-side", "streamed"]
T = TypeVar("T")
# Server-side copies in flight unless told otherwise: they hold no bytes here, and more at
# once cost the store less CPU each (SeaweedFS, 10,000 x 4 KiB: ~2.2 ms at 64, ~2.0 ms at
# 128). s5cmd sends 256 at once.
SERVER_SIDE_COPIES_AT_ONCE = 128
# Event loops (each on a thread) that server-side copies of one job run on. A loop needs
# little CPU per copy, but its one thread waits for a core like every other runnable
# thread: with the store and other jobs on the machine's cores (10,000 x 4 KiB, load
# 8-10), one loop's thread spent about half the wall time waiting to run, and the copies
# in flight waited with it. Four loops took 2.0-2.1 ms per copy against one loop's 2.4.
COPY_LOOPS = 4


def copy(
    source: str,
    destination: str,
    *,
    transfer: TransferConfig | None = None,
    source_store: StoreConfig | None = None,
    dest_store: StoreConfig | None = None,
    path: CopyPath = "auto",
    sink: EventSink = discard,
) -> JobReport:
    """Copy ``source`` (``s3://bucket/key`` or ``s3://bucket/prefix/``) to ``destination``.

    As with ``download``, a source URL ending in ``/`` is a prefix; otherwise it
    is the object of that key if it exists, else the prefix ``key/``. Keys keep
    their path below the source prefix. ``path`` forces server-side or streamed
    copies; "auto" picks server-side whenever it can.

    Raises:
        UsageError: a malformed URL.
        NotFoundError / AccessDeniedError: a bucket is missing or refuses us.
    """
    src_url, dst_url = parse_s3_url(source), parse_s3_url(destination)
    cfg = resolve(transfer or TransferConfig())
    src_cfg = source_store or StoreConfig()
    dst_cfg = dest_store or src_cfg
    recorder = Recorder(sink)
    src = open_store(src_url.bucket, cfg, src_cfg, recorder.store_event)
    dst = open_store(dst_url.bucket, cfg, dst_cfg, recorder.store_event)
    sink(JobStarted("copy", str(src_url), str(dst_url)))
    started = time.monotonic()
    single = None if src_url.is_prefix else src.head(src_url.key)
    if single is not None:
        name = src_url.key.rsplit("/", 1)[-1]
        key = dst_url.key + name if dst_url.is_prefix else dst_url.key
        items: Iterator[CopyItem] = iter(
            [CopyItem(single.key, single.size_bytes, single.etag, key)]
        )
    else:
        refuse_overlap(src, src_url, dst, dst_url)
        items = _listed(src, src_url, dst_url)
    server_side = probe(src, dst, src_cfg, dst_cfg, path)
    loops = 1
    if server_side.answer:
        loops = COPY_LOOPS
        if transfer is None or transfer.small_file_workers is None:
            cfg = dataclasses.replace(cfg, small_file_workers=SERVER_SIDE_COPIES_AT_ONCE)
    copier = run_copies(src, dst, cfg, items, recorder, server_side, loops=loops)
    report = JobReport.from_tally(
        "copy", str(src_url), str(dst_url), recorder.tally, time.monotonic() - started
    )
    return dataclasses.replace(
        report,
        server_side_objects=copier.server_side_objects,
        bytes_through_client=copier.bytes_through_client,
    )


def _listed(src: S3Store, src_url: S3Url, dst_url: S3Url) -> Iterator[CopyItem]:
    """The objects under ``src_url``, listed (NotFoundError at once if none, for a URL
    without a trailing ``/``), each with its key at the destination."""
    prefix, target = src_url.as_prefix(), dst_url.as_prefix()
    listing = list_key_or_prefix(src, src_url, workers=default_list_workers())
    return (CopyItem(e.key, e.size_bytes, e.etag, target + e.key[len(prefix) :]) for e in listing)


def probe(
    src: S3Store, dst: S3Store, src_cfg: StoreConfig, dst_cfg: StoreConfig, path: CopyPath
) -> ServerSideProbe:
    """How to decide between server-side and streamed copies for this pair of sides."""
    if path != "auto":
        if path == "server-side" and src.endpoint != dst.endpoint:
            raise UsageError("--copy-path server-side", "the two sides are different endpoints")
        return ServerSideProbe(path == "server-side")
    if src.endpoint != dst.endpoint:
        return ServerSideProbe(False)
    if src_cfg == dst_cfg:
        return ServerSideProbe(True)
    return ServerSideProbe(None, lambda: S3Store(src.bucket, dst_cfg, max_connections=1))


def run_copies(
    src: S3Store,
    dst: S3Store,
    cfg: TransferConfig,
    items: Iterator[CopyItem],
    recorder: Recorder,
    server_side: ServerSideProbe,
    pools: CopyPools | None = None,
    loops: int = 1,
) -> Copier:
    """Copy every item through the two lanes (on ``pools`` if given); returns the copier
    (for its counts).

    ``loops`` > 1 (server-side copies only: a streamed copy's byte budget belongs to one
    event loop) shares the items among that many event loops, each on a thread of its
    own with its share of the small copies in flight and at least one large-lane thread.
    """
    assert cfg.small_file_workers is not None and cfg.multipart_threshold_bytes is not None
    small_workers = max(1, cfg.small_file_workers // loops)
    large_threads = max(1, LARGE_OBJECTS_AT_ONCE // loops)
    copier = Copier(src, dst, cfg, recorder, server_side, pools)
    shared = _Shared(_lanes(routed(items, cfg.multipart_threshold_bytes, recorder), server_side))
    errors: list[BaseException] = []

    def lanes() -> None:
        try:
            asyncio.run(
                drive(
                    shared,
                    copier.copy_small,
                    copier.copy_large,
                    small_workers,
                    large_threads=large_threads,
                    cancel=copier.cancel,
                )
            )
        except BaseException as e:  # the first is raised on the caller's thread
            errors.append(e)
            shared.stop()

    others = [
        threading.Thread(target=lanes, name=f"s3ferry-copy-loop-{i}", daemon=True)
        for i in range(1, loops)
    ]
    try:
        for t in others:
            t.start()
        try:
            lanes()
        finally:
            shared.stop()
            for t in others:
                t.join()
    finally:
        copier.close()
    if errors:
        raise errors[0]
    return copier


class _Shared(Iterator[T]):
    """An iterator several threads take items from; after :meth:`stop` it gives no more."""

    def __init__(self, items: Iterator[T]) -> None:
        self._items = items
        self._lock = threading.Lock()
        self._stopped = False

    def __next__(self) -> T:
        with self._lock:
            if self._stopped:
                raise StopIteration
            return next(self._items)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True


def _lanes(
    items: Iterator[tuple[bool, CopyItem]], server_side: ServerSideProbe
) -> Iterator[tuple[bool, CopyItem]]:
    """Large items below SINGLE_COPY_MAX_BYTES go with the small ones once copies are known
    to be server-side (one CopyObject each)."""
    for large, item in items:
        yield large and not (server_side.answer and item.size_bytes < SINGLE_COPY_MAX_BYTES), item
