"""Re-triage requests: recorded once per idempotency key, finished with their deliveries.

A request (a Slack command or button press, a PagerDuty webhook event) is recorded
before it is acknowledged; a replay of the same key records nothing. Workers claim
pending requests under a lease, like jobs and deliveries, so a request whose process
died is picked up by another (or the restarted) one. Finishing it
stores the fresh result and queues its deliveries in the outbox in one transaction,
under keys derived from the request, so nothing is posted twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from router.delivery import Delivery
from router.store import leases
from router.store.database import Clock, Database
from router.store.outbox import outbox_rows, queue_once
from router.store.schema import RETRIAGE_STATES, outbox, retriages


@dataclass(frozen=True)
class Recorded:
    """A stored request, as the runner needs it."""

    id: int
    key: str
    fingerprint: str
    event_id: int
    request: dict[str, Any]
    created_at: float


class Retriages:
    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def record(
        self,
        key: str,
        *,
        source: str,
        fingerprint: str,
        event_id: int,
        request: dict[str, Any],
        deliveries: Sequence[Delivery] = (),
    ) -> Recorded | None:
        """Store the request (and queue ``deliveries``, e.g. an acknowledgement) once.

        Returns None when a request with this key was recorded before.
        """
        now = self.clock()
        row = {
            "key": key,
            "source": source,
            "fingerprint": fingerprint,
            "event_id": event_id,
            "request_json": json.dumps(request),
            "created_at": now,
        }
        stmt = (
            self.db.insert(retriages)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(retriages.c.id)
        )
        async with self.db.write(urgent=True) as conn:
            new_id = (await conn.execute(stmt)).scalar()
            if new_id is None:
                return None
            await _queue(self.db, conn, deliveries, event_id, fingerprint, now)
        return Recorded(new_id, key, fingerprint, event_id, request, now)

    async def finish(
        self,
        recorded: Recorded,
        *,
        result_json: str | None,
        deliveries: Sequence[Delivery],
        outcome: str,
        state: str = "done",
    ) -> None:
        """Record the outcome and queue the deliveries, in one transaction."""
        now = self.clock()
        async with self.db.write() as conn:
            await conn.execute(
                update(retriages)
                .where(retriages.c.id == recorded.id)
                .values(
                    state=state,
                    finished_at=now,
                    result_json=result_json,
                    outcome=outcome,
                    lease_owner=None,
                    lease_until=None,
                )
            )
            await _queue(self.db, conn, deliveries, recorded.event_id, recorded.fingerprint, now)

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Recorded]:
        """Lease pending requests, and running ones whose holder died."""
        now = self.clock()
        claimed = await leases.claim(
            self.db,
            retriages,
            states=RETRIAGE_STATES,
            due_column="created_at",
            group_by=(),
            owner=owner,
            limit=limit,
            lease_until=now + lease_seconds,
            now=now,
        )
        return [
            Recorded(
                r.id, r.key, r.fingerprint, r.event_id, json.loads(r.request_json), r.created_at
            )
            for r, _ in claimed
        ]

    async def renew(self, owner: str, held: Sequence[Recorded], lease_seconds: float) -> None:
        await leases.renew(
            self.db,
            retriages,
            held=RETRIAGE_STATES.held,
            owner=owner,
            ids=[r.id for r in held],
            lease_until=self.clock() + lease_seconds,
        )

    async def release(self, owner: str, held: Sequence[Recorded]) -> None:
        ids = [r.id for r in held]
        await leases.release(self.db, retriages, states=RETRIAGE_STATES, owner=owner, ids=ids)

    async def note_queued_since(self, event_id: int, since: float) -> bool:
        """Whether a PagerDuty note of this alert state was queued at or after ``since``."""
        query = select(outbox.c.id).where(
            outbox.c.event_id == event_id,
            outbox.c.sink == "pagerduty",
            outbox.c.action == "note",
            outbox.c.created_at >= since,
            outbox.c.state != "dead",
        )
        async with self.db.read() as conn:
            return (await conn.execute(query.limit(1))).first() is not None

    async def rows(self) -> list[dict[str, Any]]:
        """Every request, oldest first (for inspection and tests)."""
        async with self.db.read() as conn:
            result = await conn.execute(select(retriages).order_by(retriages.c.id))
            return [dict(row._mapping) for row in result]


async def _queue(
    db: Database,
    conn: Any,
    deliveries: Sequence[Delivery],
    event_id: int,
    fingerprint: str,
    now: float,
) -> None:
    rows = outbox_rows(
        deliveries, event_id=event_id, fingerprint=fingerprint, lane=fingerprint, now=now
    )
    if rows:
        await conn.execute(queue_once(db), rows)
