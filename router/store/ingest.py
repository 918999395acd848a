"""Durable, idempotent ingest with group commit.

A webhook is acknowledged only once its payload and every alert state are
committed. Webhooks that arrive while a commit is in flight are written together
in the next transaction, so under load one commit (and one fsync) serves many
requests while each still waits for its own data to be durable. The unique
``state_key`` makes ingest idempotent: a re-sent state inserts nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from router.alerts import WebhookPayload
from router.store.database import Database, StoreUnavailable
from router.store.schema import alert_events, alerts, payloads

Clock = Callable[[], float]
MAX_BATCH = 256


@dataclass(frozen=True)
class IngestResult:
    payload_id: int
    new: int
    duplicates: int


@dataclass
class _Pending:
    payload: WebhookPayload
    body: bytes
    done: asyncio.Future[IngestResult]
    rows: list[dict] = field(default_factory=list)


class Ingest:
    """Writes webhooks to the store, committing concurrent ones together."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, payload: WebhookPayload, body: bytes) -> IngestResult:
        """Persist the payload and each new alert state; returns once they are committed."""
        pending = _Pending(payload, body, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="router-ingest")
        return await asyncio.shield(pending.done)

    async def drain(self) -> None:
        """Wait until everything queued is written (before closing the database)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self._commit(batch)
            except Exception:  # one request's data: write each alone, so only it fails
                for pending in batch:
                    await self._commit([pending])

    async def _commit(self, batch: list[_Pending]) -> None:
        """Write ``batch``; a data error shared by several requests is raised to split it."""
        try:
            results = await self._write(batch)
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, StoreUnavailable):
                raise
            _fail(batch, exc)
            return
        except BaseException as exc:
            _fail(batch, exc)
            raise
        for pending, result in zip(batch, results, strict=True):
            pending.done.set_result(result)

    async def _write(self, batch: list[_Pending]) -> list[IngestResult]:
        now = self.clock()
        return await self.db.run_write(
            lambda conn: self._write_batch(conn, batch, now), urgent=True
        )

    def _write_batch(
        self, conn: Connection, batch: list[_Pending], now: float
    ) -> list[IngestResult]:
        payload_ids = _insert_payloads(conn, batch, now)
        first_claim: dict[str, dict] = {}
        for pending, payload_id in zip(batch, payload_ids, strict=True):
            pending.rows = _event_rows(pending.payload, payload_id, now)
            for row in pending.rows:
                first_claim.setdefault(row["state_key"], row)
        inserted = self._insert_events(conn, list(first_claim.values()))
        if inserted:
            self._remember_latest(conn, first_claim, inserted, now)
        return [
            _result(p, payload_id, inserted, first_claim)
            for p, payload_id in zip(batch, payload_ids, strict=True)
        ]

    def _insert_events(self, conn: Connection, rows: list[dict]) -> dict[str, int]:
        """Insert the alert states not seen before; returns state_key → event id of the new ones."""
        if not rows:
            return {}
        stmt = (
            self.db.insert(alert_events)
            .on_conflict_do_nothing(index_elements=["state_key"])
            .returning(alert_events.c.id, alert_events.c.state_key)
        )
        return {row.state_key: row.id for row in conn.execute(stmt, rows)}

    def _remember_latest(
        self, conn: Connection, rows: dict[str, dict], inserted: dict[str, int], now: float
    ) -> None:
        """Point each alert's latest-state row at its newest event."""
        latest: dict[str, dict] = {}
        for state_key, event_id in sorted(inserted.items(), key=lambda kv: kv[1]):
            row = rows[state_key]
            latest[row["fingerprint"]] = {
                "fingerprint": row["fingerprint"],
                "alertname": row["alertname"],
                "status": row["status"],
                "last_event_id": event_id,
                "updated_at": now,
            }
        stmt = self.db.insert(alerts)
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
        conn.execute(stmt, [latest[fp] for fp in sorted(latest)])


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    """Every request of the batch learns why."""
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(exc)


def _insert_payloads(conn: Connection, batch: list[_Pending], now: float) -> list[int]:
    rows = [
        {
            "received_at": now,
            "receiver": p.payload.receiver,
            "group_key": p.payload.groupKey,
            "body": p.body.decode("utf-8", "replace"),
        }
        for p in batch
    ]
    stmt = payloads.insert().returning(payloads.c.id, sort_by_parameter_order=True)
    return [row.id for row in conn.execute(stmt, rows)]


def _event_rows(payload: WebhookPayload, payload_id: int, now: float) -> list[dict]:
    rows: dict[str, dict] = {}
    for alert in payload.alerts:
        rows.setdefault(
            alert.state_key,
            {
                "state_key": alert.state_key,
                "fingerprint": alert.fingerprint,
                "alertname": alert.alertname,
                "status": alert.status,
                "payload_id": payload_id,
                "alert_json": alert.model_dump_json(),
                "receiver": payload.receiver,
                "group_key": payload.groupKey,
                "external_url": payload.externalURL,
                "received_at": now,
                "available_at": now,
            },
        )
    return list(rows.values())


def _result(
    pending: _Pending, payload_id: int, inserted: dict[str, int], first_claim: dict[str, dict]
) -> IngestResult:
    """New: the states this request was first in the batch to bring, and that were not stored."""
    new = sum(
        1
        for row in pending.rows
        if row["state_key"] in inserted and first_claim[row["state_key"]] is row
    )
    return IngestResult(payload_id, new, len(pending.payload.alerts) - new)
