"""Where each alert's message lives in a sink, so later state changes can edit it.

A ``thread_key`` is the alert's fingerprint (or its Alertmanager group key when a
sink posts one message per group); ``ref`` is whatever the sink needs to find its
message again, e.g. ``{"channel": "C024BE91L", "ts": "1700000000.000100"}``. A ref's
``permalink``, when it has one, is where a person sees the message: other sinks link to
it (:meth:`Messages.permalink`) without knowing whose it is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from router.store.database import Clock, Database
from router.store.schema import messages


class Messages:
    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def get(self, thread_key: str, sink: str) -> dict[str, Any] | None:
        query = select(messages.c.ref_json).where(
            messages.c.thread_key == thread_key, messages.c.sink == sink
        )
        async with self.db.read() as conn:
            found = (await conn.execute(query)).scalar()
        return json.loads(found) if found else None

    async def permalink(self, thread_keys: Iterable[str | None]) -> str | None:
        """The first saved ``permalink`` of these threads' messages, in any sink."""
        for thread_key in filter(None, thread_keys):
            query = select(messages.c.ref_json).where(messages.c.thread_key == thread_key)
            async with self.db.read() as conn:
                found = (await conn.execute(query)).scalars().all()
            for ref in map(json.loads, found):
                if isinstance(ref, dict) and ref.get("permalink"):
                    return str(ref["permalink"])
        return None

    async def save(self, thread_key: str, sink: str, ref: dict[str, Any]) -> None:
        """Record (or replace) the message reference for this thread and sink."""
        now = self.clock()
        stmt = self.db.insert(messages).values(
            thread_key=thread_key,
            sink=sink,
            ref_json=json.dumps(ref),
            created_at=now,
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["thread_key", "sink"],
            set_={"ref_json": stmt.excluded.ref_json, "updated_at": stmt.excluded.updated_at},
        )
        async with self.db.write() as conn:
            await conn.execute(stmt)
