"""Archived objects: whether an object can be read now or must be restored first.

Objects in the GLACIER and DEEP_ARCHIVE storage classes answer HEAD but
refuse GET until a restore has finished; HEAD's ``x-amz-restore`` says
whether one was asked for (``ongoing-request="true"``) or is done
(``ongoing-request="false"``, with an expiry date).
"""

from __future__ import annotations

from enum import Enum

from s3ferry.errors import ObjectArchivedError
from s3ferry.storage.s3 import ObjectInfo

ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


class ArchiveState(Enum):
    READABLE = "readable"  # not archived, or a restored copy is available
    ARCHIVED = "archived"  # needs a restore request
    RESTORING = "restoring"  # restore asked for, not finished yet


def archive_state(info: ObjectInfo) -> ArchiveState:
    """Where ``info``'s object stands, from what HEAD said."""
    if info.storage_class not in ARCHIVE_CLASSES:
        return ArchiveState.READABLE
    restore = (info.restore or "").replace(" ", "")
    if 'ongoing-request="false"' in restore:
        return ArchiveState.READABLE
    if 'ongoing-request="true"' in restore:
        return ArchiveState.RESTORING
    return ArchiveState.ARCHIVED


def require_readable(info: ObjectInfo, subject: str) -> None:
    """Return if ``info``'s object can be read now.

    Raises:
        ObjectArchivedError: it is archived (the message says what to do).
    """
    state = archive_state(info)
    if state is ArchiveState.ARCHIVED:
        raise ObjectArchivedError(
            subject,
            f"object is archived in {info.storage_class}; restore it first "
            "(aws s3api restore-object), then read it once the restore finishes",
        )
    if state is ArchiveState.RESTORING:
        raise ObjectArchivedError(
            subject,
            f"object is archived in {info.storage_class} and its restore is still in progress; "
            "read it once the restore finishes",
        )
