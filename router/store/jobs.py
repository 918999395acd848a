"""The alert-job queue.

Every alert state stored by ingest (``router.store.ingest``) is a pending job;
workers claim jobs under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so
a job whose worker died is claimed again once its lease expires. Jobs of one
alert run in arrival order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, select, update

from router.alerts import Alert
from router.delivery import Delivery
from router.store import leases
from router.store.database import Clock, Database
from router.store.outbox import outbox_rows, queue_once
from router.store.schema import JOB_STATES, alert_events


@dataclass(frozen=True)
class Job:
    """One alert state to triage, as claimed by a worker."""

    id: int
    alert: Alert
    receiver: str
    group_key: str
    external_url: str
    received_at: float
    attempts: int


@dataclass(frozen=True)
class Finished:
    """A triaged job, ready to be recorded with the deliveries it produced."""

    job: Job
    result_json: str
    deliveries: Sequence[Delivery]
    started: float = 0.0  # when the triage began (for its duration metric)


_FINISH = (
    update(alert_events)
    .where(alert_events.c.id == bindparam("job_id"), alert_events.c.state == "running")
    .values(
        state="done",
        finished_at=bindparam("at"),
        result_json=bindparam("result"),
        lease_owner=None,
        lease_until=None,
    )
)


class JobQueue:
    """The job queue over one :class:`Database`."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Job]:
        """Lease up to ``limit`` runnable jobs: pending ones, or running ones whose lease expired."""
        now = self.clock()
        claimed = await leases.claim(
            self.db,
            alert_events,
            states=JOB_STATES,
            due_column="available_at",
            group_by=("fingerprint",),
            owner=owner,
            limit=limit,
            lease_until=now + lease_seconds,
            now=now,
            fair_by="group_key",
        )
        return [_job(row) for row, _ in claimed]

    async def renew(self, owner: str, jobs: Sequence[Job], lease_seconds: float) -> None:
        await leases.renew(
            self.db,
            alert_events,
            held=JOB_STATES.held,
            owner=owner,
            ids=[job.id for job in jobs],
            lease_until=self.clock() + lease_seconds,
        )

    async def complete(
        self, job: Job, owner: str, result_json: str, deliveries: Sequence[Delivery]
    ) -> bool:
        """Record one triage and queue its deliveries; False when the lease was lost."""
        (finished,) = await self.complete_many(owner, [Finished(job, result_json, deliveries)])
        return finished

    async def complete_many(self, owner: str, batch: Sequence[Finished]) -> list[bool]:
        """Record triages and queue their deliveries, all in one transaction.

        A job whose lease was lost to another worker is left alone (False): that
        worker records it instead, and the outbox keys keep its deliveries single.
        """
        now = self.clock()
        ids = [item.job.id for item in batch]

        def record(conn: Connection) -> set[int]:
            query = select(alert_events.c.id).where(
                alert_events.c.id.in_(ids),
                alert_events.c.lease_owner == owner,
                alert_events.c.state == "running",
            )
            held = set(conn.execute(query).scalars())
            mine = [item for item in batch if item.job.id in held]
            if mine:
                conn.execute(
                    _FINISH,
                    [{"job_id": i.job.id, "result": i.result_json, "at": now} for i in mine],
                )
            rows = [
                row
                for item in mine
                for row in outbox_rows(
                    item.deliveries,
                    event_id=item.job.id,
                    fingerprint=item.job.alert.fingerprint,
                    lane=item.job.group_key,
                    now=now,
                )
            ]
            if rows:
                conn.execute(queue_once(self.db), rows)
            return held

        held = await self.db.run_write(record)
        return [item.job.id in held for item in batch]

    async def retry_later(
        self, job: Job, owner: str, error: str, delay: float, max_attempts: int
    ) -> str:
        """Put a failed job back with a delay, or mark it failed after ``max_attempts``."""
        state = "failed" if job.attempts >= max_attempts else "pending"
        await self._set(
            job, owner, state=state, available_at=self.clock() + delay, last_error=error
        )
        return state

    async def release(self, owner: str, jobs: Sequence[Job]) -> None:
        """Give unfinished jobs back (graceful shutdown); the attempt does not count."""
        ids = [job.id for job in jobs]
        await leases.release(self.db, alert_events, states=JOB_STATES, owner=owner, ids=ids)

    async def _set(self, job: Job, owner: str, **values: object) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(alert_events)
                .where(alert_events.c.id == job.id, alert_events.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None, **values)
            )

    async def depth(self) -> int:
        """Jobs not finished yet (pending or running)."""
        async with self.db.read() as conn:
            query = select(func.count()).where(alert_events.c.state.in_(("pending", "running")))
            return (await conn.execute(query)).scalar_one()

    async def states(self) -> dict[str, int]:
        """How many jobs are in each state."""
        async with self.db.read() as conn:
            query = select(alert_events.c.state, func.count()).group_by(alert_events.c.state)
            return {state: count for state, count in await conn.execute(query)}


def _job(row) -> Job:
    return Job(
        id=row.id,
        alert=Alert.model_validate_json(row.alert_json),
        receiver=row.receiver,
        group_key=row.group_key,
        external_url=row.external_url,
        received_at=row.received_at,
        attempts=row.attempts,
    )
