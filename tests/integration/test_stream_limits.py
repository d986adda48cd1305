"""A stream too long for 10,000 parts fails clearly and leaves no multipart upload open."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

import s3ferry
from s3ferry import StoreConfig, TransferConfig

MiB = 1024 * 1024


def test_stream_longer_than_the_part_limit_is_refused(
    bucket: str, store_config: StoreConfig, s3client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("s3ferry.transfer.upload.S3_MAX_PARTS", 2)
    data = io.BytesIO(os.urandom(10 * MiB + 1))
    report = s3ferry.upload_from_stream(
        data,
        f"s3://{bucket}/too-long",
        store=store_config,
        transfer=TransferConfig(part_size_bytes=5 * MiB, multipart_threshold_bytes=5 * MiB),
    )
    assert report.objects_failed == 1 and report.objects_done == 0
    assert report.failures[0].reason == "UsageError"
    assert "larger --part-size" in report.failures[0].message
    assert "Uploads" not in s3client.list_multipart_uploads(Bucket=bucket)
    assert "Contents" not in s3client.list_objects_v2(Bucket=bucket)
