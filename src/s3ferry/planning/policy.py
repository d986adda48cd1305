"""Should a key be copied, skipped or deleted, and why: pure functions of what is known.

The default rule is size + mtime. The listing gives size and the upload time
(``LastModified``); s3ferry stores the source's mtime in metadata at upload.
A same-size file whose mtime AND ctime are both no later than its object's
upload is up to date without asking the store anything: nothing has touched
the file since (ctime cannot be set back: a rewrite, even one that restores
an old mtime with ``cp -p`` or ``touch -d``, moves it to "now"). Any other
same-size file is compared with the mtime stored at upload (one HEAD).
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Action(Enum):
    COPY = "copy"
    SKIP = "skip"
    DELETE = "delete"
    # The decision needs the object's stored metadata (a HEAD); ask again with it.
    NEEDS_METADATA = "needs-metadata"


class Rule(Enum):
    SIZE_AND_MTIME = "size+mtime"
    SIZE_ONLY = "size"
    CHECKSUM = "checksum"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str


NEEDS_METADATA = Decision(Action.NEEDS_METADATA, "")
UNTOUCHED = Decision(Action.SKIP, "same size, not touched since the upload")


# Objects uploaded together share their LastModified (to the second or millisecond).
@functools.lru_cache(maxsize=1024)
def iso_to_ns(text: str) -> int | None:
    """``2026-11-25T20:45:20.000Z`` -> nanoseconds since the epoch (``None`` if unparsable)."""
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        return None


def first_look(
    rule: Rule,
    source_size: int,
    source_mtime_ns: int,
    target_size: int | None,
    target_modified: str,
    source_ctime_ns: int = 0,
) -> Decision:
    """Decide from the walk and the listing alone, or say the metadata is needed.

    ``target_size`` None: nothing at the target. Under ``Rule.CHECKSUM`` a
    same-size pair always needs the content compared, which the caller does.
    """
    if target_size is None:
        return Decision(Action.COPY, "new")
    if source_size != target_size:
        return Decision(Action.COPY, f"size differs ({source_size} != {target_size})")
    if rule is Rule.SIZE_ONLY:
        return Decision(Action.SKIP, "same size")
    if rule is Rule.CHECKSUM:
        return NEEDS_METADATA
    uploaded = iso_to_ns(target_modified)
    if uploaded is not None and max(source_mtime_ns, source_ctime_ns) <= uploaded:
        return UNTOUCHED
    return NEEDS_METADATA


@dataclass(frozen=True, slots=True)
class Listed:
    """What a listing says of one object: all a bucket-to-bucket decision may use."""

    size_bytes: int
    etag: str
    last_modified: str


def between_buckets(rule: Rule, source: Listed, target: Listed | None) -> Decision:
    """Copy, skip or compare content, for an object of one bucket and its namesake in another.

    Same size and both ETags plain MD5s: the MD5s decide under every rule but
    size-only. Otherwise, as ``aws s3 sync`` does, a target modified no
    earlier than the source is up to date (a copy is always younger than its
    source); under ``Rule.CHECKSUM`` the stored checksums must be compared
    (the caller HEADs both objects).
    """
    if target is None:
        return Decision(Action.COPY, "new")
    if source.size_bytes != target.size_bytes:
        return Decision(Action.COPY, f"size differs ({source.size_bytes} != {target.size_bytes})")
    if rule is Rule.SIZE_ONLY:
        return Decision(Action.SKIP, "same size")
    if is_md5(source.etag) and is_md5(target.etag):
        return by_checksum(source.etag, target.etag, "MD5")
    if rule is Rule.CHECKSUM:
        return NEEDS_METADATA
    copied, modified = iso_to_ns(target.last_modified), iso_to_ns(source.last_modified)
    if copied is not None and modified is not None and copied >= modified:
        return Decision(Action.SKIP, "same size, target no older than the source")
    return Decision(Action.COPY, "source modified after the target")


def is_md5(etag: str) -> bool:
    """An ETag that is a plain MD5 (single-part, unencrypted or SSE-S3)."""
    return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag)


def by_stored_mtime(source_mtime_ns: int, stored_mtime_ns: str | None) -> Decision:
    """Same size and modified after the upload: compare with the mtime stored at upload."""
    if stored_mtime_ns is None:
        return Decision(Action.COPY, "modified after the upload (no stored mtime)")
    if stored_mtime_ns == str(source_mtime_ns):
        return Decision(Action.SKIP, "same size and mtime")
    return Decision(Action.COPY, f"mtime differs ({source_mtime_ns} != stored {stored_mtime_ns})")


def by_checksum(source: str, target: str | None, method: str) -> Decision:
    """Same size: compare content hashes (``target`` None: the target has none to compare)."""
    if target is None:
        return Decision(Action.COPY, "no checksum stored to compare with")
    if source == target:
        return Decision(Action.SKIP, f"same {method}")
    return Decision(Action.COPY, f"{method} differs")


@dataclass(frozen=True, slots=True)
class Filters:
    """``--include`` / ``--exclude`` globs over relative keys; exclude wins, in any order."""

    include: Sequence[str] = ()
    exclude: Sequence[str] = ()

    def admits(self, relative: str) -> bool:
        if not (self.exclude or self.include):
            return True
        if any(fnmatch.fnmatchcase(relative, g) for g in self.exclude):
            return False
        return not self.include or any(fnmatch.fnmatchcase(relative, g) for g in self.include)
