"""Checksums computed while bytes move, and the one function that decides "verified".

Order of preference when verifying a download (cheapest first, all exact):

1. ``crc32c``: the s3ferry metadata (single PUT) or the store's CRC32C,
   full-object or composite (``<b64>-N``: the CRC32C of the parts' CRC32Cs);
2. ``md5``: an ETag that is a plain MD5, or the multipart form
   ``<md5 of the parts' MD5s>-N`` when the part size is known;
3. ``size``: nothing else is available (e.g. SSE-KMS objects from other tools).

Comparing content (``sync --checksum``, ``compare``, ``restore``) also uses
the SHA-256 tree hash s3ferry records at upload (:mod:`.treehash`): in
metadata for a single PUT, in the tag ``s3ferry-sha256-tree`` for a
multipart upload. Tagging is optional: where the store does not implement
it, or the credentials may not use it, the tag is neither written nor read
and the CRC32C is what remains.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from s3ferry.errors import AccessDeniedError, CredentialsExpiredError, UnsupportedError
from s3ferry.storage.s3 import ObjectInfo, S3Store, crc32c_b64

META_MTIME_NS = "s3ferry-mtime-ns"
META_SIZE = "s3ferry-size"
META_CRC32C = "s3ferry-crc32c"
META_PART_SIZE = "s3ferry-part-size"
# The SHA-256 tree hash (hex): metadata of a single PUT, a tag of a multipart upload.
META_SHA256_TREE = "s3ferry-sha256-tree"
# POSIX attributes a backup records: permission bits in octal ("644"), ids in
# decimal, and for a symbolic link its target (the object's body is empty).
META_MODE = "s3ferry-mode"
META_UID = "s3ferry-uid"
META_GID = "s3ferry-gid"
META_SYMLINK = "s3ferry-symlink"

_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")
_MULTIPART_MD5 = re.compile(r"^[0-9a-f]{32}-\d+$")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def crc32c(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC32C of ``data``, continuing from ``value`` (the GIL is let go of meanwhile)."""
    return int(_crc32c_function()(data, value))


@functools.cache
def _crc32c_function() -> Callable[[bytes | bytearray | memoryview, int], int]:
    """The ``crc32c`` package's C function, its extension module loaded without the
    package's ``__init__``: that reads the package's version from the installed
    metadata (``importlib.metadata``), ~25 ms of each start-up here."""
    from importlib.machinery import PathFinder
    from importlib.util import find_spec, module_from_spec

    name = "crc32c._crc32c"
    if name not in sys.modules:
        package = find_spec("crc32c")
        where = package.submodule_search_locations if package is not None else None
        spec = PathFinder.find_spec(name, where) if where else None
        if spec is None or spec.loader is None:
            import crc32c as whole  # not laid out as expected: the whole package, then

            return whole.crc32c
        sys.modules[name] = module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name].crc32c  # type: ignore[no-any-return]


# CRC32C's polynomial, bit-reversed (the CRC is computed least significant bit first).
_POLY = 0x82F63B78


def _times_mod_poly(a: int, b: int) -> int:
    """``a * b`` modulo the CRC polynomial, both bit-reversed (x^0 is bit 31)."""
    product = 0
    bit = 1 << 31
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return product


def _x_to_the_2_to_the(count: int) -> list[int]:
    """``x^(2^k)`` modulo the polynomial for k < ``count``."""
    powers = [1 << 30]  # x^1
    while len(powers) < count:
        powers.append(_times_mod_poly(powers[-1], powers[-1]))
    return powers


_X_POWERS = _x_to_the_2_to_the(64)


def crc32c_combine(first: int, second: int, second_length: int) -> int:
    """The CRC32C of ``A + B`` from ``crc32c(A)``, ``crc32c(B)`` and ``len(B)``.

    Appending n bytes to A multiplies A's remainder by x^(8n) modulo the
    polynomial (zlib's crc32_combine, with CRC32C's polynomial), so ranges
    fetched in parallel give the whole object's CRC32C without reading it again.
    """
    shift, exponent = 1 << 31, 3  # x^0; 8n = n * 2^3
    n = second_length
    while n:
        if n & 1:
            shift = _times_mod_poly(_X_POWERS[exponent], shift)
        n >>= 1
        exponent += 1
    return _times_mod_poly(shift, first) ^ second


def composite_crc32c(part_crcs: Sequence[int]) -> str:
    """S3's composite checksum of a multipart object: ``b64(crc32c(crc1..crcN))-N``."""
    joined = b"".join(c.to_bytes(4, "big") for c in part_crcs)
    return f"{crc32c_b64(crc32c(joined))}-{len(part_crcs)}"


def multipart_etag(part_md5s: Sequence[bytes]) -> str:
    """The ETag S3 gives a multipart object: ``hex(md5(md5_1..md5_N))-N``."""
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


def is_plain_md5(etag: str) -> bool:
    return _PLAIN_MD5.match(etag) is not None


def is_multipart_md5(etag: str) -> bool:
    return _MULTIPART_MD5.match(etag) is not None


@dataclass(frozen=True, slots=True)
class Expected:
    """What the store says the object's bytes hash to; the first set field wins."""

    crc32c_b64: str | None = None
    md5_etag: str | None = None

    @property
    def composite(self) -> bool:
        """True for a multipart object's checksum of part checksums (``...-N``)."""
        return "-" in (self.crc32c_b64 or self.md5_etag or "")

    @property
    def whole_md5(self) -> bool:
        """True when the check is the MD5 of all the bytes (a plain MD5 ETag)."""
        return self.method == "md5" and not self.composite

    @property
    def method(self) -> str:
        if self.crc32c_b64 is not None:
            return "crc32c"
        return "md5" if self.md5_etag is not None else "size"


@dataclass(frozen=True, slots=True)
class Computed:
    """What the bytes received hash to, per part (one part for a single-range object)."""

    part_crcs: Sequence[int]
    part_md5s: Sequence[bytes]


def mismatch(expected: Expected, computed: Computed) -> str | None:
    """``None`` if the bytes match what was expected, else what differs (one line)."""
    if expected.crc32c_b64 is not None:
        crcs = computed.part_crcs
        got = (
            composite_crc32c(crcs)
            if expected.composite
            else (crc32c_b64(crcs[0]) if len(crcs) == 1 else None)
        )
        if got != expected.crc32c_b64:
            return f"CRC32C {got} != stored {expected.crc32c_b64}"
        return None
    if expected.md5_etag is not None:
        md5s = computed.part_md5s
        got = multipart_etag(md5s) if expected.composite else md5s[0].hex()
        if got != expected.md5_etag:
            return f"MD5 {got} != ETag {expected.md5_etag}"
    return None


@dataclass(frozen=True, slots=True)
class FileDigests:
    """A local file's MD5 (hex), whole CRC32C, and CRC32C per part of ``part_size``."""

    md5_hex: str
    crc32c: int
    part_crcs: Sequence[int]


def file_digests(path: str, part_size: int | None = None, chunk: int = 8 << 20) -> FileDigests:
    """Hash a file once for every comparison a sync may need (reads it sequentially).

    Raises:
        OSError: the file cannot be read.
    """
    md5 = hashlib.md5()
    whole = 0
    parts: list[int] = []
    part, in_part = 0, 0
    with open(path, "rb", buffering=0) as f:
        while data := f.read(chunk if part_size is None else min(chunk, part_size - in_part)):
            md5.update(data)
            whole = crc32c(data, whole)
            if part_size is not None:
                part = crc32c(data, part)
                in_part += len(data)
                if in_part == part_size:
                    parts.append(part)
                    part, in_part = 0, 0
    if part_size is not None and in_part:
        parts.append(part)
    return FileDigests(md5.hexdigest(), whole, parts)


@contextmanager
def tagging_optional() -> Iterator[None]:
    """Ignore, in the block, a store without object tagging or credentials refused it.

    What a tag would hold is then simply not recorded (or not found); expired
    credentials are still an error.
    """
    try:
        yield
    except CredentialsExpiredError:
        raise
    except (UnsupportedError, AccessDeniedError):
        pass


def stored_tree_hash(store: S3Store, info: ObjectInfo) -> str | None:
    """The SHA-256 tree hash s3ferry recorded for ``info``'s object, else ``None``.

    Metadata first (single PUT); then, for an object s3ferry uploaded in
    parts (its metadata records the part size), the tag: one GetObjectTagging.
    Other objects cannot have the tag and cost no request.

    Raises:
        StoreError: the tag could not be read (other than tagging being unavailable).
    """
    value = info.metadata.get(META_SHA256_TREE)
    if value is None and META_PART_SIZE in info.metadata:
        with tagging_optional():
            value = store.get_tags(info.key).get(META_SHA256_TREE)
    return value if value is not None and _SHA256_HEX.fullmatch(value) else None
