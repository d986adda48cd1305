"""The S3 store: every request s3ferry makes to a bucket goes through :class:`S3Store`.

Whole-object PUT and GET go through obstore (Rust; ~0.3 ms of client CPU
per request, 4-5x less than botocore); listing, HEAD, CopyObject and ranged
GETs through lean signed requests (:mod:`.listing`: a ranged GET is read
straight from the socket into a reused buffer); multipart control through
botocore, as do keys
that obstore's path model would rewrite (empty or dot segments, a trailing
``/``, a backslash). Errors of all three are translated into
:mod:`s3ferry.errors` here and nowhere else.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from s3ferry.config import StoreConfig
from s3ferry.errors import (
    AccessDeniedError,
    BodyTooLarge,
    CredentialsExpiredError,
    IntegrityError,
    NotFoundError,
    ObjectArchivedError,
    S3ferryError,
    SourceChangedError,
    StoreError,
    ThrottledError,
    TransientError,
    UnsupportedError,
)
from s3ferry.storage.clients import LazyBotocore, Side, make_obstore, resolve_side
from s3ferry.storage.listing import S3_MAX_KEYS, UNTRUSTED_CERTIFICATE, Head, LeanClient, Page
from s3ferry.storage.retry import Pacer, Retrier, pacer_for, retried, retried_async

if TYPE_CHECKING:
    from s3ferry.storage.lean_async import AsyncLeanClient

# Bytes handed to a range consumer at a time: big enough to keep per-chunk
# Python overhead negligible, small enough to bound memory per stream.
RANGE_CHUNK_BYTES = 1024 * 1024
# A tag set is at most 10 tags of 128 + 256 characters: an answer to GetObjectTagging
# larger than this is not one.
TAG_SET_MAX_BYTES = 64 * 1024
_NO_TAGGING = "the store does not implement object tagging"

# Leeway between our clock and the store's when telling which uploads a lost
# CreateMultipartUpload answer may have started.
CLOCK_SKEW_S = 60.0
# A key that never exists; GETting it answers "does the bucket exist?".
BUCKET_PROBE_KEY = ".s3ferry-bucket-probe/none"
# Characters an XML 1.0 document may hold (DeleteObjects sends keys as XML).
_XML_SAFE = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_UNSAFE_FOR_OBSTORE = re.compile(r"(^|/)\.{0,2}(/|$)|\\")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store says about one object. ``etag`` has no quotes."""

    key: str
    size_bytes: int
    etag: str
    last_modified: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    checksum_crc32c: str | None = None
    storage_class: str | None = None  # None: STANDARD (S3 omits it)
    restore: str | None = None  # x-amz-restore, e.g. 'ongoing-request="false", expiry-date=...'
    # What a copy carries over: user metadata and the standard content headers,
    # in obstore's attribute names ("Content-Type", ..., user keys as they are).
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CompletedPart:
    number: int
    etag: str
    crc32c: int


@dataclass(frozen=True, slots=True)
class ListedPart:
    """A part the store holds for an unfinished upload. ``etag`` has no quotes;
    ``crc32c_b64`` is ``None`` when the store does not list part checksums."""

    number: int
    size_bytes: int
    etag: str
    crc32c_b64: str | None


@dataclass(frozen=True, slots=True)
class BucketInfo:
    name: str
    created: str  # ISO 8601


def buckets_of(config: StoreConfig) -> list[BucketInfo]:
    """ListBuckets for the identity ``config`` resolves to."""
    with translated("s3://"):
        client = LazyBotocore(resolve_side(config, 1), 1).get()
        response = client.list_buckets()
    return [
        BucketInfo(b["Name"], b["CreationDate"].isoformat()) for b in response.get("Buckets", ())
    ]


def _pacer_of(side: Side) -> Pacer:
    """The process's pacer for the endpoint and identity of ``side``."""
    endpoint = side.endpoint_url or f"https://s3.{side.region}.amazonaws.com"
    return pacer_for(endpoint, side.keys()["access_key_id"] if side.keys else "")


def crc32c_b64(value: int) -> str:
    """The base64 of a CRC32C as S3 headers carry it (4 bytes, big-endian)."""
    return base64.b64encode(value.to_bytes(4, "big")).decode()


class S3Store:
    """One bucket behind one endpoint and one set of credentials.

    Every request goes through ``retrier`` (:mod:`.retry`): retried when it may
    pass, paced with every other request of the process to the same endpoint
    and identity. Its ``sink`` receives the retry and pace events.
    """

    def __init__(self, bucket: str, config: StoreConfig, max_connections: int = 64) -> None:
        self.bucket = bucket
        with translated(f"s3://{bucket}"):
            self._side = resolve_side(config, max_connections)
            self.retrier = Retrier(_pacer_of(self._side), refresh=self._refresh_credentials)
        self._lazy_boto = LazyBotocore(self._side, max_connections)
        # SSE-C: every request touching an object's bytes carries the key; writes also
        # say how to encrypt (SSE-S3 / SSE-KMS).
        self._sse_c = _sse_c_arguments(config)
        self._sse_write = _sse_write_arguments(config)
        self._max_connections = max_connections
        self._lister: LeanClient | None = None
        self._copier: AsyncLeanClient | None = None
        self._obstore: Any = None
        self._list_lock = threading.Lock()
        self._tagging: bool | None = None  # whether PutObjectTagging works (None: not asked)
        self._tagging_lock = threading.Lock()
        # Whether writes with the SSE-C key are encrypted (None: not asked yet).
        self._sse_c_honoured: bool | None = None if self._sse_c else True
        self._sse_c_lock = threading.Lock()

    def _refresh_credentials(self) -> None:
        """Ask for credentials again: obstore caches them until they expire by its clock.

        botocore and the lean clients ask the provider on every request.
        """
        with self._list_lock:
            self._obstore = None

    @property
    def _obs(self) -> Any:
        """The obstore client, for PUTs of metadata only it can encode (built on first use)."""
        with self._list_lock:
            if self._obstore is None:
                with translated(f"s3://{self.bucket}"):
                    self._obstore = make_obstore(self.bucket, self._side, self._max_connections)
            return self._obstore

    @property
    def _boto(self) -> Any:
        with translated(f"s3://{self.bucket}"):
            return self._lazy_boto.get()

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @property
    def endpoint(self) -> str:
        """The service this store talks to: its endpoint URL, or AWS's (any region)."""
        return self._side.endpoint_url or "aws"

    @retried
    def check_bucket(self) -> None:
        """Raise unless the bucket exists and these credentials may read it.

        A GET of a key that does not exist tells a missing bucket (NoSuchBucket)
        from a present one (NoSuchKey) in one small request, where HEAD could not.
        """
        try:
            self._lean.get(BUCKET_PROBE_KEY)
        except NotFoundError as e:
            if "bucket" in e.message:
                raise

    def path_ordered(self) -> bool:
        """Whether the store lists keys in path-segment order (SeaweedFS) rather than
        UTF-8 byte order; known from any earlier answer, else asked with a one-key listing."""
        known = self._lean.path_ordered
        return known if known is not None else self.list_page(max_keys=1).path_ordered

    @retried
    def head(self, key: str) -> ObjectInfo | None:
        """Size, ETag, metadata, CRC32C and storage class; ``None`` if the object does not exist."""
        if not _UNSAFE_FOR_OBSTORE.search(key):
            with translated(self.url(key)):
                h = self._lean.head(key)
            if h is None:
                return None
            return _info_of(key, h, int(h.headers["content-length"]))
        try:
            with translated(self.url(key)):
                r = self._boto.head_object(
                    Bucket=self.bucket, Key=key, ChecksumMode="ENABLED", **self._sse_c
                )
        except NotFoundError:
            return None
        return ObjectInfo(
            key=key,
            size_bytes=r["ContentLength"],
            etag=r["ETag"].strip('"'),
            last_modified=r.get("LastModified"),
            metadata=r.get("Metadata", {}),
            checksum_crc32c=r.get("ChecksumCRC32C"),
            storage_class=r.get("StorageClass"),
            restore=r.get("Restore"),
            attributes={
                **r.get("Metadata", {}),
                **{a: r[arg] for a, arg in _CONTENT_HEADERS.items() if arg in r},
            },
        )

    @retried
    def part_size_of(self, key: str) -> int | None:
        """Size of part 1 of a multipart object (``None`` for single-part objects)."""
        if not _UNSAFE_FOR_OBSTORE.search(key):
            with translated(self.url(key)):
                h = self._lean.head(key, part_number=1)
            if h is None:
                raise NotFoundError(self.url(key), "no such key")
            parts = int(h.headers.get("x-amz-mp-parts-count", "1"))
            return int(h.headers["content-length"]) if parts > 1 else None
        with translated(self.url(key)):
            r = self._boto.head_object(Bucket=self.bucket, Key=key, PartNumber=1, **self._sse_c)
        return int(r["ContentLength"]) if r.get("PartsCount", 1) > 1 else None

    @retried
    def list_page(
        self,
        prefix: str = "",
        *,
        start_after: str = "",
        continuation: str | None = None,
        delimiter: str | None = None,
        max_keys: int = S3_MAX_KEYS,
    ) -> Page:
        """One ListObjectsV2 page (at most ``max_keys`` entries), keys in UTF-8 byte order."""
        return self._lean.page(
            prefix,
            start_after=start_after,
            continuation=continuation,
            delimiter=delimiter,
            max_keys=max_keys,
        )

    @property
    def _lean(self) -> LeanClient:
        """The botocore-free client for listings and HEADs (built on first use)."""
        with self._list_lock:
            if self._lister is None:
                self._lister = LeanClient(
                    self.bucket,
                    self._side.region,
                    self._side.endpoint_url,
                    self._side.keys,
                    self._listing_error,
                    verify_ssl=self._side.config.verify_ssl,
                    head_headers=_sse_c_headers(self._side.config),
                )
            return self._lister

    @property
    def _lean_async(self) -> AsyncLeanClient:
        """The client for copies and small GETs sent from an event loop (built on first use)."""
        from s3ferry.storage.lean_async import AsyncLeanClient

        with self._list_lock:
            if self._copier is None:
                self._copier = AsyncLeanClient(
                    self.bucket,
                    self._side.region,
                    self._side.endpoint_url,
                    self._side.keys,
                    self._object_error,
                    verify_ssl=self._side.config.verify_ssl,
                    get_headers=_sse_c_headers(self._side.config),
                )
            return self._copier

    def _listing_error(self, code: str, message: str) -> Exception:
        return _by_code(code, message, f"s3://{self.bucket}", bucket_level=code in ("404",))

    @staticmethod
    def _object_error(code: str, message: str, subject: str) -> Exception:
        return _by_code(code, message, subject, bucket_level=False)

    async def put_small(
        self,
        key: str,
        data: bytes,
        metadata: Mapping[str, str],
        crc32c: int,
        md5: bytes | None = None,
    ) -> str:
        """PUT one object in one request; the server verifies ``crc32c``, the CRC32C of
        ``data`` (which the caller has: it read or verified those bytes). Returns the ETag.

        ``md5`` is the MD5 digest ``data`` must have (a copy's source ETag): the server
        refuses other bytes (Content-MD5), so the caller need not hash them. Where
        the request cannot carry it (obstore), the bytes are hashed and checked here.

        Raises:
            IntegrityError: ``data`` does not have the MD5 ``md5``.
        """
        import asyncio  # loaded already: this runs on an event loop

        if not self._sse_c_honoured:
            await asyncio.to_thread(self.check_sse_c, key)
        if _UNSAFE_FOR_OBSTORE.search(key):
            return await asyncio.to_thread(self.put_object, key, data, metadata, crc32c, md5)
        headers = None if self._sse_write else _plain_headers(metadata)
        if headers is None:
            if md5 is not None and hashlib.md5(data).digest() != md5:
                raise IntegrityError(self.url(key), f"bytes to send do not have MD5 {md5.hex()}")
            return await self._put_obstore(key, data, metadata)
        if md5 is not None:
            headers["Content-MD5"] = base64.b64encode(md5).decode()
        return await self._put_lean(key, data, crc32c, headers)

    @retried_async
    async def _put_lean(self, key: str, data: bytes, crc32c: int, headers: dict[str, str]) -> str:
        return await self._lean_async.put(key, data, crc32c, headers)

    @retried_async
    async def _put_obstore(self, key: str, data: bytes, metadata: Mapping[str, str]) -> str:
        import obstore

        with translated(self.url(key)):
            result = await obstore.put_async(
                self._obs, key, data, attributes=dict(metadata), use_multipart=False
            )
        return str(result["e_tag"] or "").strip('"')

    @retried
    def put_object(
        self,
        key: str,
        data: bytes,
        metadata: Mapping[str, str],
        crc32c: int | None = None,
        md5: bytes | None = None,
    ) -> str:
        """PUT one object with botocore; the server verifies its CRC32C (``crc32c``, or
        computed here) and, when given, its MD5 digest ``md5``. Returns the ETag."""
        from s3ferry.transfer.checksums import crc32c as compute_crc32c

        self.check_sse_c(key)
        content_md5 = {"ContentMD5": base64.b64encode(md5).decode()} if md5 is not None else {}
        with translated(self.url(key)):
            r = self._boto.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumCRC32C=crc32c_b64(compute_crc32c(data) if crc32c is None else crc32c),
                **content_md5,
                **_headers(metadata),
                **self._sse_write,
            )
        return str(r["ETag"]).strip('"')

    async def get_small(self, key: str, max_bytes: int) -> tuple[Any, ObjectInfo]:
        """GET one whole object: its bytes (a buffer) and what the response said about it.

        Raises:
            BodyTooLarge: the object holds more than ``max_bytes`` (it grew since it was
                listed); none of it was read into memory.
        """
        if _UNSAFE_FOR_OBSTORE.search(key):
            import asyncio

            return await asyncio.to_thread(self._get_boto, key, max_bytes)
        return await self._get_lean(key, max_bytes)

    @retried_async
    async def _get_lean(self, key: str, max_bytes: int) -> tuple[bytearray, ObjectInfo]:
        headers, data = await self._lean_async.get(key, max_bytes)
        return data, _info_of(key, Head(headers), int(headers.get("content-length", len(data))))

    @retried
    def _get_boto(self, key: str, max_bytes: int) -> tuple[bytes, ObjectInfo]:
        with translated(self.url(key)):
            r = self._boto.get_object(Bucket=self.bucket, Key=key, **self._sse_c)
            if r["ContentLength"] > max_bytes:
                r["Body"].close()
                raise BodyTooLarge(r["ContentLength"])
            data = r["Body"].read()
        return data, ObjectInfo(
            key=key,
            size_bytes=r["ContentLength"],
            etag=r["ETag"].strip('"'),
            last_modified=r.get("LastModified"),
            metadata=r.get("Metadata", {}),
        )

    def create_multipart(
        self, key: str, metadata: Mapping[str, str], part_checksums: bool = True
    ) -> str:
        """Start a multipart upload whose parts carry CRC32C checksums (unless
        ``part_checksums`` is False, as for copies); returns its id.

        When an attempt failed, the store may have started an upload whose answer
        was lost; uploads of ``key`` begun since then, other than the one returned,
        are aborted so none is left open.
        """
        attempts: list[float] = []

        def create() -> str:
            attempts.append(time.time())
            algorithm = {"ChecksumAlgorithm": "CRC32C"} if part_checksums else {}
            with translated(self.url(key)):
                r = self._boto.create_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    **algorithm,
                    **_headers(metadata),
                    **self._sse_write,
                )
            return str(r["UploadId"])

        self.check_sse_c(key)
        upload_id = self.retrier.call(create)
        if len(attempts) > 1:
            self._abort_lost_uploads(key, upload_id, attempts[0] - CLOCK_SKEW_S)
        return upload_id

    def _abort_lost_uploads(self, key: str, keep: str, since: float) -> None:
        for upload in self._uploads_of(key):
            lost = upload["Key"] == key and upload["UploadId"] != keep
            if lost and upload["Initiated"].timestamp() >= since:
                # Gone already: a retried abort whose first answer was lost.
                with contextlib.suppress(NotFoundError):
                    self.abort_multipart(key, upload["UploadId"])

    @retried
    def _uploads_of(self, key: str) -> list[dict[str, Any]]:
        """Multipart uploads in progress under ``key`` (one page: a key has few)."""
        with translated(self.url(key)):
            r = self._boto.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        return list(r.get("Uploads", ()))

    @retried
    def upload_part(
        self, key: str, upload_id: str, number: int, body: bytes | bytearray, crc32c: int
    ) -> str:
        """Send one part; the server refuses it unless its CRC32C matches. Returns the ETag."""
        with translated(f"{self.url(key)} part {number}"):
            r = self._boto.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
                ChecksumCRC32C=crc32c_b64(crc32c),
                **self._sse_c,
            )
        return str(r["ETag"])

    def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[CompletedPart]
    ) -> str | None:
        """Complete the upload; returns the store's composite CRC32C (``None`` if it keeps none).

        The store checks every part's checksum again. A retry after an answer was
        lost finds no upload (NoSuchUpload): the object is then accepted if its
        ETag is the one these parts make.
        """
        try:
            return self._complete(key, upload_id, parts)
        except NotFoundError:
            info = self.head(key)
            if info is None or info.etag != _multipart_etag(parts):
                raise
            return info.checksum_crc32c

    @retried
    def _complete(self, key: str, upload_id: str, parts: Sequence[CompletedPart]) -> str | None:
        doc = {
            "Parts": [
                {"PartNumber": p.number, "ETag": p.etag, "ChecksumCRC32C": crc32c_b64(p.crc32c)}
                for p in parts
            ]
        }
        with translated(self.url(key)):
            r = self._boto.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload=doc, **self._sse_c
            )
        stored = r.get("ChecksumCRC32C")
        return str(stored) if stored is not None else None

    def delete_keys(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        """Delete up to 1,000 keys; returns ``(key, message)`` of failures.

        One DeleteObjects request takes the keys XML can carry; a key with
        control characters is deleted on its own.
        """
        in_xml = [k for k in keys if _XML_SAFE.fullmatch(k)]
        failed: list[tuple[str, str]] = []
        if in_xml:
            failed += self._delete_objects(in_xml)
        for key in (k for k in keys if not _XML_SAFE.fullmatch(k)):
            try:
                self._delete_object(key)
            except S3ferryError as e:
                failed.append((key, e.message))
        return failed

    @retried
    def _delete_objects(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        with translated(f"s3://{self.bucket}", bucket_level=True):
            r = self._boto.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
            )
        return [(e["Key"], f"{e.get('Code')}: {e.get('Message')}") for e in r.get("Errors", ())]

    @retried
    def _delete_object(self, key: str) -> None:
        with translated(self.url(key)):
            self._boto.delete_object(Bucket=self.bucket, Key=key)

    @retried
    def abort_multipart(self, key: str, upload_id: str) -> None:
        with translated(self.url(key)):
            self._boto.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    @retried
    def list_parts(self, key: str, upload_id: str) -> list[ListedPart]:
        """Every part uploaded so far, by number (at most 10,000: a list is fine).

        Raises:
            NotFoundError: the upload is gone (completed, aborted or expired).
        """
        parts: list[ListedPart] = []
        marker = 0
        with translated(f"{self.url(key)} upload {upload_id}"):
            while True:
                r = self._boto.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
                parts += [
                    ListedPart(
                        p["PartNumber"], p["Size"], p["ETag"].strip('"'), p.get("ChecksumCRC32C")
                    )
                    for p in r.get("Parts", ())
                ]
                if not r.get("IsTruncated"):
                    return parts
                marker = int(r["NextPartNumberMarker"])

    def read_range(
        self,
        key: str,
        start: int,
        end: int,
        consume: Callable[[memoryview, int], None],
        etag: str = "",
    ) -> None:
        """Stream bytes ``start`` (inclusive) to ``end`` (exclusive) of ``key`` into ``consume``.

        ``consume(chunk, offset)`` is called with consecutive chunks of at most
        ~1 MiB; ``offset`` is the chunk's position in the object. Each byte is
        consumed once: a stream that breaks is resumed from the first byte not
        yet consumed, with a new ranged GET. With ``etag``, only that version of
        the object is read (If-Match).

        Raises:
            IntegrityError: the store returned fewer or more bytes than asked for.
            SourceChangedError: the object's ETag is no longer ``etag``.
        """
        read = self._read_range_boto if _UNSAFE_FOR_OBSTORE.search(key) else self._lean.read_range
        consumed = start

        def advancing(chunk: memoryview, offset: int) -> None:
            nonlocal consumed
            consume(chunk, offset)
            consumed = offset + len(chunk)

        def resume() -> None:
            if consumed < end:
                read(key, consumed, end, advancing, etag)

        self.retrier.call(resume)
        _check_length(self.url(key), consumed - start, end - start)

    def _read_range_boto(
        self,
        key: str,
        start: int,
        end: int,
        consume: Callable[[memoryview, int], None],
        etag: str,
    ) -> None:
        offset = start
        condition = {"IfMatch": f'"{etag}"'} if etag else {}
        with translated(self.url(key)):
            body = self._boto.get_object(
                Bucket=self.bucket,
                Key=key,
                Range=f"bytes={start}-{end - 1}",
                **condition,
                **self._sse_c,
            )["Body"]
            for chunk in body.iter_chunks(RANGE_CHUNK_BYTES):
                consume(memoryview(chunk), offset)
                offset += len(chunk)

    @retried
    def get_tags(self, key: str) -> dict[str, str]:
        """The object's tags (GetObjectTagging); ``{}`` when it has none.

        Raises:
            UnsupportedError: the store does not implement object tagging (some
                answer with the object's body: it is not read past a tag set's size).
        """
        if not _UNSAFE_FOR_OBSTORE.search(key):
            try:
                root = ET.fromstring(self._lean.get(key, {"tagging": ""}, TAG_SET_MAX_BYTES))
            except (BodyTooLarge, ET.ParseError) as e:
                raise UnsupportedError(self.url(key), _NO_TAGGING) from e
            if not root.tag.endswith("Tagging"):
                raise UnsupportedError(self.url(key), _NO_TAGGING)
            return {
                t.findtext("{*}Key") or "": t.findtext("{*}Value") or ""
                for t in root.iterfind(".//{*}Tag")
            }
        with translated(self.url(key)):
            r = self._boto.get_object_tagging(Bucket=self.bucket, Key=key)
        return {t["Key"]: t["Value"] for t in r.get("TagSet", ())}

    @retried
    def put_tags(self, key: str, tags: Mapping[str, str]) -> None:
        """Replace the object's tags with ``tags`` (PutObjectTagging).

        The first call asks the store, once, whether it implements the request
        (:meth:`_tagging_probed`): some stores take it for a PutObject and would
        replace the object's bytes with the tag set.

        Raises:
            UnsupportedError: the store does not implement object tagging.
            IntegrityError: the store answered as to a PutObject (the object was replaced).
        """
        if not self._tagging_probed(key):
            raise UnsupportedError(self.url(key), _NO_TAGGING)
        tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
        with translated(self.url(key)):
            r = self._boto.put_object_tagging(
                Bucket=self.bucket, Key=key, Tagging={"TagSet": tag_set}
            )
        if "etag" in r["ResponseMetadata"]["HTTPHeaders"]:
            raise IntegrityError(self.url(key), f"{_NO_TAGGING}: it stored the tags as the object")

    def _tagging_probed(self, key: str) -> bool:
        """Whether PutObjectTagging may be sent to this store: asked once, by tagging a
        key that does not exist beside ``key``. S3 answers NoSuchKey; a store that
        takes the request for a PutObject creates the key (then deleted again).

        Raises:
            CredentialsExpiredError, TransientError: no answer yet (asked again next time).
        """
        with self._tagging_lock:
            if self._tagging is None:
                probe = _probe_key(key, "tagging")
                try:
                    with translated(self.url(probe)):
                        self._boto.put_object_tagging(
                            Bucket=self.bucket,
                            Key=probe,
                            Tagging={"TagSet": [{"Key": "s3ferry-probe", "Value": "1"}]},
                        )
                except NotFoundError:
                    self._tagging = True
                except CredentialsExpiredError:
                    raise
                except (UnsupportedError, AccessDeniedError):
                    self._tagging = False
                else:
                    self._tagging = False
                    self.delete_keys([probe])
            return self._tagging

    def check_sse_c(self, key: str) -> None:
        """Before the first write with an SSE-C key: make sure the store encrypts with it.

        An empty object is written with the key beside ``key``, HEADed without
        it, and deleted: S3 refuses that HEAD; a store that answers it kept the
        object unencrypted (rclone's server even stores the key as metadata).

        Raises:
            UnsupportedError: the store ignores SSE-C keys (raised again by every later write).
        """
        if self._sse_c_honoured:
            return
        with self._sse_c_lock:
            if self._sse_c_honoured is None:
                self._sse_c_honoured = not self.retrier.call(lambda: self._sse_c_ignored(key))
        if not self._sse_c_honoured:
            raise UnsupportedError(
                self.url(key),
                "the store ignores SSE-C keys (an object written with the key was"
                " readable without it); nothing is written unencrypted",
            )

    def _sse_c_ignored(self, key: str) -> bool:
        probe = _probe_key(key, "sse-c")
        with translated(self.url(probe)):
            self._boto.put_object(Bucket=self.bucket, Key=probe, Body=b"", **self._sse_c)
        try:
            with translated(self.url(probe)):
                self._boto.head_object(Bucket=self.bucket, Key=probe)
            return True
        except (TransientError, NotFoundError):
            raise
        except StoreError:
            return False  # refused without the key: encrypted
        finally:
            self.delete_keys([probe])

    @retried
    def get_lifecycle(self) -> dict[str, Any]:
        """The bucket's lifecycle configuration as S3 returns it: ``{"Rules": [...]}``, plus
        ``TransitionDefaultMinimumObjectSize`` when the store reports it.

        A bucket without rules gives ``{"Rules": []}``: S3's NoSuchLifecycleConfiguration
        is an answer, not an error.
        """
        from botocore.exceptions import ClientError

        with translated(f"s3://{self.bucket}", bucket_level=True):
            try:
                r = self._boto.get_bucket_lifecycle_configuration(Bucket=self.bucket)
            except ClientError as e:
                if _botocore_code(e) == "NoSuchLifecycleConfiguration":
                    return {"Rules": []}
                raise
        if "Rules" not in r:  # some stores (rclone's) answer with a listing of the bucket
            raise UnsupportedError(
                f"s3://{self.bucket}", "the store does not implement lifecycle configuration"
            )
        return {k: v for k, v in r.items() if k != "ResponseMetadata"}

    @retried
    def put_lifecycle(self, configuration: Mapping[str, Any]) -> None:
        """Replace the bucket's whole lifecycle configuration with ``configuration``
        (the form :meth:`get_lifecycle` returns)."""
        from botocore.exceptions import ClientError

        # Written back as read: left out, S3 would reset it to its default.
        kept = "TransitionDefaultMinimumObjectSize"
        extra = {kept: configuration[kept]} if kept in configuration else {}
        subject = f"s3://{self.bucket}"
        with translated(subject, bucket_level=True):
            try:
                self._boto.put_bucket_lifecycle_configuration(
                    Bucket=self.bucket,
                    LifecycleConfiguration={"Rules": list(configuration["Rules"])},
                    **extra,
                )
            except ClientError as e:
                if _botocore_code(e) == "NotImplemented":
                    what = "the store does not implement these lifecycle rules (NotImplemented)"
                    raise StoreError(subject, what) from e
                raise

    @retried
    def restore_object(
        self, key: str, days: int, tier: str
    ) -> Literal["started", "in-progress", "restored"]:
        """Ask for a readable copy of an archived object, kept ``days`` days, fetched at ``tier``
        (``Bulk``, ``Standard`` or ``Expedited``).

        Idempotent: ``"started"`` when this request began a restore,
        ``"in-progress"`` when one was already running (S3's
        RestoreAlreadyInProgress), ``"restored"`` when a restored copy exists
        (S3 then only moves its expiry).
        """
        request = {"Days": days, "GlacierJobParameters": {"Tier": tier}}
        with translated(self.url(key)):
            try:
                r = self._boto.restore_object(Bucket=self.bucket, Key=key, RestoreRequest=request)
            except Exception as e:  # noqa: BLE001 - one code is an answer, the rest are translated
                if _botocore_code(e) == "RestoreAlreadyInProgress":
                    return "in-progress"
                raise
        return "started" if r["ResponseMetadata"]["HTTPStatusCode"] == 202 else "restored"

    # Copies between buckets. Multipart copies carry no checksum algorithm:
    # whoever completes one (any worker) may know only what ListParts tells,
    # which on some stores lacks part checksums; parts sent from the client
    # are protected by Content-MD5 instead.

    async def copy_from(
        self, source: S3Store, source_key: str, key: str, executor: Executor
    ) -> str:
        """Server-side copy of one object of ``source`` (same endpoint) to ``key``, with its
        metadata and content type, encrypted as this store writes (an SSE-C source is
        read with the source's key); returns the new ETag. Sent by the event loop itself,
        or, for encrypted objects and keys that only botocore sends as they are, through
        botocore on a thread of ``executor``."""
        if source._sse_c or self._sse_write or _UNSAFE_FOR_OBSTORE.search(key + "\0" + source_key):
            import asyncio

            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, self._copy_boto, source, source_key, key)
        return await self._copy_lean(source.bucket, source_key, key)

    @retried
    def _copy_boto(self, source: S3Store, source_key: str, key: str) -> str:
        self.check_sse_c(key)
        with translated(f"{source.url(source_key)} -> {self.url(key)}"):
            r = self._boto.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": source.bucket, "Key": source_key},
                **self._sse_write,
                **_copy_source_sse(source),
            )
        return str(r["CopyObjectResult"]["ETag"]).strip('"')

    @retried_async
    async def _copy_lean(self, source_bucket: str, source_key: str, key: str) -> str:
        with translated(f"s3://{source_bucket}/{source_key} -> {self.url(key)}"):
            return await self._lean_async.copy(source_bucket, source_key, key)

    @retried
    def upload_part_copy(
        self,
        key: str,
        upload_id: str,
        number: int,
        source: S3Store,
        source_key: str,
        start: int,
        end: int,
        source_etag: str = "",
    ) -> str:
        """Part ``number`` of ``key`` copied server-side from bytes ``start``..``end``
        (exclusive) of ``source_key`` (only of the version ``source_etag``, if given);
        returns the part's ETag.

        Raises:
            UnsupportedError: the store does not implement UploadPartCopy (some answer
                as to an UploadPart with no body: no CopyPartResult, an empty part).
            SourceChangedError: the source's ETag is no longer ``source_etag``.
        """
        subject = f"{self.url(key)} part {number}"
        condition = {"CopySourceIfMatch": f'"{source_etag}"'} if source_etag else {}
        with translated(subject):
            r = self._boto.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": source.bucket, "Key": source_key},
                CopySourceRange=f"bytes={start}-{end - 1}",
                **condition,
                **self._sse_c,
                **_copy_source_sse(source),
            )
        etag = r.get("CopyPartResult", {}).get("ETag")
        if not etag:
            raise UnsupportedError(subject, "the store does not implement UploadPartCopy")
        return str(etag)

    def part_copy_works(self, source: S3Store, source_key: str, near_key: str) -> bool:
        """Whether this store copies parts from ``source`` server-side (UploadPartCopy).

        One byte of ``source_key`` is copied into an upload of its own, beside
        ``near_key``, which is then aborted: a store that takes the request for an
        UploadPart with no body would otherwise spoil a real upload's part for good.
        """
        probe = _probe_key(near_key, "part-copy")
        upload_id = self.create_multipart(probe, {}, part_checksums=False)
        try:
            self.upload_part_copy(probe, upload_id, 1, source, source_key, 0, 1)
            return True
        except UnsupportedError:
            return False
        finally:
            with contextlib.suppress(NotFoundError):
                self.abort_multipart(probe, upload_id)

    @retried
    def upload_part_md5(
        self,
        key: str,
        upload_id: str,
        number: int,
        body: bytes | bytearray | memoryview,
        md5: bytes | None = None,
    ) -> str:
        """Send one part with its Content-MD5 (the store refuses it if the bytes differ);
        ``md5`` is the body's digest when the caller has it already."""
        digest = base64.b64encode(md5 or hashlib.md5(body).digest()).decode()
        with translated(f"{self.url(key)} part {number}"):
            r = self._boto.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(body) if isinstance(body, memoryview) else body,
                ContentMD5=digest,
                **self._sse_c,
            )
        return str(r["ETag"])

    @retried
    def complete_copy_multipart(
        self, key: str, upload_id: str, parts: Sequence[ListedPart]
    ) -> None:
        """Complete a copy's multipart upload from its parts' ETags (and CRC32Cs, for an
        upload whose parts carry them)."""
        doc = {
            "Parts": [
                {"PartNumber": p.number, "ETag": f'"{p.etag}"'}
                | ({"ChecksumCRC32C": p.crc32c_b64} if p.crc32c_b64 else {})
                for p in parts
            ]
        }
        with translated(self.url(key)):
            self._boto.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload=doc
            )

    def multipart_uploads(self, prefix: str = "") -> Iterator[OpenUpload]:
        """The multipart uploads open under ``prefix``, page by page."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            r = self._upload_page(args)
            for u in r.get("Uploads", ()):
                yield OpenUpload(u["Key"], u["UploadId"], u["Initiated"])
            if not r.get("IsTruncated"):
                return
            args["KeyMarker"] = r["NextKeyMarker"]
            args["UploadIdMarker"] = r["NextUploadIdMarker"]

    @retried
    def _upload_page(self, args: Mapping[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        with translated(f"s3://{self.bucket}/{args['Prefix']}", bucket_level=True):
            try:
                return dict(self._boto.list_multipart_uploads(**args))
            except ClientError as e:
                # rclone's server answers so while no upload was ever started in the bucket.
                if _botocore_code(e) == "NoSuchUpload":
                    return {}
                raise


@dataclass(frozen=True, slots=True)
class OpenUpload:
    key: str
    upload_id: str
    initiated: datetime


def _headers(metadata: Mapping[str, str]) -> dict[str, Any]:
    """botocore arguments for obstore-style attributes: Content-Type and Storage-Class apart,
    the rest metadata."""
    meta = {k: v for k, v in metadata.items() if k not in _ATTRIBUTES}
    extra: dict[str, Any] = {"Metadata": meta}
    for attribute, argument in _ATTRIBUTES.items():
        if attribute in metadata:
            extra[argument] = metadata[attribute]
    return extra


# Attributes of an object that describe its content: a copy carries them over.
_CONTENT_HEADERS = {
    "Content-Type": "ContentType",
    "Cache-Control": "CacheControl",
    "Content-Disposition": "ContentDisposition",
    "Content-Encoding": "ContentEncoding",
    "Content-Language": "ContentLanguage",
}
_ATTRIBUTES = {**_CONTENT_HEADERS, "Storage-Class": "StorageClass"}


_PLAIN_VALUE = re.compile(r"[ -~]*")


def _plain_headers(attributes: Mapping[str, str]) -> dict[str, str] | None:
    """The request headers that store ``attributes`` (content headers, storage class and
    metadata, as obstore's attributes name them); ``None`` when a value is not printable
    ASCII, which only an encoding library may send."""
    headers = {}
    for name, value in attributes.items():
        if not _PLAIN_VALUE.fullmatch(value) or not _PLAIN_VALUE.fullmatch(name):
            return None
        if name in _CONTENT_HEADERS:
            headers[name] = value
        elif name == "Storage-Class":
            headers["x-amz-storage-class"] = value
        else:
            headers["x-amz-meta-" + name.lower()] = value
    return headers


def _info_of(key: str, h: Head, size_bytes: int) -> ObjectInfo:
    """What the (lower-case) headers of a HEAD or GET of ``key`` say about the object."""
    return ObjectInfo(
        key=key,
        size_bytes=size_bytes,
        etag=h.headers.get("etag", "").strip('"'),
        last_modified=h.last_modified,
        metadata=h.metadata,
        checksum_crc32c=h.headers.get("x-amz-checksum-crc32c"),
        storage_class=h.headers.get("x-amz-storage-class"),
        restore=h.headers.get("x-amz-restore"),
        attributes=_attributes_of(h.headers),
    )


def _attributes_of(headers: Mapping[str, str]) -> dict[str, str]:
    """The attributes of a HEAD's (lower-case) headers that a copy carries over."""
    found = {k[11:]: v for k, v in headers.items() if k.startswith("x-amz-meta-")}
    for attribute in _CONTENT_HEADERS:
        value = headers.get(attribute.lower())
        if value is not None:
            found[attribute] = value
    return found


def _multipart_etag(parts: Sequence[CompletedPart]) -> str | None:
    """The ETag S3 gives the object completed from ``parts``: ``hex(md5(md5_1..md5_N))-N``
    (``None`` when a part's ETag is not an MD5, as with SSE-KMS)."""
    try:
        md5s = b"".join(bytes.fromhex(p.etag.strip('"')) for p in parts)
    except ValueError:
        return None
    return f"{hashlib.md5(md5s).hexdigest()}-{len(parts)}"


def _sse_c_arguments(config: StoreConfig) -> dict[str, Any]:
    """botocore arguments naming the SSE-C key (botocore adds its base64 and MD5)."""
    if config.sse_c_key is None:
        return {}
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": config.sse_c_key}


def _copy_source_sse(source: S3Store) -> dict[str, Any]:
    """botocore arguments that let a copy read an SSE-C source."""
    return {f"CopySource{name}": value for name, value in source._sse_c.items()}


def _sse_write_arguments(config: StoreConfig) -> dict[str, Any]:
    """botocore arguments for PutObject and CreateMultipartUpload: how to encrypt."""
    if config.sse is None:
        return _sse_c_arguments(config)
    kms = {"SSEKMSKeyId": config.sse_kms_key_id} if config.sse_kms_key_id else {}
    return {"ServerSideEncryption": config.sse, **kms}


def _sse_c_headers(config: StoreConfig) -> dict[str, str]:
    """The SSE-C request headers, for HEADs sent without botocore."""
    if config.sse_c_key is None:
        return {}
    prefix = "x-amz-server-side-encryption-customer-"
    return {
        prefix + "algorithm": "AES256",
        prefix + "key": base64.b64encode(config.sse_c_key).decode(),
        prefix + "key-md5": base64.b64encode(hashlib.md5(config.sse_c_key).digest()).decode(),
    }


def _check_length(subject: str, got: int, wanted: int) -> None:
    if got != wanted:
        raise IntegrityError(subject, f"store returned {got} bytes, expected {wanted}")


_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload"}
_DENIED = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "Forbidden",
    "InvalidToken",
    # Refusals of a request without credentials (rclone's for --no-sign-request).
    "MissingSecurityHeader",
    "UnsupportedAlgorithm",
}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", "RequestExpired"}
# S3 answers 503 only to say "slow down" (SlowDown, ServiceUnavailable).
_THROTTLED = {
    "429",
    "503",
    "SlowDown",
    "ServiceUnavailable",
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
}
_TRANSIENT = {"500", "502", "504", "InternalError", "RequestTimeout"}


@contextmanager
def translated(subject: str, bucket_level: bool = False) -> Iterator[None]:
    """Translate botocore and obstore errors raised inside the block into our tree."""
    try:
        yield
    except (S3ferryError, BodyTooLarge):
        raise
    except Exception as e:  # noqa: BLE001 - classified below, re-raised if unknown
        raise _translate(e, subject, bucket_level) from e


def _translate(e: Exception, subject: str, bucket_level: bool) -> Exception:
    if re.search(r"CERTIFICATE_VERIFY_FAILED|InvalidCertificate", str(e)):
        # Permanent, and the one line names what is wrong (the raw text is a chain of causes).
        return StoreError(subject, UNTRUSTED_CERTIFICATE)
    code = _botocore_code(e)
    if code is not None:
        return _by_code(code, str(e), subject, bucket_level)
    module = type(e).__module__
    # obstore raises its own types, and the builtin FileNotFoundError for 404.
    if module.startswith("obstore") or isinstance(e, FileNotFoundError):
        return _from_obstore(e, subject)
    if module.startswith(("botocore", "urllib3")):
        return TransientError(subject, _one_line(str(e)))
    return e


def _botocore_code(e: Exception) -> str | None:
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return None
    return str(
        response.get("Error", {}).get("Code")
        or response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


def _probe_key(key: str, question: str) -> str:
    """A new key, in the "directory" of ``key`` (so the same policies apply to it), for
    asking the store ``question`` once with a request of its own."""
    return f"{key[: key.rfind('/') + 1]}.s3ferry-{question}-probe-{secrets.token_hex(8)}"


def _by_code(code: str, text: str, subject: str, bucket_level: bool) -> Exception:
    if code in _NOT_FOUND:
        what = "bucket does not exist" if bucket_level or code == "NoSuchBucket" else "no such key"
        return NotFoundError(subject, what)
    if code in _EXPIRED:
        return CredentialsExpiredError(subject, f"credentials expired ({code})")
    if code in _DENIED:
        hint = (
            "wrong credentials"
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch")
            else "access denied"
        )
        return AccessDeniedError(subject, f"{hint} ({code})")
    if code in _THROTTLED:
        return ThrottledError(subject, f"{code}: {_one_line(text)}")
    if code in _TRANSIENT:
        return TransientError(subject, f"{code}: {_one_line(text)}")
    if code in ("NotImplemented", "MethodNotAllowed"):
        # rclone answers RestoreObject with 405 MethodNotAllowed.
        return UnsupportedError(subject, f"the store does not implement this ({code})")
    if code == "InvalidObjectState":
        return ObjectArchivedError(subject, "object is archived; restore it first")
    if code in ("PreconditionFailed", "412"):
        return SourceChangedError(subject, "the object changed: its ETag is not the one planned")
    if code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"):
        return IntegrityError(subject, f"store rejected the checksum ({code})")
    if code == "400" or _SSE_C_NEEDED in text:
        # A HEAD's 400 has no body; the usual cause is an SSE-C object read without its key.
        return StoreError(subject, _NEEDS_KEY)
    return StoreError(subject, _one_line(text))


_OBSTORE_THROTTLED = re.compile(r"status code: (503|429)|<Code>(SlowDown|Throttling)</Code>")
# "body error": a response cut short (reset or closed mid-body).
_OBSTORE_TRANSIENT = re.compile(
    r"status code: 5\d\d|connection|timed out|error sending request|body error", re.I
)
_SSE_C_NEEDED = "Server Side Encryption with Customer provided keys"
_NEEDS_KEY = "bad request (HTTP 400): an object encrypted with SSE-C needs its --sse-c-key"


def _from_obstore(e: Exception, subject: str) -> Exception:
    name = type(e).__name__
    # The Rust error's debug dump after the message only repeats it.
    text = _one_line(str(e).split("\n\nDebug source:")[0])
    if isinstance(e, FileNotFoundError) or name == "NotFoundError":
        what = "bucket does not exist" if "NoSuchBucket" in str(e) else "no such key"
        return NotFoundError(subject, what)
    if "InvalidObjectState" in str(e):
        return ObjectArchivedError(subject, "object is archived; restore it first")
    if any(f"<Code>{code}</Code>" in str(e) for code in _EXPIRED):
        return CredentialsExpiredError(subject, "credentials expired")
    if name in ("PermissionDeniedError", "UnauthenticatedError"):
        return AccessDeniedError(subject, "access denied or wrong credentials")
    # obstore's generic error carries the HTTP status and the S3 code only in its text.
    if _OBSTORE_THROTTLED.search(str(e)):
        return ThrottledError(subject, text)
    if _OBSTORE_TRANSIENT.search(str(e)):
        return TransientError(subject, text)
    if _SSE_C_NEEDED in str(e):
        return StoreError(subject, _NEEDS_KEY)
    if "BadDigest" in str(e) or "Checksum" in str(e):
        return IntegrityError(subject, f"store rejected the checksum: {text}")
    return StoreError(subject, text)


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
