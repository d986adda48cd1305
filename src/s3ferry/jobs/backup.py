"""``backup``: a sync of a directory into a bucket that also places objects in storage
classes by size and records POSIX attributes, so ``restore`` can reproduce the tree.

Small files (<= ``small_file_threshold``) stay in STANDARD, where they are
cheap to read back; larger ones go straight to an archive class, or stay in
STANDARD for a lifecycle rule to move (``archive_class="lifecycle"``, the
default; see ``s3ferry lifecycle``). Symbolic links are stored as empty
objects that name their target, never followed. Archived objects are never
read: unchanged files are recognised from the listing (and at most a HEAD,
which archived objects answer), so one archived object never fails a run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from s3ferry.config import StoreConfig, TransferConfig
from s3ferry.errors import UsageError
from s3ferry.events import EventSink, discard
from s3ferry.jobs.sync import SyncReport, run_sync
from s3ferry.listing.local import LocalEntry
from s3ferry.locations import is_s3_url
from s3ferry.planning.policy import Filters, Rule
from s3ferry.transfer.checksums import META_GID, META_MODE, META_SYMLINK, META_UID
from s3ferry.transfer.upload import UploadItem

DEFAULT_SMALL_FILE_THRESHOLD = 128 * 1024
ARCHIVE_CLASSES = ("lifecycle", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR")


@dataclass(frozen=True, slots=True)
class BackupShaper:
    small_file_threshold: int
    archive_class: str
    links: bool = True

    def item(self, file: LocalEntry, key: str) -> UploadItem:
        archive = file.size_bytes > self.small_file_threshold and self.archive_class != "lifecycle"
        attributes = [
            (META_MODE, f"{file.mode & 0o7777:o}"),
            (META_UID, str(file.uid)),
            (META_GID, str(file.gid)),
        ]
        if file.link_target is not None:
            attributes.append((META_SYMLINK, file.link_target))
        return UploadItem(
            file.path,
            key,
            file.size_bytes,
            file.mtime_ns,
            storage_class=self.archive_class if archive else None,
            extra_metadata=tuple(sorted(attributes)),
            link_target=file.link_target,
        )


def backup(
    source: str | os.PathLike[str],
    destination: str,
    *,
    small_file_threshold: int = DEFAULT_SMALL_FILE_THRESHOLD,
    archive_class: str = "lifecycle",
    rule: Rule = Rule.SIZE_AND_MTIME,
    delete: bool = False,
    max_delete: int | None = None,
    dry_run: bool = False,
    filters: Filters | None = None,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    sink: EventSink = discard,
    state_dir: Path | None = None,
) -> SyncReport:
    """Back ``source`` (a directory) up to ``destination`` (``s3://bucket/prefix``).

    With ``state_dir``, a rerun after an interruption continues the multipart
    uploads it left (see :func:`s3ferry.jobs.sync.sync`).

    Raises:
        UsageError: a bad archive class or threshold, a source that is not a
            local directory, a destination that is not in S3.
    """
    if archive_class not in ARCHIVE_CLASSES:
        raise UsageError(
            f"--archive-class {archive_class}", f"choose one of {', '.join(ARCHIVE_CLASSES)}"
        )
    if small_file_threshold < 0:
        raise UsageError(f"--small-file-threshold {small_file_threshold}", "must be 0 or more")
    if is_s3_url(str(source)) or not is_s3_url(destination):
        raise UsageError(f"{source} {destination}", "backup goes from a directory to s3://")
    return run_sync(
        source,
        destination,
        rule=rule,
        delete=delete,
        max_delete=max_delete,
        dry_run=dry_run,
        filters=filters,
        transfer=transfer,
        store=store,
        sink=sink,
        shaper=BackupShaper(small_file_threshold, archive_class),
        kind="backup",
        state_dir=state_dir,
    )
