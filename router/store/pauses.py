"""Rate-limit pauses: a sink's 429 holds its whole scope, for every replica.

A scope is what the remote API limits together: a Slack method (and channel, for
``chat.postMessage``), PagerDuty's Events API or its REST API. :meth:`Pauses.hold`
records until when; :meth:`Pauses.remaining` is asked before each call. Pauses are
kept in memory too, so this process sees its own at once; the database (where other
replicas' pauses are) is read at most every ``REFRESH_SECONDS`` per scope.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from router.store.database import Clock, Database
from router.store.schema import pauses

REFRESH_SECONDS = 0.2


class Pauses:
    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock
        self._known: dict[str, float] = {}  # scope → paused until
        self._read: dict[str, float] = {}  # scope → when the database was last read

    async def hold(self, scope: str, seconds: float) -> None:
        """Pause ``scope`` for ``seconds`` from now (a longer pause already recorded stays)."""
        until = self.clock() + seconds
        self._known[scope] = max(until, self._known.get(scope, 0.0))
        stmt = self.db.insert(pauses).values(scope=scope, until=until)
        stmt = stmt.on_conflict_do_update(
            index_elements=["scope"],
            set_={"until": stmt.excluded.until},
            where=pauses.c.until < stmt.excluded.until,
        )
        async with self.db.write(urgent=True) as conn:
            await conn.execute(stmt)

    async def remaining(self, scope: str) -> float:
        """Seconds ``scope`` is still paused for (0: go ahead), as any replica recorded it."""
        now = self.clock()
        if self._known.get(scope, 0.0) > now:
            return self._known[scope] - now
        if now - self._read.get(scope, float("-inf")) < REFRESH_SECONDS:
            return 0.0
        self._read[scope] = now
        query = select(pauses.c.until).where(pauses.c.scope == scope)
        async with self.db.read() as conn:
            until = (await conn.execute(query)).scalar() or 0.0
        if until > now:
            self._known[scope] = until
        return max(0.0, until - now)
