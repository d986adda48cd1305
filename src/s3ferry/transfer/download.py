"""Download lanes: small objects as single async GETs; large ones as parallel ranged GETs.

Bytes go to a temporary file beside the target (``.<name>.s3ferry-<random>``)
that is renamed over the target only once its checksum matched (see
:mod:`s3ferry.transfer.checksums`); on any failure the temporary file is
removed, so a target is either the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from s3ferry.config import TransferConfig
from s3ferry.errors import Cancelled, IntegrityError
from s3ferry.storage.s3 import ObjectInfo, S3Store, crc32c_b64
from s3ferry.transfer.buffers import BufferPool, ByteBudget
from s3ferry.transfer.checksums import (
    META_CRC32C,
    META_MTIME_NS,
    META_PART_SIZE,
    META_SIZE,
    Computed,
    Expected,
    crc32c,
    is_multipart_md5,
    is_plain_md5,
    mismatch,
)
from s3ferry.transfer.recorder import Recorder


@dataclass(frozen=True, slots=True)
class DownloadItem:
    """One object to download to ``path``."""

    key: str
    path: str
    size_bytes: int


_temp_numbers = itertools.count()


def temp_path(path: str) -> str:
    """A hidden name beside ``path``, unique to this process (pid and a counter)."""
    head, name = os.path.split(path)
    return os.path.join(head, f".{name}.s3ferry-{os.getpid()}-{next(_temp_numbers)}")


def commit(tmp: str, path: str, metadata: dict[str, str] | None) -> None:
    """Rename a verified temp file over ``path``, giving it the source's mtime if recorded."""
    mtime = (metadata or {}).get(META_MTIME_NS)
    if mtime is not None and mtime.isdigit():
        os.utime(tmp, ns=(int(mtime), int(mtime)))
    os.replace(tmp, path)


def expected_for(info: ObjectInfo) -> Expected:
    """The strongest check the store's answer allows (see the module docstring of checksums).

    Raises:
        IntegrityError: the object's size differs from the size s3ferry recorded at upload.
    """
    recorded = info.metadata.get(META_SIZE)
    if recorded is not None and recorded.isdigit() and int(recorded) != info.size_bytes:
        raise IntegrityError(
            f"key {info.key}",
            f"object is {info.size_bytes} bytes but was {recorded} bytes when s3ferry uploaded it",
        )
    ours = info.metadata.get(META_CRC32C)
    if ours is not None and ours.isdigit():
        return Expected(crc32c_b64=crc32c_b64(int(ours)))
    if info.checksum_crc32c:
        return Expected(crc32c_b64=info.checksum_crc32c)
    if is_plain_md5(info.etag) or is_multipart_md5(info.etag):
        return Expected(md5_etag=info.etag)
    return Expected()


def _verify_small(info: ObjectInfo, data: memoryview) -> str:
    expected = expected_for(info)
    if len(data) != info.size_bytes:
        raise IntegrityError(
            f"key {info.key}", f"got {len(data)} bytes, expected {info.size_bytes}"
        )
    if expected.method == "md5" and expected.composite:
        return "size"  # a multipart ETag below the threshold: part size unknown here
    md5s = [hashlib.md5(data).digest()] if expected.method == "md5" else []
    problem = mismatch(expected, Computed([crc32c(data)], md5s))
    if problem:
        raise IntegrityError(f"key {info.key}", problem)
    return expected.method


async def download_small(
    store: S3Store, item: DownloadItem, budget: ByteBudget, recorder: Recorder
) -> None:
    """GET one small object into ``item.path``; the outcome goes to ``recorder``."""
    taken = await budget.acquire(item.size_bytes)
    started = time.monotonic()
    try:
        with recorder.reporting(item.key, item.path):
            data, info = await store.get_small(item.key)
            method = _write_verified(info, memoryview(data), item.path)
            recorder.done(item.key, item.path, info.size_bytes, method, time.monotonic() - started)
    finally:
        budget.release(taken)


def _write_verified(info: ObjectInfo, data: memoryview, path: str) -> str:
    """Verify ``data`` and write it to ``path`` through a temporary file; returns the check."""
    method = _verify_small(info, data)
    with _temporary(path) as tmp:
        with open(tmp, "wb", buffering=0) as f:
            # One raw write may be short (a disk filling up): write until all is written.
            written = 0
            while written < len(data):
                written += f.write(data[written:])
        commit(tmp, path, dict(info.metadata))
    return method


@contextlib.contextmanager
def _temporary(path: str) -> Iterator[str]:
    """A temporary path beside ``path``, removed if the block fails."""
    tmp = temp_path(path)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class _RangeHasher:
    """Hashes one range as its chunks arrive, in order."""

    def __init__(self, want_md5: bool) -> None:
        self.crc = 0
        self.md5 = hashlib.md5() if want_md5 else None

    def update(self, chunk: memoryview) -> None:
        self.crc = crc32c(chunk, self.crc)
        if self.md5 is not None:
            self.md5.update(chunk)


class LargeFileDownloader:
    """The large-object lane: ranges aligned to the upload's parts, fetched in parallel."""

    def __init__(self, store: S3Store, config: TransferConfig, recorder: Recorder) -> None:
        assert config.part_size_bytes is not None and config.large_file_workers is not None
        self._store = store
        self._part_size = config.part_size_bytes
        self._recorder = recorder
        self._ranges = ThreadPoolExecutor(
            config.large_file_workers, thread_name_prefix="s3ferry-range"
        )
        # Bounds ranges queued ahead of the workers, so memory never grows with object size.
        self._slots = threading.Semaphore(2 * config.large_file_workers)
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop: no new object or range starts; unfinished objects leave no file behind."""
        self._cancelled.set()

    def _check_cancelled(self, key: str) -> None:
        if self._cancelled.is_set():
            raise Cancelled(self._store.url(key), "interrupted before the download finished")

    def download(self, item: DownloadItem) -> None:
        """Download one large object; returns when it is verified and renamed (or failed)."""
        started = time.monotonic()
        with self._recorder.reporting(item.key, item.path), _temporary(item.path) as tmp:
            self._check_cancelled(item.key)
            info = self._store.head(item.key)
            if info is None:
                raise IntegrityError(self._store.url(item.key), "object vanished before download")
            method = self._fetch_verified(info, tmp)
            commit(tmp, item.path, dict(info.metadata))
            self._recorder.done(
                item.key,
                item.path,
                info.size_bytes,
                method,
                time.monotonic() - started,
                in_parts=True,
            )

    def _fetch_verified(self, info: ObjectInfo, tmp: str) -> str:
        expected = expected_for(info)
        part_size = aligned_part_size(self._store, info, expected, self._part_size)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.ftruncate(fd, info.size_bytes)
            hashers = self._fetch_ranges(info, fd, part_size, expected.method == "md5")
        finally:
            os.close(fd)
        computed = Computed(
            [h.crc for h in hashers], [h.md5.digest() for h in hashers if h.md5 is not None]
        )
        if expected.method != "size" and not expected.composite and len(hashers) > 1:
            computed = _hash_file(tmp, expected.method == "md5")
        problem = mismatch(expected, computed)
        if problem:
            raise IntegrityError(self._store.url(info.key), problem)
        return expected.method

    def _fetch_ranges(
        self, info: ObjectInfo, fd: int, part_size: int, want_md5: bool
    ) -> list[_RangeHasher]:
        hashers: list[_RangeHasher] = []
        futures: list[Future[None]] = []
        try:
            for start in range(0, info.size_bytes, part_size):
                end = min(start + part_size, info.size_bytes)
                hasher = _RangeHasher(want_md5)
                hashers.append(hasher)
                self._slots.acquire()
                if self._cancelled.is_set():
                    self._slots.release()
                    self._check_cancelled(info.key)
                futures.append(
                    self._ranges.submit(self._fetch_one, info.key, start, end, fd, hasher)
                )
        finally:
            for future in futures:
                future.exception()
        for future in futures:
            future.result()
        return hashers

    def _fetch_one(self, key: str, start: int, end: int, fd: int, hasher: _RangeHasher) -> None:
        try:
            self._check_cancelled(key)
            self._store.read_range(key, start, end, _writer(fd, hasher, self._recorder, key))
        finally:
            self._slots.release()

    def close(self) -> None:
        self._ranges.shutdown(wait=True)


def aligned_part_size(store: S3Store, info: ObjectInfo, expected: Expected, default: int) -> int:
    """Ranges equal the upload's parts when a composite checksum needs them to."""
    recorded = info.metadata.get(META_PART_SIZE)
    if recorded is not None and recorded.isdigit():
        return int(recorded)
    if expected.composite:
        first = store.part_size_of(info.key)
        if first:
            return first
    return default


def _writer(
    fd: int, hasher: _RangeHasher, recorder: Recorder, key: str
) -> Callable[[memoryview, int], None]:
    def write(chunk: memoryview, offset: int) -> None:
        hasher.update(chunk)
        written = 0
        while written < len(chunk):
            written += os.pwrite(fd, chunk[written:], offset + written)
        recorder.progressed(key, len(chunk))

    return write


def _hash_file(path: str, want_md5: bool) -> Computed:
    hasher = _RangeHasher(want_md5)
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(8 * 1024 * 1024):
            hasher.update(memoryview(chunk))
    return Computed([hasher.crc], [hasher.md5.digest()] if hasher.md5 else [])


def stream_object(
    store: S3Store,
    config: TransferConfig,
    pool: BufferPool,
    info: ObjectInfo,
    out: BinaryIO,
    recorder: Recorder,
) -> None:
    """Write ``info``'s object to ``out`` in order; ranges are fetched ahead into the pool."""
    assert config.part_size_bytes is not None and config.large_file_workers is not None
    started = time.monotonic()
    expected = expected_for(info)
    want_md5 = expected.method == "md5"
    part_size = aligned_part_size(store, info, expected, config.part_size_bytes)
    ranges = [
        (s, min(s + part_size, info.size_bytes)) for s in range(0, info.size_bytes, part_size)
    ]
    parts: list[_RangeHasher] = []
    whole = _RangeHasher(want_md5)

    def written(view: memoryview) -> None:
        parts.append(_RangeHasher(want_md5))
        parts[-1].update(view)
        whole.update(view)
        recorder.progressed(info.key, len(view))

    with recorder.reporting(info.key, "-"):
        with ThreadPoolExecutor(config.large_file_workers) as fetchers:
            for view in fetched_in_order(store, info.key, ranges, pool, fetchers):
                out.write(view)
                written(view)
        hashers = parts if expected.composite else [whole]
        problem = mismatch(
            expected, Computed([h.crc for h in hashers], [h.md5.digest() for h in hashers if h.md5])
        )
        if problem:
            raise IntegrityError(store.url(info.key), problem)
        recorder.done(
            info.key,
            "-",
            info.size_bytes,
            expected.method,
            time.monotonic() - started,
            in_parts=True,
        )


def fetched_in_order(
    store: S3Store,
    key: str,
    ranges: Iterable[tuple[int, int]],
    pool: BufferPool,
    fetchers: ThreadPoolExecutor,
) -> Generator[memoryview, None, None]:
    """The bytes of each ``(start, end_exclusive)`` range of ``key``, in the order given.

    Up to ``pool.count`` ranges are fetched ahead on ``fetchers``, each into a
    buffer of the pool, so memory is ``pool.count`` x the largest range.
    ``ranges`` is consumed lazily. A view is valid only until the next one
    is asked for: its buffer then goes back to the pool.
    """
    pending: deque[tuple[Future[None], bytearray, int]] = deque()
    todo = iter(ranges)
    try:
        while True:
            while len(pending) < pool.count and (r := next(todo, None)) is not None:
                buf = pool.acquire(r[1] - r[0])
                pending.append((fetchers.submit(_fetch_into, store, key, r, buf), buf, r[1] - r[0]))
            if not pending:
                return
            future, buf, size = pending.popleft()
            view = memoryview(buf)[:size]
            try:
                future.result()
                yield view
            finally:
                # A view left exported would stop the pool from growing this buffer.
                view.release()
                pool.release(buf)
    finally:
        for future, buf, _ in pending:
            if not future.cancel():
                future.exception()
            pool.release(buf)


def _fetch_into(store: S3Store, key: str, r: tuple[int, int], buf: bytearray) -> None:
    view = memoryview(buf)

    def put(chunk: memoryview, offset: int) -> None:
        view[offset - r[0] : offset - r[0] + len(chunk)] = chunk

    store.read_range(key, r[0], r[1], put)
