"""s3ferry: move very large amounts of data into, out of and between S3 buckets.

The library never prints; pass an event sink to follow progress::

    import s3ferry
    report = s3ferry.upload("data/", "s3://bucket/prefix/")
    assert report.ok

Names are loaded on first use so that the command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from s3ferry.config import StoreConfig, TransferConfig
    from s3ferry.errors import (
        AccessDeniedError,
        Cancelled,
        CredentialsExpiredError,
        IntegrityError,
        LocalIOError,
        NotFoundError,
        ObjectArchivedError,
        S3ferryError,
        SourceChangedError,
        StoreError,
        ThrottledError,
        TransientError,
        UnsupportedError,
        UsageError,
    )
    from s3ferry.jobs.backup import backup
    from s3ferry.jobs.copy import copy
    from s3ferry.jobs.download import download, download_to_stream
    from s3ferry.jobs.inventory import InventoryReport, inventory
    from s3ferry.jobs.lifecycle import ArchiveRule, LifecyclePlan, lifecycle_apply, lifecycle_show
    from s3ferry.jobs.listing import Folder, Usage, disk_usage, iter_objects, list_bucket
    from s3ferry.jobs.read import iter_records, read_range
    from s3ferry.jobs.report import JobReport
    from s3ferry.jobs.restore import RestoreReport, restore
    from s3ferry.jobs.sync import Comparison, SyncReport, compare, sync
    from s3ferry.jobs.upload import upload, upload_from_stream
    from s3ferry.listing.inventory_report import read_inventory_report
    from s3ferry.localserver import LocalS3, LocalS3Info
    from s3ferry.storage.listing import Entry

_WHERE = {
    "AccessDeniedError": "s3ferry.errors",
    "ArchiveRule": "s3ferry.jobs.lifecycle",
    "Cancelled": "s3ferry.errors",
    "Comparison": "s3ferry.jobs.sync",
    "CredentialsExpiredError": "s3ferry.errors",
    "Entry": "s3ferry.storage.listing",
    "Folder": "s3ferry.jobs.listing",
    "IntegrityError": "s3ferry.errors",
    "InventoryReport": "s3ferry.jobs.inventory",
    "JobReport": "s3ferry.jobs.report",
    "LifecyclePlan": "s3ferry.jobs.lifecycle",
    "LocalIOError": "s3ferry.errors",
    "LocalS3": "s3ferry.localserver",
    "LocalS3Info": "s3ferry.localserver",
    "NotFoundError": "s3ferry.errors",
    "ObjectArchivedError": "s3ferry.errors",
    "RestoreReport": "s3ferry.jobs.restore",
    "S3ferryError": "s3ferry.errors",
    "SourceChangedError": "s3ferry.errors",
    "StoreConfig": "s3ferry.config",
    "StoreError": "s3ferry.errors",
    "SyncReport": "s3ferry.jobs.sync",
    "ThrottledError": "s3ferry.errors",
    "TransferConfig": "s3ferry.config",
    "TransientError": "s3ferry.errors",
    "UnsupportedError": "s3ferry.errors",
    "Usage": "s3ferry.jobs.listing",
    "UsageError": "s3ferry.errors",
    "backup": "s3ferry.jobs.backup",
    "compare": "s3ferry.jobs.sync",
    "copy": "s3ferry.jobs.copy",
    "disk_usage": "s3ferry.jobs.listing",
    "download": "s3ferry.jobs.download",
    "download_to_stream": "s3ferry.jobs.download",
    "inventory": "s3ferry.jobs.inventory",
    "iter_objects": "s3ferry.jobs.listing",
    "iter_records": "s3ferry.jobs.read",
    "lifecycle_apply": "s3ferry.jobs.lifecycle",
    "lifecycle_show": "s3ferry.jobs.lifecycle",
    "list_bucket": "s3ferry.jobs.listing",
    "read_inventory_report": "s3ferry.listing.inventory_report",
    "read_range": "s3ferry.jobs.read",
    "restore": "s3ferry.jobs.restore",
    "sync": "s3ferry.jobs.sync",
    "upload": "s3ferry.jobs.upload",
    "upload_from_stream": "s3ferry.jobs.upload",
}

__all__ = [
    "AccessDeniedError",
    "ArchiveRule",
    "Cancelled",
    "Comparison",
    "CredentialsExpiredError",
    "Entry",
    "Folder",
    "IntegrityError",
    "InventoryReport",
    "JobReport",
    "LifecyclePlan",
    "LocalIOError",
    "LocalS3",
    "LocalS3Info",
    "NotFoundError",
    "ObjectArchivedError",
    "RestoreReport",
    "S3ferryError",
    "SourceChangedError",
    "StoreConfig",
    "StoreError",
    "SyncReport",
    "ThrottledError",
    "TransferConfig",
    "TransientError",
    "UnsupportedError",
    "Usage",
    "UsageError",
    "backup",
    "compare",
    "copy",
    "disk_usage",
    "download",
    "download_to_stream",
    "inventory",
    "iter_objects",
    "iter_records",
    "lifecycle_apply",
    "lifecycle_show",
    "list_bucket",
    "read_inventory_report",
    "read_range",
    "restore",
    "sync",
    "upload",
    "upload_from_stream",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 's3ferry' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
