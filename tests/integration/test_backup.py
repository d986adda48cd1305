"""backup against SeaweedFS (which records storage classes): classes by size, POSIX
attributes, symbolic links stored and never followed, archived objects left alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from s3ferry.config import StoreConfig
from s3ferry.errors import UsageError
from s3ferry.jobs.backup import backup
from s3ferry.jobs.download import download
from s3ferry.jobs.sync import sync
from s3ferry.transfer.download import LINK_SKIPPED

KiB = 1024


def head(s3client: Any, bucket: str, key: str) -> dict[str, Any]:
    r: dict[str, Any] = s3client.head_object(Bucket=bucket, Key=key)
    return r


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    (root / "d").mkdir(parents=True)
    (root / "d" / "big.bin").write_bytes(os.urandom(200 * KiB))
    (root / "small.txt").write_bytes(b"small")
    (root / "small.txt").chmod(0o640)
    (root / "rel-link").symlink_to("small.txt")
    (root / "out-link").symlink_to("/etc/hostname")
    return root


def test_classes_by_size_posix_attributes_and_links(
    tree: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    report = backup(tree, f"s3://{bucket}/b/", archive_class="GLACIER", store=store_config)

    assert report.ok and report.planned["copy"] == 4
    big = head(s3client, bucket, "b/d/big.bin")
    small = head(s3client, bucket, "b/small.txt")
    assert big["StorageClass"] == "GLACIER"
    assert small.get("StorageClass", "STANDARD") == "STANDARD"
    assert small["Metadata"]["s3ferry-mode"] == "640"
    assert small["Metadata"]["s3ferry-uid"] == str(os.getuid())
    for key, target in (("b/rel-link", "small.txt"), ("b/out-link", "/etc/hostname")):
        link = head(s3client, bucket, key)
        assert link["ContentLength"] == 0  # stored as a link, never followed
        assert link["Metadata"]["s3ferry-symlink"] == target


@pytest.mark.parametrize("job", ["cp", "sync"])
def test_cp_and_sync_down_skip_stored_links_instead_of_writing_empty_files(
    job: str, tree: Path, tmp_path: Path, bucket: str, store_config: StoreConfig
) -> None:
    backup(tree, f"s3://{bucket}/b/", store=store_config)
    out = tmp_path / "out"

    if job == "cp":
        report = download(f"s3://{bucket}/b/", out, store=store_config)
    else:
        report = sync(f"s3://{bucket}/b/", out, store=store_config).transfer

    assert report.ok and report.objects_done == 2
    assert report.skipped_by_reason == {LINK_SKIPPED: 2}
    assert sorted(p.name for p in out.rglob("*")) == ["big.bin", "d", "small.txt"]


def test_default_leaves_large_files_to_a_lifecycle_rule(
    tree: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    backup(tree, f"s3://{bucket}/b/", store=store_config)

    assert head(s3client, bucket, "b/d/big.bin").get("StorageClass", "STANDARD") == "STANDARD"


def test_rerun_leaves_archived_objects_alone_and_uploads_changes(
    tree: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    backup(tree, f"s3://{bucket}/b/", archive_class="DEEP_ARCHIVE", store=store_config)
    before = head(s3client, bucket, "b/d/big.bin")["LastModified"]
    (tree / "small.txt").write_bytes(b"changed!")

    report = backup(tree, f"s3://{bucket}/b/", archive_class="DEEP_ARCHIVE", store=store_config)

    assert report.planned == {"copy": 1, "skip": 3, "delete": 0}
    assert head(s3client, bucket, "b/d/big.bin")["LastModified"] == before
    assert head(s3client, bucket, "b/small.txt")["ContentLength"] == 8


def test_bad_archive_class_and_direction_are_refused(tree: Path, store_config: StoreConfig) -> None:
    with pytest.raises(UsageError, match="archive-class"):
        backup(tree, "s3://bucket/b/", archive_class="COLD", store=store_config)
    with pytest.raises(UsageError, match="from a directory"):
        backup("s3://bucket/b/", str(tree), store=store_config)
