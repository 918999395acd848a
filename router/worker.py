"""Background workers: triage jobs from the store, then deliver from the outbox.

Both loops claim work under a lease, so several processes (replicas) can share
one PostgreSQL database, and work held by a process that died is picked up
again when its lease runs out. ``stop()`` stops claiming, lets in-flight work
finish within a grace period and gives back what did not finish: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from router.metrics import Metrics
from router.pipeline import Pipeline, Sink
from router.sinks import DeliveryError
from router.store import Job, OutboxItem, Store, StoreUnavailable
from router.triage import TriageResult

log = logging.getLogger("router.worker")


def backoff(attempt: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter: a random delay up to ``base * 2**(attempt-1)``."""
    return random.uniform(base / 2, min(cap, base * 2 ** max(0, attempt - 1)))


@dataclass
class WorkerOptions:
    count: int = 4
    lease_seconds: float = 60.0
    poll_seconds: float = 0.5
    max_attempts: int = 5
    shutdown_grace_seconds: float = 10.0
    delivery_max_age_seconds: float = 3600.0


@dataclass
class Workers:
    """The job workers and the outbox dispatcher of one process."""

    store: Store
    pipeline: Pipeline
    metrics: Metrics
    options: WorkerOptions = field(default_factory=WorkerOptions)
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    _tasks: list[asyncio.Task] = field(default_factory=list, init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    @property
    def running(self) -> bool:
        return (
            bool(self._tasks)
            and not self._stopping.is_set()
            and all(not t.done() for t in self._tasks)
        )

    def start(self) -> None:
        sinks = {sink.name: sink for sink in self.pipeline.sinks}
        for index in range(self.options.count):
            self._spawn(f"job-{index}", self._job_loop, f"{self.owner}/job-{index}")
        self._spawn("outbox", self._outbox_loop, f"{self.owner}/outbox", sinks)

    def wake(self) -> None:
        """New work was stored: claim it now instead of at the next poll."""
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop claiming; wait for in-flight work, then cancel (it is released, not lost)."""
        self._stopping.set()
        self._wakeup.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=self.options.shutdown_grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _spawn(self, name: str, loop: Callable[..., Awaitable[None]], *args: object) -> None:
        self._tasks.append(asyncio.create_task(loop(*args), name=f"router-{name}"))

    async def _idle(self) -> None:
        """Sleep until the next poll, a wake-up or shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=self.options.poll_seconds)
        if not self._stopping.is_set():
            self._wakeup.clear()

    async def _job_loop(self, owner: str) -> None:
        while not self._stopping.is_set():
            try:
                jobs = await self.store.claim(owner, 1, self.options.lease_seconds)
            except StoreUnavailable as exc:
                log.warning("cannot claim jobs: %s", exc)
                jobs = []
            if not jobs:
                await self._idle()
                continue
            for job in jobs:
                await self._run_job(job, owner)

    async def _run_job(self, job: Job, owner: str) -> None:
        started = time.time()
        self.metrics.job_age.observe(max(0.0, started - job.received_at))
        try:
            result = await self.pipeline.triage(_initial_result(job))
            deliveries = self.pipeline.render(result)
            finished = await self.store.complete(job, owner, result.model_dump_json(), deliveries)
            outcome = "done" if finished else "lease_lost"
        except asyncio.CancelledError:
            await asyncio.shield(self.store.release(job, owner))
            raise
        except Exception as exc:
            log.exception("triage of %s failed", job.alert.alertname)
            outcome = await self._retry_job(job, owner, exc)
        self.metrics.job_duration.observe(time.time() - started)
        self.metrics.jobs_processed.labels(outcome=outcome).inc()
        if outcome == "done":
            self.wake()
            log.info(
                "triaged %s",
                job.alert.alertname,
                extra={"fingerprint": job.alert.fingerprint, "status": job.alert.status},
            )

    async def _retry_job(self, job: Job, owner: str, exc: Exception) -> str:
        try:
            return await self.store.retry_later(
                job,
                owner,
                f"{type(exc).__name__}: {exc}",
                backoff(job.attempts),
                self.options.max_attempts,
            )
        except StoreUnavailable:
            return "lease_expires"  # the lease runs out and another claim retries it

    async def _outbox_loop(self, owner: str, sinks: dict[str, Sink]) -> None:
        while not self._stopping.is_set():
            try:
                items = await self.store.outbox.claim(owner, 16, self.options.lease_seconds)
            except StoreUnavailable as exc:
                log.warning("cannot claim deliveries: %s", exc)
                items = []
            if not items:
                await self._idle()
                continue
            await asyncio.gather(*(self._deliver(item, owner, sinks) for item in items))

    async def _deliver(self, item: OutboxItem, owner: str, sinks: dict[str, Sink]) -> None:
        delivery = item.delivery
        sink = sinks.get(delivery.sink)
        try:
            if sink is None:
                raise DeliveryError(f"sink {delivery.sink!r} is not configured", permanent=True)
            if item.interrupted and await sink.already_delivered(delivery):
                response = {"recovered": True}
            else:
                response = await sink.send(delivery)
        except DeliveryError as exc:
            await self._delivery_failed(item, owner, exc)
            return
        except Exception as exc:
            log.exception("delivery %s crashed", delivery.key)
            await self._delivery_failed(item, owner, DeliveryError(f"{type(exc).__name__}: {exc}"))
            return
        await self.store.outbox.done(item, owner, response)
        self.metrics.deliveries.labels(sink=delivery.sink, outcome="delivered").inc()
        log.info(
            "delivered %s %s",
            delivery.sink,
            delivery.action,
            extra={"sink": delivery.sink, "action": delivery.action, "key": delivery.key},
        )

    async def _delivery_failed(self, item: OutboxItem, owner: str, exc: DeliveryError) -> None:
        sink, outbox = item.delivery.sink, self.store.outbox
        too_old = time.time() - item.created_at > self.options.delivery_max_age_seconds
        if exc.permanent or too_old:
            reason = exc.reason if exc.permanent else f"gave up after {item.attempts} attempts"
            await outbox.give_up(item, owner, exc.reason)
            self.metrics.deliveries.labels(sink=sink, outcome="failed").inc()
            self.metrics.delivery_failures_permanent.labels(sink=sink, reason=reason[:60]).inc()
            log.error("delivery %s failed for good: %s", item.delivery.key, exc.reason)
            return
        delay = max(exc.retry_after or 0.0, backoff(item.attempts))
        await outbox.retry_at(item, owner, time.time() + delay, exc.reason)
        self.metrics.deliveries.labels(sink=sink, outcome="retry").inc()
        log.warning(
            "delivery %s will be retried in %.1fs: %s", item.delivery.key, delay, exc.reason
        )


def _initial_result(job: Job) -> TriageResult:
    return TriageResult(
        alert=job.alert,
        external_url=job.external_url,
        receiver=job.receiver,
        group_key=job.group_key,
    )
