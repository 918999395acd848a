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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from router.metrics import Metrics
from router.pipeline import Pipeline, Sink
from router.sinks import DeliveryError
from router.store import Job, OutboxItem, Store, StoreUnavailable
from router.store.jobs import Finished
from router.store.outbox import Settled
from router.triage import Finding, TriageResult

log = logging.getLogger("router.worker")


def backoff(attempt: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter: a random delay up to ``base * 2**(attempt-1)``."""
    return random.uniform(base / 2, min(cap, base * 2 ** max(0, attempt - 1)))


class Turns:
    """CPU-bound steps take turns, one per event-loop iteration.

    Classification, templating and rendering are CPU work; a batch of them run back
    to back would keep the loop from reading webhooks for tens of milliseconds.
    Taking turns lets whatever I/O is ready (a webhook waiting for its ack) run
    between two steps.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        async with self._lock:
            yield
            await asyncio.sleep(0)


@dataclass
class WorkerOptions:
    count: int = 4
    lease_seconds: float = 60.0
    poll_seconds: float = 0.5
    max_attempts: int = 5
    shutdown_grace_seconds: float = 10.0
    batch: int = 16  # jobs (or deliveries) one loop claims and records at once
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
    _new_jobs: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _new_deliveries: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _turns: Turns = field(default_factory=Turns, init=False)

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
        self._new_jobs.set()
        self._new_deliveries.set()

    async def stop(self) -> None:
        """Stop claiming; wait for in-flight work, then cancel (it is released, not lost)."""
        self._stopping.set()
        self.wake()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=self.options.shutdown_grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _spawn(self, name: str, loop: Callable[..., Awaitable[None]], *args: object) -> None:
        self._tasks.append(asyncio.create_task(loop(*args), name=f"router-{name}"))

    async def _idle(self, wakeup: asyncio.Event) -> None:
        """Sleep until the next poll, a wake-up or shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), timeout=self.options.poll_seconds)
        if not self._stopping.is_set():
            wakeup.clear()

    async def _job_loop(self, owner: str) -> None:
        """Keep up to ``batch`` triages in flight; record those that finish together.

        A triage waiting on a hanging backend (up to the diagnostics deadline) holds
        only its own slot: the others are recorded and delivered as they finish, and
        new jobs are claimed into the free slots meanwhile.
        """
        running: dict[asyncio.Task[Finished | _Failed], tuple[Job, float]] = {}
        try:
            while running or not self._stopping.is_set():
                room = self.options.batch - len(running)
                if room > 0 and not self._stopping.is_set():
                    for job in await self._claim(owner, room):
                        running[asyncio.create_task(self._triage(job))] = (job, time.time())
                if not running:
                    await self._idle(self._new_jobs)
                    continue
                done = await self._next_finished(running)
                if done:
                    await self._record(
                        [(task.result(), running.pop(task)[1]) for task in done], owner
                    )
        except asyncio.CancelledError:
            for task in running:
                task.cancel()
            jobs = [job for job, _ in running.values()]
            await asyncio.shield(asyncio.gather(*(self.store.release(j, owner) for j in jobs)))
            raise

    async def _claim(self, owner: str, room: int) -> list[Job]:
        try:
            jobs = await self.store.claim(owner, room, self.options.lease_seconds)
        except Exception as exc:  # the loop must outlive any database trouble
            log.warning(
                "cannot claim jobs: %s", exc, exc_info=not isinstance(exc, StoreUnavailable)
            )
            return []
        now = time.time()
        for job in jobs:
            self.metrics.job_age.observe(max(0.0, now - job.received_at))
        return jobs

    async def _next_finished(
        self, running: Mapping[asyncio.Task[Any], object]
    ) -> set[asyncio.Task[Any]]:
        """Wait for a triage to finish, a wake-up (new work) or the next poll."""
        woken = asyncio.create_task(self._new_jobs.wait())
        done, _ = await asyncio.wait(
            [*running, woken],
            timeout=self.options.poll_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        woken.cancel()
        if self._new_jobs.is_set() and not self._stopping.is_set():
            self._new_jobs.clear()
        return {task for task in done if task in running}

    async def _record(self, outcomes: list[tuple[Finished | _Failed, float]], owner: str) -> None:
        """Record finished triages (and their deliveries) in one transaction; retry failures."""
        finished = [(o, started) for o, started in outcomes if isinstance(o, Finished)]
        try:
            recorded = await self.store.complete_many(owner, [o for o, _ in finished])
        except StoreUnavailable as exc:
            log.warning(
                "cannot record %d triages, their leases will expire: %s", len(finished), exc
            )
            recorded = [False] * len(finished)
        for (item, started), ok in zip(finished, recorded, strict=True):
            self._count(item.job, "done" if ok else "lease_lost", started)
        for outcome, started in outcomes:
            if isinstance(outcome, _Failed):
                state = await self._retry_job(outcome.job, owner, outcome.error)
                self._count(outcome.job, state, started)
        if any(recorded):
            self._new_deliveries.set()

    async def _triage(self, job: Job) -> Finished | _Failed:
        try:
            async with self._turns():
                result = self.pipeline.prepare(TriageResult.of(job))
            result = await self.pipeline.diagnose(result)
            async with self._turns():
                return Finished(job, result.model_dump_json(), self.pipeline.render(result))
        except Exception as exc:
            log.exception("triage of %s failed", job.alert.alertname)
            if job.attempts >= self.options.max_attempts:
                return self._bare(job, exc)
            return _Failed(job, exc)

    def _bare(self, job: Job, exc: Exception) -> Finished | _Failed:
        """The last attempt failed too: deliver the alert as it came, never drop it."""
        reason = f"{type(exc).__name__}: {exc}"[:300]
        failed = Finding(
            title=f"Triage failed {job.attempts} times ({reason}); the alert is shown as received",
            source="router",
            severity="warning",
        )
        result = TriageResult.of(job).model_copy(update={"findings": [failed]})
        try:
            return Finished(job, result.model_dump_json(), self.pipeline.render(result))
        except Exception as render_exc:
            log.exception("cannot render %s even without triage", job.alert.alertname)
            return _Failed(job, render_exc)

    def _count(self, job: Job, outcome: str, started: float) -> None:
        self.metrics.job_duration.observe(time.time() - started)
        self.metrics.jobs_processed.labels(outcome=outcome).inc()
        if outcome == "done":
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
                items = await self.store.outbox.claim(
                    owner, self.options.batch, self.options.lease_seconds
                )
            except Exception as exc:  # the loop must outlive any database trouble
                log.warning(
                    "cannot claim deliveries: %s",
                    exc,
                    exc_info=not isinstance(exc, StoreUnavailable),
                )
                items = []
            if not items:
                await self._idle(self._new_deliveries)
                continue
            settled = await asyncio.gather(*(self._deliver(item, sinks) for item in items))
            try:
                await self.store.outbox.settle(owner, settled)
            except StoreUnavailable as exc:
                log.warning("cannot record %d deliveries: %s", len(settled), exc)

    async def _deliver(self, item: OutboxItem, sinks: dict[str, Sink]) -> Settled:
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
            return self._delivery_failed(item, exc)
        except Exception as exc:
            log.exception("delivery %s crashed", delivery.key)
            return self._delivery_failed(item, DeliveryError(f"{type(exc).__name__}: {exc}"))
        self.metrics.deliveries.labels(sink=delivery.sink, outcome="delivered").inc()
        log.info(
            "delivered %s %s",
            delivery.sink,
            delivery.action,
            extra={"sink": delivery.sink, "action": delivery.action, "key": delivery.key},
        )
        return self.store.outbox.delivered(item, response)

    def _delivery_failed(self, item: OutboxItem, exc: DeliveryError) -> Settled:
        sink, outbox = item.delivery.sink, self.store.outbox
        too_old = time.time() - item.created_at > self.options.delivery_max_age_seconds
        if exc.permanent or too_old:
            reason = exc.reason if exc.permanent else f"gave up after {item.attempts} attempts"
            self.metrics.deliveries.labels(sink=sink, outcome="failed").inc()
            self.metrics.delivery_failures_permanent.labels(sink=sink, reason=reason[:60]).inc()
            log.error("delivery %s failed for good: %s", item.delivery.key, exc.reason)
            return outbox.dead(item, exc.reason)
        delay = max(exc.retry_after or 0.0, backoff(item.attempts))
        self.metrics.deliveries.labels(sink=sink, outcome="retry").inc()
        log.warning(
            "delivery %s will be retried in %.1fs: %s", item.delivery.key, delay, exc.reason
        )
        return outbox.retry(item, time.time() + delay, exc.reason)


@dataclass(frozen=True)
class _Failed:
    job: Job
    error: Exception
