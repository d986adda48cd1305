"""sync and compare between two buckets: same server (server-side copies) and between two
servers with different keys (streamed), by a merge-join of the two listings."""

from __future__ import annotations

from typing import Any

from support.partitions import Partitions
from support.trees import bucket_contents

from s3ferry import compare, sync
from s3ferry.config import StoreConfig


def _put(client: Any, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


def test_sync_copies_changes_only_and_deletes(
    s3client: Any, bucket: str, store_config: StoreConfig
) -> None:
    _put(s3client, bucket, {f"a/k{i}": b"v%d" % i for i in range(20)})
    first = sync(f"s3://{bucket}/a/", f"s3://{bucket}/b/", store=store_config)
    assert first.ok and first.planned["copy"] == 20
    assert first.transfer.server_side_objects == 20
    assert bucket_contents(s3client, bucket, "b/") == bucket_contents(s3client, bucket, "a/")

    again = sync(f"s3://{bucket}/a/", f"s3://{bucket}/b/", store=store_config)
    assert again.planned == {"copy": 0, "skip": 20, "delete": 0}

    _put(s3client, bucket, {"a/k3": b"changed", "b/extra": b"x"})
    changed = sync(f"s3://{bucket}/a/", f"s3://{bucket}/b/", delete=True, store=store_config)
    assert changed.planned == {"copy": 1, "skip": 19, "delete": 1}
    assert changed.deleted == 1
    same = compare(f"s3://{bucket}/a/", f"s3://{bucket}/b/", store=store_config)
    assert same.same and same.identical == 20


def test_compare_between_buckets_reports_differences(
    s3client: Any, bucket: str, store_config: StoreConfig
) -> None:
    _put(s3client, bucket, {"a/same": b"1", "a/diff": b"22", "a/only": b"3"})
    _put(s3client, bucket, {"b/same": b"1", "b/diff": b"2", "b/extra": b"4"})
    result = compare(f"s3://{bucket}/a/", f"s3://{bucket}/b/", store=store_config)
    assert (result.identical, result.different, result.only_source, result.only_target) == (
        1,
        1,
        1,
        1,
    )


def test_sync_between_partitions(partitions: Partitions, bucket: str, bucket2: str) -> None:
    _put(partitions.source_client, bucket, {f"p/{i}.txt": b"x" * i for i in range(30)})
    report = sync(
        f"s3://{bucket}/p/",
        f"s3://{bucket2}/q/",
        store=partitions.source,
        dest_store=partitions.dest,
    )
    assert report.ok and report.planned["copy"] == 30
    assert report.transfer.server_side_objects == 0
    assert report.transfer.bytes_through_client == sum(range(30))
    assert bucket_contents(partitions.dest_client, bucket2, "q/") == bucket_contents(
        partitions.source_client, bucket, "p/"
    )
    again = sync(
        f"s3://{bucket}/p/",
        f"s3://{bucket2}/q/",
        store=partitions.source,
        dest_store=partitions.dest,
    )
    assert again.planned["copy"] == 0
