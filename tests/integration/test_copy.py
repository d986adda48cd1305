"""Bucket-to-bucket copy: server-side on one server (no byte through the client), streamed
between two servers whose keys differ, metadata carried over, every object verified."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import pytest
from support.partitions import Partitions
from support.trees import bucket_contents

from s3ferry import NotFoundError, copy
from s3ferry.config import StoreConfig, TransferConfig

MiB = 1024 * 1024
SMALL_PARTS = TransferConfig(multipart_threshold_bytes=5 * MiB, part_size_bytes=5 * MiB)


def _fill(client: Any, bucket: str, prefix: str = "src/") -> dict[str, str]:
    """Small objects with metadata, a multipart object and a large single-part one."""
    objects = {f"{prefix}d{i % 3}/f{i}.txt": os.urandom(100 + i) for i in range(40)}
    objects[f"{prefix}ü nicode/ä b.txt"] = b"unicode"
    objects[f"{prefix}big.bin"] = os.urandom(12 * MiB + 7)
    objects[f"{prefix}single.bin"] = os.urandom(6 * MiB + 3)
    for key, data in objects.items():
        if key.endswith("big.bin"):
            continue
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType="text/x-test",
            Metadata={"owner": "field-team"},
        )
    upload = client.create_multipart_upload(
        Bucket=bucket, Key=f"{prefix}big.bin", Metadata={"owner": "field-team"}
    )["UploadId"]
    data = objects[f"{prefix}big.bin"]
    parts = []
    for n, start in enumerate(range(0, len(data), 5 * MiB), start=1):
        r = client.upload_part(
            Bucket=bucket,
            Key=f"{prefix}big.bin",
            UploadId=upload,
            PartNumber=n,
            Body=data[start : start + 5 * MiB],
        )
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    client.complete_multipart_upload(
        Bucket=bucket, Key=f"{prefix}big.bin", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    return {k[len(prefix) :]: hashlib.md5(v).hexdigest() for k, v in objects.items()}


@pytest.mark.parametrize("path", ["auto", "streamed"])
def test_same_server_copy(s3client: Any, bucket: str, store_config: StoreConfig, path: str) -> None:
    expected = _fill(s3client, bucket)
    report = copy(
        f"s3://{bucket}/src/",
        f"s3://{bucket}/dst/",
        transfer=SMALL_PARTS,
        source_store=store_config,
        path=path,  # type: ignore[arg-type]
    )
    assert report.ok, report.failures
    assert report.objects_done == len(expected)
    assert bucket_contents(s3client, bucket, "dst/") == expected
    total = report.bytes_done
    if path == "auto":
        assert report.server_side_objects == len(expected)
        assert report.bytes_through_client == 0
    else:
        assert report.server_side_objects == 0
        assert report.bytes_through_client == total
    head = s3client.head_object(Bucket=bucket, Key="dst/d0/f0.txt")
    assert head["ContentType"] == "text/x-test"
    assert head["Metadata"] == {"owner": "field-team"}
    big = s3client.head_object(Bucket=bucket, Key="dst/big.bin")
    assert big["Metadata"] == {"owner": "field-team"}
    assert not s3client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_copy_between_partitions(partitions: Partitions, bucket: str, bucket2: str) -> None:
    expected = _fill(partitions.source_client, bucket)
    report = copy(
        f"s3://{bucket}/src/",
        f"s3://{bucket2}/copy/",
        transfer=SMALL_PARTS,
        source_store=partitions.source,
        dest_store=partitions.dest,
    )
    assert report.ok, report.failures
    assert report.server_side_objects == 0
    assert bucket_contents(partitions.dest_client, bucket2, "copy/") == expected
    head = partitions.dest_client.head_object(Bucket=bucket2, Key="copy/d1/f1.txt")
    assert (head["ContentType"], head["Metadata"]) == ("text/x-test", {"owner": "field-team"})
    assert not partitions.dest_client.list_multipart_uploads(Bucket=bucket2).get("Uploads")
    # Checked whole against its MD5 ETag, the single-part source went in parts with CRC32Cs.
    single = partitions.dest_client.head_object(
        Bucket=bucket2, Key="copy/single.bin", ChecksumMode="ENABLED"
    )
    assert single["ChecksumCRC32C"].endswith("-2")
    assert report.verified_by == {"md5": len(expected)}


def test_single_object_to_prefix_and_to_key(
    s3client: Any, bucket: str, store_config: StoreConfig
) -> None:
    s3client.put_object(Bucket=bucket, Key="a/one.txt", Body=b"1")
    assert copy(f"s3://{bucket}/a/one.txt", f"s3://{bucket}/b/", source_store=store_config).ok
    assert copy(f"s3://{bucket}/a/one.txt", f"s3://{bucket}/c/two", source_store=store_config).ok
    keys = {o["Key"] for o in s3client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"a/one.txt", "b/one.txt", "c/two"}


def test_a_source_that_is_neither_key_nor_prefix_is_not_found(
    s3client: Any, bucket: str, store_config: StoreConfig
) -> None:
    s3client.put_object(Bucket=bucket, Key="a/one.txt", Body=b"1")
    with pytest.raises(NotFoundError, match="no such key or prefix"):
        copy(f"s3://{bucket}/a/on", f"s3://{bucket}/b/", source_store=store_config)
    # A prefix asked for as one (trailing /) may be empty: nothing to copy is no error.
    assert copy(f"s3://{bucket}/none/", f"s3://{bucket}/b/", source_store=store_config).ok


@pytest.mark.parametrize("sse_c", [False, True], ids=["plain", "sse-c"])
def test_server_side_copy_in_one_request_below_the_limit_in_parts_above(
    s3client: Any, bucket: str, store_config: StoreConfig, monkeypatch: Any, sse_c: bool
) -> None:
    monkeypatch.setattr("s3ferry.jobs.copy.SINGLE_COPY_MAX_BYTES", 8 * MiB)
    key = b"0123456789abcdef0123456789abcdef"
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key} if sse_c else {}
    data = {"one.bin": os.urandom(6 * MiB), "two.bin": os.urandom(9 * MiB)}
    for name, body in data.items():
        s3client.put_object(
            Bucket=bucket, Key=f"src/{name}", Body=body, Metadata={"owner": "ops"}, **sse
        )
    side = dataclasses.replace(store_config, sse_c_key=key if sse_c else None)

    report = copy(
        f"s3://{bucket}/src/", f"s3://{bucket}/dst/", transfer=SMALL_PARTS, source_store=side
    )

    assert report.ok, report.failures
    # SeaweedFS has no UploadPartCopy for SSE-C objects (NotImplemented): two.bin streams.
    assert report.server_side_objects == (1 if sse_c else 2)
    for name, in_parts in (("one.bin", False), ("two.bin", True)):
        source = s3client.head_object(Bucket=bucket, Key=f"src/{name}", **sse)
        head = s3client.head_object(Bucket=bucket, Key=f"dst/{name}", **sse)
        # One CopyObject keeps the source's ETag; a multipart upload makes another.
        assert (head["ETag"] != source["ETag"]) == in_parts, (name, head["ETag"])
        assert head["Metadata"] == {"owner": "ops"}
        got = s3client.get_object(Bucket=bucket, Key=f"dst/{name}", **sse)["Body"].read()
        assert got == data[name]
