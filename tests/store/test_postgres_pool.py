"""The PostgreSQL connection pool: a fixed size, reads outside transactions, and a ping
only for a connection that sat idle (against a real server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from router.store import database
from router.store.database import Database, StoreUnavailable
from tests.pg import fresh_database

pytestmark = pytest.mark.postgres

BACKEND_PID = text("SELECT pg_backend_pid()")


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with fresh_database() as url:
        yield url


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    db = Database(url)
    yield db
    await db.close()


async def _backend_pid(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(BACKEND_PID)).scalar_one()


async def _cut(url: str, pid: int) -> None:
    admin = await asyncpg.connect(url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_reads_run_outside_a_transaction(db: Database) -> None:
    async with db.read() as conn:
        await conn.execute(BACKEND_PID)
        raw = await conn.get_raw_connection()
        assert not raw.driver_connection.is_in_transaction()
    async with db.write() as conn:
        await conn.execute(BACKEND_PID)
        raw = await conn.get_raw_connection()
        assert raw.driver_connection.is_in_transaction()


async def test_many_callers_share_the_pool_instead_of_opening_connections(
    db: Database, url: str
) -> None:
    size = database._POSTGRES_POOL_SIZE

    async def slow_read() -> int:
        async with db.read() as conn:
            return (
                await conn.execute(text("SELECT pg_backend_pid() FROM pg_sleep(0.05)"))
            ).scalar_one()

    pids = await asyncio.gather(*(slow_read() for _ in range(3 * size)))
    assert len(set(pids)) == size
    assert set(await asyncio.gather(*(_backend_pid(db) for _ in range(size)))) <= set(pids)


@pytest.mark.parametrize(
    ("ping_after", "in_use"),
    [(0.0, False), (3600.0, True)],
    ids=["idle: pinged and replaced", "in use: not pinged, fails once"],
)
async def test_a_connection_cut_by_the_server(
    db: Database, url: str, monkeypatch, ping_after: float, in_use: bool
) -> None:
    monkeypatch.setattr(database, "_PING_AFTER_IDLE_SECONDS", ping_after)
    first = await _backend_pid(db)
    await _cut(url, first)
    if in_use:
        with pytest.raises(StoreUnavailable):
            await _backend_pid(db)
    assert await _backend_pid(db) != first  # the pool threw the dead connection away
