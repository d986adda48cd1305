"""Whether an object can be read now or must be restored first, from what HEAD said."""

from __future__ import annotations

import pytest

from s3ferry.errors import ObjectArchivedError
from s3ferry.storage.glacier import ArchiveState, archive_state, require_readable
from s3ferry.storage.s3 import ObjectInfo

DONE = 'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"'


@pytest.mark.parametrize(
    ("storage_class", "restore", "state"),
    [
        (None, None, ArchiveState.READABLE),
        ("STANDARD_IA", None, ArchiveState.READABLE),
        ("GLACIER_IR", None, ArchiveState.READABLE),
        ("GLACIER", None, ArchiveState.ARCHIVED),
        ("DEEP_ARCHIVE", None, ArchiveState.ARCHIVED),
        ("GLACIER", 'ongoing-request="true"', ArchiveState.RESTORING),
        ("DEEP_ARCHIVE", DONE, ArchiveState.READABLE),
    ],
)
def test_archive_state(storage_class: str | None, restore: str | None, state: ArchiveState) -> None:
    info = ObjectInfo("k", 1, "e", storage_class=storage_class, restore=restore)

    assert archive_state(info) is state


def test_archived_object_says_restore_it_first() -> None:
    with pytest.raises(ObjectArchivedError, match="s3://b/k: .*GLACIER; restore it first"):
        require_readable(ObjectInfo("k", 1, "e", storage_class="GLACIER"), "s3://b/k")


def test_restoring_object_says_to_wait() -> None:
    with pytest.raises(ObjectArchivedError, match="still in progress"):
        require_readable(
            ObjectInfo("k", 1, "e", storage_class="GLACIER", restore='ongoing-request="true"'),
            "s3://b/k",
        )
