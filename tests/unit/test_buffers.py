from __future__ import annotations

import asyncio
import threading

import pytest

from s3ferry.transfer.buffers import BufferPool, ByteBudget


@pytest.mark.timeout(10)
def test_pool_blocks_when_every_buffer_is_out() -> None:
    pool = BufferPool(2)
    a, b = pool.acquire(10), pool.acquire(10)
    got: list[bytearray] = []
    t = threading.Thread(target=lambda: got.append(pool.acquire(10)))
    t.start()
    t.join(0.2)
    assert t.is_alive() and not got
    pool.release(a)
    t.join(5)
    assert got and got[0] is a
    pool.release(b)
    pool.release(got[0])


def test_pool_reuses_and_never_holds_more_than_count_buffers() -> None:
    pool = BufferPool(3)
    for size in (100, 50, 200, 200, 10):
        bufs = [pool.acquire(size) for _ in range(3)]
        assert all(len(b) >= size for b in bufs)
        for b in bufs:
            pool.release(b)
    assert pool.held_bytes() == 3 * 200


def test_pool_needs_one_buffer() -> None:
    with pytest.raises(ValueError):
        BufferPool(0)


@pytest.mark.timeout(10)
def test_byte_budget_waits_and_caps_oversized_items() -> None:
    async def scenario() -> list[str]:
        budget = ByteBudget(100)
        order: list[str] = []
        first = await budget.acquire(80)

        async def second() -> None:
            taken = await budget.acquire(500)  # larger than the budget: takes all of it
            order.append(f"second:{taken}")
            budget.release(taken)

        task = asyncio.create_task(second())
        await asyncio.sleep(0.05)
        order.append("released")
        budget.release(first)
        await task
        return order

    assert asyncio.run(scenario()) == ["released", "second:100"]
