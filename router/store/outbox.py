"""The durable outbox: every remote call a sink makes, claimed and retried like a job.

Rows (``outbox_rows``, inserted by ``queue_once``) are written in the transaction that
finishes a triage (``JobQueue.complete``) or records or finishes a re-triage
(``Retriages``), keyed by an idempotency key so the same delivery is never queued twice. A row is
not claimable while an earlier row of the same alert and sink is unfinished, so a
resolve is never delivered before its trigger. Rows are claimed round-robin over their
lane (the Slack channel, else the alert group), so one storm never starves the others.

A delivery whose last attempt has an unknown outcome (its holder died, the call timed
out or was cut off after the request went out) is claimed as ``interrupted``: the
worker looks for it at the sink before sending it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from router.delivery import SETTLES, Delivery
from router.store import leases
from router.store.database import Clock, Database
from router.store.schema import DELIVERY_STATES, outbox


@dataclass(frozen=True)
class OutboxItem:
    """A claimed delivery."""

    id: int
    event_id: int
    fingerprint: str
    delivery: Delivery
    attempts: int
    created_at: float
    interrupted: bool = False  # a previous attempt's process died mid-call: it may have landed


@dataclass(frozen=True)
class Settled:
    """What became of one claimed delivery: the column values to record."""

    item: OutboxItem
    values: dict[str, Any]
    settles: tuple[str, ...] = ()  # key prefixes of pending deliveries done with this one


def outbox_rows(
    deliveries: Iterable[Delivery], *, event_id: int, fingerprint: str, lane: str, now: float
) -> list[dict[str, Any]]:
    """The rows that queue one alert state's deliveries, due ``now``; a delivery's lane is its
    Slack channel, else ``lane`` (the alert group, or the alert for a re-triage)."""
    return [
        {
            "key": delivery.key,
            "event_id": event_id,
            "fingerprint": fingerprint,
            "sink": delivery.sink,
            "action": delivery.action,
            "payload_json": json.dumps(delivery.payload, separators=(",", ":")),
            "next_attempt_at": now,
            "created_at": now,
            "lane": delivery.payload.get("channel") or lane,
        }
        for delivery in deliveries
    ]


def queue_once(db: Database) -> Any:
    """The insert of outbox rows that skips a key queued before: a delivery is queued once."""
    return db.insert(outbox).on_conflict_do_nothing(index_elements=["key"])


class Outbox:
    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[OutboxItem]:
        """Lease due deliveries, in order per alert and sink."""
        now = self.clock()
        claimed = await leases.claim(
            self.db,
            outbox,
            states=DELIVERY_STATES,
            due_column="next_attempt_at",
            group_by=("fingerprint", "sink"),
            owner=owner,
            limit=limit,
            lease_until=now + lease_seconds,
            now=now,
            fair_by="lane",
        )
        return [_item(row, died or bool(row.unsure)) for row, died in claimed]

    async def renew(self, owner: str, items: Sequence[OutboxItem], lease_seconds: float) -> None:
        await leases.renew(
            self.db,
            outbox,
            held=DELIVERY_STATES.held,
            owner=owner,
            ids=[item.id for item in items],
            lease_until=self.clock() + lease_seconds,
        )

    async def release(self, owner: str, items: Sequence[OutboxItem]) -> None:
        """Give back deliveries cut short by shutdown; a call may have gone out: look first."""
        ids = [item.id for item in items]
        await leases.release(
            self.db, outbox, states=DELIVERY_STATES, owner=owner, ids=ids, unsure=1
        )

    async def hasten(self, sink: str) -> int:
        """``sink`` is back: its deliveries waiting out a backoff are due now; returns how many."""
        now = self.clock()
        async with self.db.write() as conn:
            done = await conn.execute(
                update(outbox)
                .where(
                    outbox.c.sink == sink,
                    outbox.c.state == "pending",
                    outbox.c.next_attempt_at > now,
                    outbox.c.last_error.is_not(None),
                )
                .values(next_attempt_at=now)
            )
        return int(done.rowcount or 0)

    async def done(self, item: OutboxItem, owner: str, response: dict[str, Any] | None) -> None:
        await self.settle(owner, [self.delivered(item, response)])

    async def retry_at(self, item: OutboxItem, owner: str, when: float, error: str) -> None:
        await self.settle(owner, [self.retry(item, when, error)])

    async def give_up(self, item: OutboxItem, owner: str, error: str) -> None:
        await self.settle(owner, [self.dead(item, error)])

    def delivered(self, item: OutboxItem, response: dict[str, Any] | None) -> Settled:
        response = dict(response or {})
        settles = tuple(response.pop(SETTLES, ()))
        response_json = json.dumps(response) if response else None
        values = {
            "state": "done",
            "done_at": self.clock(),
            "response_json": response_json,
            "unsure": 0,
        }
        return Settled(item, values, settles)

    def retry(self, item: OutboxItem, when: float, error: str, *, unsure: bool = False) -> Settled:
        """Try again at ``when``; ``unsure``: the failed attempt may have taken effect."""
        values = {"state": "pending", "next_attempt_at": when, "last_error": error}
        return Settled(item, {**values, "unsure": int(unsure)})

    def dead(self, item: OutboxItem, error: str) -> Settled:
        return Settled(item, {"state": "dead", "done_at": self.clock(), "last_error": error})

    async def settle(self, owner: str, outcomes: Sequence[Settled]) -> None:
        """Record what became of claimed deliveries, all in one transaction."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for outcome in outcomes:
            params = {"item_id": outcome.item.id, **outcome.values}
            by_columns.setdefault(tuple(sorted(outcome.values)), []).append(params)

        def record(conn: Connection) -> None:
            for columns, params in by_columns.items():
                stmt = (
                    update(outbox)
                    .where(outbox.c.id == bindparam("item_id"), outbox.c.lease_owner == owner)
                    .values(
                        lease_owner=None,
                        lease_until=None,
                        **{column: bindparam(column) for column in columns},
                    )
                )
                conn.execute(stmt, params)
            for outcome in outcomes:
                if outcome.settles:
                    conn.execute(_settle_with(outcome, self.clock()))

        await self.db.run_write(record)

    async def counts(self) -> dict[str, int]:
        async with self.db.read() as conn:
            query = select(outbox.c.state, func.count()).group_by(outbox.c.state)
            return {state: count for state, count in await conn.execute(query)}

    async def rows(self, fingerprint: str | None = None) -> list[dict[str, Any]]:
        """Every outbox row (optionally of one alert), oldest first, for inspection and tests."""
        query = select(outbox).order_by(outbox.c.id)
        if fingerprint is not None:
            query = query.where(outbox.c.fingerprint == fingerprint)
        async with self.db.read() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]


def _item(row: Any, interrupted: bool) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        event_id=row.event_id,
        fingerprint=row.fingerprint,
        delivery=Delivery(
            sink=row.sink,
            action=row.action,
            key=row.key,
            payload=json.loads(row.payload_json),
            queued_at=row.created_at,
        ),
        attempts=row.attempts,
        created_at=row.created_at,
        interrupted=interrupted,
    )


def _settle_with(outcome: Settled, now: float) -> Any:
    """Mark the pending deliveries ``outcome`` made unnecessary as done (same alert and sink)."""
    item = outcome.item
    skipped = json.dumps({"skipped": f"settled with {item.delivery.key}"})
    prefixed = [func.substr(outbox.c.key, 1, len(p)) == p for p in outcome.settles]
    return (
        update(outbox)
        .where(
            outbox.c.fingerprint == item.fingerprint,
            outbox.c.sink == item.delivery.sink,
            outbox.c.state == "pending",
            or_(*prefixed),
        )
        .values(state="done", done_at=now, response_json=skipped)
    )
