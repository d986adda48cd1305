"""Walk a local tree in S3 key order (UTF-8 bytes of the ``/``-joined path), streaming.

S3 lists ``a-b`` before ``a/b`` (``-`` is 0x2D, ``/`` is 0x2F), so a directory
sorts as its name followed by ``/``. Stores built on a file system list by
path segments instead (``a/b`` before ``a-b``); ``path_ordered`` walks in that
order. Memory holds one directory listing per level of depth, never the
whole tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LocalEntry:
    """A regular file found by the walk (or a symbolic link, when links are asked for:
    ``link_target`` set, size 0); ``relative`` is ``/``-separated."""

    path: str
    relative: str
    size_bytes: int
    mtime_ns: int
    mode: int = 0
    uid: int = -1
    gid: int = -1
    link_target: str | None = None
    ctime_ns: int = 0  # inode change time: any write or utime moves it to "now"


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """Something the walk could not take: an unreadable directory, a special file, a symlink."""

    path: str
    relative: str
    reason: str
    unreadable: bool = False  # True: the entry could not be read (a failure, not a skip)


def _by_name(entry: os.DirEntry[str]) -> bytes:
    return os.fsencode(entry.name)


def _sort_key(entry: os.DirEntry[str]) -> bytes:
    name = os.fsencode(entry.name)
    try:
        is_dir = entry.is_dir(follow_symlinks=False)
    except OSError:
        is_dir = False
    return name + b"/" if is_dir else name


def walk(
    root: str, path_ordered: bool = False, links: bool = False
) -> Iterator[LocalEntry | WalkProblem]:
    """Yield every regular file under ``root`` in key order, and problems as they are met.

    Symlinks are never followed: with ``links`` they are entries of their
    own (``link_target``), else reported as problems. Empty directories are
    reported so callers can say they were skipped.
    """
    yield from _walk_dir(root, "", _by_name if path_ordered else _sort_key, links)


def _walk_dir(
    path: str, relative: str, order: Callable[[os.DirEntry[str]], bytes], links: bool
) -> Iterator[LocalEntry | WalkProblem]:
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=order)
    except OSError as e:
        yield WalkProblem(path, relative, f"cannot read directory: {e.strerror}", unreadable=True)
        return
    if not entries and relative:
        yield WalkProblem(path, relative, "empty directory")
    for entry in entries:
        rel = relative + entry.name
        yield from _walk_entry(entry, rel, order, links)


def _walk_entry(
    entry: os.DirEntry[str], rel: str, order: Callable[[os.DirEntry[str]], bytes], links: bool
) -> Iterator[LocalEntry | WalkProblem]:
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError as e:
        yield WalkProblem(entry.path, rel, f"cannot stat: {e.strerror}", unreadable=True)
        return
    if stat.S_ISDIR(st.st_mode):
        yield from _walk_dir(entry.path, rel + "/", order, links)
    elif stat.S_ISREG(st.st_mode):
        yield LocalEntry(
            entry.path,
            rel,
            st.st_size,
            st.st_mtime_ns,
            st.st_mode,
            st.st_uid,
            st.st_gid,
            ctime_ns=st.st_ctime_ns,
        )
    elif stat.S_ISLNK(st.st_mode) and links:
        try:
            target = os.readlink(entry.path)
        except OSError as e:
            yield WalkProblem(entry.path, rel, f"cannot read link: {e.strerror}", unreadable=True)
            return
        yield LocalEntry(
            entry.path,
            rel,
            0,
            st.st_mtime_ns,
            st.st_mode,
            st.st_uid,
            st.st_gid,
            target,
            ctime_ns=st.st_ctime_ns,
        )
    elif stat.S_ISLNK(st.st_mode):
        yield WalkProblem(entry.path, rel, "symbolic link (not followed)")
    else:
        yield WalkProblem(entry.path, rel, "not a regular file")
