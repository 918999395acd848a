"""Retention: delete alert states older than the configured age, in small batches.

A state is only deleted when it is finished (triaged, or given up on), is not the
latest state of its alert, has no delivery still pending and no re-triage still
waiting; its deliveries, re-triages and (once unreferenced) its payload go with it.
Each batch walks ``alert_events`` by the time it was received (an index), oldest first,
and stops after ``batch`` candidates; every other look-up is by an index too, so its
cost does not grow with the store.
"""

from __future__ import annotations

from sqlalchemy import delete, exists, select

from router.store.database import Database
from router.store.schema import alert_events, alerts, outbox, payloads, retriages


async def prune(db: Database, before: float, batch: int = 500) -> int:
    """Delete up to ``batch`` finished alert states received before ``before``; the count."""
    events = alert_events.c
    candidates = (
        select(events.id, events.payload_id)
        .where(
            events.received_at < before,
            events.state.not_in(
                ("pending", "running")
            ),  # finished; lets the planner use received_at
            ~exists().where(alerts.c.last_event_id == events.id),
            ~exists().where(outbox.c.event_id == events.id, outbox.c.state != "done"),
            ~exists().where(retriages.c.event_id == events.id, retriages.c.state == "pending"),
        )
        .order_by(events.received_at)
        .limit(batch)
    )
    async with db.write() as conn:
        rows = (await conn.execute(candidates)).all()
        ids = [r.id for r in rows]
        if not ids:
            return 0
        await conn.execute(delete(outbox).where(outbox.c.event_id.in_(ids)))
        await conn.execute(delete(retriages).where(retriages.c.event_id.in_(ids)))
        await conn.execute(delete(alert_events).where(events.id.in_(ids)))
        orphans = {r.payload_id for r in rows}
        await conn.execute(
            delete(payloads).where(
                payloads.c.id.in_(orphans), ~exists().where(events.payload_id == payloads.c.id)
            )
        )
    return len(ids)
