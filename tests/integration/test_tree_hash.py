"""The SHA-256 tree hash s3ferry records at upload (metadata of a single PUT, tag of a
multipart upload), what copies carry over, and what ``--checksum`` compares with it,
against SeaweedFS."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from botocore.utils import calculate_tree_hash

import s3ferry
from s3ferry import StoreConfig, TransferConfig
from s3ferry.events import Compared, Event, Planned
from s3ferry.jobs.sync import compare, sync
from s3ferry.planning.policy import Rule

MiB = 1024 * 1024
LARGE_LANE = TransferConfig(multipart_threshold_bytes=5 * MiB, part_size_bytes=5 * MiB)
TAG = "s3ferry-sha256-tree"


def reference(data: bytes) -> str:
    return str(calculate_tree_hash(io.BytesIO(data)))


def tags(client: Any, bucket: str, key: str) -> dict[str, str]:
    tag_set = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


def reasons(source: str, target: str, store: StoreConfig) -> dict[str, tuple[str, str]]:
    """``compare --checksum``: key -> (status, reason)."""
    events: list[Event] = []
    compare(source, target, rule=Rule.CHECKSUM, store=store, sink=events.append)
    return {e.key: (e.status, e.reason) for e in events if isinstance(e, Compared)}


def test_single_puts_record_it_in_metadata_and_multipart_uploads_in_a_tag(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    small, large = os.urandom(3000), os.urandom(11 * MiB + 3)
    (tmp_path / "small").write_bytes(small)
    (tmp_path / "large").write_bytes(large)
    url = f"s3://{bucket}/"
    assert s3ferry.upload(tmp_path, url, transfer=LARGE_LANE, store=store_config).ok
    for key, data in {"s-small": small[:1000], "s-large": large}.items():
        stream = io.BytesIO(data)
        assert s3ferry.upload_from_stream(
            stream, url + key, transfer=LARGE_LANE, store=store_config
        ).ok

    for key, data in {"small": small, "s-small": small[:1000]}.items():
        assert s3client.head_object(Bucket=bucket, Key=key)["Metadata"][TAG] == reference(data)
        assert tags(s3client, bucket, key) == {}
    for key in ("large", "s-large"):
        assert tags(s3client, bucket, key) == {TAG: reference(large)}
        assert TAG not in s3client.head_object(Bucket=bucket, Key=key)["Metadata"]


def test_a_store_without_tagging_uploads_and_compares_by_crc32c(
    tmp_path: Path,
    bucket: str,
    s3client: Any,
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = BaseClient._make_api_call

    def no_tagging(client: Any, operation: str, params: Any) -> Any:
        if operation in ("PutObjectTagging", "GetObjectTagging"):
            error = {"Error": {"Code": "NotImplemented", "Message": "no tagging here"}}
            raise ClientError(error, operation)  # type: ignore[arg-type]
        return real(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", no_tagging)
    (tmp_path / "big.bin").write_bytes(os.urandom(6 * MiB))
    url = f"s3://{bucket}/p/"

    assert sync(tmp_path, url, transfer=LARGE_LANE, store=store_config).ok
    assert reasons(tmp_path, url, store_config) == {"p/big.bin": ("identical", "same CRC32C")}
    monkeypatch.undo()
    assert tags(s3client, bucket, "p/big.bin") == {}


def test_multipart_copies_carry_the_tag_for_checksum_syncs_between_buckets(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    data = os.urandom(6 * MiB)
    (tmp_path / "big.bin").write_bytes(data)
    a, b = f"s3://{bucket}/a/", f"s3://{bucket}/b/"
    assert s3ferry.upload(tmp_path, a, transfer=LARGE_LANE, store=store_config).ok
    copied = sync(a, b, transfer=LARGE_LANE, store=store_config)
    assert copied.ok and copied.transfer.server_side_objects == 1

    assert tags(s3client, bucket, "b/big.bin") == {TAG: reference(data)}
    assert reasons(a, b, store_config) == {"b/big.bin": ("identical", "same SHA-256 tree hash")}

    (tmp_path / "big.bin").write_bytes(os.urandom(6 * MiB))
    assert s3ferry.upload(tmp_path, b, transfer=LARGE_LANE, store=store_config).ok
    assert reasons(a, b, store_config) == {"b/big.bin": ("different", "SHA-256 tree hash differs")}


def test_checksum_sync_down_compares_the_tree_hash(
    tmp_path: Path, bucket: str, store_config: StoreConfig
) -> None:
    data = os.urandom(6 * MiB)
    (tmp_path / "big.bin").write_bytes(data)
    url = f"s3://{bucket}/p/"
    assert s3ferry.upload(tmp_path, url, transfer=LARGE_LANE, store=store_config).ok
    local = tmp_path / "down"
    assert sync(url, local, store=store_config).ok
    changed = bytearray(data)
    changed[-1] ^= 1
    stat = (local / "big.bin").stat()
    (local / "big.bin").write_bytes(bytes(changed))
    os.utime(local / "big.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))

    plans: list[Event] = []
    sync(url, local, rule=Rule.CHECKSUM, store=store_config, sink=plans.append)

    assert [(e.action, e.reason) for e in plans if isinstance(e, Planned)] == [
        ("copy", "SHA-256 tree hash differs")
    ]
    assert (local / "big.bin").read_bytes() == data
