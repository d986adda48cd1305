"""Client CPU that the retry policy and the pacer add to a request that succeeds.

Times a no-op request called directly, through ``Retrier.call`` and
``Retrier.call_async``, and through a ``@retried`` method, and prints the
difference per call in microseconds. No server: the request does nothing, so
what is measured is the wrapper alone.

    python bench/retry_overhead.py [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from s3ferry.storage.retry import Pacer, Retrier, retried, retried_async


class _Store:
    def __init__(self) -> None:
        self.retrier = Retrier(Pacer("http://bench"))

    @retried
    def request(self, key: str) -> str:
        return key

    @retried_async
    async def request_async(self, key: str) -> str:
        return key

    def bare(self, key: str) -> str:
        return key

    async def bare_async(self, key: str) -> str:
        return key


def _per_call_us(loop: Callable[[int], None], calls: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        loop(calls)
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    calls = parser.parse_args().calls
    store = _Store()

    def bare(n: int) -> None:
        for _ in range(n):
            store.bare("k")

    def decorated(n: int) -> None:
        for _ in range(n):
            store.request("k")

    def bare_async(n: int) -> None:
        async def run() -> None:
            for _ in range(n):
                await store.bare_async("k")

        asyncio.run(run())

    def decorated_async(n: int) -> None:
        async def run() -> None:
            for _ in range(n):
                await store.request_async("k")

        asyncio.run(run())

    sync_base, async_base = _per_call_us(bare, calls), _per_call_us(bare_async, calls)
    sync_cost = _per_call_us(decorated, calls) - sync_base
    async_cost = _per_call_us(decorated_async, calls) - async_base
    print(f"@retried       +{sync_cost:.2f} us per call (bare method {sync_base:.2f} us)")
    print(f"@retried_async +{async_cost:.2f} us per call (bare coroutine {async_base:.2f} us)")


if __name__ == "__main__":
    main()
