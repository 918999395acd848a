"""Claiming rows under a lease: the one mechanism behind the job queue and the outbox.

A row is claimable when it is waiting and due, or when it is held under a lease
that has run out (its holder died). Rows of one *group* (an alert, or an alert and
a sink) are claimed in id order: a row waits while an earlier row of its group is
unfinished. On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets replicas claim side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Table, and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from router.store.database import Database


@dataclass(frozen=True)
class LeaseStates:
    """The state names of a leased table: waiting, and held by a worker."""

    waiting: str
    held: str


async def claim(
    db: Database,
    table: Table,
    *,
    states: LeaseStates,
    due_column: str,
    group_by: Sequence[str],
    owner: str,
    limit: int,
    lease_until: float,
    now: float,
) -> list[tuple[Any, bool]]:
    """Lease up to ``limit`` rows; each comes back with whether its last holder died."""
    earlier = aliased(table)
    blocked = exists().where(
        *(getattr(earlier.c, name) == getattr(table.c, name) for name in group_by),
        earlier.c.id < table.c.id,
        earlier.c.state.in_((states.waiting, states.held)),
    )
    due: Column = table.c[due_column]
    runnable = or_(
        and_(table.c.state == states.waiting, due <= now),
        and_(table.c.state == states.held, table.c.lease_until < now),
    )
    query = (
        select(table.c.id, table.c.state)
        .where(runnable, ~blocked)
        .order_by(table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=table)
    )

    def lease(conn: Connection) -> list[tuple[Any, bool]]:
        previous = {row.id: row.state for row in conn.execute(query)}
        if not previous:
            return []
        rows = conn.execute(
            update(table)
            .where(table.c.id.in_(previous))
            .values(
                state=states.held,
                lease_owner=owner,
                lease_until=lease_until,
                attempts=table.c.attempts + 1,
            )
            .returning(table)
        )
        return [(row, previous[row.id] == states.held) for row in rows]

    claimed = await db.run_write(lease)
    return sorted(claimed, key=lambda pair: pair[0].id)
