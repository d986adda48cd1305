"""Split points in S3's key space (code-point order, which is UTF-8 byte order).

Python compares ``str`` by code point, and UTF-8 preserves code-point order,
so ``a < b`` here is exactly S3's ordering of keys. Surrogates cannot occur in
keys and are never produced.

Stores built on a file system (SeaweedFS) list a directory's entries before
its siblings that sort after the directory's name: ``a/b`` before ``a-b``.
Their order is that of the keys' ``/``-separated segments (:func:`key_order`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

KeyOrder = Callable[[str], Any]

# Code points are numbered without the surrogates, so that every number
# between two characters is a character too.
_SURROGATE_START, _SURROGATE_COUNT = 0xD800, 0x800
_TOP = 0x10FFFF - _SURROGATE_COUNT + 1
# Most keys are ASCII: bisect within it while the lower bound is.
_ASCII_TOP = 0x7F


def midpoint(lo: str, hi: str | None) -> str | None:
    """A key ``m`` with ``lo < m`` and (``hi`` is None or ``m < hi``), near the middle.

    Character by character: at the first position where ``lo`` and ``hi``
    differ by two or more, the character halfway between; where they are
    adjacent, ``lo``'s character is kept and the rest is open above. An open
    top is the end of ASCII while ``lo`` is below it. ``None`` when nothing
    fits (``hi`` is ``lo`` followed by NULs).
    """
    if hi is not None and hi <= lo:
        return None
    out: list[str] = []
    i = 0
    while True:
        a = _index(lo[i]) if i < len(lo) else -1
        if hi is not None:
            if i >= len(hi):
                return None
            b = _index(hi[i])
        else:
            b = _ASCII_TOP if a < _ASCII_TOP - 1 else _TOP
        if b - a >= 2:
            return "".join(out) + _char((a + b) // 2)
        if a == b:
            out.append(lo[i])
        elif a >= 0:
            out.append(lo[i])
            hi = None
        else:
            out.append("\0")
        i += 1


def _index(c: str) -> int:
    code = ord(c)
    return code - _SURROGATE_COUNT if code >= _SURROGATE_START else code


def _char(index: int) -> str:
    return chr(index + _SURROGATE_COUNT if index >= _SURROGATE_START else index)


def key_order(path_ordered: bool) -> KeyOrder:
    """The sort key of a store's listing order: the key itself, or its path segments."""
    return _segments if path_ordered else _itself


def _segments(key: str) -> list[str]:
    return key.split("/")


def _itself(key: str) -> str:
    return key
