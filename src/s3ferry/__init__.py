"""s3ferry: move very large amounts of data into, out of and between S3 buckets.

The library never prints; pass an event sink to follow progress::

    import s3ferry
    report = s3ferry.upload("data/", "s3://bucket/prefix/")
    assert report.ok
"""

from s3ferry.config import StoreConfig, TransferConfig
from s3ferry.errors import (
    AccessDeniedError,
    IntegrityError,
    LocalIOError,
    NotFoundError,
    S3ferryError,
    SourceChangedError,
    StoreError,
    TransientError,
    UsageError,
)
from s3ferry.jobs.download import download, download_to_stream
from s3ferry.jobs.report import JobReport
from s3ferry.jobs.upload import upload, upload_from_stream
from s3ferry.localserver import LocalS3, LocalS3Info

__all__ = [
    "AccessDeniedError",
    "IntegrityError",
    "JobReport",
    "LocalIOError",
    "LocalS3",
    "LocalS3Info",
    "NotFoundError",
    "S3ferryError",
    "SourceChangedError",
    "StoreConfig",
    "StoreError",
    "TransferConfig",
    "TransientError",
    "UsageError",
    "download",
    "download_to_stream",
    "upload",
    "upload_from_stream",
]
