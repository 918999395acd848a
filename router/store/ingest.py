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
from dataclasses import dataclass

from router.alerts import Alert, WebhookPayload
from router.store.database import Database, StoreUnavailable
from router.store.ingest_sql import (
    Batch,
    EventRow,
    PayloadRow,
    Written,
    write_postgres,
    write_sqlite,
)

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
    done: asyncio.Future[IngestResult]


class Ingest:
    """Writes webhooks to the store, committing concurrent ones together."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, payload: WebhookPayload) -> IngestResult:
        """Persist the payload and each new alert state; returns once they are committed."""
        pending = _Pending(payload, asyncio.get_running_loop().create_future())
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
        rows, first_in = _rows(batch, self.clock())
        write = write_postgres if self.db.is_postgres else write_sqlite
        written = await self.db.run_write(lambda conn: write(conn, rows), urgent=True)
        return [_result(p, position, written, first_in) for position, p in enumerate(batch)]


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    """Every request of the batch learns why."""
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(exc)


def _rows(batch: list[_Pending], now: float) -> tuple[Batch, dict[str, int]]:
    """The batch's rows, and which webhook first brought each state (that one counts it new)."""
    rows = Batch(now)
    first_in: dict[str, int] = {}
    for position, pending in enumerate(batch):
        payload = pending.payload
        envelope = payload.model_dump_json(exclude={"alerts"})
        rows.payloads.append(
            PayloadRow(payload.receiver, payload.groupKey, payload.externalURL, envelope)
        )
        for alert in payload.alerts:
            if alert.state_key not in first_in:
                first_in[alert.state_key] = position
                rows.events.append(_event_row(alert, position))
    return rows, first_in


def _event_row(alert: Alert, position: int) -> EventRow:
    return EventRow(
        alert.state_key, alert.fingerprint, alert.alertname, alert.status, position,
        alert.model_dump_json(),
    )  # fmt: skip


def _result(
    pending: _Pending, position: int, written: Written, first_in: dict[str, int]
) -> IngestResult:
    """New: the states this request was first in the batch to bring, and that were not stored."""
    mine = {a.state_key for a in pending.payload.alerts if first_in[a.state_key] == position}
    new = sum(1 for key in mine if key in written.inserted)
    return IngestResult(written.payload_ids[position], new, len(pending.payload.alerts) - new)
