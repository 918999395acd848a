"""SQLite shared with other processes: a write waits for another's lock, and reads nothing stale."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import Connection, text

from router.store.database import Database
from router.store.turnstile import Turnstile


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


def eager_worker_write(path: Path, name: str) -> None:
    """Another process's write that asks for the lock again and again, never sleeping:
    without the turnstile it would get the lock first."""
    turnstile = Turnstile(Path(f"{path}-turnstile"))
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        with turnstile.entered(urgent=False):
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError:
                    continue
        conn.execute("INSERT INTO t (x) VALUES (?)", (name,))
        conn.execute("COMMIT")
    finally:
        conn.close()
        turnstile.close()


async def test_a_waiting_ingest_goes_before_another_processes_next_write(tmp_path: Path) -> None:
    path = tmp_path / "router.db"
    web = Database(f"sqlite:///{path}")
    try:
        await web.run_write(lambda conn: conn.execute(text("CREATE TABLE t (x TEXT)")))
        worker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        worker.execute("BEGIN IMMEDIATE")  # a worker process's transaction holds the lock
        worker.execute("INSERT INTO t (x) VALUES ('worker-1')")

        def ingest(conn: Connection) -> None:
            conn.execute(text("INSERT INTO t (x) VALUES ('ingest')"))

        acked = asyncio.ensure_future(web.run_write(ingest, urgent=True))
        await asyncio.sleep(0.05)  # the ingest waits for the lock, holding the turnstile
        eager = threading.Thread(target=eager_worker_write, args=(path, "worker-2"))
        eager.start()
        await asyncio.sleep(0.05)
        worker.execute("COMMIT")
        await acked
        await asyncio.to_thread(eager.join)
        rows = worker.execute("SELECT x FROM t ORDER BY rowid").fetchall()
        assert [x for (x,) in rows] == ["worker-1", "ingest", "worker-2"]
        worker.close()
    finally:
        await web.close()


async def test_a_turnstile_held_by_a_stuck_process_delays_writes_only_for_its_patience(
    tmp_path: Path,
) -> None:
    stuck = Turnstile(tmp_path / "t", patience=0.05)
    other = Turnstile(tmp_path / "t", patience=0.05)
    try:
        with stuck.entered(urgent=True):  # and never lets go: these would wait for good
            with other.entered(urgent=False):
                pass
            with other.entered(urgent=True):
                pass
    finally:
        stuck.close()
        other.close()
