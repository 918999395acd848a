"""Background workers: triage jobs from the store, then deliver from the outbox.

Both are :class:`router.leased.LeasedLoop`s: work is claimed under a lease that is
renewed while it runs, so several processes (replicas) can share one PostgreSQL
database, and work held by a process that died moves to another within a short
lease. Each job and delivery is recorded as it finishes. ``stop()`` stops claiming,
lets in-flight work finish within a grace period and gives back what did not
finish: nothing is lost.

A delivery whose outcome is unknown (the process died mid-call, the call timed
out or was cut off, a 5xx) is looked for at the sink before it is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from router.config import WorkerSettings
from router.delivery import DeliveryError
from router.leased import LeasedLoop, LoopOptions
from router.metrics import Metrics
from router.pipeline import Pipeline, Sink
from router.store import Job, OutboxItem, Store, StoreUnavailable
from router.store.jobs import Finished
from router.store.outbox import Outbox, Settled
from router.triage import Finding, TriageResult

log = logging.getLogger("router.worker")


Backoff = Callable[[int], float]
DELIVERY_BACKOFF_CAP = 60.0  # a sink that is back is found within a minute at most


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
class Workers:
    """The job workers and the outbox dispatcher of one process, as ``worker:`` configures them."""

    store: Store
    pipeline: Pipeline
    metrics: Metrics
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    clock: Callable[[], float] = time.time
    backoff: Backoff = backoff
    batch: int = 16  # jobs (or deliveries) one loop keeps in flight
    delivery_max_age_seconds: float = 3600.0  # a failing delivery older than this is given up
    _tasks: list[asyncio.Task] = field(default_factory=list, init=False)
    _loops: list[LeasedLoop] = field(default_factory=list, init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    @property
    def running(self) -> bool:
        return (
            bool(self._tasks)
            and not self._stopping.is_set()
            and all(not t.done() for t in self._tasks)
        )

    def start(self) -> None:
        jobs = Triages(self)
        deliveries = Deliveries(self, {sink.name: sink for sink in self.pipeline.sinks})
        for index in range(self.settings.count):
            self._spawn(jobs, f"job-{index}")
        self._spawn(deliveries, "outbox")

    def wake(self) -> None:
        """New work was stored: claim it now instead of at the next poll."""
        for loop in self._loops:
            loop.wake()

    async def stop(self) -> None:
        """Stop claiming; wait for in-flight work, then cancel (it is released, not lost)."""
        self._stopping.set()
        self.wake()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._loops.clear()

    def loop_options(self) -> LoopOptions:
        """How each of the loops claims: ``batch`` at a time, under the settings' lease."""
        return LoopOptions(self.batch, self.settings.lease_seconds, self.settings.poll_seconds)

    def _spawn(self, work: Triages | Deliveries, name: str) -> None:
        options = self.loop_options()
        loop: LeasedLoop = LeasedLoop(work, f"{self.owner}/{name}", options, self._stopping)
        self._loops.append(loop)
        self._tasks.append(asyncio.create_task(loop(), name=f"router-{name}"))

    def deliveries_queued(self) -> None:
        for loop in self._loops:
            if isinstance(loop.work, Deliveries):
                loop.wake()


@dataclass
class Triages:
    """Triage jobs as leased work: classify, diagnose, render; record with the deliveries."""

    workers: Workers
    name: str = "triage jobs"
    _turns: Turns = field(default_factory=Turns)

    @property
    def store(self) -> Store:
        return self.workers.store

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Job]:
        jobs = await self.store.claim(owner, limit, lease_seconds)
        now = self.workers.clock()
        for job in jobs:
            self.workers.metrics.job_age.observe(max(0.0, now - job.received_at))
        return jobs

    async def renew(self, owner: str, items: Sequence[Job], lease_seconds: float) -> None:
        await self.store.renew(owner, items, lease_seconds)

    async def release(self, owner: str, items: Sequence[Job]) -> None:
        await self.store.release(owner, items)

    async def run(self, job: Job) -> Finished | _Failed:
        started = self.workers.clock()
        pipeline = self.workers.pipeline
        try:
            async with self._turns():
                result = pipeline.prepare(TriageResult.of(job))
            result = await pipeline.diagnose(result)
            async with self._turns():
                return Finished(job, result.model_dump_json(), pipeline.render(result), started)
        except Exception as exc:
            log.exception("triage of %s failed", job.alert.alertname)
            if job.attempts >= self.workers.settings.max_attempts:
                return self._bare(job, exc, started)
            return _Failed(job, exc, started)

    async def record(self, owner: str, finished: Sequence[tuple[Job, Finished | _Failed]]) -> None:
        """Record finished triages (and their deliveries) in one transaction; retry failures."""
        done = [o for _, o in finished if isinstance(o, Finished)]
        try:
            recorded = await self.store.complete_many(owner, done)
        except StoreUnavailable as exc:
            log.warning("cannot record %d triages, their leases will expire: %s", len(done), exc)
            recorded = [False] * len(done)
        for item, ok in zip(done, recorded, strict=True):
            self._count(item.job, "done" if ok else "lease_lost", item.started)
        for _, outcome in finished:
            if isinstance(outcome, _Failed):
                state = await self._retry(outcome.job, owner, outcome.error)
                self._count(outcome.job, state, outcome.started)
        if any(recorded):
            self.workers.deliveries_queued()

    def _bare(self, job: Job, exc: Exception, started: float) -> Finished | _Failed:
        """The last attempt failed too: deliver the alert as it came, never drop it."""
        reason = f"{type(exc).__name__}: {exc}"[:300]
        failed = Finding(
            title=f"Triage failed {job.attempts} times ({reason}); the alert is shown as received",
            source="router",
            severity="warning",
        )
        result = TriageResult.of(job).model_copy(update={"findings": [failed]})
        try:
            rendered = self.workers.pipeline.render(result)
        except Exception as render_exc:
            log.exception("cannot render %s even without triage", job.alert.alertname)
            return _Failed(job, render_exc, started)
        return Finished(job, result.model_dump_json(), rendered, started)

    def _count(self, job: Job, outcome: str, started: float) -> None:
        metrics = self.workers.metrics
        metrics.job_duration.observe(self.workers.clock() - started)
        metrics.jobs_processed.labels(outcome=outcome).inc()
        if outcome == "done":
            log.info(
                "triaged %s",
                job.alert.alertname,
                extra={"fingerprint": job.alert.fingerprint, "status": job.alert.status},
            )

    async def _retry(self, job: Job, owner: str, exc: Exception) -> str:
        try:
            return await self.store.retry_later(
                job,
                owner,
                f"{type(exc).__name__}: {exc}",
                self.workers.backoff(job.attempts),
                self.workers.settings.max_attempts,
            )
        except StoreUnavailable:
            return "lease_expires"  # the lease runs out and another claim retries it


@dataclass
class Deliveries:
    """Outbox deliveries as leased work: look first when unsure, send, record each.

    A success on a sink that was failing brings that sink's backed-off deliveries
    forward, so recovery after an outage does not wait out long backoffs.
    """

    workers: Workers
    sinks: dict[str, Sink]
    name: str = "deliveries"
    _failing: set[str] = field(default_factory=set)

    @property
    def outbox(self) -> Outbox:
        return self.workers.store.outbox

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[OutboxItem]:
        return await self.outbox.claim(owner, limit, lease_seconds)

    async def renew(self, owner: str, items: Sequence[OutboxItem], lease_seconds: float) -> None:
        await self.outbox.renew(owner, items, lease_seconds)

    async def release(self, owner: str, items: Sequence[OutboxItem]) -> None:
        await self.outbox.release(owner, items)

    async def record(self, owner: str, finished: Sequence[tuple[OutboxItem, Settled]]) -> None:
        await self.outbox.settle(owner, [settled for _, settled in finished])
        for item, settled in finished:
            sink = item.delivery.sink
            if settled.values["state"] != "done" or sink not in self._failing:
                continue
            self._failing.discard(sink)
            hastened = await self.outbox.hasten(sink)
            if hastened:
                log.info("%s is back: %d deliveries waiting to retry are due now", sink, hastened)
                self.workers.deliveries_queued()

    async def run(self, item: OutboxItem) -> Settled:
        delivery = item.delivery
        sink = self.sinks.get(delivery.sink)
        try:
            if sink is None:
                raise DeliveryError(f"sink {delivery.sink!r} is not configured", permanent=True)
            if item.interrupted and await self._found(sink, item):
                response = {"recovered": True}
            else:
                response = await sink.send(delivery)
        except DeliveryError as exc:
            return self._failed(item, exc)
        except Exception as exc:
            log.exception("delivery %s crashed", delivery.key)
            return self._failed(item, DeliveryError(f"{type(exc).__name__}: {exc}", unsure=True))
        self.workers.metrics.deliveries.labels(sink=delivery.sink, outcome="delivered").inc()
        log.info(
            "delivered %s %s",
            delivery.sink,
            delivery.action,
            extra={"sink": delivery.sink, "action": delivery.action, "key": delivery.key},
        )
        return self.outbox.delivered(item, response)

    async def _found(self, sink: Sink, item: OutboxItem) -> bool:
        """Whether an attempt of unknown outcome took effect.

        A look-up that cannot work (say, no permission to read history) is not final
        for the delivery: it is sent, as a possible duplicate beats a lost alert. A
        transient look-up failure is retried, still unsure.
        """
        try:
            found = await sink.already_delivered(item.delivery)
        except DeliveryError as exc:
            if not exc.permanent:
                reason = f"look-up: {exc.reason}"
                raise DeliveryError(
                    reason, unsure=True, retry_after=exc.retry_after, kind=exc.kind
                ) from None
            log.warning(
                "cannot look up delivery %s (%s): sending it again", item.delivery.key, exc.reason
            )
            return False
        log.info(
            "look-up of %s: %s",
            item.delivery.key,
            "it was delivered" if found else "not delivered, sending",
            extra={"key": item.delivery.key, "sink": item.delivery.sink},
        )
        return found

    def _failed(self, item: OutboxItem, exc: DeliveryError) -> Settled:
        sink, metrics = item.delivery.sink, self.workers.metrics
        too_old = self.workers.clock() - item.created_at > self.workers.delivery_max_age_seconds
        if exc.permanent or too_old:
            given_up = "" if exc.permanent else f" (gave up after {item.attempts} attempts)"
            metrics.deliveries.labels(sink=sink, outcome="failed").inc()
            metrics.delivery_failures_permanent.labels(sink=sink, reason=exc.kind).inc()
            log.error("delivery %s failed for good: %s%s", item.delivery.key, exc.reason, given_up)
            return self.outbox.dead(item, exc.reason)
        if exc.retry_after is None:  # a sink that is down, not one asking to wait
            self._failing.add(sink)
            delay = min(DELIVERY_BACKOFF_CAP, self.workers.backoff(item.attempts))
        else:
            delay = exc.retry_after
        metrics.deliveries.labels(sink=sink, outcome="retry").inc()
        log.warning(
            "delivery %s will be retried in %.1fs: %s", item.delivery.key, delay, exc.reason
        )
        when = self.workers.clock() + delay
        return self.outbox.retry(item, when, exc.reason, unsure=exc.unsure)


@dataclass(frozen=True)
class _Failed:
    job: Job
    error: Exception
    started: float
