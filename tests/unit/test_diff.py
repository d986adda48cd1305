from __future__ import annotations

import pytest

from s3ferry.errors import S3ferryError
from s3ferry.listing.keyspace import key_order
from s3ferry.planning.diff import Pair, merge_join


def test_pairs_keys_of_both_sides_in_the_store_order() -> None:
    left = [("a", 1), ("b/c", 2), ("c", 3)]
    right = [("a", 9), ("b-", 8), ("d", 7)]
    assert list(merge_join(left, right, key_order(path_ordered=True))) == [
        Pair("a", 1, 9),
        Pair("b/c", 2, None),
        Pair("b-", None, 8),
        Pair("c", 3, None),
        Pair("d", None, 7),
    ]
    assert [p.key for p in merge_join(left, right, key_order(path_ordered=False))] == [
        "a",
        "b-",
        "b/c",
        "c",
        "d",
    ]
    assert list(merge_join([], [], key_order(path_ordered=False))) == []


@pytest.mark.parametrize(
    ("left", "right", "culprit"),
    [
        ([("b", 1), ("a", 2)], [], "a"),
        ([("c", 1)], [("a", 1), ("d", 1), ("b", 2)], "b"),
        ([("a", 1), ("a", 2)], [("a", 3)], "a"),
    ],
)
def test_a_side_out_of_order_is_an_error_naming_the_key(
    left: list[tuple[str, int]], right: list[tuple[str, int]], culprit: str
) -> None:
    with pytest.raises(S3ferryError, match="out of order") as caught:
        list(merge_join(left, right, key_order(path_ordered=False)))
    assert str(caught.value).startswith(culprit)
