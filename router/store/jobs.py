"""Durable ingest and the alert-job queue.

A webhook is persisted in one transaction: the raw payload and one row per
alert state. The unique ``state_key`` makes ingest idempotent: a re-sent state
inserts nothing. Each new row is a pending job; workers claim jobs under a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so a job whose worker died is
claimed again once its lease expires. Jobs of one alert run in arrival order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from router.alerts import Alert, WebhookPayload
from router.pipeline import Delivery
from router.store import leases
from router.store.database import Database
from router.store.schema import alert_events, alerts, outbox, payloads

Clock = Callable[[], float]


@dataclass(frozen=True)
class IngestResult:
    payload_id: int
    new: int
    duplicates: int


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


class JobQueue:
    """Ingest and the job queue over one :class:`Database`."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def ingest(self, payload: WebhookPayload, body: bytes) -> IngestResult:
        """Persist the payload and each new alert state; all or nothing."""
        now = self.clock()
        rows = _event_rows(payload, now)
        async with self.db.write() as conn:
            payload_id = (
                await conn.execute(
                    payloads.insert()
                    .values(
                        received_at=now,
                        receiver=payload.receiver,
                        group_key=payload.groupKey,
                        body=body.decode("utf-8", "replace"),
                    )
                    .returning(payloads.c.id)
                )
            ).scalar_one()
            inserted: list[tuple[int, str]] = []
            if rows:
                stmt = (
                    self.db.insert(alert_events)
                    .values([{**row, "payload_id": payload_id} for row in rows])
                    .on_conflict_do_nothing(index_elements=["state_key"])
                    .returning(alert_events.c.id, alert_events.c.state_key)
                )
                inserted = [(r.id, r.state_key) for r in await conn.execute(stmt)]
            if inserted:
                await self._remember_latest(conn, rows, dict(inserted), now)
        return IngestResult(payload_id, len(inserted), len(payload.alerts) - len(inserted))

    async def _remember_latest(
        self, conn: AsyncConnection, rows: list[dict], inserted: dict[int, str], now: float
    ) -> None:
        """Point each alert's latest-state row at its newest event."""
        latest: dict[str, dict] = {}
        by_key = {row["state_key"]: row for row in rows}
        for event_id, state_key in sorted(inserted.items()):
            row = by_key[state_key]
            latest[row["fingerprint"]] = {
                "fingerprint": row["fingerprint"],
                "alertname": row["alertname"],
                "status": row["status"],
                "last_event_id": event_id,
                "updated_at": now,
            }
        values = [latest[fp] for fp in sorted(latest)]
        stmt = self.db.insert(alerts).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["fingerprint"],
            set_={
                "alertname": stmt.excluded.alertname,
                "status": stmt.excluded.status,
                "last_event_id": stmt.excluded.last_event_id,
                "updated_at": stmt.excluded.updated_at,
            },
            where=alerts.c.last_event_id < stmt.excluded.last_event_id,
        )
        await conn.execute(stmt)

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Job]:
        """Lease up to ``limit`` runnable jobs: pending ones, or running ones whose lease expired."""
        now = self.clock()
        claimed = await leases.claim(
            self.db,
            alert_events,
            states=_JOB_STATES,
            due_column="available_at",
            group_by=("fingerprint",),
            owner=owner,
            limit=limit,
            lease_until=now + lease_seconds,
            now=now,
        )
        return [_job(row) for row, _ in claimed]

    async def complete(
        self, job: Job, owner: str, result_json: str, deliveries: Sequence[Delivery]
    ) -> bool:
        """Record the triage and queue its deliveries in one transaction.

        Returns False (and writes nothing) when the lease was lost to another worker.
        """
        now = self.clock()
        async with self.db.write() as conn:
            done = await conn.execute(
                update(alert_events)
                .where(
                    alert_events.c.id == job.id,
                    alert_events.c.lease_owner == owner,
                    alert_events.c.state == "running",
                )
                .values(state="done", finished_at=now, result_json=result_json, lease_owner=None)
            )
            if done.rowcount != 1:
                await conn.rollback()
                return False
            if deliveries:
                await conn.execute(
                    self.db.insert(outbox)
                    .values([_outbox_row(d, job, now) for d in deliveries])
                    .on_conflict_do_nothing(index_elements=["key"])
                )
        return True

    async def retry_later(
        self, job: Job, owner: str, error: str, delay: float, max_attempts: int
    ) -> str:
        """Put a failed job back with a delay, or mark it failed after ``max_attempts``."""
        state = "failed" if job.attempts >= max_attempts else "pending"
        await self._set(
            job, owner, state=state, available_at=self.clock() + delay, last_error=error
        )
        return state

    async def release(self, job: Job, owner: str) -> None:
        """Give an unfinished job back (graceful shutdown); the attempt does not count."""
        await self._set(job, owner, state="pending", attempts=alert_events.c.attempts - 1)

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


_JOB_STATES = leases.LeaseStates(waiting="pending", held="running")


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


def _event_rows(payload: WebhookPayload, now: float) -> list[dict]:
    rows: dict[str, dict] = {}
    for alert in payload.alerts:
        rows.setdefault(
            alert.state_key,
            {
                "state_key": alert.state_key,
                "fingerprint": alert.fingerprint,
                "alertname": alert.alertname,
                "status": alert.status,
                "alert_json": alert.model_dump_json(),
                "receiver": payload.receiver,
                "group_key": payload.groupKey,
                "external_url": payload.externalURL,
                "received_at": now,
                "available_at": now,
            },
        )
    return list(rows.values())


def _outbox_row(delivery: Delivery, job: Job, now: float) -> dict:
    return {
        "key": delivery.key,
        "event_id": job.id,
        "fingerprint": job.alert.fingerprint,
        "sink": delivery.sink,
        "action": delivery.action,
        "payload_json": json.dumps(delivery.payload, separators=(",", ":")),
        "next_attempt_at": now,
        "created_at": now,
    }
