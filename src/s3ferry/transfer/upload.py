"""Upload lanes: small files as single async PUTs; large files as one sequential
reader feeding a bounded buffer pool whose full buffers go up as parallel parts.

Every request carries a checksum the server verifies (CRC32C on single PUTs
and on parts; SHA-256 on the single PUTs of encrypted writes, which obstore
sends), and the completed multipart object's composite CRC32C is compared
with the one computed from the parts read. The SHA-256 tree hash of the bytes (see
:mod:`.treehash`) is recorded for later comparisons: in the metadata of a
single PUT; for a multipart upload, whose metadata is fixed before the bytes
are read, as an object tag once it is complete (hashed by the one reader, in
order, parts reused from an earlier run included; none where the store does
not implement tagging or the credentials may not use it). A file whose size or
mtime changes while it is read fails with :class:`SourceChangedError` and its
multipart upload is aborted.

With a :class:`~s3ferry.transfer.journal.Journal`, verified objects and the
multipart uploads in flight are recorded. A file the journal shows unchanged
with an upload in flight continues it: each part the store lists is kept if
its checksum matches the local bytes just read, and only the others are sent.
An interrupted upload (Ctrl-C) is then left open for the next run, not aborted.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import mimetypes
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from s3ferry.config import S3_MAX_PARTS, TransferConfig, part_size_for
from s3ferry.errors import (
    Cancelled,
    IntegrityError,
    LocalIOError,
    NotFoundError,
    S3ferryError,
    SourceChangedError,
    UsageError,
)
from s3ferry.storage.s3 import CompletedPart, ListedPart, S3Store, crc32c_b64
from s3ferry.transfer.buffers import BufferPool, ByteBudget
from s3ferry.transfer.checksums import (
    META_CRC32C,
    META_MTIME_NS,
    META_PART_SIZE,
    META_SHA256_TREE,
    META_SIZE,
    composite_crc32c,
    crc32c,
    tagging_optional,
)
from s3ferry.transfer.download import by_size
from s3ferry.transfer.journal import Journal
from s3ferry.transfer.recorder import Recorder
from s3ferry.transfer.treehash import TreeHash, tree_hash


class Readable(Protocol):
    """A file or stream opened for binary reading."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...

    def read(self, size: int = -1, /) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class UploadItem:
    """One local file to upload, as the walk saw it."""

    path: str
    key: str
    size_bytes: int
    mtime_ns: int
    storage_class: str | None = None  # None: the bucket's default (STANDARD)
    # Extra metadata (a backup's POSIX attributes) as sorted pairs.
    extra_metadata: tuple[tuple[str, str], ...] = ()
    link_target: str | None = None  # a symbolic link: stored as an empty object


def object_metadata(item: UploadItem) -> dict[str, str]:
    """Metadata every s3ferry upload records, so later syncs need no HEAD per object."""
    meta = {META_MTIME_NS: str(item.mtime_ns), META_SIZE: str(item.size_bytes)}
    meta.update(item.extra_metadata)
    if item.storage_class:
        meta["Storage-Class"] = item.storage_class
    content_type = _content_type(os.path.splitext(item.key)[1].lower())
    if content_type:
        meta["Content-Type"] = content_type
    return meta


@functools.lru_cache(maxsize=512)
def _content_type(extension: str) -> str | None:
    """The MIME type for a file extension (cached: guessing costs ~25 µs a call)."""
    return mimetypes.guess_type("x" + extension, strict=False)[0]


def _changed(item: UploadItem, st: os.stat_result) -> bool:
    return st.st_size != item.size_bytes or st.st_mtime_ns != item.mtime_ns


def read_small(item: UploadItem) -> bytes:
    """The whole file, checked against the size and mtime the walk saw."""
    if item.link_target is not None:
        st = os.lstat(item.path)
        if not stat.S_ISLNK(st.st_mode) or os.readlink(item.path) != item.link_target:
            raise SourceChangedError(item.path, "link changed while being uploaded")
        return b""
    with open(item.path, "rb", buffering=0) as f:
        data = f.read(item.size_bytes + 1)
        if len(data) != item.size_bytes or _changed(item, os.fstat(f.fileno())):
            raise SourceChangedError(item.path, "file changed while being uploaded")
    return data


async def upload_small(
    store: S3Store,
    item: UploadItem,
    budget: ByteBudget,
    recorder: Recorder,
    journal: Journal | None = None,
) -> None:
    """PUT one small file; the outcome goes to ``recorder`` (and ``journal``)."""
    taken = await budget.acquire(item.size_bytes)
    started = time.monotonic()
    try:
        with recorder.reporting(item.key, item.path):
            data, meta, crc = await by_size(item.size_bytes, _read_hashed, item)
            await store.put_small(item.key, data, meta, crc)
            recorder.done(
                item.key, item.path, item.size_bytes, "crc32c", time.monotonic() - started
            )
            if journal is not None:
                journal.finished(item.key, item.size_bytes, str(item.mtime_ns), crc32c_b64(crc))
    finally:
        budget.release(taken)


def _read_hashed(item: UploadItem) -> tuple[bytes, dict[str, str], int]:
    """A small file's bytes, the metadata to upload with them (their CRC32C and SHA-256
    tree hash among it) and their CRC32C, which the PUT sends for the store to check."""
    data = read_small(item)
    meta = object_metadata(item)
    crc = crc32c(data)
    meta[META_CRC32C] = str(crc)
    meta[META_SHA256_TREE] = tree_hash(data)
    return data, meta, crc


class _Multipart:
    """One multipart upload in flight: parts outstanding, first failure, completion once."""

    def __init__(
        self, item: UploadItem, upload_id: str, listed: Mapping[int, ListedPart] | None = None
    ) -> None:
        self.item = item
        self.upload_id = upload_id
        # Parts an earlier run sent, kept if they match the bytes read now.
        self.listed = listed or {}
        self.parts: dict[int, CompletedPart] = {}
        self.error: S3ferryError | None = None
        self.started = time.monotonic()
        self.bytes_read = 0
        self.tree = TreeHash()  # of the bytes read, in order: only the reader updates it
        self._outstanding = 0
        self._reading = True
        self._lock = threading.Lock()

    def sent(self, part: CompletedPart | None, error: S3ferryError | None) -> bool:
        """Record one part's outcome; True when the caller must finish the upload."""
        with self._lock:
            self._outstanding -= 1
            if part is not None:
                self.parts[part.number] = part
            self.error = self.error or error
            return not self._reading and self._outstanding == 0

    def submitting(self) -> None:
        with self._lock:
            self._outstanding += 1

    def reuse(self, part: CompletedPart) -> None:
        with self._lock:
            self.parts[part.number] = part

    def read_finished(self, error: S3ferryError | None) -> bool:
        with self._lock:
            self._reading = False
            self.error = self.error or error
            return self._outstanding == 0


class LargeFileUploader:
    """The large-file lane: ONE reader thread (the caller) and a pool of part senders."""

    def __init__(
        self,
        store: S3Store,
        config: TransferConfig,
        pool: BufferPool,
        recorder: Recorder,
        journal: Journal | None = None,
    ) -> None:
        assert config.part_size_bytes is not None and config.large_file_workers is not None
        self._store = store
        self._part_size = config.part_size_bytes
        self._pool = pool
        self._recorder = recorder
        self._journal = journal
        self._senders = ThreadPoolExecutor(
            config.large_file_workers, thread_name_prefix="s3ferry-part"
        )
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop: no new file or part starts; uploads in flight are aborted, not completed."""
        self._cancelled.set()

    def _check_cancelled(self, path: str) -> None:
        if self._cancelled.is_set():
            raise Cancelled(path, "interrupted before the upload finished")

    def upload(self, item: UploadItem) -> None:
        """Read ``item`` sequentially and queue its parts; returns when the file is read."""
        with self._recorder.reporting(item.key, item.path):
            self._check_cancelled(item.path)
            with open(item.path, "rb", buffering=0) as f:
                self._upload_open(item, f)

    def _upload_open(self, item: UploadItem, f: io.FileIO) -> None:
        # Failing here, before any part exists, is reported by the caller's ``reporting``.
        upload, part_size = self._resumed(item) or self._started(item)

        def unchanged() -> None:
            if f.read(1) or _changed(item, os.fstat(f.fileno())):
                raise SourceChangedError(item.path, "file changed while being uploaded")

        self._read_then_finish(upload, f, part_size, None, unchanged)

    def _started(self, item: UploadItem) -> tuple[_Multipart, int]:
        part_size = part_size_for(item.size_bytes, self._part_size)
        meta = {**object_metadata(item), META_PART_SIZE: str(part_size)}
        upload_id = self._store.create_multipart(item.key, meta)
        if self._journal is not None:
            try:
                self._journal.upload_started(
                    item.key, item.size_bytes, item.mtime_ns, upload_id, part_size
                )
            except S3ferryError:
                self._abort(item.key, upload_id)  # no run could find it again
                raise
        return _Multipart(item, upload_id), part_size

    def _resumed(self, item: UploadItem) -> tuple[_Multipart, int] | None:
        """The upload an earlier run left for this unchanged file, with its parts; else None.

        An upload left for a file that changed since is aborted; one the store
        no longer knows (completed, aborted, expired) is forgotten.
        """
        if self._journal is None:
            return None
        found = self._journal.upload_in_flight(item.key, item.size_bytes, item.mtime_ns)
        if found is None:
            stale = self._journal.stale_upload(item.key)
            if stale is not None:
                self._abort(item.key, stale)
                self._journal.forget(item.key)
            return None
        try:
            listed = self._store.list_parts(item.key, found.upload_id)
        except NotFoundError:
            self._journal.forget(item.key)
            return None
        parts = {p.number: p for p in listed}
        return _Multipart(item, found.upload_id, parts), found.part_size_bytes

    def _read_then_finish(
        self,
        upload: _Multipart,
        f: Readable,
        part_size: int,
        first: tuple[bytearray, int] | None,
        check: Callable[[], None],
    ) -> None:
        """Read every part, run ``check``; the last part sent (or this) completes or aborts."""
        error: S3ferryError | None = None
        try:
            self._read_parts(upload, f, part_size, first)
            check()
        except S3ferryError as e:
            error = e
        except OSError as e:
            error = LocalIOError(upload.item.path, e.strerror or str(e))
        if upload.read_finished(error):
            self._finish(upload)

    def _read_parts(
        self,
        upload: _Multipart,
        f: Readable,
        part_size: int,
        first: tuple[bytearray, int] | None = None,
    ) -> None:
        """Read parts until the declared size (or EOF for a stream of unknown size)."""
        known = upload.item.size_bytes >= 0
        remaining = upload.item.size_bytes if known else -1
        number = 0
        while remaining != 0 and upload.error is None:
            self._check_cancelled(upload.item.path)
            number += 1
            if first is not None:
                (buf, size), first = first, None
            else:
                buf, size = self._fill(f, min(part_size, remaining) if known else part_size)
            if size == 0 or (known and size < min(part_size, remaining)):
                self._pool.release(buf)
                if known:
                    raise SourceChangedError(upload.item.path, "file shrank while being uploaded")
                break
            if number > S3_MAX_PARTS:
                self._pool.release(buf)
                raise UsageError(
                    "-",
                    f"stream is longer than {S3_MAX_PARTS:,} parts of "
                    f"{part_size:,} bytes; use a larger --part-size",
                )
            crc = crc32c(memoryview(buf)[:size])
            upload.tree.update(memoryview(buf)[:size])
            if self._reusable(upload.listed.get(number), buf, size, crc):
                self._pool.release(buf)
                upload.reuse(CompletedPart(number, upload.listed[number].etag, crc))
                upload.bytes_read += size
                self._recorder.part_reused(upload.item.key, size)
                self._recorder.progressed(upload.item.key, size)
            else:
                self._submit(upload, number, buf, size, crc)
            remaining = remaining - size if known else (-1 if size == part_size else 0)

    def _fill(self, f: Readable, size: int) -> tuple[bytearray, int]:
        """A pool buffer holding up to ``size`` bytes read from ``f``, and how many were read."""
        buf = self._pool.acquire(size)
        try:
            return buf, _read_up_to(f, memoryview(buf)[:size])
        except BaseException:
            self._pool.release(buf)
            raise

    @staticmethod
    def _reusable(listed: ListedPart | None, buf: bytearray, size: int, crc: int) -> bool:
        """Whether a part the store lists holds exactly these bytes (CRC32C, else MD5 ETag)."""
        if listed is None or listed.size_bytes != size:
            return False
        if listed.crc32c_b64 is not None:
            return listed.crc32c_b64 == crc32c_b64(crc)
        return listed.etag == hashlib.md5(memoryview(buf)[:size]).hexdigest()

    def _submit(self, upload: _Multipart, number: int, buf: bytearray, size: int, crc: int) -> None:
        view = memoryview(buf)[:size]
        body = buf if len(buf) == size else bytes(view)
        upload.submitting()
        upload.bytes_read += size
        self._senders.submit(self._send, upload, number, buf, body, crc)

    def upload_stream(self, stream: Readable, key: str) -> None:
        """Upload a stream of unknown length: one PUT if it fits one part, else multipart."""
        with self._recorder.reporting(key, "-"):
            started = time.monotonic()
            buf, size = self._fill(stream, self._part_size)
            if size < self._part_size:
                self._put_whole(key, buf, size, started)
                return
            try:
                meta = {META_PART_SIZE: str(self._part_size)}
                upload = _Multipart(
                    UploadItem("-", key, -1, 0), self._store.create_multipart(key, meta)
                )
            except BaseException:
                self._pool.release(buf)
                raise
            self._read_then_finish(upload, stream, self._part_size, (buf, size), lambda: None)

    def _put_whole(self, key: str, buf: bytearray, size: int, started: float) -> None:
        try:
            data = bytes(memoryview(buf)[:size])
        finally:
            self._pool.release(buf)
        self._store.put_object(key, data, {META_SHA256_TREE: tree_hash(data)})
        self._recorder.done(key, "-", size, "crc32c", time.monotonic() - started)

    def _send(
        self, upload: _Multipart, number: int, buf: bytearray, body: bytes | bytearray, crc: int
    ) -> None:
        part: CompletedPart | None = None
        error: S3ferryError | None = None
        try:
            self._check_cancelled(upload.item.path)
            if upload.error is None:
                etag = self._store.upload_part(upload.item.key, upload.upload_id, number, body, crc)
                part = CompletedPart(number, etag, crc)
                self._recorder.progressed(upload.item.key, len(body))
        except S3ferryError as e:
            error = e
        finally:
            self._pool.release(buf)
        if upload.sent(part, error):
            self._finish(upload)

    def _finish(self, upload: _Multipart) -> None:
        item = upload.item
        if upload.error is not None:
            if not (self._journal is not None and isinstance(upload.error, Cancelled)):
                self._abandon(upload)
            self._recorder.failed(item.key, item.path, upload.error)
            return
        parts = [upload.parts[n] for n in sorted(upload.parts)]
        try:
            stored = self._store.complete_multipart(item.key, upload.upload_id, parts)
            expected = composite_crc32c([p.crc32c for p in parts])
            if stored not in (None, expected):
                raise IntegrityError(
                    self._store.url(item.key), f"stored CRC32C {stored} != {expected}"
                )
            with tagging_optional():
                self._store.put_tags(item.key, {META_SHA256_TREE: upload.tree.hexdigest()})
        except S3ferryError as e:
            self._abandon(upload)
            self._recorder.failed(item.key, item.path, e)
            return
        self._recorder.done(
            item.key,
            item.path,
            upload.bytes_read,
            "crc32c",
            time.monotonic() - upload.started,
            in_parts=True,
        )
        if self._journal is not None:
            self._journal.forget(item.key)
            self._journal.finished(item.key, item.size_bytes, str(item.mtime_ns), expected)

    def _abandon(self, upload: _Multipart) -> None:
        self._abort(upload.item.key, upload.upload_id)
        if self._journal is not None:
            self._journal.forget(upload.item.key)

    def _abort(self, key: str, upload_id: str) -> None:
        # The upload may already be gone; the object itself is reported failed either way.
        with contextlib.suppress(S3ferryError):
            self._store.abort_multipart(key, upload_id)

    def close(self) -> None:
        """Wait for every part in flight."""
        self._senders.shutdown(wait=True)


def _read_up_to(f: Readable, view: memoryview) -> int:
    """Fill ``view`` from ``f``; fewer bytes only at end of file."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def upload_stream(
    store: S3Store,
    config: TransferConfig,
    pool: BufferPool,
    stream: Readable,
    key: str,
    recorder: Recorder,
) -> None:
    """Upload ``stream`` to ``key`` and wait until it is verified or failed."""
    uploader = LargeFileUploader(store, config, pool, recorder)
    try:
        uploader.upload_stream(stream, key)
    finally:
        uploader.close()
