"""How an upload resumes from a journal an earlier run left: parts the store lists are
kept only if they hold the local bytes, and an upload the store forgot starts over."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from botocore.utils import calculate_tree_hash

import s3ferry
from s3ferry import StoreConfig, TransferConfig
from s3ferry.storage.s3 import crc32c_b64
from s3ferry.transfer.checksums import crc32c
from s3ferry.transfer.journal import Journal

MiB = 1024 * 1024
PART = 5 * MiB
LARGE_LANE = TransferConfig(multipart_threshold_bytes=PART, part_size_bytes=PART)


def _left_by_an_earlier_run(
    state: Path, src: Path, bucket: str, store: StoreConfig, upload_id: str
) -> None:
    """The journal an interrupted ``upload(src, s3://bucket/)`` would leave."""
    st = src.stat()
    journal = Journal.open(
        state, "upload", os.path.abspath(src), f"s3://{bucket}/", {"endpoint": store.endpoint_url}
    )
    journal.upload_started(src.name, st.st_size, st.st_mtime_ns, upload_id, PART)
    journal.close()


def _part(client: Any, bucket: str, upload_id: str, number: int, body: bytes) -> None:
    client.upload_part(
        Bucket=bucket,
        Key="big.bin",
        UploadId=upload_id,
        PartNumber=number,
        Body=body,
        ChecksumCRC32C=crc32c_b64(crc32c(body)),
    )


def test_listed_parts_are_kept_only_if_they_match_the_local_bytes(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    data = os.urandom(3 * PART)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    upload_id = s3client.create_multipart_upload(
        Bucket=bucket, Key="big.bin", ChecksumAlgorithm="CRC32C"
    )["UploadId"]
    _part(s3client, bucket, upload_id, 1, os.urandom(PART))  # not what the file holds
    _part(s3client, bucket, upload_id, 2, data[PART : 2 * PART])
    _left_by_an_earlier_run(tmp_path / "state", src, bucket, store_config, upload_id)

    report = s3ferry.upload(
        src,
        f"s3://{bucket}/",
        transfer=LARGE_LANE,
        store=store_config,
        state_dir=tmp_path / "state",
    )

    assert report.ok, report.failures
    assert report.parts_reused == 1
    assert s3client.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data
    # The reused part's bytes were read (to check them), so the tree hash covers them.
    [tag] = s3client.get_object_tagging(Bucket=bucket, Key="big.bin")["TagSet"]
    assert tag == {"Key": "s3ferry-sha256-tree", "Value": calculate_tree_hash(io.BytesIO(data))}
    assert "Uploads" not in s3client.list_multipart_uploads(Bucket=bucket)
    assert list((tmp_path / "state").glob("*.sqlite")) == []


def test_an_upload_the_store_no_longer_knows_starts_over(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    data = os.urandom(2 * PART)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    upload_id = s3client.create_multipart_upload(
        Bucket=bucket, Key="big.bin", ChecksumAlgorithm="CRC32C"
    )["UploadId"]
    _part(s3client, bucket, upload_id, 1, data[:PART])
    s3client.abort_multipart_upload(Bucket=bucket, Key="big.bin", UploadId=upload_id)
    _left_by_an_earlier_run(tmp_path / "state", src, bucket, store_config, upload_id)

    report = s3ferry.upload(
        src,
        f"s3://{bucket}/",
        transfer=LARGE_LANE,
        store=store_config,
        state_dir=tmp_path / "state",
    )

    assert report.ok, report.failures
    assert (report.objects_done, report.parts_reused) == (1, 0)
    assert s3client.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data
    assert "Uploads" not in s3client.list_multipart_uploads(Bucket=bucket)
