"""The leased work loop on its own: slots, a record per finish, renewals by the clock, give-back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from router.leased import LeasedLoop, LoopOptions
from tests.harness.waiting import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Gated:
    """Work items are names; each runs until its gate opens. Every call is noted."""

    name = "gated items"

    def __init__(self, items: list[str]) -> None:
        self.waiting = list(items)
        self.gates = {item: asyncio.Event() for item in items}
        self.claims: list[int] = []
        self.recorded: list[list[str]] = []
        self.renewed: list[list[str]] = []
        self.released: list[str] = []

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[str]:
        self.claims.append(limit)
        taken, self.waiting = self.waiting[:limit], self.waiting[limit:]
        return taken

    async def run(self, item: str) -> str:
        await self.gates[item].wait()
        return f"{item} done"

    async def record(self, owner: str, finished: Sequence[tuple[str, str]]) -> None:
        self.recorded.append([outcome for _, outcome in finished])

    async def renew(self, owner: str, items: Sequence[str], lease_seconds: float) -> None:
        self.renewed.append(sorted(items))

    async def release(self, owner: str, items: Sequence[str]) -> None:
        self.released += items


async def test_slots_records_renewals_and_give_back() -> None:
    work, clock = Gated(["a", "b", "c"]), Clock()
    options = LoopOptions(slots=2, lease_seconds=10, poll_seconds=0.02)
    loop = LeasedLoop(work, "me", options, asyncio.Event(), clock=clock)
    task = asyncio.create_task(loop())
    await eventually(lambda: len(loop.running) == 2)
    assert work.waiting == ["c"]  # two slots

    work.gates["a"].set()
    await eventually(lambda: work.recorded == [["a done"]])  # recorded alone, b still running
    await eventually(lambda: sorted(loop.running.values()) == ["b", "c"])  # c took a's slot
    assert work.renewed == []  # the clock has not moved a heartbeat

    clock.now += options.heartbeat_seconds
    await eventually(lambda: work.renewed == [["b", "c"]])

    work.gates["b"].set()
    await eventually(lambda: ["b done"] in work.recorded)
    task.cancel()  # shutdown: c is still running
    await asyncio.gather(task, return_exceptions=True)
    assert work.released == ["c"]
    assert loop.running == {}


async def test_with_a_backlog_it_claims_once_a_quarter_of_the_slots_is_free() -> None:
    items = [f"i{n}" for n in range(12)]
    work = Gated(items)
    loop = LeasedLoop(work, "me", LoopOptions(slots=8, poll_seconds=0.02), asyncio.Event())
    task = asyncio.create_task(loop())
    await eventually(lambda: len(loop.running) == 8)
    assert work.claims == [8]  # all eight slots filled: there is a backlog

    work.gates["i0"].set()
    await eventually(lambda: len(loop.running) == 7)
    await asyncio.sleep(0.1)
    assert work.claims == [8]  # one free slot of eight waits for a second
    work.gates["i1"].set()
    await eventually(lambda: work.claims == [8, 2] and len(loop.running) == 8)

    for item in items[2:8]:
        work.gates[item].set()
    await eventually(lambda: work.waiting == [] and len(loop.running) == 4)
    assert work.claims[-1] > 2  # asked for more than was left: the backlog is drained
    work.waiting.append("late")
    work.gates["late"] = asyncio.Event()
    work.gates["i8"].set()
    await eventually(lambda: "late" in loop.running.values())  # drained: one free slot claims
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
