"""What a beginner writes: a for-loop of boto3 ``upload_file`` / list + ``download_file``.

Usage::

    python bench/boto3_naive.py upload LOCAL_DIR s3://BUCKET/PREFIX/
    python bench/boto3_naive.py download s3://BUCKET/PREFIX/ LOCAL_DIR

The endpoint and credentials come from the AWS_* environment variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import boto3


def split_url(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix


def upload(local_dir: Path, url: str) -> None:
    bucket, prefix = split_url(url)
    s3 = boto3.client("s3")
    for directory, _, names in os.walk(local_dir):
        for name in names:
            path = Path(directory, name)
            s3.upload_file(str(path), bucket, prefix + path.relative_to(local_dir).as_posix())


def download(url: str, local_dir: Path) -> None:
    bucket, prefix = split_url(url)
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            target = local_dir / entry["Key"].removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, entry["Key"], str(target))


def main() -> None:
    op, source, target = sys.argv[1:4]
    if op == "upload":
        upload(Path(source), target)
    elif op == "download":
        download(source, Path(target))
    else:
        sys.exit(f"unknown operation {op!r}; use upload or download")


if __name__ == "__main__":
    main()
