"""``upload``: a local file, tree or stream into a bucket.

Keys are the destination prefix plus the path relative to the source
directory (the directory's contents go under the prefix, as with
``aws s3 cp --recursive``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

from s3ferry.config import StoreConfig, TransferConfig, resolve
from s3ferry.errors import LocalIOError, S3ferryError, UsageError
from s3ferry.events import EventSink, JobStarted, discard
from s3ferry.jobs.lanes import drive, job_journal, open_store, routed
from s3ferry.jobs.report import JobReport
from s3ferry.listing.local import LocalEntry, walk
from s3ferry.locations import key_for, parse_s3_url
from s3ferry.storage.s3 import S3Store
from s3ferry.transfer.buffers import BufferPool, ByteBudget
from s3ferry.transfer.journal import Journal
from s3ferry.transfer.recorder import Recorder
from s3ferry.transfer.upload import (
    LargeFileUploader,
    Readable,
    UploadItem,
    upload_small,
    upload_stream,
)


def upload(
    source: str | os.PathLike[str],
    destination: str,
    *,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    sink: EventSink = discard,
    state_dir: Path | None = None,
    follow_symlinks: bool = False,
) -> JobReport:
    """Upload a file or a directory tree to ``destination`` (``s3://bucket/prefix``).

    Returns when every object is verified or has failed; per-object failures
    are in the report, not raised. With ``state_dir`` the job keeps a journal
    there (see :mod:`s3ferry.transfer.journal`): run again after an
    interruption, it skips the files it verified and continues the multipart
    uploads it left. Symbolic links in a tree are skipped unless
    ``follow_symlinks`` (see :func:`s3ferry.listing.local.walk`).

    Raises:
        UsageError: the source does not exist or the URL is malformed.
        NotFoundError / AccessDeniedError: the bucket is missing or refuses us.
    """
    url = parse_s3_url(destination)
    src = Path(source)
    if not src.exists():
        raise UsageError(str(src), "no such file or directory")
    cfg = resolve(transfer or TransferConfig())
    recorder = Recorder(sink)
    s3 = open_store(url.bucket, cfg, store, recorder.store_event)
    sink(JobStarted("upload", str(src), str(url)))
    started = time.monotonic()
    if src.is_dir():
        prefix = url.as_prefix()
        items = _walk_items(str(src), prefix, recorder, follow_symlinks)
    else:
        key = url.key + src.name if url.is_prefix else url.key
        st = src.stat()
        items = iter([UploadItem(str(src), key, st.st_size, st.st_mtime_ns)])
    identity = {"endpoint": (store or StoreConfig()).endpoint_url}
    with job_journal(
        state_dir, recorder, "upload", os.path.abspath(src), str(url), identity
    ) as journal:
        run_uploads(s3, cfg, items, recorder, journal)
    tally = recorder.tally
    return JobReport.from_tally("upload", str(src), str(url), tally, time.monotonic() - started)


def upload_from_stream(
    stream: Readable,
    destination: str,
    *,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    sink: EventSink = discard,
) -> JobReport:
    """Upload everything read from ``stream`` (e.g. stdin) to one object."""
    url = parse_s3_url(destination)
    if url.is_prefix:
        raise UsageError(str(url), "uploading a stream needs a full key, not a prefix")
    cfg = resolve(transfer or TransferConfig())
    recorder = Recorder(sink)
    s3 = open_store(url.bucket, cfg, store, recorder.store_event)
    sink(JobStarted("upload", "-", str(url)))
    started = time.monotonic()
    assert cfg.large_file_buffers is not None
    upload_stream(s3, cfg, BufferPool(cfg.large_file_buffers), stream, url.key, recorder)
    return JobReport.from_tally("upload", "-", str(url), recorder.tally, time.monotonic() - started)


def _walk_items(
    root: str, prefix: str, recorder: Recorder, follow_symlinks: bool
) -> Iterator[UploadItem]:
    for entry in walk(root, follow_symlinks=follow_symlinks):
        if not isinstance(entry, LocalEntry):
            if entry.unreadable:
                recorder.failed(
                    prefix + entry.relative, entry.path, LocalIOError(entry.path, entry.reason)
                )
            else:
                recorder.skipped(prefix + entry.relative, entry.path, entry.reason)
            continue
        try:
            key = key_for(prefix, entry.relative)
        except S3ferryError as e:
            recorder.failed(prefix + entry.relative, entry.path, e)
            continue
        yield UploadItem(entry.path, key, entry.size_bytes, entry.mtime_ns)


def run_uploads(
    s3: S3Store,
    cfg: TransferConfig,
    items: Iterator[UploadItem],
    recorder: Recorder,
    journal: Journal | None = None,
) -> None:
    assert cfg.small_lane_bytes is not None and cfg.large_file_buffers is not None
    assert cfg.small_file_workers is not None and cfg.multipart_threshold_bytes is not None
    large = LargeFileUploader(s3, cfg, BufferPool(cfg.large_file_buffers), recorder, journal)
    budget = ByteBudget(cfg.small_lane_bytes)
    if journal is not None:
        items = _not_done(items, journal, recorder)

    async def small(item: UploadItem) -> None:
        await upload_small(s3, item, budget, recorder, journal)

    try:
        # One large-file thread: one sequential disk reader (MISSION section 2).
        asyncio.run(
            drive(
                routed(items, cfg.multipart_threshold_bytes, recorder),
                small,
                large.upload,
                cfg.small_file_workers,
                large_threads=1,
                cancel=large.cancel,
            )
        )
    finally:
        large.close()


def _not_done(
    items: Iterator[UploadItem], journal: Journal, recorder: Recorder
) -> Iterator[UploadItem]:
    """``items`` less the files the journal shows verified and unchanged since (no HEAD)."""
    for item in items:
        if journal.is_done(item.key, item.size_bytes, str(item.mtime_ns)):
            recorder.resumed(item.key, item.path, item.size_bytes)
        else:
            yield item
