"""POSIX attributes a backup recorded in object metadata, read back and applied on restore.

The mtime comes from ``s3ferry-mtime-ns`` (set by :func:`.download.commit`);
permission bits (``s3ferry-mode``, octal) are applied to every restored file;
owner and group (``s3ferry-uid``, ``s3ferry-gid``) only when running as root,
since only root may give a file away (tar's ``--same-owner`` rule).

A symbolic link (``s3ferry-symlink``) is recreated with its target text
verbatim. The link itself is made inside the restore root and nothing is
ever written *through* a link (:class:`s3ferry.jobs.download.SafeParents`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from s3ferry.transfer.checksums import META_GID, META_MODE, META_MTIME_NS, META_SYMLINK, META_UID
from s3ferry.transfer.download import temp_path


@dataclass(frozen=True, slots=True)
class Attributes:
    """What the metadata says about the file an object came from (``None``: not recorded)."""

    mtime_ns: int | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    symlink: str | None = None

    @classmethod
    def of(cls, metadata: Mapping[str, str]) -> Attributes:
        return cls(
            mtime_ns=_number(metadata.get(META_MTIME_NS), 10),
            mode=_number(metadata.get(META_MODE), 8),
            uid=_number(metadata.get(META_UID), 10),
            gid=_number(metadata.get(META_GID), 10),
            symlink=metadata.get(META_SYMLINK) or None,
        )

    @property
    def settable(self) -> bool:
        """True when there is a mode or owner to apply after the bytes are in place."""
        return self.mode is not None or self.uid is not None or self.gid is not None


def _number(text: str | None, base: int) -> int | None:
    if text is None or not text.isascii() or not text.isdigit():
        return None
    return int(text, base)


class Local(Enum):
    """What the target path holds already."""

    ABSENT = "absent"
    SAME = "same"  # this object, restored before: same size and stored mtime, or same link
    OTHER = "other"  # something else


def local_state(
    path: str, attributes: Attributes, size_bytes: int, last_modified: datetime | None
) -> Local:
    """Compare ``path`` (never followed if it is a link) with the object it would come from.

    A file is the same when its size and mtime equal the object's size and
    stored mtime. An object without a stored mtime (not uploaded by s3ferry)
    gives a download its own mtime, so there the file is the same when its
    size is equal and it was written after the object's ``last_modified``.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Local.ABSENT
    except OSError:
        return Local.OTHER  # e.g. a parent is a file: nothing can be written there
    if attributes.symlink is not None:
        same = stat.S_ISLNK(st.st_mode) and os.readlink(path) == attributes.symlink
    elif attributes.mtime_ns is not None:
        same = _is_file(st, size_bytes) and st.st_mtime_ns == attributes.mtime_ns
    else:
        same = (
            _is_file(st, size_bytes)
            and last_modified is not None
            and st.st_mtime >= last_modified.timestamp()
        )
    return Local.SAME if same else Local.OTHER


def _is_file(st: os.stat_result, size_bytes: int) -> bool:
    return stat.S_ISREG(st.st_mode) and st.st_size == size_bytes


def apply_owner_and_mode(path: str, attributes: Attributes) -> None:
    """Give ``path`` its recorded owner (as root only) and then its permission bits.

    The owner goes first: chown clears set-user-ID bits the mode may hold.

    Raises:
        OSError: the file system refused.
    """
    _chown(path, attributes)
    if attributes.mode is not None:
        os.chmod(path, stat.S_IMODE(attributes.mode))


def make_symlink(path: str, attributes: Attributes) -> None:
    """Create (or replace) the link ``path`` -> the recorded target, with its mtime and owner.

    The link is made under a temporary name beside ``path`` and renamed over
    it, so ``path`` is never half made; a directory in the way is not replaced.

    Raises:
        OSError: the link could not be made.
    """
    assert attributes.symlink is not None
    tmp = temp_path(path)
    os.symlink(attributes.symlink, tmp)
    try:
        _chown(tmp, attributes)
        if attributes.mtime_ns is not None:
            ns = (attributes.mtime_ns, attributes.mtime_ns)
            os.utime(tmp, ns=ns, follow_symlinks=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _chown(path: str, attributes: Attributes) -> None:
    """Set the recorded owner and group of ``path`` itself (a link is not followed), as root."""
    if os.geteuid() == 0 and (attributes.uid, attributes.gid) != (None, None):
        os.chown(path, _id(attributes.uid), _id(attributes.gid), follow_symlinks=False)


def _id(value: int | None) -> int:
    return -1 if value is None else value  # -1: leave as it is
