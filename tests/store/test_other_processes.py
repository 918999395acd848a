"""SQLite shared with other processes: a write waits for another's lock, and reads nothing stale."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import Connection, text

from router.store.database import Database


def insert_after_reading(conn: Connection) -> int:
    """Read the row count, then write it back plus one: a lost update if another writer
    slipped in between the read and the write."""
    seen = conn.execute(text("SELECT count(*) FROM t")).scalar_one()
    conn.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": seen + 1})
    return seen


async def test_a_write_waits_for_another_connections_lock_then_reads_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "router.db"
    db = Database(f"sqlite:///{path}")
    try:
        await db.run_write(lambda conn: conn.execute(text("CREATE TABLE t (x INTEGER)")))
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        other.execute("INSERT INTO t (x) VALUES (1)")
        released = threading.Event()

        def release_later() -> None:
            released.wait(5)
            other.execute("COMMIT")

        holder = threading.Thread(target=release_later)
        holder.start()
        writing = asyncio.ensure_future(db.run_write(insert_after_reading))
        await asyncio.sleep(0.1)
        assert not writing.done()  # it waits for the lock rather than failing
        released.set()
        assert await writing == 1  # it read the other's committed row, inside its own lock
        holder.join()
        rows = other.execute("SELECT x FROM t ORDER BY x").fetchall()
        assert rows == [(1,), (2,)]
        other.close()
    finally:
        await db.close()
