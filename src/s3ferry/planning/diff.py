"""Merge-join of two key-ordered streams: memory does not grow with their length."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

from s3ferry.errors import S3ferryError
from s3ferry.listing.keyspace import KeyOrder

L = TypeVar("L")
R = TypeVar("R")


class Pair(NamedTuple, Generic[L, R]):
    """One relative key and what each side has under it (``None``: nothing)."""

    key: str
    left: L | None
    right: R | None


def merge_join(
    left: Iterable[tuple[str, L]], right: Iterable[tuple[str, R]], order: KeyOrder
) -> Iterator[Pair[L, R]]:
    """Pair up ``(key, item)`` streams that are both sorted by ``order``.

    Raises:
        S3ferryError: a stream is not in ``order`` (a merge-join would then
            report keys as missing that are present).
    """
    lit, rit = iter(left), iter(right)
    lnext, rnext = next(lit, None), next(rit, None)
    # Each key's place in the order is computed once, as it arrives.
    lplace: Any = order(lnext[0]) if lnext is not None else None
    rplace: Any = order(rnext[0]) if rnext is not None else None
    last: Any = None
    while lnext is not None or rnext is not None:
        if rnext is None or (lnext is not None and lplace < rplace):
            assert lnext is not None
            pair: Pair[L, R] = Pair(lnext[0], lnext[1], None)
            place = lplace
            lnext = next(lit, None)
            lplace = order(lnext[0]) if lnext is not None else None
        elif lnext is None or rplace < lplace:
            pair, place = Pair(rnext[0], None, rnext[1]), rplace
            rnext = next(rit, None)
            rplace = order(rnext[0]) if rnext is not None else None
        else:
            pair, place = Pair(lnext[0], lnext[1], rnext[1]), lplace
            lnext, rnext = next(lit, None), next(rit, None)
            lplace = order(lnext[0]) if lnext is not None else None
            rplace = order(rnext[0]) if rnext is not None else None
        if last is not None and not last < place:
            raise S3ferryError(pair.key, "keys are out of order; the two sides cannot be compared")
        last = place
        yield pair
