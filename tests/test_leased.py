"""The leased work loop on its own: slots, a record per finish, renewals by the clock, give-back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from router.leased import LeasedLoop, LoopOptions


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


async def until(check) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_slots_records_renewals_and_give_back() -> None:
    work, clock = Gated(["a", "b", "c"]), Clock()
    options = LoopOptions(slots=2, lease_seconds=10, poll_seconds=0.02)
    loop = LeasedLoop(work, "me", options, asyncio.Event(), clock=clock)
    task = asyncio.create_task(loop())
    await until(lambda: len(loop.running) == 2)
    assert work.waiting == ["c"]  # two slots

    work.gates["a"].set()
    await until(lambda: work.recorded == [["a done"]])  # recorded alone, b still running
    await until(lambda: sorted(loop.running.values()) == ["b", "c"])  # c took a's slot
    assert work.renewed == []  # the clock has not moved a heartbeat

    clock.now += options.heartbeat_seconds
    await until(lambda: work.renewed == [["b", "c"]])

    work.gates["b"].set()
    await until(lambda: ["b done"] in work.recorded)
    task.cancel()  # shutdown: c is still running
    await asyncio.gather(task, return_exceptions=True)
    assert work.released == ["c"]
    assert loop.running == {}
