"""The doorbell between the web process and the worker processes, on real sockets and a
real PostgreSQL: a ring wakes every listener, and nothing about ringing can hurt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from router.config import Settings
from router.metrics import Metrics
from router.store import open_store
from router.store.database import Database
from router.store.doorbell import (
    MAX_SOCKET_PATH,
    NotifyDoorbell,
    NotifyListener,
    Silent,
    SocketDoorbell,
    SocketListener,
    doorbell,
    listen,
)
from router.web import create_app
from tests import factories
from tests.harness.waiting import eventually
from tests.pg import fresh_database
from tests.web.webhelpers import asgi_client


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: pytest's own may be too long for a unix socket."""
    path = Path(tempfile.mkdtemp(prefix="rr-bell-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def sqlite_db(short_dir: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{short_dir / 'router.db'}")
    yield db
    await db.close()


def gone_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def abandoned_socket(directory: Path, name: str) -> Path:
    """A socket file nobody reads any more (its process died without removing it)."""
    directory.mkdir(exist_ok=True)
    path = directory / name
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.close()
    return path


# -- SQLite: unix datagram sockets -------------------------------------------------------


async def test_a_ring_wakes_every_worker_process_listening(sqlite_db: Database) -> None:
    first, second = Wakes(), Wakes()
    one = await listen(sqlite_db, first)
    bell = doorbell(sqlite_db)
    directory = Path(f"{sqlite_db.engine.url.database}-doorbell")
    two = SocketListener(directory / str(os.getppid()), second)  # another worker process's
    try:
        bell.ring()
        await eventually(lambda: first.count and second.count, 5, "both listeners to wake")
        bell.ring()
        await eventually(lambda: first.count >= 2, 5, "the second ring")
    finally:
        await one.close()
        await two.close()
        await bell.close()
    assert sorted(os.listdir(directory)) == []  # each listener removed its own socket


async def test_a_ring_with_no_listener_is_harmless(sqlite_db: Database) -> None:
    bell = doorbell(sqlite_db)
    bell.ring()  # no directory yet
    Path(f"{sqlite_db.engine.url.database}-doorbell").mkdir()
    bell.ring()  # an empty one
    await bell.close()


async def test_the_socket_of_a_process_that_is_gone_is_removed(short_dir: Path) -> None:
    directory = short_dir / "router.db-doorbell"
    stale = abandoned_socket(directory, str(gone_pid()))
    unread = abandoned_socket(directory, str(os.getpid()))  # its process lives: it may rebind
    bell = SocketDoorbell(directory)
    try:
        bell.ring()
        await asyncio.sleep(0)  # rung at the end of this turn of the event loop
    finally:
        await bell.close()
    assert not stale.exists()
    assert unread.exists()


async def test_a_full_buffer_is_ignored(short_dir: Path) -> None:
    directory = short_dir / "router.db-doorbell"
    directory.mkdir()
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never read
    deaf.bind(str(directory / str(os.getpid())))
    bell = SocketDoorbell(directory)
    try:
        for _ in range(2000):
            bell.ring()
            await asyncio.sleep(0)
    finally:
        await bell.close()
        deaf.close()
    assert (directory / str(os.getpid())).exists()


async def test_rings_in_one_turn_of_the_event_loop_send_one_datagram(short_dir: Path) -> None:
    directory = short_dir / "router.db-doorbell"
    directory.mkdir()
    ear = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ear.bind(str(directory / str(os.getpid())))
    ear.setblocking(False)
    bell = SocketDoorbell(directory)
    try:
        for _ in range(50):  # the webhooks of one group commit
            bell.ring()
        await asyncio.sleep(0)
        bell.ring()
        await asyncio.sleep(0)
        received = 0
        with contextlib.suppress(BlockingIOError):
            while ear.recv(8):
                received += 1
    finally:
        await bell.close()
        ear.close()
    assert received == 2


async def test_a_new_listener_is_rung_at_once(sqlite_db: Database) -> None:
    """The directory listing is cached; a socket bound after a ring is still found."""
    bell = doorbell(sqlite_db)
    bell.ring()
    wakes = Wakes()
    listener = await listen(sqlite_db, wakes)
    try:
        bell.ring()
        await eventually(lambda: wakes.count, 5, "the new listener to wake")
    finally:
        await listener.close()
        await bell.close()


async def test_a_socket_path_too_long_falls_back_to_polling(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deep = short_dir / ("d" * (MAX_SOCKET_PATH - len(str(short_dir))))
    db = Database(f"sqlite:///{deep / 'router.db'}")
    try:
        with caplog.at_level(logging.WARNING, "router.store"):
            listener = await listen(db, Wakes())
        assert isinstance(listener, Silent)
        doorbell(db).ring()
        await listener.close()
    finally:
        await db.close()
    (line,) = [r.getMessage() for r in caplog.records if "doorbell" in r.getMessage()]
    assert "too long for a unix socket" in line and "polling" in line


async def test_an_in_memory_database_has_no_doorbell() -> None:
    db = Database("sqlite://")
    try:
        assert isinstance(doorbell(db), Silent)
        assert isinstance(await listen(db, Wakes()), Silent)
    finally:
        await db.close()


# -- PostgreSQL: LISTEN/NOTIFY -----------------------------------------------------------


@pytest.fixture
async def pg_db() -> AsyncIterator[Database]:
    async with fresh_database() as url:
        db = Database(url)
        yield db
        await db.close()


async def listener_backends(db: Database) -> list[int]:
    async with db.read() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'LISTEN%'"
        )
        return [row[0] for row in rows]


@pytest.mark.postgres
async def test_notify_wakes_the_listeners_and_they_survive_a_lost_connection(
    pg_db: Database,
) -> None:
    wakes = Wakes()
    listener = await listen(pg_db, wakes)
    assert isinstance(listener, NotifyListener)
    bell = doorbell(pg_db)
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        bell.ring()
        await eventually(lambda: wakes.count, 10, "the listener to wake")
        (backend,) = await eventually(lambda: listener_backends(pg_db), 5, "LISTEN's backend")
        async with pg_db.read() as conn:
            await conn.exec_driver_sql(f"SELECT pg_terminate_backend({backend})")
            await conn.commit()
        # it listens again on a new connection, and wakes once for what it may have missed
        await eventually(
            lambda: listener.listening.is_set() and wakes.count >= 2, 10, "listening again"
        )
        woken = wakes.count
        bell.ring()
        await eventually(lambda: wakes.count > woken, 10, "a wake-up on the new connection")
    finally:
        await listener.close()
        await bell.close()


@pytest.mark.postgres
async def test_the_doorbell_replaces_a_notify_connection_that_was_lost(pg_db: Database) -> None:
    wakes = Wakes()
    listener = await listen(pg_db, wakes)
    bell = doorbell(pg_db)
    assert isinstance(bell, NotifyDoorbell)
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        bell.ring()
        await eventually(lambda: wakes.count, 10, "the first wake-up")
        await eventually(lambda: bell._task is not None and bell._task.done(), 5, "the NOTIFY")
        bell._connection.terminate()  # the server or the network dropped it
        woken = wakes.count
        bell.ring()
        await eventually(lambda: wakes.count > woken, 10, "a wake-up after reconnecting")
    finally:
        await listener.close()
        await bell.close()


@pytest.mark.postgres
async def test_rings_in_a_burst_send_few_notifies(pg_db: Database) -> None:
    bell = doorbell(pg_db)
    assert isinstance(bell, NotifyDoorbell)
    sent = 0
    original = bell._send

    async def counted() -> None:
        nonlocal sent
        sent += 1
        await original()

    bell._send = counted  # type: ignore[method-assign]
    try:
        for _ in range(100):
            bell.ring()
        await eventually(lambda: bell._task is not None and bell._task.done(), 10, "the NOTIFYs")
    finally:
        await bell.close()
    assert sent == 1  # all rung before the first was sent: coalesced into it


async def test_a_notify_that_fails_does_not_fail_the_webhook(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bell's database refuses connections: the webhook is still accepted, the failure
    is logged once, without the password."""
    unreachable = Database("postgresql://router:hunter2@127.0.0.1:9/router", connect_timeout=1)
    bell = NotifyDoorbell(unreachable.engine)
    store = await open_store(f"sqlite:///{tmp_path / 'router.db'}")
    app = create_app(Settings(), store, Metrics(), on_ingest=bell.ring)
    try:
        with caplog.at_level(logging.INFO, "router.store"):
            async with asgi_client(app) as client:
                for name in ("First", "Second"):
                    body = factories.payload(factories.alert(name))
                    response = await client.post("/alertmanager", json=body)
                    assert response.status_code == 202
                    await eventually(lambda: bell._task is not None and bell._task.done(), 10)
    finally:
        await bell.close()
        await store.close()
        await unreachable.close()
    lines = [r.getMessage() for r in caplog.records if "doorbell" in r.getMessage()]
    assert len(lines) == 1 and "cannot notify the worker processes" in lines[0]
    assert "hunter2" not in caplog.text


async def test_a_listener_that_cannot_connect_keeps_trying_quietly(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("router.store.doorbell.RECONNECT_SECONDS", (0.01, 0.02))
    monkeypatch.setattr("router.store.doorbell.NOTIFY_TIMEOUT_SECONDS", 0.2)  # listen()'s wait
    unreachable = Database("postgresql://router:hunter2@127.0.0.1:9/router", connect_timeout=1)
    try:
        with caplog.at_level(logging.DEBUG, "router.store"):
            listener = await listen(unreachable, Wakes())
            await eventually(
                lambda: caplog.text.count("cannot listen for new work") >= 3, 10, "retries"
            )
            await listener.close()
    finally:
        await unreachable.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "cannot listen for new work" in warnings[0].getMessage()
    assert "hunter2" not in caplog.text
