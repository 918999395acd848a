"""The state store: one schema over SQLite (embedded default) or PostgreSQL (shared).

``open_store(url)`` connects and migrates; the :class:`Store` it returns offers
durable ingest and the job queue (``router.store.jobs``), the delivery
outbox (``store.outbox``), where each alert's messages live (``store.messages``),
look-ups of stored alerts (``store.lookup``), re-triage requests (``store.retriages``)
and rate-limit pauses shared by replicas (``store.pauses``); ``router.store.history``
reads an alert's own history, ``router.store.retention`` prunes.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from router.store.backlog import SinkBacklog, outbox_backlog
from router.store.database import Clock, Database, StoreUnavailable, normalise_url
from router.store.ingest import Ingest, IngestResult
from router.store.jobs import Job, JobQueue
from router.store.lookup import AlertSummary, Lookup, StoredState
from router.store.messages import Messages
from router.store.outbox import Outbox, OutboxItem
from router.store.pauses import Pauses
from router.store.retention import prune
from router.store.retriages import Recorded, Retriages
from router.store.schema import current_version, migrate

__all__ = [
    "AlertSummary",
    "IngestResult",
    "Job",
    "Messages",
    "OutboxItem",
    "Recorded",
    "SinkBacklog",
    "Store",
    "StoreUnavailable",
    "StoredState",
    "normalise_url",
    "open_store",
]


class Store(JobQueue):
    """Ingest, jobs and outbox over one database connection pool."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        super().__init__(db, clock)
        self.ingest = Ingest(db, clock)
        self.outbox = Outbox(db, clock)
        self.messages = Messages(db, clock)
        self.lookup = Lookup(db, clock)
        self.retriages = Retriages(db, clock)
        self.pauses = Pauses(db, clock)

    @property
    def backend(self) -> str:
        return self.db.backend

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers."""
        async with self.db.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def schema_version(self) -> int:
        return await current_version(self.db)

    async def prune(self, max_age_days: float) -> int:
        """Delete finished alert states older than ``max_age_days`` (one bounded batch)."""
        return await prune(self.db, self.clock() - max_age_days * 86400)

    async def queue_depth(self) -> int:
        return await self.depth()

    async def outbox_backlog(self) -> list[SinkBacklog]:
        return await outbox_backlog(self.db, self.clock)

    async def close(self) -> None:
        await self.ingest.drain()
        await self.db.close()


async def open_store(url: str, *, clock: Clock = time.time, connect_timeout: float = 5.0) -> Store:
    """Connect to the database at ``url`` and migrate its schema to the latest version."""
    db = Database(url, connect_timeout=connect_timeout)
    try:
        await migrate(db)
    except BaseException:
        await db.close()
        raise
    return Store(db, clock)
