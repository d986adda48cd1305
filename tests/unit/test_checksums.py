from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3ferry.errors import (
    AccessDeniedError,
    CredentialsExpiredError,
    S3ferryError,
    TransientError,
    UnsupportedError,
)
from s3ferry.storage.s3 import ObjectInfo, crc32c_b64
from s3ferry.transfer.checksums import (
    META_PART_SIZE,
    META_SHA256_TREE,
    Computed,
    Expected,
    composite_crc32c,
    crc32c,
    crc32c_combine,
    is_multipart_md5,
    is_plain_md5,
    mismatch,
    multipart_etag,
    stored_tree_hash,
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


class _Tags:
    """A store whose tagging answers ``tags``, or raises ``error``; counts the requests."""

    def __init__(self, tags: dict[str, str] | None = None, error: S3ferryError | None = None):
        self.tags, self.error, self.asked = tags or {}, error, 0

    def get_tags(self, key: str) -> dict[str, str]:
        self.asked += 1
        if self.error is not None:
            raise self.error
        return self.tags


TREE = "ab" * 32
MULTIPART = {META_PART_SIZE: "5242880"}


def _stored(store: _Tags, metadata: dict[str, str]) -> str | None:
    info = ObjectInfo("k", 1, "e-2", metadata=metadata)
    return stored_tree_hash(store, info)  # type: ignore[arg-type]


def test_stored_tree_hash_from_metadata_costs_no_request() -> None:
    store = _Tags({META_SHA256_TREE: "cd" * 32})
    assert _stored(store, {**MULTIPART, META_SHA256_TREE: TREE}) == TREE
    assert store.asked == 0


def test_stored_tree_hash_tag_is_asked_only_of_objects_s3ferry_uploaded_in_parts() -> None:
    store = _Tags({META_SHA256_TREE: TREE})
    assert _stored(store, {}) is None and store.asked == 0
    assert _stored(store, MULTIPART) == TREE and store.asked == 1
    assert _stored(_Tags({"other": "x"}), MULTIPART) is None


def test_stored_tree_hash_that_is_no_sha256_hex_is_ignored() -> None:
    assert _stored(_Tags(), {META_SHA256_TREE: TREE.upper()}) is None
    assert _stored(_Tags({META_SHA256_TREE: TREE + "\n"}), MULTIPART) is None


@pytest.mark.parametrize(
    "error", [UnsupportedError("s3://b/k", "no tagging"), AccessDeniedError("s3://b/k", "no")]
)
def test_stored_tree_hash_is_none_where_tagging_is_unavailable(error: S3ferryError) -> None:
    assert _stored(_Tags(error=error), MULTIPART) is None


@pytest.mark.parametrize(
    "error",
    [CredentialsExpiredError("s3://b/k", "expired"), TransientError("s3://b/k", "reset")],
)
def test_stored_tree_hash_raises_other_store_errors(error: S3ferryError) -> None:
    with pytest.raises(type(error)):
        _stored(_Tags(error=error), MULTIPART)
