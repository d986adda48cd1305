"""``download``: one object, every object under a prefix, or one object to a stream.

The local path of each object is the key minus the prefix, under the target
directory; keys that would escape it are reported and skipped, and so are
objects whose path goes through a symbolic link inside it (:class:`SafeParents`).
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from s3ferry.config import StoreConfig, TransferConfig, resolve
from s3ferry.errors import BodyTooLarge, LocalIOError, NotFoundError, S3ferryError, UsageError
from s3ferry.events import EventSink, JobStarted, discard
from s3ferry.jobs.lanes import drive, job_journal, open_store, routed
from s3ferry.jobs.report import JobReport
from s3ferry.listing.bucket import list_key_or_prefix
from s3ferry.locations import parse_s3_url, path_for
from s3ferry.storage.glacier import require_readable
from s3ferry.storage.listing import Entry
from s3ferry.storage.s3 import S3Store
from s3ferry.transfer.buffers import BufferPool, ByteBudget
from s3ferry.transfer.creates import Creator
from s3ferry.transfer.download import (
    SPECIAL_FILE_KEPT,
    DownloadItem,
    LargeFileDownloader,
    download_small,
    has_size,
    special_file,
    stream_object,
)
from s3ferry.transfer.journal import Journal
from s3ferry.transfer.recorder import Recorder

# Large objects downloaded at once. They share the range workers; several
# objects keep those busy across the tail of each (4 x 512 MiB measured
# ~15% faster here than 2 at once).
LARGE_OBJECTS_AT_ONCE = 4
# Directories already seen to be real directories (or made by us); cleared when
# it grows past this, so memory does not grow with the size of the tree.
KNOWN_DIRS_KEPT = 1024


def download(
    source: str,
    destination: str | os.PathLike[str],
    *,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    sink: EventSink = discard,
    state_dir: Path | None = None,
) -> JobReport:
    """Download ``source`` (``s3://bucket/key`` or ``s3://bucket/prefix/``) to ``destination``.

    A URL ending in ``/`` (or a bucket root) is a prefix; otherwise it is the
    object of that key if it exists, else the prefix ``key/``. With
    ``state_dir`` the job keeps a journal there: run again after an
    interruption, it skips the objects it verified and continues large
    downloads from the ranges already written.

    Raises:
        UsageError: malformed URL, or the destination is a file where a directory is needed.
        NotFoundError / AccessDeniedError: the bucket or object is missing or refuses us.
    """
    url = parse_s3_url(source)
    cfg = resolve(transfer or TransferConfig(), downloading=True)
    recorder = Recorder(sink)
    s3 = open_store(url.bucket, cfg, store, recorder.store_event)
    dest = Path(destination)
    single = None if url.is_prefix else s3.head(url.key)
    sink(JobStarted("download", str(url), str(dest)))
    started = time.monotonic()
    if single is not None:
        target = _single_target(dest, url.key, str(destination))
        items: Iterator[DownloadItem] = iter(
            [DownloadItem(single.key, str(target), single.size_bytes, single.etag)]
        )
    else:
        listing = list_key_or_prefix(s3, url)
        ensure_dir(dest)
        items = _listed_items(listing, dest, url.as_prefix(), recorder)
    identity = {"endpoint": (store or StoreConfig()).endpoint_url}
    with job_journal(
        state_dir, recorder, "download", str(url), os.path.abspath(dest), identity
    ) as journal:
        run_downloads(s3, cfg, items, recorder, journal)
    return JobReport.from_tally(
        "download", str(url), str(dest), recorder.tally, time.monotonic() - started
    )


def download_to_stream(
    source: str,
    stream: BinaryIO,
    *,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    sink: EventSink = discard,
) -> JobReport:
    """Write one object to ``stream`` in order (parallel ranges, bounded by the buffer pool).

    The stream cannot be taken back: a checksum mismatch is reported after
    the bytes were written, and the report says the object failed.

    Raises:
        UsageError: malformed URL, or it names a prefix.
        NotFoundError / AccessDeniedError: the bucket or key is missing or refuses us.
        ObjectArchivedError: the object is archived and not restored.
    """
    url = parse_s3_url(source)
    if url.is_prefix:
        raise UsageError(str(url), "writing to a stream needs one object, not a prefix")
    cfg = resolve(transfer or TransferConfig())
    recorder = Recorder(sink)
    s3 = open_store(url.bucket, cfg, store, recorder.store_event)
    info = s3.head(url.key)
    if info is None:
        raise NotFoundError(str(url), "no such key")
    require_readable(info, str(url))
    sink(JobStarted("download", str(url), "-"))
    started = time.monotonic()
    assert cfg.large_file_buffers is not None
    stream_object(s3, cfg, BufferPool(cfg.large_file_buffers), info, stream, recorder)
    return JobReport.from_tally(
        "download", str(url), "-", recorder.tally, time.monotonic() - started
    )


def _single_target(dest: Path, key: str, as_typed: str) -> Path:
    name = key.rsplit("/", 1)[-1]
    if dest.is_dir() or as_typed.endswith(("/", os.sep)):
        ensure_dir(dest)
        return dest / name
    if not dest.parent.is_dir():
        raise UsageError(str(dest.parent), "no such directory")
    if special_file(dest):
        raise UsageError(str(dest), SPECIAL_FILE_KEPT)
    return dest


def ensure_dir(path: Path) -> None:
    """Create ``path`` (and parents) unless it is a directory already."""
    if path.exists() and not path.is_dir():
        raise UsageError(str(path), "exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(str(path), f"cannot create directory: {e.strerror}") from e


def _listed_items(
    listing: Iterator[Entry], root: Path, prefix: str, recorder: Recorder
) -> Iterator[DownloadItem]:
    parents = SafeParents(root)
    for info in listing:
        if info.key.endswith("/") and info.size_bytes == 0:
            recorder.skipped(info.key, "", "directory marker")
            continue
        try:
            path = path_for(root, prefix, info.key)
        except S3ferryError as e:
            recorder.failed(info.key, "", e)
            continue
        try:
            parents.make(path)
        except S3ferryError as e:
            recorder.failed(info.key, str(path), e)
            continue
        yield DownloadItem(info.key, str(path), info.size_bytes, info.etag)


class SafeParents:
    """Makes the directories between ``root`` and the files written under it, refusing
    a path when a directory on the way is a symbolic link (the tar "link, then file
    through the link" attack), whoever made that link, or is not a directory. The
    root itself may be a link: the user named it.

    Directories seen to be real, or made here, are remembered (the last
    :data:`KNOWN_DIRS_KEPT`): a tree costs a syscall per directory, not per file.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._known: set[str] = set()

    def make(self, path: Path) -> None:
        """Create the missing parents of ``path`` below the root; check those there.

        Raises:
            LocalIOError: one is a symbolic link or not a directory, or cannot be created.
        """
        if str(path.parent) in self._known:
            return
        for parent in reversed(path.relative_to(self._root).parents[:-1]):
            where = str(self._root / parent)
            if where not in self._known:
                _make_dir(where)
                if len(self._known) >= KNOWN_DIRS_KEPT:
                    self._known.clear()
                self._known.add(where)


def _make_dir(where: str) -> None:
    """Create the directory ``where`` unless a real directory is there already."""
    try:
        os.mkdir(where)
        return
    except FileExistsError:
        pass
    except OSError as e:
        raise LocalIOError(where, f"cannot create directory: {e.strerror}") from e
    try:
        st = os.lstat(where)
    except OSError as e:
        raise LocalIOError(where, f"cannot read: {e.strerror}") from e
    if stat.S_ISLNK(st.st_mode):
        raise LocalIOError(where, "is a symbolic link; refusing to write through it")
    if not stat.S_ISDIR(st.st_mode):
        raise LocalIOError(where, "is not a directory")


def run_downloads(
    s3: S3Store,
    cfg: TransferConfig,
    items: Iterator[DownloadItem],
    recorder: Recorder,
    journal: Journal | None = None,
) -> None:
    assert cfg.small_lane_bytes is not None and cfg.small_file_workers is not None
    assert cfg.multipart_threshold_bytes is not None
    large = LargeFileDownloader(s3, cfg, recorder, journal)
    budget = ByteBudget(cfg.small_lane_bytes)
    creator = Creator()
    if journal is not None:
        items = _not_done(items, journal, recorder)

    async def small(item: DownloadItem) -> None:
        try:
            await download_small(s3, item, budget, recorder, creator, journal)
        except BodyTooLarge:
            # Grown since it was listed: memory stays bounded if it goes in ranges.
            await asyncio.to_thread(large.download, item)

    try:
        asyncio.run(
            drive(
                routed(items, cfg.multipart_threshold_bytes, recorder),
                small,
                large.download,
                cfg.small_file_workers,
                large_threads=LARGE_OBJECTS_AT_ONCE,
                cancel=large.cancel,
            )
        )
    finally:
        large.close()
        creator.close()


def _not_done(
    items: Iterator[DownloadItem], journal: Journal, recorder: Recorder
) -> Iterator[DownloadItem]:
    """``items`` less the objects the journal shows verified (same size and ETag) whose
    file is still there."""
    for item in items:
        if journal.is_done(item.key, item.size_bytes, item.etag) and has_size(
            item.path, item.size_bytes
        ):
            recorder.resumed(item.key, item.path, item.size_bytes)
        else:
            yield item
