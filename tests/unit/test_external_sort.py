from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3ferry.listing.external_sort import sorted_entries
from s3ferry.listing.keyspace import key_order
from s3ferry.storage.listing import Entry

keys = st.text(st.sampled_from("ab/-zé東\U0001f600"), min_size=1, max_size=8)


def _entry(key: str, i: int) -> Entry:
    return Entry(key, i, f"etag{i}", "2026-01-01T00:00:00.000Z", "GLACIER", None)


@pytest.mark.parametrize("path_ordered", [False, True], ids=["byte-order", "path-order"])
@given(st.lists(keys, unique=True, max_size=60), st.integers(1, 7), st.integers(2, 4))
@settings(max_examples=60, deadline=None)
def test_sorted_like_sorted_through_runs_and_merge_passes(
    tmp_path_factory: pytest.TempPathFactory,
    path_ordered: bool,
    names: list[str],
    run: int,
    fan_in: int,
) -> None:
    order = key_order(path_ordered)
    work = tmp_path_factory.mktemp("sort")
    entries = [_entry(k, i) for i, k in enumerate(names)]
    got = list(sorted_entries(entries, order, run_entries=run, fan_in=fan_in, temp_dir=str(work)))
    assert got == sorted(entries, key=lambda e: order(e.key))
    assert list(work.iterdir()) == []


def test_a_stream_that_fits_one_run_writes_nothing(tmp_path: Path) -> None:
    entries = [_entry(k, i) for i, k in enumerate(["b", "a", "c"])]
    stream = sorted_entries(entries, key_order(False), run_entries=10, temp_dir=str(tmp_path))
    assert [e.key for e in stream] == ["a", "b", "c"]
    assert list(tmp_path.iterdir()) == []


def test_closing_early_removes_the_runs(tmp_path: Path) -> None:
    entries = (_entry(f"k{i:03d}", i) for i in range(50, 0, -1))
    stream = sorted_entries(entries, key_order(False), run_entries=10, temp_dir=str(tmp_path))
    assert next(stream).key == "k001"
    assert len(list(tmp_path.iterdir())) == 1
    stream.close()
    assert list(tmp_path.iterdir()) == []
