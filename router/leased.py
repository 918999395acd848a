"""The one leased work loop behind triage jobs, deliveries and re-triage requests.

Each kind of work is a :class:`Work`: claim rows under a lease, run each in its own
slot, record each as soon as it finishes (those finishing together in one call),
renew the leases of what is still running every heartbeat, and give back what is
unfinished on shutdown. A dead process stops renewing, so its rows move to another
replica once its (short) lease runs out. The clock is injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from router.store import StoreUnavailable

log = logging.getLogger("router.worker")

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class Work(Protocol[Item, Outcome]):
    """One kind of leased work, as :class:`LeasedLoop` drives it."""

    name: str

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Item]: ...

    async def run(self, item: Item) -> Outcome:
        """Do the work; never raises (a failure is an outcome to record)."""

    async def record(self, owner: str, finished: Sequence[tuple[Item, Outcome]]) -> None:
        """Record finished items; may raise StoreUnavailable (their leases then expire)."""

    async def renew(self, owner: str, items: Sequence[Item], lease_seconds: float) -> None: ...

    async def release(self, owner: str, items: Sequence[Item]) -> None: ...


@dataclass(frozen=True)
class LoopOptions:
    slots: int = 16
    lease_seconds: float = 15.0
    poll_seconds: float = 0.5

    @property
    def heartbeat_seconds(self) -> float:
        """How often running leases are renewed: twice per lease, so a dead holder's
        work moves within two heartbeats of its last renewal."""
        return self.lease_seconds / 2


@dataclass
class LeasedLoop(Generic[Item, Outcome]):
    """Keeps up to ``slots`` items of one :class:`Work` in flight for ``owner``."""

    work: Work[Item, Outcome]
    owner: str
    options: LoopOptions
    stopping: asyncio.Event
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Callable[[], float] = time.monotonic
    running: dict[asyncio.Task[Outcome], Item] = field(default_factory=dict, init=False)
    backlog: bool = field(default=False, init=False)  # the last claim filled every free slot

    async def __call__(self) -> None:
        renewed = self.clock()
        try:
            while self.running or not self.stopping.is_set():
                room = self.options.slots - len(self.running)
                if room >= self._batch() and not self.stopping.is_set():
                    claimed = await self._claim(room)
                    self.backlog = len(claimed) == room
                    for item in claimed:
                        self.running[asyncio.create_task(self.work.run(item))] = item
                if not self.running:
                    await self._idle(self.options.poll_seconds)
                    continue
                due = renewed + self.options.heartbeat_seconds - self.clock()
                await self._record(await self._next_finished(min(due, self.options.poll_seconds)))
                if self.clock() - renewed >= self.options.heartbeat_seconds:
                    renewed = self.clock()
                    await self._renew()
        except asyncio.CancelledError:
            await asyncio.shield(self._give_back())
            raise

    def _batch(self) -> int:
        """How many slots must be free to claim: one when the backlog is drained (a new item
        starts at once), a quarter of them while there is one (a claim's cost grows with the
        backlog, so it is paid once per several finished items, not once per item)."""
        return max(1, self.options.slots // 4) if self.backlog else 1

    def wake(self) -> None:
        self.wakeup.set()

    async def _claim(self, room: int) -> list[Item]:
        try:
            return await self.work.claim(self.owner, room, self.options.lease_seconds)
        except Exception as exc:  # the loop must outlive any database trouble
            log.warning(
                "cannot claim %s: %s",
                self.work.name,
                exc,
                exc_info=not isinstance(exc, StoreUnavailable),
            )
            return []

    async def _idle(self, timeout: float) -> None:
        """Sleep until the next poll, a wake-up or shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), timeout=max(0.0, timeout))
        if not self.stopping.is_set():
            self.wakeup.clear()

    async def _next_finished(self, timeout: float) -> list[tuple[Item, Outcome]]:
        """Wait for items to finish, a wake-up (new work) or the timeout."""
        woken = asyncio.create_task(self.wakeup.wait())
        done, _ = await asyncio.wait(
            [*self.running, woken], timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED
        )
        woken.cancel()
        if self.wakeup.is_set() and not self.stopping.is_set():
            self.wakeup.clear()
        finished = [task for task in done if task in self.running]
        return [(self.running.pop(task), task.result()) for task in finished]

    async def _record(self, finished: list[tuple[Item, Outcome]]) -> None:
        if not finished:
            return
        try:
            await self.work.record(self.owner, finished)
        except Exception as exc:  # the loop must outlive any database trouble
            log.warning(
                "cannot record %d %s, their leases will expire: %s",
                len(finished),
                self.work.name,
                exc,
                exc_info=not isinstance(exc, StoreUnavailable),
            )

    async def _renew(self) -> None:
        try:
            await self.work.renew(
                self.owner, list(self.running.values()), self.options.lease_seconds
            )
        except Exception as exc:  # retried at the next heartbeat
            log.warning(
                "cannot renew the leases of %s: %s",
                self.work.name,
                exc,
                exc_info=not isinstance(exc, StoreUnavailable),
            )

    async def _give_back(self) -> None:
        """Shutdown: record what finished, cancel and release the rest (nothing is lost)."""
        finished = [(item, t.result()) for t, item in self.running.items() if _succeeded(t)]
        for task in self.running:
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)
        items = [item for t, item in self.running.items() if not _succeeded(t)]
        self.running.clear()
        await self._record(finished)
        try:
            await self.work.release(self.owner, items)
        except StoreUnavailable as exc:
            log.warning("cannot give back %d %s: %s", len(items), self.work.name, exc)


def _succeeded(task: asyncio.Task[object]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None
