"""Walk a local tree in S3 key order (UTF-8 bytes of the ``/``-joined path), streaming.

S3 lists ``a-b`` before ``a/b`` (``-`` is 0x2D, ``/`` is 0x2F), so a directory
sorts as its name followed by ``/``. Stores built on a file system list by
path segments instead (``a/b`` before ``a-b``); ``path_ordered`` walks in that
order. Memory holds one directory listing per level of depth, never the
whole tree.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple


class LocalEntry(NamedTuple):
    """A regular file found by the walk (or a symbolic link, when links are asked for:
    ``link_target`` set, size 0); ``relative`` is ``/``-separated. A tuple: a frozen
    dataclass of nine fields costs ~4x more to make, once per file."""

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


_name: Callable[[os.DirEntry[str]], str] = attrgetter("name")


def _sort_key(entry: os.DirEntry[str], follow: bool) -> bytes:
    return os.fsencode(_sort_text(entry, follow))


def _sort_text(entry: os.DirEntry[str], follow: bool) -> str:
    try:
        is_dir = entry.is_dir(follow_symlinks=follow)
    except OSError:
        is_dir = False
    return entry.name + "/" if is_dir else entry.name


@dataclass(frozen=True, slots=True)
class _Walk:
    """How one walk goes: the order of a directory's entries, what to do with links.

    ``ascii_order`` sorts ASCII names as text, which is the order of their bytes, without
    encoding every name.
    """

    order: Callable[[os.DirEntry[str]], bytes]
    ascii_order: Callable[[os.DirEntry[str]], str]
    links: bool
    follow: bool

    def in_order(self, entries: list[os.DirEntry[str]]) -> list[os.DirEntry[str]]:
        if "".join([e.name for e in entries]).isascii():
            return sorted(entries, key=self.ascii_order)
        return sorted(entries, key=self.order)


def walk(
    root: str, path_ordered: bool = False, links: bool = False, follow_symlinks: bool = False
) -> Iterator[LocalEntry | WalkProblem]:
    """Yield every regular file under ``root`` in key order, and problems as they are met.

    Symlinks are not followed: with ``links`` they are entries of their own
    (``link_target``), else reported as problems. With ``follow_symlinks``
    they are read through, wherever they point, except a link to a directory
    the walk is already inside (a loop), which is reported and skipped.
    Empty directories are reported so callers can say they were skipped.
    """
    if path_ordered:
        how = _Walk(_by_name, _name, links and not follow_symlinks, follow_symlinks)
    else:
        order = functools.partial(_sort_key, follow=follow_symlinks)
        text = functools.partial(_sort_text, follow=follow_symlinks)
        how = _Walk(order, text, links and not follow_symlinks, follow_symlinks)
    try:
        top = os.stat(root)
    except OSError:
        top = None
    inside = frozenset({(top.st_dev, top.st_ino)}) if top is not None else frozenset()
    yield from _walk_dir(root, "", how, inside)


def _walk_dir(
    path: str, relative: str, how: _Walk, inside: frozenset[tuple[int, int]]
) -> Iterator[LocalEntry | WalkProblem]:
    """``inside``: (device, inode) of the directories from the root down to ``path``."""
    try:
        with os.scandir(path) as it:
            entries = how.in_order(list(it))
    except OSError as e:
        yield WalkProblem(path, relative, f"cannot read directory: {e.strerror}", unreadable=True)
        return
    if not entries and relative:
        yield WalkProblem(path, relative, "empty directory")
    # Regular files are handled inline: a generator per file would cost more than its stat.
    for entry in entries:
        rel = relative + entry.name
        try:
            st = entry.stat(follow_symlinks=False)
            if how.follow and stat.S_ISLNK(st.st_mode):
                st = entry.stat(follow_symlinks=True)
        except OSError as e:
            yield WalkProblem(entry.path, rel, f"cannot stat: {e.strerror}", unreadable=True)
            continue
        if stat.S_ISREG(st.st_mode):
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
        elif stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in inside:
                yield WalkProblem(entry.path, rel, "symbolic link loop (not followed)")
                continue
            yield from _walk_dir(entry.path, rel + "/", how, inside | {(st.st_dev, st.st_ino)})
        else:
            yield _not_regular(entry, rel, st, how)


def _not_regular(
    entry: os.DirEntry[str], rel: str, st: os.stat_result, how: _Walk
) -> LocalEntry | WalkProblem:
    """A symbolic link (an entry of its own with ``how.links``) or a special file."""
    if stat.S_ISLNK(st.st_mode) and how.links:
        try:
            target = os.readlink(entry.path)
        except OSError as e:
            return WalkProblem(entry.path, rel, f"cannot read link: {e.strerror}", unreadable=True)
        return LocalEntry(
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
    if stat.S_ISLNK(st.st_mode):
        return WalkProblem(entry.path, rel, "symbolic link (not followed)")
    return WalkProblem(entry.path, rel, "not a regular file")
