"""Reading an S3 Inventory report that sits in a bucket, through s3:// URLs, on real SeaweedFS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.inventory import CONFIG_ID, DATE, SOURCE_BUCKET, Row, write_report

from s3ferry import read_inventory_report
from s3ferry.config import StoreConfig
from s3ferry.errors import IntegrityError, NotFoundError
from s3ferry.storage.listing import Entry

ROWS = [
    [Row("photos/2024/a b+c.jpg", 1234, storage_class="STANDARD_IA"), Row("ü/日本", 7)],
    [Row("old", 1, is_latest=False), Row("z", 0, checksum_algorithm="CRC32C")],
]
EXPECTED = [
    Entry("photos/2024/a b+c.jpg", 1234, Row("x").etag, Row("x").last_modified, "STANDARD_IA"),
    Entry("ü/日本", 7, Row("x").etag, Row("x").last_modified),
    Entry("z", 0, Row("x").etag, Row("x").last_modified, "STANDARD", "CRC32C"),
]
FOLDER = f"inventory/{SOURCE_BUCKET}/{CONFIG_ID}/{DATE}"


def _upload(client: Any, bucket: str, root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            client.put_object(
                Bucket=bucket, Key=path.relative_to(root).as_posix(), Body=path.read_bytes()
            )


@pytest.mark.parametrize("file_format", ["CSV", "Parquet"])
@pytest.mark.parametrize("named", [f"{FOLDER}/manifest.json", f"{FOLDER}/", FOLDER])
def test_report_in_its_destination_bucket(
    s3client: Any,
    bucket: str,
    store_config: StoreConfig,
    tmp_path: Path,
    file_format: str,
    named: str,
) -> None:
    write_report(tmp_path, ROWS, file_format=file_format, destination_bucket=bucket)
    _upload(s3client, bucket, tmp_path)

    got = list(read_inventory_report(f"s3://{bucket}/{named}", store=store_config))

    assert got == EXPECTED


def test_report_copied_under_another_prefix_of_another_bucket(
    s3client: Any, bucket: str, store_config: StoreConfig, tmp_path: Path
) -> None:
    write_report(tmp_path, ROWS, destination_bucket="where-aws-wrote-it")
    _upload(s3client, bucket, tmp_path / "inventory")

    url = f"s3://{bucket}/{SOURCE_BUCKET}/{CONFIG_ID}/{DATE}/"
    got = list(read_inventory_report(url, store=store_config, prefix="photos/"))

    assert got == EXPECTED[:1]


def test_manifest_moved_within_its_destination_bucket_finds_data_by_key(
    s3client: Any, bucket: str, store_config: StoreConfig, tmp_path: Path
) -> None:
    manifest = write_report(tmp_path, ROWS, destination_bucket=bucket)
    _upload(s3client, bucket, tmp_path)
    s3client.put_object(Bucket=bucket, Key="saved/manifest.json", Body=manifest.read_bytes())

    got = list(read_inventory_report(f"s3://{bucket}/saved", store=store_config))

    assert got == EXPECTED


def test_bad_md5_names_the_object(
    s3client: Any, bucket: str, store_config: StoreConfig, tmp_path: Path
) -> None:
    manifest = write_report(tmp_path, ROWS, destination_bucket=bucket)
    doc = json.loads(manifest.read_text())
    doc["files"][1]["MD5checksum"] = "f" * 32
    manifest.write_text(json.dumps(doc))
    _upload(s3client, bucket, tmp_path)
    entries = read_inventory_report(f"s3://{bucket}/{FOLDER}", store=store_config)

    assert [next(entries), next(entries)] == EXPECTED[:2]
    with pytest.raises(IntegrityError, match="MD5") as e:
        next(entries)
    assert e.value.subject == f"s3://{bucket}/{doc['files'][1]['key']}"


def test_missing_data_object_is_not_found(
    s3client: Any, bucket: str, store_config: StoreConfig, tmp_path: Path
) -> None:
    manifest = write_report(tmp_path, ROWS, destination_bucket=bucket)
    _upload(s3client, bucket, tmp_path)
    key = json.loads(manifest.read_text())["files"][0]["key"]
    s3client.delete_object(Bucket=bucket, Key=key)

    with pytest.raises(NotFoundError, match=f"data file {key} is not at s3://{bucket}/{key}"):
        list(read_inventory_report(f"s3://{bucket}/{FOLDER}", store=store_config))


def test_missing_manifest_is_not_found(bucket: str, store_config: StoreConfig) -> None:
    with pytest.raises(NotFoundError, match="no such key") as e:
        read_inventory_report(f"s3://{bucket}/nothing/here/", store=store_config)
    assert e.value.subject == f"s3://{bucket}/nothing/here/manifest.json"


def test_missing_bucket_is_not_found(store_config: StoreConfig) -> None:
    with pytest.raises(NotFoundError, match="bucket does not exist"):
        read_inventory_report("s3://no-such-bucket-here/inv/manifest.json", store=store_config)
