"""Split points in S3's key space (code-point order, which is UTF-8 byte order).

Python compares ``str`` by code point, and UTF-8 preserves code-point order,
so ``a < b`` here is exactly S3's ordering of keys. Surrogates cannot occur in
keys and are never produced.

Stores built on a file system (SeaweedFS) list a directory's entries before
its siblings that sort after the directory's name: ``a/b`` before ``a-b``.
Their order is that of the keys' ``/``-separated segments (:func:`key_order`).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

KeyOrder = Callable[[str], Any]

# Code points are numbered without the surrogates, so that every number
# between two characters is a character too.
_SURROGATE_START, _SURROGATE_COUNT = 0xD800, 0x800
_TOP = 0x10FFFF - _SURROGATE_COUNT + 1
# Most keys are ASCII: bisect within it while the lower bound is.
_ASCII_TOP = 0x7F


def midpoint(lo: str, hi: str | None, alphabet: str = "") -> str | None:
    """A key ``m`` with ``lo < m`` and (``hi`` is None or ``m < hi``), near the middle.

    Character by character: at the first position where ``lo`` and ``hi``
    differ by two or more, the character halfway between; where they are
    adjacent, ``lo``'s character is kept and the rest is open above. An open
    top is the end of ASCII while ``lo`` is below it. ``None`` when nothing
    fits (``hi`` is ``lo`` followed by NULs).

    ``alphabet`` (sorted characters seen in nearby keys) narrows "halfway" to the
    characters keys use: between ``5`` and the end of ASCII, hex keys hold only
    ``6``-``9`` and ``a``-``f``, so the middle one of those is taken, not ``Z``
    (above which no hex key lies). Where none of them lies between, ``lo``'s
    character is kept and the middle is sought one character further on.
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
            inside = [c for c in alphabet if a < _index(c) < b]
            if inside:
                return "".join(out) + inside[len(inside) // 2]
            if a < 0 or not alphabet:
                return "".join(out) + _char((a + b) // 2)
        if a == b:
            out.append(lo[i])
        elif a >= 0:
            out.append(lo[i])
            hi = None
        else:
            out.append("\0")
        i += 1


def alphabet_of(keys: Sequence[str], start: int, stop: int | None = None, samples: int = 64) -> str:
    """The sorted characters at positions ``start`` to ``stop`` (None: the end) in up
    to ``samples`` of ``keys``, taken evenly: what :func:`midpoint` needs of nearby keys."""
    step = max(1, len(keys) // samples)
    return "".join(sorted({c for k in keys[::step] for c in k[start:stop]}))


def keys_between(page: Sequence[str], lo: str, hi: str, digits: int = 6) -> float | None:
    """About how many keys lie between ``lo`` and ``hi``, from how densely the keys of
    ``page`` (one listing page, in order, near them) fill the key space; ``None`` if
    the page tells nothing. Keys count as numbers: their first ``digits`` characters
    past the prefix all share, each a digit by its rank among the characters the
    page's keys differ by (those in the first ``digits`` positions where they do).
    An estimate to size requests with, never a bound; ``None`` for keys with a ``/``
    past that prefix (a tree's keys are not spread evenly over the key space).
    """
    if len(page) < 2:
        return None
    start = len(os.path.commonprefix([page[0], page[-1], lo, hi]))
    if any("/" in key[start:] for key in (page[0], page[-1], lo, hi)):
        return None
    varies = len(os.path.commonprefix([page[0], page[-1]]))
    digits = max(digits, varies - start + 3)
    alphabet = alphabet_of(page, varies, varies + digits)
    base = len(alphabet) + 2  # 0: past the key's end; above the top rank: not seen

    def number(key: str) -> int:
        n = 0
        for c in key[start : start + digits].ljust(digits, "\0"):
            n = n * base + (bisect_left(alphabet, c) + 1 if c != "\0" else 0)
        return n

    first, last = number(page[0]), number(page[-1])
    low, high = number(lo), number(hi)
    if not first < last or not low <= high:
        return None
    return (len(page) - 1) * (high - low) / (last - first)


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
