"""How one object moves between buckets.

Server-side (CopyObject, or UploadPartCopy part by part for large objects,
so objects over 5 GiB copy too) whenever the destination's credentials can
read the source on the same endpoint: no byte passes through the client.
Otherwise streamed: the object is read in ranges into the buffer pool,
checked against the source's checksum, and sent as parts with their MD5
(Content-MD5) where that check hashed them part by part, else with their
CRC32C; the multipart upload is completed only after every byte was verified, and
aborted otherwise. A small object is one GET and one PUT; when the source's
ETag is a plain MD5, the PUT carries it as Content-MD5, so the destination
checks the bytes against the source and the client does not hash them.
Nothing touches the local disk.

A server-side copy is verified by its ETag where the source's is a plain MD5
and the copy's equals it, else by the copy's size (encrypted objects have no
MD5 ETags). A store without UploadPartCopy (NotImplemented, as some have for
encrypted objects) makes large objects stream instead.

User metadata and content headers (including s3ferry's own checksum and
mtime metadata) are carried over on both paths. So are tags (among them the
SHA-256 tree hash of an object s3ferry uploaded in parts): CopyObject copies
them itself; a multipart copy has them put once it is complete, unless the
store does not implement tagging.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from s3ferry.config import TransferConfig, part_size_for
from s3ferry.errors import (
    AccessDeniedError,
    BodyTooLarge,
    Cancelled,
    IntegrityError,
    NotFoundError,
    UnsupportedError,
)
from s3ferry.storage.glacier import require_readable
from s3ferry.storage.s3 import ListedPart, ObjectInfo, S3Store, crc32c_b64
from s3ferry.transfer.buffers import BufferPool, ByteBudget, ThreadByteBudget
from s3ferry.transfer.checksums import crc32c, is_plain_md5, tagging_optional
from s3ferry.transfer.download import (
    by_size,
    check_length,
    expected_for,
    verified_stream,
    verify_small,
)
from s3ferry.transfer.recorder import Recorder

# Large objects copied at once; each has its own share of the pool. Two keep the
# part workers busy; more would only hold more read-ahead (streamed copies read
# in the source's own part size, which other tools make 50 MiB or more).
LARGE_OBJECTS_AT_ONCE = 2
# Server-side, objects below this size are one CopyObject each, sent with the small ones:
# no HEAD, no multipart upload, as many at once as small objects. On SeaweedFS one
# CopyObject cost the server as much CPU as UploadPartCopy in 16 MiB parts, 8 at once, and
# took as long or less (16, 64, 256 MiB and 1 GiB objects, one at a time); 4 x 512 MiB,
# 4 alternating runs: 4.32-4.71 s as CopyObjects, 4.73-6.04 s in parts (s5cmd, which
# always sends one CopyObject: 4.10-5.12 s). Above it, parts in parallel bound the time
# of each request (a 5 GiB CopyObject runs for minutes).
SINGLE_COPY_MAX_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CopyItem:
    """One object to copy: its source key, size and ETag (from the listing), and its new key."""

    key: str
    size_bytes: int
    etag: str
    dest_key: str


class ServerSideProbe:
    """Whether the destination's credentials can read the source: asked once, then cached.

    ``decided`` True or False skips the question (same credentials, or
    different endpoints). Otherwise the first object is HEADed through
    ``reader`` (a store for the source bucket signed as the destination).
    """

    def __init__(self, decided: bool | None, reader: Callable[[], S3Store] | None = None) -> None:
        self._answer = decided
        self._reader = reader
        self._lock = threading.Lock()

    @property
    def answer(self) -> bool | None:
        """The cached answer (``None``: not asked yet)."""
        return self._answer

    def __call__(self, key: str) -> bool:
        if self._answer is not None:
            return self._answer
        with self._lock:
            if self._answer is None:
                assert self._reader is not None
                try:
                    self._reader().head(key)
                    self._answer = True
                except AccessDeniedError:
                    self._answer = False
            return self._answer


@dataclass(frozen=True, slots=True)
class CopyPools:
    """The threads copies run on: one request each (``calls``) and parts (``parts``).
    A worker keeps one set for all its tasks: starting threads per task cost more than
    the copies of small objects themselves."""

    calls: ThreadPoolExecutor
    parts: ThreadPoolExecutor

    @classmethod
    def sized(cls, cfg: TransferConfig) -> CopyPools:
        assert cfg.small_file_workers is not None and cfg.large_file_workers is not None
        return cls(
            ThreadPoolExecutor(cfg.small_file_workers, "s3ferry-copy"),
            ThreadPoolExecutor(cfg.large_file_workers, "s3ferry-part"),
        )

    def close(self) -> None:
        self.calls.shutdown(wait=True)
        self.parts.shutdown(wait=True)


class Copier:
    """Copies objects from ``source`` to ``dest``; outcomes go to ``recorder``. Runs on
    ``pools`` when given (they outlive it), else on pools of its own."""

    def __init__(
        self,
        source: S3Store,
        dest: S3Store,
        cfg: TransferConfig,
        recorder: Recorder,
        server_side: ServerSideProbe,
        pools: CopyPools | None = None,
    ) -> None:
        assert cfg.large_file_workers is not None and cfg.large_file_buffers is not None
        assert cfg.small_file_workers is not None and cfg.part_size_bytes is not None
        self._source, self._dest = source, dest
        self._cfg = cfg
        self._recorder = recorder
        self._server_side = server_side
        self._own_pools = pools is None
        self._pools = pools or CopyPools.sized(cfg)
        self._calls, self._parts = self._pools.calls, self._pools.parts
        assert cfg.small_lane_bytes is not None
        # The memory bound of streamed copies: bytes of small objects held, bytes of parts
        # read but not yet sent (across all objects), and each large object's read-ahead.
        self._small_bytes = ByteBudget(cfg.small_lane_bytes)
        self._unsent = ThreadByteBudget(cfg.large_file_workers * cfg.part_size_bytes)
        self._pool_share = max(2, cfg.large_file_buffers // (2 * LARGE_OBJECTS_AT_ONCE))
        self._cancelled = threading.Event()
        self._no_part_copies = threading.Event()
        self._lock = threading.Lock()
        self.bytes_through_client = 0
        self.server_side_objects = 0

    def cancel(self) -> None:
        self._cancelled.set()

    def close(self) -> None:
        if self._own_pools:
            self._pools.close()

    def _through_client(self, size: int) -> None:
        with self._lock:
            self.bytes_through_client += size

    def _server_copied(self) -> None:
        with self._lock:
            self.server_side_objects += 1

    async def copy_small(self, item: CopyItem) -> None:
        """Copy an object in one request each way at most: below the multipart threshold,
        or, server-side, below :data:`SINGLE_COPY_MAX_BYTES`. One that grew since it was
        listed, past what its streamed copy may hold in memory, is copied in parts."""
        try:
            await self._copy_whole(item)
        except BodyTooLarge:
            await asyncio.to_thread(self.copy_large, item)

    async def _copy_whole(self, item: CopyItem) -> None:
        started = time.monotonic()
        with self._recorder.reporting(item.key, self._dest.url(item.dest_key)):
            loop = asyncio.get_running_loop()
            server_side = self._server_side.answer
            if server_side is None:  # asked once, on a thread: the question is a request
                server_side = await loop.run_in_executor(self._calls, self._server_side, item.key)
            if server_side:
                etag = await self._dest.copy_from(
                    self._source, item.key, item.dest_key, self._calls
                )
                if etag == item.etag and is_plain_md5(etag):
                    method = "etag"
                else:
                    # Encrypted (SSE-KMS, SSE-C) or multipart sources: ETags are no MD5s.
                    await loop.run_in_executor(self._calls, self._check_size, item, item.size_bytes)
                    method = "size"
                self._server_copied()
            else:
                taken = await self._small_bytes.acquire(item.size_bytes)
                try:
                    data, info = await self._source.get_small(item.key, taken)
                    method = await self._put_verified(item, data, info)
                finally:
                    self._small_bytes.release(taken)
                self._through_client(item.size_bytes)
            self._recorder.done(
                item.key,
                self._dest.url(item.dest_key),
                item.size_bytes,
                method,
                time.monotonic() - started,
            )

    async def _put_verified(self, item: CopyItem, data: bytes, info: ObjectInfo) -> str:
        """PUT a small object's bytes, checked against the source's checksum; returns how.

        Where that checksum is a plain MD5 ETag, the destination checks it (Content-MD5)
        and the bytes are not hashed here: MD5 cost more client CPU than the rest of a
        streamed copy. A store that stored other bytes anyway is caught by its ETag.
        """
        md5 = source_md5(info)
        if md5 is None:
            method, crc = await by_size(info.size_bytes, verify_small, info, memoryview(data))
            await self._dest.put_small(item.dest_key, data, info.attributes, crc)
            return method
        check_length(info, data)
        crc = await by_size(info.size_bytes, crc32c, memoryview(data))
        etag = await self._dest.put_small(item.dest_key, data, info.attributes, crc, md5)
        if is_plain_md5(etag) and etag != info.etag:
            raise IntegrityError(
                self._dest.url(item.dest_key), f"copy has MD5 {etag}, source has {info.etag}"
            )
        return "md5"

    def copy_large(self, item: CopyItem) -> None:
        """Copy an object at or above the threshold as a multipart upload."""
        started = time.monotonic()
        with self._recorder.reporting(item.key, self._dest.url(item.dest_key)):
            info = self._source.head(item.key)
            if info is None:
                raise NotFoundError(self._source.url(item.key), "no such key")
            require_readable(info, self._source.url(item.key))
            server_side = self._server_side(item.key) and not self._no_part_copies.is_set()
            if server_side:
                try:
                    self._multipart(item, info, self._copy_parts)
                except UnsupportedError:
                    # No UploadPartCopy here (some stores lack it, or for encrypted
                    # objects): stream this object and every later one.
                    self._no_part_copies.set()
                    server_side = False
            method = (
                "size"
                if server_side
                else self._multipart(item, info, self._stream_parts, _crc_parts(info))
            )
            self._check_size(item, info.size_bytes)
            if server_side:
                self._server_copied()
            self._recorder.done(
                item.key,
                self._dest.url(item.dest_key),
                info.size_bytes,
                method,
                time.monotonic() - started,
                in_parts=True,
            )

    def _multipart(
        self,
        item: CopyItem,
        info: ObjectInfo,
        send: Callable[[ObjectInfo, str, str], tuple[list[ListedPart], str]],
        part_checksums: bool = False,
    ) -> str:
        """One multipart upload of ``item``, its parts sent by ``send`` (with CRC32Cs when
        ``part_checksums``); aborted on failure. Returns how the bytes were verified."""
        upload_id = self._dest.create_multipart(
            item.dest_key, info.attributes, part_checksums=part_checksums
        )
        try:
            parts, method = send(info, item.dest_key, upload_id)
            self._dest.complete_copy_multipart(item.dest_key, upload_id, parts)
        except BaseException:
            self._dest.abort_multipart(item.dest_key, upload_id)
            raise
        copy_tags(self._source, item.key, self._dest, item.dest_key)
        return method

    def _copy_parts(
        self, info: ObjectInfo, key: str, upload_id: str
    ) -> tuple[list[ListedPart], str]:
        assert self._cfg.part_size_bytes is not None
        part = part_size_for(info.size_bytes, self._cfg.part_size_bytes)
        futures = [
            (
                n,
                min(part, info.size_bytes - start),
                self._parts.submit(
                    self._dest.upload_part_copy,
                    key,
                    upload_id,
                    n,
                    self._source,
                    info.key,
                    start,
                    min(start + part, info.size_bytes),
                    info.etag,
                ),
            )
            for n, start in enumerate(range(0, info.size_bytes, part), start=1)
        ]
        return _collected(futures), "size"

    def _stream_parts(
        self, info: ObjectInfo, key: str, upload_id: str
    ) -> tuple[list[ListedPart], str]:
        futures: list[tuple[int, int, Future[str]]] = []
        crcs: list[int] = []
        with_crc = _crc_parts(info)

        def send(number: int, data: bytes, md5: bytes | None, taken: int) -> str:
            try:
                if with_crc:
                    return self._dest.upload_part(key, upload_id, number, data, crcs[number - 1])
                return self._dest.upload_part_md5(key, upload_id, number, data, md5)
            finally:
                self._unsent.release(taken)

        def consume(view: memoryview, md5: bytes | None) -> None:
            if self._cancelled.is_set():
                raise Cancelled(self._source.url(info.key), "copy interrupted")
            taken = self._unsent.acquire(len(view))
            if with_crc:
                crcs.append(crc32c(view))
            data = bytes(view)
            number = len(futures) + 1
            sent = self._parts.submit(send, number, data, md5, taken)
            futures.append((number, len(data), sent))
            self._recorder.progressed(info.key, len(data))

        try:
            method = verified_stream(
                self._source, self._cfg, BufferPool(self._pool_share), info, consume
            )
        except BaseException:
            for _, _, f in futures:
                f.cancel()
            raise
        parts = _collected(futures)
        if with_crc:
            parts = [replace(p, crc32c_b64=crc32c_b64(crcs[p.number - 1])) for p in parts]
        self._through_client(info.size_bytes)
        return parts, method

    def _check_size(self, item: CopyItem, size_bytes: int) -> None:
        copied = self._dest.head(item.dest_key)
        if copied is None or copied.size_bytes != size_bytes:
            got = "nothing" if copied is None else f"{copied.size_bytes} bytes"
            raise IntegrityError(
                self._dest.url(item.dest_key), f"copy holds {got}, source has {size_bytes}"
            )


def _crc_parts(info: ObjectInfo) -> bool:
    """Whether a streamed copy's parts carry CRC32Cs rather than Content-MD5: where the
    source is checked as a whole, its ranges are not MD5-hashed one by one, and a CRC32C
    costs a fraction of an MD5. A composite check hashes each part, and sends that MD5."""
    return not expected_for(info).composite


def source_md5(info: ObjectInfo) -> bytes | None:
    """The MD5 digest the source's plain MD5 ETag gives, when that is the check its GET
    allows (:func:`~s3ferry.transfer.download.expected_for`); else ``None``."""
    expected = expected_for(info)
    if expected.method != "md5" or expected.composite:
        return None
    return bytes.fromhex(info.etag)


def copy_tags(source: S3Store, key: str, dest: S3Store, dest_key: str) -> None:
    """Give a completed multipart copy its source's tags (which a multipart upload does
    not carry), unless either store lacks tagging; doing it twice does no harm."""
    with tagging_optional():
        tags = source.get_tags(key)
        if tags:
            dest.put_tags(dest_key, tags)


def _collected(futures: list[tuple[int, int, Future[str]]]) -> list[ListedPart]:
    """The parts, once every future finished; the first failure is raised after all ended."""
    parts: list[ListedPart] = []
    error: BaseException | None = None
    for number, size, future in futures:
        try:
            parts.append(ListedPart(number, size, future.result().strip('"'), None))
        except BaseException as e:
            error = error or e
    if error is not None:
        raise error
    return parts
