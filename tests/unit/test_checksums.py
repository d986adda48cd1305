from __future__ import annotations

import base64
import hashlib

from hypothesis import given
from hypothesis import strategies as st

from s3ferry.storage.s3 import crc32c_b64
from s3ferry.transfer.checksums import (
    Computed,
    Expected,
    composite_crc32c,
    crc32c,
    crc32c_combine,
    is_multipart_md5,
    is_plain_md5,
    mismatch,
    multipart_etag,
)


def test_crc32c_known_value() -> None:
    # RFC 3720 test vector: 32 bytes of zeros.
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"456789", crc32c(b"123")) == crc32c(b"123456789") == 0xE3069283


@given(st.binary(max_size=3000), st.binary(max_size=3000), st.integers(0, 2**32 - 1))
def test_crc32c_combine_equals_the_crc_of_the_concatenation(a: bytes, b: bytes, seed: int) -> None:
    assert crc32c_combine(crc32c(a, seed), crc32c(b), len(b)) == crc32c(b, crc32c(a, seed))


def test_crc32c_combine_by_doubling_matches_a_direct_crc() -> None:
    crc, length = crc32c(b"\x01" * 4096), 4096
    while length < 32 << 20:
        crc, length = crc32c_combine(crc, crc, length), 2 * length
    assert crc == crc32c(b"\x01" * length)


def test_composite_matches_s3_definition() -> None:
    parts = [b"a" * 10, b"b" * 7]
    crcs = [crc32c(p) for p in parts]
    joined = b"".join(c.to_bytes(4, "big") for c in crcs)
    want = base64.b64encode(crc32c(joined).to_bytes(4, "big")).decode() + "-2"
    assert composite_crc32c(crcs) == want


def test_multipart_etag() -> None:
    md5s = [hashlib.md5(b"x").digest(), hashlib.md5(b"y").digest()]
    assert multipart_etag(md5s) == hashlib.md5(b"".join(md5s)).hexdigest() + "-2"
    assert is_multipart_md5(multipart_etag(md5s)) and not is_plain_md5(multipart_etag(md5s))


def test_mismatch_prefers_crc_and_reports_differences() -> None:
    data = b"hello"
    good = Computed([crc32c(data)], [hashlib.md5(data).digest()])
    assert mismatch(Expected(crc32c_b64=crc32c_b64(crc32c(data))), good) is None
    assert mismatch(Expected(md5_etag=hashlib.md5(data).hexdigest()), good) is None
    bad = Computed([crc32c(b"hellp")], [hashlib.md5(b"hellp").digest()])
    assert "CRC32C" in (mismatch(Expected(crc32c_b64=crc32c_b64(crc32c(data))), bad) or "")
    assert "MD5" in (mismatch(Expected(md5_etag=hashlib.md5(data).hexdigest()), bad) or "")
    assert Expected().method == "size" and mismatch(Expected(), bad) is None
