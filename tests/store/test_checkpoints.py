"""SQLite checkpoints: never inside a commit, always soon after one."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from sqlalchemy import text

from router.store.database import Checkpoints, Database
from tests.harness.waiting import eventually


def rows_in_main_file(db_path: Path, scratch: Path) -> int:
    """Rows visible in the database file alone, without its WAL (what a checkpoint wrote)."""
    shutil.copyfile(db_path, scratch)
    with sqlite3.connect(scratch) as conn:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]


def table_in_main_file(db_path: Path, scratch: Path) -> bool:
    """Whether the table ``t`` is in the database file alone (a checkpoint copied it)."""
    shutil.copyfile(db_path, scratch)
    with sqlite3.connect(scratch) as conn:
        found = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'")
        return found.fetchone()[0] == 1


async def test_commits_leave_the_wal_and_a_background_checkpoint_copies_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "router.db"
    db = Database(f"sqlite:///{path}")
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        scratch = tmp_path / "copy.db"
        await eventually(lambda: table_in_main_file(path, scratch), what="the first checkpoint")
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1), (2), (3)"))
        async with db.read() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
        # Committed (visible through the WAL) but not yet copied: no commit checkpoints.
        assert rows_in_main_file(path, scratch) == 0
        await eventually(lambda: rows_in_main_file(path, scratch) == 3, what="a checkpoint")
    finally:
        await db.close()


async def test_after_a_checkpoint_the_wal_starts_over_instead_of_growing(tmp_path: Path) -> None:
    path = tmp_path / "router.db"
    db = Database(f"sqlite:///{path}")
    rows = [{"x": "y" * 1000}] * 1000  # about 1 MiB a transaction

    async def write_a_mebibyte() -> None:
        await db.run_write(lambda conn: conn.execute(text("INSERT INTO t VALUES (:x)"), rows))

    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE t (x TEXT)"))
        await write_a_mebibyte()
        wal = tmp_path / "router.db-wal"
        size = wal.stat().st_size
        await Checkpoints(db.engine).run()
        for _ in range(3):
            await write_a_mebibyte()
            await Checkpoints(db.engine).run()
        assert wal.stat().st_size < 1.5 * size  # reused from the start, not 4 MiB
        async with db.read() as conn:
            limit = (await conn.execute(text("PRAGMA journal_size_limit"))).scalar()
        assert limit == 64 * 2**20
    finally:
        await db.close()
