"""Where data lives: ``s3://bucket/prefix`` URLs, local paths, and the key <-> path mapping.

The mapping refuses any key that would land outside the local root (``..``
segments, absolute keys, backslashes, NUL, empty segments): those are
reported and skipped, never written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from s3ferry.errors import UsageError

# AWS bucket naming rules (3-63 chars, lower-case letters, digits, dots and
# hyphens, starting and ending with a letter or digit).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class S3Url:
    """A bucket and a key or key prefix (``key`` may be empty: the whole bucket)."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def is_prefix(self) -> bool:
        """True when the URL can only name a prefix (bucket root or trailing ``/``)."""
        return self.key == "" or self.key.endswith("/")

    def as_prefix(self) -> str:
        """The key as a directory-like prefix: ``""`` or ending with ``/``."""
        return self.key if self.is_prefix else self.key + "/"


def is_s3_url(text: str) -> bool:
    return text.startswith("s3:")


def parse_s3_url(text: str) -> S3Url:
    """Parse ``s3://bucket[/key]``.

    Raises:
        UsageError: the text is not a well-formed S3 URL or the bucket name is invalid.
    """
    if not text.startswith("s3://"):
        raise UsageError(text, "not an S3 URL (expected s3://bucket/key)")
    bucket, _, key = text[5:].partition("/")
    if not bucket:
        raise UsageError(text, "S3 URL has no bucket name")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise UsageError(text, f"invalid bucket name {bucket!r}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise UsageError(text, f"key is longer than {MAX_KEY_BYTES} bytes")
    return S3Url(bucket, key)


def key_for(prefix: str, relative: str) -> str:
    """The key for a file at ``relative`` (``/``-separated) under ``prefix``.

    Raises:
        UsageError: the name is not valid UTF-8 or the key exceeds 1,024 bytes.
    """
    key = prefix + relative
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        shown = relative.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise UsageError(shown, "file name is not valid UTF-8; S3 keys must be") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise UsageError(relative, f"key would be {len(encoded)} bytes (S3 allows 1024)")
    return key


def path_for(root: Path, prefix: str, key: str) -> Path:
    """The local path for ``key`` downloaded from ``prefix`` into ``root``.

    Raises:
        UsageError: the key would escape ``root`` or cannot be a path
            (``..``/``.``/empty segments, absolute, backslash, NUL, drive letter).
    """
    relative = key[len(prefix) :] if key.startswith(prefix) else key
    if not relative:
        raise UsageError(key, "key equals the prefix; it has no file name")
    parts = relative.split("/")
    # On Windows a segment "C:x" restarts the path at drive C, wherever it stands.
    if relative.startswith("/") or any(p == ".." or _DRIVE_RE.match(p) for p in parts):
        raise UsageError(key, "key would land outside the target directory; skipped")
    flaw = _not_a_path(relative, parts)
    if flaw:
        raise UsageError(key, f"key cannot be a local path ({flaw}); skipped")
    return root.joinpath(*parts)


def _not_a_path(relative: str, parts: list[str]) -> str:
    """What keeps a key that stays inside the target from being a path, or ``""``.

    A backslash is refused on every system: on Windows it separates directories.
    """
    if "\\" in relative:
        return "a backslash"
    if "\0" in relative:
        return "a NUL byte"
    if "" in parts:
        return "an empty segment"
    if "." in parts:
        return "a '.' segment"
    return ""


def local_relative(root: Path, path: Path) -> str:
    """The ``/``-separated path of ``path`` relative to ``root``."""
    return os.path.relpath(path, root).replace(os.sep, "/")
