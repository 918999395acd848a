"""The SQLite write gate: one writer at a time, urgent writers (ingest) first."""

from __future__ import annotations

import asyncio

import pytest

from router.store.database import WriteGate


async def test_urgent_writers_overtake_queued_ones() -> None:
    gate, order = WriteGate(), []
    release_first = asyncio.Event()

    async def writer(name: str, urgent: bool, hold: asyncio.Event | None = None) -> None:
        async with gate(urgent):
            order.append(name)
            if hold is not None:
                await hold.wait()

    first = asyncio.create_task(writer("worker-1", False, release_first))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(writer(f"worker-{i}", False)) for i in (2, 3)]
    await asyncio.sleep(0)
    urgent = asyncio.create_task(writer("ingest", True))
    await asyncio.sleep(0)
    release_first.set()
    await asyncio.gather(first, *queued, urgent)
    assert order == ["worker-1", "ingest", "worker-2", "worker-3"]


async def test_a_cancelled_waiter_does_not_keep_the_gate() -> None:
    gate = WriteGate()
    hold = asyncio.Event()

    async def holder() -> None:
        async with gate(False):
            await hold.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(gate(True).__aenter__())
    await asyncio.sleep(0)
    waiter.cancel()
    hold.set()
    await task
    async with asyncio.timeout(1), gate(False):
        pass  # acquirable again: neither the holder nor the cancelled waiter kept it


async def test_a_waiter_cancelled_as_the_gate_is_released_just_leaves() -> None:
    gate = WriteGate()
    await gate._acquire(False)  # held
    waiter = asyncio.create_task(gate._acquire(True))
    await asyncio.sleep(0)  # queued
    waiter.cancel()  # its future is cancelled now; the task learns it on its next step
    gate._release()  # skips the cancelled waiter, and frees the gate
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with asyncio.timeout(1), gate(False):
        pass
