"""Download lanes: small objects as single async GETs; large ones as parallel ranged GETs.

Bytes go to a temporary file beside the target (``.<name>.s3ferry-<random>``)
that is renamed over the target only once its checksum matched (see
:mod:`s3ferry.transfer.checksums`); on any failure the temporary file is
removed, so a target is either the old file or the complete new one.

With a :class:`~s3ferry.transfer.journal.Journal`, a large object's temporary
file and the ranges written to it (with their CRC32C) are recorded, and an
interrupted download keeps its temporary file. The next run, if the object's
size and ETag are unchanged, re-reads each recorded range from that file and
fetches only the ranges that are missing or no longer match.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import itertools
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from s3ferry.config import TransferConfig, part_size_for
from s3ferry.errors import Cancelled, IntegrityError, LocalIOError
from s3ferry.storage.s3 import ObjectInfo, S3Store, crc32c_b64
from s3ferry.transfer.buffers import BufferPool, ByteBudget
from s3ferry.transfer.checksums import (
    META_CRC32C,
    META_MTIME_NS,
    META_PART_SIZE,
    META_SIZE,
    META_SYMLINK,
    Computed,
    Expected,
    crc32c,
    crc32c_combine,
    is_multipart_md5,
    is_plain_md5,
    mismatch,
)
from s3ferry.transfer.creates import Creator, close_made
from s3ferry.transfer.journal import Journal
from s3ferry.transfer.recorder import Recorder

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DownloadItem:
    """One object to download to ``path``; ``etag`` (no quotes) as the listing gave it."""

    key: str
    path: str
    size_bytes: int
    etag: str


_temp_numbers = itertools.count()


def temp_path(path: str) -> str:
    """A hidden name beside ``path``, unique to this process (pid and a counter)."""
    head, name = os.path.split(path)
    return os.path.join(head, f".{name}.s3ferry-{os.getpid()}-{next(_temp_numbers)}")


SPECIAL_FILE_KEPT = "is a device, FIFO or socket; not replaced"


def special_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a device, FIFO or socket: a download never replaces one
    (renaming over a symbolic link replaces the link, never what it points to)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode))


def commit(tmp: str, path: str, info: ObjectInfo) -> None:
    """Rename a verified temp file over ``path``. It gets the mtime of the file s3ferry
    uploaded when the object records one, else (as ``aws s3`` does) the object's last
    modification, in whole seconds: what a listing tells a later sync.

    Raises:
        LocalIOError: ``path`` is a device, FIFO or socket (left as it is).
    """
    if special_file(path):
        raise LocalIOError(path, SPECIAL_FILE_KEPT)
    set_time(tmp, info)
    os.replace(tmp, path)


def set_time(file: str | int, info: ObjectInfo) -> None:
    """Give ``file`` (a path or a file descriptor) the mtime :func:`commit` describes."""
    recorded = info.metadata.get(META_MTIME_NS)
    if recorded is not None and recorded.isdigit():
        os.utime(file, ns=(int(recorded), int(recorded)))
    elif info.last_modified is not None:
        modified = int(info.last_modified.timestamp()) * 1_000_000_000
        os.utime(file, ns=(modified, modified))


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


def verify_small(
    info: ObjectInfo, data: memoryview, expected: Expected | None = None
) -> tuple[str, int]:
    """Check a whole object's bytes against what ``info`` (its GET) says (``expected``, if
    the caller has it already); returns how (``crc32c``, ``md5`` or ``size``) and the
    bytes' CRC32C, which a copy sends on.

    Raises:
        IntegrityError: the bytes do not match.
    """
    expected = expected if expected is not None else expected_for(info)
    check_length(info, data)
    crc = crc32c(data)
    if expected.method == "md5" and expected.composite:
        return "size", crc  # a multipart ETag below the threshold: part size unknown here
    md5s = [hashlib.md5(data).digest()] if expected.whole_md5 else []
    problem = mismatch(expected, Computed([crc], md5s))
    if problem:
        raise IntegrityError(f"key {info.key}", problem)
    return expected.method, crc


def check_length(info: ObjectInfo, data: bytes | bytearray | memoryview) -> None:
    """Raise IntegrityError unless ``data`` holds the ``info.size_bytes`` its GET announced."""
    if len(data) != info.size_bytes:
        raise IntegrityError(
            f"key {info.key}", f"got {len(data)} bytes, expected {info.size_bytes}"
        )


# backup stores a symbolic link as an empty object naming its target; only restore
# makes links (cp and sync never write where a downloaded link points).
LINK_SKIPPED = "symbolic link stored by backup; restore recreates it"

# Smaller objects are hashed (and written, or read) on the event loop (a thread hop
# costs more than that); larger ones on a worker thread, so the loop keeps requests
# going and the hashing of several runs on every core (hashlib and crc32c let go of
# the GIL). Downloads, uploads and streamed copies all go by it (:func:`by_size`).
ON_LOOP_MAX_BYTES = 64 * 1024
# A download checked by CRC32C alone (~6 GB/s) is checked and written on the loop up to
# 4 MiB (the small lane's default limit): the hop to a thread and back, and the GIL
# passed between the threads, cost more. Mixed 1 GiB download, 5 alternating runs: wall
# 3.74 -> 3.41 s, client CPU 3.73 -> 3.16 s (s5cmd 3.53 s). MD5 (~0.6 GB/s) still goes
# to a thread above ON_LOOP_MAX_BYTES.
CRC_ON_LOOP_MAX_BYTES = 4 * 1024 * 1024


async def by_size(
    size_bytes: int, work: Callable[..., T], *args: Any, on_loop_below: int = ON_LOOP_MAX_BYTES
) -> T:
    """``work(*args)``, the hashing (and file I/O) of an object of ``size_bytes``: on the
    event loop below ``on_loop_below`` bytes, else on a worker thread."""
    if size_bytes < on_loop_below:
        return work(*args)
    return await asyncio.to_thread(work, *args)


async def download_small(
    store: S3Store,
    item: DownloadItem,
    budget: ByteBudget,
    recorder: Recorder,
    creator: Creator,
    journal: Journal | None = None,
) -> None:
    """GET one small object into ``item.path`` (its file made by ``creator``); the outcome
    goes to ``recorder``, ``journal``.

    Raises:
        BodyTooLarge: the object grew since it was listed; nothing was reported for it
            (the caller downloads it in ranges).
    """
    taken = await budget.acquire(item.size_bytes)
    started = time.monotonic()
    made = creator.ahead(item.path)
    try:
        with recorder.reporting(item.key, item.path):
            data, info = await store.get_small(item.key, taken)
            if META_SYMLINK in info.metadata:
                recorder.skipped(item.key, item.path, LINK_SKIPPED)
                return
            unnamed = None if made is None else await asyncio.wrap_future(made)
            expected = expected_for(info)
            method = await by_size(
                info.size_bytes,
                _write_verified,
                info,
                expected,
                memoryview(data),
                item.path,
                creator,
                unnamed,
                on_loop_below=ON_LOOP_MAX_BYTES if expected.whole_md5 else CRC_ON_LOOP_MAX_BYTES,
            )
            recorder.done(item.key, item.path, info.size_bytes, method, time.monotonic() - started)
            if journal is not None:
                journal.finished(item.key, info.size_bytes, info.etag, method)
    finally:
        if made is not None:
            made.add_done_callback(close_made)
        budget.release(taken)


def _write_verified(
    info: ObjectInfo,
    expected: Expected,
    data: memoryview,
    path: str,
    creator: Creator,
    unnamed: int | None,
) -> str:
    """Verify ``data`` and write it to ``path``: into the ``unnamed`` file (a descriptor)
    linked into place, else through a temporary file renamed into place; returns the check."""
    method, _ = verify_small(info, data, expected)
    if unnamed is not None:
        write_at(unnamed, data, 0)
        set_time(unnamed, info)
        if _link_into_place(creator, unnamed, path, info):
            return method
    with _temporary(path) as tmp:
        fd = creator.create(tmp)
        try:
            write_at(fd, data, 0)
        finally:
            os.close(fd)
        commit(tmp, path, info)
    return method


def _link_into_place(creator: Creator, unnamed: int, path: str, info: ObjectInfo) -> bool:
    """Link the verified ``unnamed`` file as ``path``, over whatever is there (as
    :func:`commit` renames); False if the file system cannot link it.

    Raises:
        LocalIOError: ``path`` is a device, FIFO or socket (left as it is).
    """
    try:
        return creator.link(unnamed, path)
    except FileExistsError:
        pass
    with _temporary(path) as tmp:
        if not creator.link(unnamed, tmp):
            return False
        commit(tmp, path, info)
    return True


# Files are written in pieces of 32 KiB. The page cache sizes its folios to the write:
# pieces up to 32 KiB (order 3) come from the per-CPU page lists, larger ones from the
# zone's free lists, which on this VM (2 cores, free pages reported to the host) cost
# several times the kernel CPU. 4 x 512 MiB download, 5 alternating runs, 2 cores:
# 128 KiB writes wall 3.41-5.39 s, kernel 2.3-5.6 s; 32 KiB pieces of 1 MiB reads
# 3.02-3.29 s, kernel 1.8-2.0 s. Where memory was not yet handed back (runs back to back)
# 128 KiB and 1 MiB pieces cost less; in the benchmark, where it was, 128 KiB pieces
# into allocated blocks copied into the page cache at 1.5-4x the kernel CPU of 32 KiB.
WRITE_PIECE_BYTES = 32 * 1024


def preallocate(fd: int, size_bytes: int) -> None:
    """Give an empty file its ``size_bytes``, its blocks allocated now where the file system
    can (fallocate(2)), else as a hole.

    Allocated blocks cost less to write into (4 x 512 MiB, 6 alternating runs: kernel
    CPU 1.31 -> 1.14 s), and a disk too full for the file fails the download here,
    before a byte is fetched.

    Raises:
        OSError: ENOSPC, the file does not fit; or ftruncate's own errors.
    """
    allocate = _fallocate()
    if size_bytes and allocate is not None:
        if allocate(fd, 0, 0, size_bytes) == 0:
            return
        import ctypes

        problem = ctypes.get_errno()
        if problem == errno.ENOSPC:
            raise OSError(problem, os.strerror(problem))
    os.ftruncate(fd, size_bytes)


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """fallocate(2) of the C library; None where it has none. (``os.posix_fallocate``
    is glibc's, which writes a byte into every block where the file system lacks it.)"""
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate64
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


def write_pieces(out: BinaryIO, data: memoryview) -> None:
    """Write all of ``data`` to ``out`` (stdout: a file, a pipe) in :data:`WRITE_PIECE_BYTES`
    pieces."""
    for start in range(0, len(data), WRITE_PIECE_BYTES):
        out.write(data[start : start + WRITE_PIECE_BYTES])


def write_at(fd: int, data: memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` of ``fd`` in :data:`WRITE_PIECE_BYTES` pieces
    (a write may also be short: a disk filling up)."""
    written, size = 0, len(data)
    while written < size:
        end = min(written + WRITE_PIECE_BYTES, size)
        written += os.pwrite(fd, data[written:end], offset + written)


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
        self.size = 0
        self.md5 = hashlib.md5() if want_md5 else None

    def update(self, chunk: memoryview) -> None:
        self.crc = crc32c(chunk, self.crc)
        self.size += len(chunk)
        if self.md5 is not None:
            self.md5.update(chunk)


class _PartHashers:
    """Hashes one range as its chunks arrive, in order: a hash per part of ``part_bytes``
    (the range starts on a part boundary), which a composite checksum checks one by one."""

    def __init__(self, start: int, end: int, part_bytes: int, want_md5: bool) -> None:
        self.parts = [_RangeHasher(want_md5) for _ in range(start, end, part_bytes)]
        self._start = start
        self._part_bytes = part_bytes

    def update(self, chunk: memoryview, offset: int) -> None:
        """Hash ``chunk``, the bytes from ``offset`` of the object on."""
        while chunk:
            index = (offset - self._start) // self._part_bytes
            room = self._start + (index + 1) * self._part_bytes - offset
            self.parts[index].update(chunk[:room])
            chunk, offset = chunk[room:], offset + room

    @property
    def crc(self) -> int:
        """The CRC32C of the whole range."""
        return combined_crc(self.parts)


def combined_crc(hashers: Iterable[_RangeHasher]) -> int:
    """The CRC32C of consecutive ranges, from theirs."""
    return functools.reduce(lambda crc, h: crc32c_combine(crc, h.crc, h.size), hashers, 0)


HASH_CHUNK_BYTES = 4 * 1024 * 1024


class _InOrderMd5:
    """The MD5 of a file whose ranges are written in any order.

    A range is read back (from the page cache) and hashed as soon as every
    range before it is written, by the thread that completed the run, so the
    hashing overlaps the download instead of following it.
    """

    def __init__(self, fd: int, subject: str) -> None:
        self._fd = fd
        self._subject = subject
        self._md5 = hashlib.md5()
        self._hashed = 0
        self._written: dict[int, int] = {}
        self._busy = False
        self._lock = threading.Lock()

    def written(self, start: int, end: int) -> None:
        with self._lock:
            self._written[start] = end
            if self._busy:
                return  # the thread hashing now will take this range too
            self._busy = True
        while True:
            with self._lock:
                end = self._written.pop(self._hashed, -1)
                if end < 0:
                    self._busy = False
                    return
            self._hash(self._hashed, end)
            self._hashed = end

    def _hash(self, start: int, end: int) -> None:
        buf = bytearray(min(HASH_CHUNK_BYTES, end - start))
        offset = start
        while offset < end:
            view = memoryview(buf)[: min(len(buf), end - offset)]
            read = os.preadv(self._fd, [view], offset)
            if read == 0:
                raise IntegrityError(self._subject, f"file shorter than {end} bytes while hashing")
            self._md5.update(view[:read])
            offset += read

    def digest(self, size_bytes: int) -> bytes:
        """The MD5 of all ``size_bytes`` bytes (every range must have been written)."""
        if self._hashed != size_bytes:
            raise IntegrityError(self._subject, f"hashed {self._hashed} of {size_bytes} bytes")
        return self._md5.digest()


class LargeFileDownloader:
    """The large-object lane: ranges aligned to the upload's parts, fetched in parallel."""

    def __init__(
        self,
        store: S3Store,
        config: TransferConfig,
        recorder: Recorder,
        journal: Journal | None = None,
    ) -> None:
        assert config.part_size_bytes is not None and config.large_file_workers is not None
        self._store = store
        self._part_size = config.part_size_bytes
        self._recorder = recorder
        self._journal = journal
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
        with self._recorder.reporting(item.key, item.path):
            self._check_cancelled(item.key)
            info = self._store.head(item.key)
            if info is None:
                raise IntegrityError(self._store.url(item.key), "object vanished before download")
            tmp, kept = self._temp_file(item, info)
            try:
                method = self._fetch_verified(info, tmp, kept)
                commit(tmp, item.path, info)
            except BaseException as e:
                if self._journal is None or not isinstance(e, Cancelled):
                    _remove(tmp)
                    if self._journal is not None:
                        self._journal.forget(item.key)
                raise
            if self._journal is not None:
                self._journal.forget(item.key)
                self._journal.finished(item.key, info.size_bytes, info.etag, method)
            self._recorder.done(
                item.key,
                item.path,
                info.size_bytes,
                method,
                time.monotonic() - started,
                in_parts=True,
            )

    def _temp_file(
        self, item: DownloadItem, info: ObjectInfo
    ) -> tuple[str, dict[tuple[int, int], int] | None]:
        """The temporary file to write, and the ranges an earlier run wrote to it (``None``:
        a new file). An earlier run's file for another version of the object is removed."""
        if self._journal is None:
            return temp_path(item.path), None
        found = self._journal.download_in_flight(item.key)
        if found is not None:
            size, etag, partial = found
            if (size, etag) == (info.size_bytes, info.etag) and has_size(partial.temp_path, size):
                return partial.temp_path, partial.ranges
            _remove(partial.temp_path)
        tmp = temp_path(item.path)
        self._journal.download_started(item.key, info.size_bytes, info.etag, tmp)
        return tmp, None

    def _fetch_verified(
        self, info: ObjectInfo, tmp: str, kept: dict[tuple[int, int], int] | None
    ) -> str:
        expected = expected_for(info)
        # Any ranges add up to a whole-object checksum; a composite one is checked part by
        # part, so its ranges are whole parts, as many as fit in the range size.
        if expected.composite:
            part_size = aligned_part_size(self._store, info, expected, self._part_size)
            range_size = part_size * max(1, self._part_size // part_size)
        else:
            part_size = range_size = self._part_size
        fd = os.open(
            tmp, os.O_RDWR if kept is not None else os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644
        )
        # A whole-object MD5 needs the bytes in order; a whole-object CRC32C is
        # combined from the ranges' CRCs; composite checksums are checked per part.
        md5_per_part = expected.method == "md5" and expected.composite
        in_order = _InOrderMd5(fd, self._store.url(info.key)) if expected.whole_md5 else None
        try:
            if kept is None:
                preallocate(fd, info.size_bytes)
            hashers = self._fetch_ranges(
                info, fd, range_size, part_size, md5_per_part, kept or {}, in_order
            )
            md5s = (
                [in_order.digest(info.size_bytes)]
                if in_order is not None
                else [h.md5.digest() for h in hashers if h.md5 is not None]
            )
        finally:
            os.close(fd)
        crcs = [h.crc for h in hashers]
        if not expected.composite and len(hashers) > 1:
            crcs = [combined_crc(hashers)]
        problem = mismatch(expected, Computed(crcs, md5s))
        if problem:
            raise IntegrityError(self._store.url(info.key), problem)
        return expected.method

    def _fetch_ranges(
        self,
        info: ObjectInfo,
        fd: int,
        range_size: int,
        part_size: int,
        want_md5: bool,
        kept: dict[tuple[int, int], int],
        in_order: _InOrderMd5 | None,
    ) -> list[_RangeHasher]:
        """Fetch (or reuse from ``kept``) each range of ``range_size``; returns the hashes
        of its parts of ``part_size``, in order."""
        hashers: list[_PartHashers] = []
        futures: list[Future[None]] = []
        try:
            for start in range(0, info.size_bytes, range_size):
                end = min(start + range_size, info.size_bytes)
                if (start, end) in kept:
                    hasher = _hash_range(fd, start, end, part_size, want_md5)
                    if hasher.crc == kept[(start, end)]:
                        hashers.append(hasher)
                        if in_order is not None:
                            in_order.written(start, end)
                        self._recorder.part_reused(info.key, end - start)
                        self._recorder.progressed(info.key, end - start)
                        continue
                hasher = _PartHashers(start, end, part_size, want_md5)
                hashers.append(hasher)
                self._slots.acquire()
                if self._cancelled.is_set():
                    self._slots.release()
                    self._check_cancelled(info.key)
                futures.append(
                    self._ranges.submit(self._fetch_one, info.key, start, end, fd, hasher, in_order)
                )
        finally:
            for future in futures:
                future.exception()
        for future in futures:
            future.result()
        return [part for hasher in hashers for part in hasher.parts]

    def _fetch_one(
        self,
        key: str,
        start: int,
        end: int,
        fd: int,
        hasher: _PartHashers,
        in_order: _InOrderMd5 | None,
    ) -> None:
        try:
            self._check_cancelled(key)
            self._store.read_range(key, start, end, _writer(fd, hasher, self._recorder, key))
            if self._journal is not None:
                self._journal.range_written(key, start, end, hasher.crc)
        finally:
            self._slots.release()
        if in_order is not None:
            in_order.written(start, end)

    def close(self) -> None:
        self._ranges.shutdown(wait=True)


def aligned_part_size(store: S3Store, info: ObjectInfo, expected: Expected, default: int) -> int:
    """The upload's part size when a composite checksum needs ranges to follow the parts."""
    recorded = info.metadata.get(META_PART_SIZE)
    if recorded is not None and recorded.isdigit():
        return int(recorded)
    if expected.composite:
        first = store.part_size_of(info.key)
        if first:
            return first
    return default


def _writer(
    fd: int, hasher: _PartHashers, recorder: Recorder, key: str
) -> Callable[[memoryview, int], None]:
    def write(chunk: memoryview, offset: int) -> None:
        hasher.update(chunk, offset)
        write_at(fd, chunk, offset)
        recorder.progressed(key, len(chunk))

    return write


def has_size(path: str, size_bytes: int) -> bool:
    """Whether ``path`` exists and holds ``size_bytes`` bytes."""
    try:
        return os.stat(path).st_size == size_bytes
    except FileNotFoundError:
        return False


def _hash_range(fd: int, start: int, end: int, part_size: int, want_md5: bool) -> _PartHashers:
    """Hash bytes ``start`` to ``end`` (exclusive) of an open file, part by part."""
    hasher = _PartHashers(start, end, part_size, want_md5)
    offset = start
    while offset < end and (chunk := os.pread(fd, min(8 * 1024 * 1024, end - offset), offset)):
        hasher.update(memoryview(chunk), offset)
        offset += len(chunk)
    return hasher


def stream_object(
    store: S3Store,
    config: TransferConfig,
    pool: BufferPool,
    info: ObjectInfo,
    out: BinaryIO,
    recorder: Recorder,
) -> None:
    """Write ``info``'s object to ``out`` in order; ranges are fetched ahead into the pool."""
    started = time.monotonic()

    def written(view: memoryview, _md5: bytes | None) -> None:
        write_pieces(out, view)
        recorder.progressed(info.key, len(view))

    with recorder.reporting(info.key, "-"):
        method = verified_stream(store, config, pool, info, written)
        recorder.done(
            info.key,
            "-",
            info.size_bytes,
            method,
            time.monotonic() - started,
            in_parts=True,
        )


def verified_stream(
    store: S3Store,
    config: TransferConfig,
    pool: BufferPool,
    info: ObjectInfo,
    consume: Callable[[memoryview, bytes | None], None],
) -> str:
    """Hand ``info``'s object to ``consume(view, md5)`` in order, range by range, then check
    the bytes against the store's checksum; returns how they were verified.

    Ranges follow the upload's parts when a composite checksum needs them to,
    and are fetched ahead into ``pool``. A view is valid only during its call;
    ``md5`` is the range's MD5 digest when the check needed it, else ``None``.

    Raises:
        IntegrityError: the bytes differ from the store's checksum (after all were consumed).
    """
    assert config.part_size_bytes is not None and config.large_file_workers is not None
    expected = expected_for(info)
    want_md5 = expected.method == "md5"
    # Grown like an upload's parts, so a copy of the ranges never needs more than 10,000.
    default = part_size_for(info.size_bytes, config.part_size_bytes)
    part_size = aligned_part_size(store, info, expected, default)
    ranges = [
        (s, min(s + part_size, info.size_bytes)) for s in range(0, info.size_bytes, part_size)
    ]
    # A composite checksum is checked part by part, a whole-object one as a whole:
    # each byte is hashed once.
    parts: list[_RangeHasher] = []
    whole = _RangeHasher(want_md5)
    with ThreadPoolExecutor(config.large_file_workers) as fetchers:
        for view in fetched_in_order(store, info.key, ranges, pool, fetchers):
            if expected.composite:
                parts.append(_RangeHasher(want_md5))
                parts[-1].update(view)
            else:
                whole.update(view)
            md5 = parts[-1].md5 if expected.composite else None
            consume(view, md5.digest() if md5 is not None else None)
    hashers = parts if expected.composite else [whole]
    problem = mismatch(
        expected, Computed([h.crc for h in hashers], [h.md5.digest() for h in hashers if h.md5])
    )
    if problem:
        raise IntegrityError(store.url(info.key), problem)
    return expected.method


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
