"""Write AWS S3 Inventory reports (manifest.json + CSV.gz or Parquet data files) for tests."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote_plus

CSV_SCHEMA = (
    "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag,"
    " StorageClass, ChecksumAlgorithm"
)
PARQUET_SCHEMA = (
    "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8);"
    " optional binary version_id (UTF8); optional boolean is_latest;"
    " optional boolean is_delete_marker; optional int64 size;"
    " optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8);"
    " optional binary storage_class (UTF8); optional binary checksum_algorithm (UTF8);}"
)
SOURCE_BUCKET = "src-bucket"
CONFIG_ID = "daily"
DATE = "2024-05-01T01-00Z"


class Row(NamedTuple):
    """One inventory row; ``size`` ``None`` is written as an empty field (or null)."""

    key: str
    size: int | None = 1
    etag: str = "d41d8cd98f00b204e9800998ecf8427e"
    last_modified: str = "2024-04-30T12:34:56.789Z"
    storage_class: str = "STANDARD"
    checksum_algorithm: str = ""
    is_latest: bool = True
    is_delete_marker: bool = False


def write_report(
    root: Path,
    files: Sequence[Sequence[Row]],
    *,
    file_format: str = "CSV",
    layout: str = "aws",
    destination_bucket: str = "dest-bucket",
    destination_prefix: str = "inventory",
    checks: bool = True,
    source_bucket: str = SOURCE_BUCKET,
) -> Path:
    """Write a report whose data files hold ``files`` (one list of rows each); returns the manifest.

    ``layout="aws"`` places files as S3 Inventory does under ``root``
    (``<prefix>/<source-bucket>/<config-id>/<date>/manifest.json`` and
    ``.../<config-id>/data/<name>``); ``"flat"`` puts ``manifest.json`` in
    ``root`` and the data files in ``root/data``. Keys in the manifest are
    always the AWS ones. ``checks=False`` leaves out each file's size and MD5.
    """
    config_folder = f"{destination_prefix}/{source_bucket}/{CONFIG_ID}"
    suffix = ".csv.gz" if file_format == "CSV" else ".parquet"
    entries = []
    for n, rows in enumerate(files):
        body = (
            _csv_gz(rows, source_bucket) if file_format == "CSV" else _parquet(rows, source_bucket)
        )
        key = f"{config_folder}/data/{n:04d}-5f1b3c2e{suffix}"
        where = root / (key if layout == "aws" else f"data/{key.rsplit('/', 1)[1]}")
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_bytes(body)
        entries.append({"key": key})
        if checks:
            entries[-1] |= {"size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()}
    manifest = root / (
        f"{config_folder}/{DATE}/manifest.json" if layout == "aws" else "manifest.json"
    )
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps(_manifest(file_format, source_bucket, destination_bucket, entries), indent=2)
    )
    return manifest


def _manifest(
    file_format: str, source_bucket: str, destination_bucket: str, files: list[dict[str, object]]
) -> dict[str, object]:
    return {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{destination_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": "1714525200000",
        "fileFormat": file_format,
        "fileSchema": CSV_SCHEMA if file_format == "CSV" else PARQUET_SCHEMA,
        "files": files,
    }


def _csv_gz(rows: Sequence[Row], source_bucket: str) -> bytes:
    text = io.StringIO()
    out = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for r in rows:
        out.writerow(
            [
                source_bucket,
                quote_plus(r.key, safe="/"),
                "",
                str(r.is_latest).lower(),
                str(r.is_delete_marker).lower(),
                "" if r.size is None else str(r.size),
                r.last_modified,
                r.etag,
                r.storage_class,
                r.checksum_algorithm,
            ]
        )
    return gzip.compress(text.getvalue().encode())


def _parquet(rows: Sequence[Row], source_bucket: str) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "bucket": [source_bucket] * len(rows),
            "key": [r.key for r in rows],
            "version_id": pa.array([None] * len(rows), pa.string()),
            "is_latest": [r.is_latest for r in rows],
            "is_delete_marker": [r.is_delete_marker for r in rows],
            "size": pa.array([r.size for r in rows], pa.int64()),
            "last_modified_date": pa.array(
                [_instant(r.last_modified) for r in rows], pa.timestamp("ms", tz="UTC")
            ),
            "e_tag": [r.etag for r in rows],
            "storage_class": [r.storage_class for r in rows],
            "checksum_algorithm": [r.checksum_algorithm or None for r in rows],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
