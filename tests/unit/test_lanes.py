from __future__ import annotations

from collections.abc import Iterator

import pytest

from s3ferry.jobs.lanes import PREFETCH_BATCH, prefetched


@pytest.mark.timeout(10)
def test_prefetched_keeps_order_across_batches() -> None:
    n = 3 * PREFETCH_BATCH + 7
    assert list(prefetched(iter(range(n)))) == list(range(n))


@pytest.mark.timeout(10)
def test_prefetched_reraises_the_producers_error() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise OSError("listing broke")

    with pytest.raises(OSError, match="listing broke"):
        list(prefetched(failing()))


@pytest.mark.timeout(10)
def test_prefetched_stops_its_thread_when_abandoned() -> None:
    import threading

    it = prefetched(iter(range(10 * PREFETCH_BATCH)))
    assert next(it) == 0
    it.close()
    for t in threading.enumerate():
        if t.name == "s3ferry-list":
            t.join(2)
            assert not t.is_alive()
