"""One async SQLAlchemy engine over SQLite or PostgreSQL, with the quirks of each handled here.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` so that a
committed webhook survives a crash, and its writers are serialised in-process so
they never fight over the database lock. Checkpoints (copying the WAL back into
the database file) run in the background, never inside a writer's commit. PostgreSQL lets several replicas share
one database. Every database error that a retry could cure surfaces as
:class:`StoreUnavailable`, which the web layer turns into a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from router.store.turnstile import Turnstile

log = logging.getLogger("router.store")
T = TypeVar("T")
Clock = Callable[[], float]  # the store's wall clock (time.time), injectable for tests


class StoreUnavailable(Exception):
    """The database cannot be used right now; the caller should retry later."""


_TRANSIENT = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    OSError,
    TimeoutError,
    sqlite3.OperationalError,  # from statements run on the driver's own cursor (ingest)
)
# Errors in the statement itself; every other database error (a refused or dropped
# connection, a database not accepting connections, a failover) may pass.
_BUGS = (IntegrityError, ProgrammingError, DataError)


def normalise_url(url: str) -> str:
    """Pick the async driver for plain ``postgresql://`` and ``sqlite://`` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    return parsed.render_as_string(hide_password=False)


class WriteGate:
    """One writer at a time (SQLite has one write lock), urgent writers first.

    Ingest is urgent: a webhook waits for at most the transaction in progress, never
    behind a queue of worker transactions. The gate is handed directly to the next
    waiter, so nobody can barge in between.
    """

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @contextlib.asynccontextmanager
    async def __call__(self, urgent: bool) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._held:
            self._held = True
            return
        waiter = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # granted just as we were cancelled: pass it on
            else:  # still queued, unless a release already skipped it as cancelled
                with contextlib.suppress(ValueError):
                    (self._urgent if urgent else self._normal).remove(waiter)
            raise

    def _release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._held = False


class Checkpoints:
    """SQLite WAL checkpoints in the background, at most one per ``interval``.

    SQLite's automatic checkpoint runs inside the commit that crosses its threshold,
    so one webhook in a few hundred would wait for megabytes to be copied and synced.
    With it turned off, a ``PASSIVE`` checkpoint (which never blocks writers) runs on
    its own connection after writes; ``journal_size_limit`` then trims the WAL file
    when the next writer starts it over.
    """

    def __init__(self, engine: AsyncEngine, interval: float = 1.0) -> None:
        self.engine, self.interval = engine, interval
        self._task: asyncio.Task[None] | None = None

    def written(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(self.interval)
        await self.run()

    async def run(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except DBAPIError as exc:  # the next one will do; the WAL keeps everything
            log.warning("SQLite checkpoint failed: %s", _describe(exc))

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self.run()


class Database:
    """The engine plus a way to run read and write transactions safely on either backend."""

    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        url = normalise_url(url)
        parsed = make_url(url)
        self.backend = parsed.get_backend_name()
        self._gate = WriteGate() if self.backend == "sqlite" else None
        self.engine: AsyncEngine = _create_engine(url, parsed.database, connect_timeout)
        in_memory = parsed.database in (None, "", ":memory:")
        self._checkpoints = Checkpoints(self.engine) if self._gate and not in_memory else None
        self._writer: tuple[Engine, ThreadPoolExecutor] | None = None
        self._reader: tuple[Engine, ThreadPoolExecutor] | None = None
        self._turnstile: Turnstile | None = None
        if self._gate and not in_memory:
            self._turnstile = Turnstile(Path(f"{parsed.database}-turnstile"))
            sync_url = parsed.set(drivername="sqlite+pysqlite").render_as_string(False)
            self._writer = _sync(sync_url, connect_timeout, "router-sqlite")
            self._reader = _sync(sync_url, connect_timeout, "router-sqlite-read")

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgresql"

    def insert(self, table: Table) -> Any:
        """A dialect-specific INSERT that supports ``on_conflict_do_nothing``/``_update``."""
        return (postgresql.insert if self.is_postgres else sqlite.insert)(table)

    @contextlib.asynccontextmanager
    async def write(self, *, urgent: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on success; database trouble → StoreUnavailable.

        ``urgent`` writers (ingest, which a webhook is waiting on) go first on SQLite.
        """
        gate = self._gate(urgent) if self._gate else contextlib.nullcontext()
        async with (
            gate,
            self._turnstile_entered(urgent),
            self._guard(),
            self.engine.begin() as conn,
        ):
            if self._gate:
                await conn.exec_driver_sql(_BEGIN_WRITE)
            yield conn
        if self._checkpoints is not None:
            self._checkpoints.written()

    async def run_write(self, work: Callable[[Connection], T], *, urgent: bool = False) -> T:
        """Run ``work`` (synchronous SQLAlchemy Core) as one write transaction.

        On SQLite the whole transaction runs on the store's writer thread with the
        standard ``sqlite3`` driver: one hand-off to a thread instead of one per
        statement, which is most of a small transaction's time. On PostgreSQL it runs
        on an async connection (``run_sync``).
        """
        if self._writer is None:
            async with self.write(urgent=urgent) as conn:
                return await conn.run_sync(work)
        engine, thread = self._writer
        assert self._gate is not None
        async with self._gate(urgent), self._guard():
            try:
                running = asyncio.get_running_loop().run_in_executor(
                    thread, _in_transaction, engine, work, self._turnstile, urgent
                )
            except RuntimeError:  # the writer thread is shut down: the store was closed
                raise StoreUnavailable("the state store is closed") from None
            result = await running
        if self._checkpoints is not None:
            self._checkpoints.written()
        return result

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` (synchronous SQLAlchemy Core, reads only) in one hand-off.

        On SQLite it runs on the store's reader thread with the standard ``sqlite3``
        driver (a read of several queries crosses to aiosqlite's thread once per
        statement, fetch and connection otherwise); on PostgreSQL on an async
        connection (``run_sync``).
        """
        if self._reader is None:
            async with self.read() as conn:
                return await conn.run_sync(work)
        engine, thread = self._reader
        async with self._guard():
            try:
                running = asyncio.get_running_loop().run_in_executor(thread, _in_read, engine, work)
            except RuntimeError:  # the reader thread is shut down: the store was closed
                raise StoreUnavailable("the state store is closed") from None
            return await running

    @contextlib.asynccontextmanager
    async def _turnstile_entered(self, urgent: bool) -> AsyncIterator[None]:
        """The other processes' turn (``router.store.turnstile``), waited for in a thread."""
        if self._turnstile is None:
            yield
            return
        entered = self._turnstile.entered(urgent)
        await asyncio.to_thread(entered.__enter__)
        try:
            yield
        finally:
            entered.__exit__(None, None, None)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """Reads only. On PostgreSQL they run outside a transaction (autocommit): each
        statement sees what was committed when it started, as under the default READ
        COMMITTED, without the round trips of BEGIN and ROLLBACK."""
        async with self._guard(), self.engine.connect() as conn:
            if self.is_postgres:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except DBAPIError as exc:
            if isinstance(exc, _BUGS) and not exc.connection_invalidated:
                raise  # a mistake in a statement: retrying will not help
            raise StoreUnavailable(_describe(exc)) from exc
        except _TRANSIENT as exc:
            raise StoreUnavailable(_describe(exc)) from exc

    async def close(self) -> None:
        if self._checkpoints is not None:
            await self._checkpoints.close()
        for engine, thread in filter(None, (self._writer, self._reader)):
            await asyncio.get_running_loop().run_in_executor(thread, engine.dispose)
            thread.shutdown()
        await self.engine.dispose()
        if self._turnstile is not None:
            self._turnstile, turnstile = None, self._turnstile
            turnstile.close()


# SQLite: a write transaction takes the write lock when it starts, so that what it reads
# (rows to claim, states already stored) is not changed by another process before it writes.
_BEGIN_WRITE = "BEGIN IMMEDIATE"
_LOCK_RETRY_SECONDS = 0.0005
_LOCK_PATIENCE_SECONDS = 5.0  # then SQLite's own busy handler, then StoreUnavailable


def _sync(url: str, connect_timeout: float, thread: str) -> tuple[Engine, ThreadPoolExecutor]:
    """A synchronous SQLite engine and the one thread that uses it."""
    engine = create_engine(url, connect_args={"timeout": connect_timeout})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine, ThreadPoolExecutor(1, thread_name_prefix=thread)


def _in_read(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        return work(conn)


def _in_transaction(
    engine: Engine, work: Callable[[Connection], T], turnstile: Turnstile | None, urgent: bool
) -> T:
    with (
        turnstile.entered(urgent) if turnstile else contextlib.nullcontext(),
        engine.begin() as conn,
    ):
        _begin_write(conn)
        return work(conn)


def _begin_write(conn: Connection) -> None:
    """Take the write lock, retrying every half millisecond while another process (a worker
    process, say) holds it: SQLite's own busy handler sleeps up to 100 ms between tries,
    which a webhook waiting for its ack would feel."""
    raw = conn.connection.driver_connection
    assert raw is not None
    deadline = time.monotonic() + _LOCK_PATIENCE_SECONDS
    raw.execute("PRAGMA busy_timeout=0")
    try:
        while time.monotonic() < deadline:
            try:
                raw.execute(_BEGIN_WRITE)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    break
                time.sleep(_LOCK_RETRY_SECONDS)
    finally:
        raw.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    conn.exec_driver_sql(_BEGIN_WRITE)  # waits as usual; raises SQLAlchemy's error


def _create_engine(url: str, database: str | None, connect_timeout: float) -> AsyncEngine:
    if url.startswith("sqlite"):
        pool: dict[str, int] = {}
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            # Connections are threads (aiosqlite): keep enough open for the workers and
            # the dispatcher's concurrent reads, rather than one per overflowing read.
            pool = {"pool_size": 20, "max_overflow": 10}
        engine = create_async_engine(url, connect_args={"timeout": connect_timeout}, **pool)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        # A fixed pool: a connection opened beyond it would be closed on its return,
        # and under load that is a new server backend for every few queries.
        pool_size=_POSTGRES_POOL_SIZE,
        max_overflow=0,
        pool_timeout=connect_timeout,
        connect_args={"timeout": connect_timeout, "command_timeout": 30},
    )
    event.listen(engine.sync_engine.pool, "checkin", _returned)
    event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
    return engine


_POSTGRES_POOL_SIZE = 10
_PING_AFTER_IDLE_SECONDS = 1.0
_RETURNED_AT = "router_returned_at"


def _returned(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_RETURNED_AT] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A pooled connection idle for a while is pinged before use (a server restarted or a
    connection cut meanwhile gives a new one, not an error). SQLAlchemy's ``pool_pre_ping``
    pings at every checkout, in a transaction of its own on asyncpg: three round trips
    before each transaction, most of a short read's time."""
    returned = record.info.get(_RETURNED_AT)
    if returned is None or time.monotonic() - returned < _PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as exc:  # whatever the driver raises, the connection is gone
        raise DisconnectionError(_describe(exc)) from exc


_BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=FULL",
        f"busy_timeout={_BUSY_TIMEOUT_MS}",
        "wal_autocheckpoint=0",  # see Checkpoints
        "journal_size_limit=67108864",  # a WAL file started over is trimmed to 64 MiB
        "foreign_keys=ON",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _describe(exc: BaseException) -> str:
    """A short reason that never includes the connection URL or its password."""
    original = getattr(exc, "orig", None) or exc
    return f"database unavailable ({type(original).__name__})"
