"""What the outbox still holds, per sink: the backlog ``/metrics`` reports."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from router.store.database import Clock, Database
from router.store.schema import outbox


@dataclass(frozen=True)
class SinkBacklog:
    """One sink's deliveries waiting (and how long the oldest has), and those given up."""

    sink: str
    pending: int = 0
    oldest_pending_seconds: float = 0.0
    dead: int = 0


async def outbox_backlog(db: Database, clock: Clock) -> list[SinkBacklog]:
    """Per sink with pending or dead rows (two indexed queries on the outbox's state)."""
    now = clock()
    pending = (
        select(outbox.c.sink, func.count(), func.min(outbox.c.created_at))
        .where(outbox.c.state == "pending")
        .group_by(outbox.c.sink)
    )
    dead = (
        select(outbox.c.sink, func.count()).where(outbox.c.state == "dead").group_by(outbox.c.sink)
    )
    async with db.read() as conn:
        waiting = {sink: (count, oldest) for sink, count, oldest in await conn.execute(pending)}
        given_up = {sink: count for sink, count in await conn.execute(dead)}
    return [
        SinkBacklog(
            sink,
            pending=waiting.get(sink, (0, now))[0],
            oldest_pending_seconds=max(0.0, now - waiting.get(sink, (0, now))[1]),
            dead=given_up.get(sink, 0),
        )
        for sink in sorted({*waiting, *given_up})
    ]
