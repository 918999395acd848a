"""The doorbell: the web process rings when it stored new work, worker processes wake at once.

Worker processes claim work by polling (``worker.poll_seconds``); a worker inside the web
process is woken directly (``on_ingest``). Across processes, :func:`doorbell` gives the web
side a :class:`Doorbell` whose :meth:`~Doorbell.ring` is called after a commit that stored
new alert states, and :func:`listen` gives each worker process a :class:`Listener` that
wakes its loops when the bell rings. Ringing is best effort: it never blocks the event
loop, never raises, and a ring that is lost costs a poll interval, nothing else.

- **PostgreSQL**: ``NOTIFY runbook_router_work`` on a connection of the web process's
  own, at most one in flight (rings while it runs are coalesced into one more); each
  worker process ``LISTEN``s on a connection of its own, reconnecting when it is lost.
- **SQLite**: a directory ``<database>-doorbell/`` holds one unix datagram socket per
  worker process, named by its pid; a ring sends one byte to each, non-blocking (a full
  buffer means a wake-up is already pending), and removes the sockets of processes that
  are gone. A worker removes its own socket when it stops. A socket path longer than
  unix sockets allow (107 bytes) leaves that worker polling, and says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from router.store.database import Database

log = logging.getLogger("router.store")

CHANNEL = "runbook_router_work"
MAX_SOCKET_PATH = 107  # bytes: sun_path is 108, with the terminating NUL
_LISTING_SETTLE_NS = 50_000_000  # a directory changed this recently is listed again
NOTIFY_TIMEOUT_SECONDS = 5.0
CHECK_SECONDS = 30.0  # an idle LISTEN connection is checked this often (a half-open one)
RECONNECT_SECONDS = (0.5, 30.0)  # first and longest wait before listening again


class Doorbell(Protocol):
    """The web process's side."""

    def ring(self) -> None:
        """New work is stored: wake the worker processes. Returns at once; never raises."""

    async def close(self) -> None: ...


class Listener(Protocol):
    """A worker process's side: calls its ``wake`` when the bell rings."""

    async def close(self) -> None: ...


def doorbell(db: Database) -> Doorbell:
    """The bell the worker processes of ``db`` listen to."""
    if db.is_postgres:
        return NotifyDoorbell(db.engine)
    directory = _socket_directory(db)
    return SocketDoorbell(directory) if directory is not None else Silent()


async def listen(db: Database, wake: Callable[[], None]) -> Listener:
    """Call ``wake`` (on the running event loop) whenever the web process rings; listening
    once this returns (unless the database cannot be reached: then as soon as it can)."""
    if db.is_postgres:
        listener = NotifyListener(db.engine, wake)
        listener.start()
        with contextlib.suppress(TimeoutError):  # else it goes on trying, in the background
            await asyncio.wait_for(listener.listening.wait(), NOTIFY_TIMEOUT_SECONDS)
        return listener
    directory = _socket_directory(db)
    if directory is None:
        return Silent()
    path = directory / str(os.getpid())
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        log.warning(
            "doorbell: %s is too long for a unix socket (%d bytes at most): "
            "this worker process finds new work by polling only",
            path,
            MAX_SOCKET_PATH,
        )
        return Silent()
    try:
        return SocketListener(path, wake)
    except OSError as exc:
        log.warning("doorbell: cannot listen on %s (%s): polling only", path, exc)
        return Silent()


class Silent:
    """No bell (an in-memory database, a path too long): the workers poll."""

    def ring(self) -> None:
        pass

    async def close(self) -> None:
        pass


def _socket_directory(db: Database) -> Path | None:
    database = db.engine.url.database
    if database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return Path(f"{Path(database).resolve()}-doorbell")


# -- SQLite: unix datagram sockets ------------------------------------------------------


class SocketDoorbell:
    """One byte to every worker process's socket in ``directory``.

    The directory is listed again only when it changed (a ``stat`` per ring otherwise), so
    a ring costs one system call per worker process, once per turn of the event loop.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._version: tuple[int, int] | None = None  # the directory's (inode, mtime) listed
        self._doors: list[tuple[str, int]] = []  # (socket path, pid)
        self._pending = False

    def ring(self) -> None:
        """Rings in one turn of the event loop (the webhooks of one group commit) are sent
        as one, at the end of it: after their acks are on their way."""
        try:
            if not self._pending:
                self._pending = True
                asyncio.get_running_loop().call_soon(self._send)
        except RuntimeError:  # no event loop: ring now
            self._send()

    def _send(self) -> None:
        self._pending = False
        try:
            for path, pid in self._listed():
                try:
                    self._sock.sendto(b"\x01", path)
                except BlockingIOError:  # its buffer is full: a wake-up is pending already
                    pass
                except (ConnectionRefusedError, FileNotFoundError):
                    self._remove_if_gone(path, pid)
                except OSError as exc:
                    log.debug("doorbell: cannot ring %s: %s", path, exc)
        except Exception:  # never fail the webhook that rang
            log.warning("doorbell: ringing failed, the workers will poll", exc_info=True)

    def _listed(self) -> list[tuple[str, int]]:
        try:
            stat = os.stat(self.directory)
        except FileNotFoundError:  # no worker process has listened yet
            self._version, self._doors = None, []
            return []
        version = (stat.st_ino, stat.st_mtime_ns)
        if version == self._version:
            return self._doors
        doors = []
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            if name.isdigit() and len(os.fsencode(path)) <= MAX_SOCKET_PATH:
                doors.append((path, int(name)))
        self._doors = doors
        # A socket bound within the same clock tick as this listing leaves the mtime as it
        # is: a directory that changed just now is listed again at the next ring.
        settled = time.time_ns() - stat.st_mtime_ns > _LISTING_SETTLE_NS
        self._version = version if settled else None
        return doors

    def _remove_if_gone(self, path: str, pid: int) -> None:
        """A socket nobody reads: remove it if its process is gone (a live one may be
        about to bind it again)."""
        if _alive(pid):
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            log.info("doorbell: removed the socket of worker process %d, which is gone", pid)
        self._version = None

    async def close(self) -> None:
        self._sock.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class SocketListener:
    """This process's socket in the doorbell's directory; each datagram wakes it."""

    def __init__(self, path: Path, wake: Callable[[], None]) -> None:
        self.path, self.wake = path, wake
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by an earlier process with this pid
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(os.fspath(path))
            self._sock.setblocking(False)
            self._inode = path.stat().st_ino
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._sock.fileno(), self._heard)
        except BaseException:
            self._sock.close()
            raise

    def _heard(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError once it is drained
            while self._sock.recv(64):
                pass
        self.wake()

    async def close(self) -> None:
        if self._sock.fileno() < 0:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_ino == self._inode:  # still ours
                self.path.unlink()


# -- PostgreSQL: LISTEN/NOTIFY ------------------------------------------------------------


async def _connect(engine: AsyncEngine) -> Any:
    """A connection of its own (asyncpg's), made as the engine makes its pool's, outside
    the pool: it is held for as long as the process runs."""
    pooled = await engine.raw_connection()
    connection = pooled.driver_connection
    pooled.detach()
    return connection


def _describe(engine: AsyncEngine, exc: BaseException) -> str:
    """What went wrong, without the password (asyncpg's messages may quote the DSN)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    password = engine.url.password
    return text.replace(password, "***") if password else text


async def _close(connection: Any) -> None:
    try:
        await asyncio.wait_for(connection.close(), NOTIFY_TIMEOUT_SECONDS)
    except Exception:
        connection.terminate()


class NotifyDoorbell:
    """``NOTIFY`` on a connection of its own: one in flight, the rings meanwhile coalesced
    into one more, so a storm of webhooks sends a NOTIFY per commit batch at most."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._failing = False

    def ring(self) -> None:
        try:
            self._again = True
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(
                    self._notify(), name="router-doorbell"
                )
        except Exception:  # never fail the webhook that rang
            log.warning("doorbell: ringing failed, the workers will poll", exc_info=True)

    async def _notify(self) -> None:
        while self._again:
            self._again = False
            try:
                await self._send()
            except Exception as exc:
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "doorbell: cannot notify the worker processes (%s): they poll until "
                        "it works again",
                        _describe(self.engine, exc),
                    )
                return  # the next ring tries again
            if self._failing:
                self._failing = False
                log.info("doorbell: notifying the worker processes again")

    async def _send(self) -> None:
        """NOTIFY; a connection that was lost since the last one is replaced once."""
        for attempt in (1, 2):
            fresh = self._connection is None
            if fresh:
                self._connection = await asyncio.wait_for(
                    _connect(self.engine), NOTIFY_TIMEOUT_SECONDS
                )
            try:
                await self._connection.execute(f"NOTIFY {CHANNEL}", timeout=NOTIFY_TIMEOUT_SECONDS)
                return
            except Exception:
                connection, self._connection = self._connection, None
                connection.terminate()
                if fresh or attempt == 2:
                    raise

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), NOTIFY_TIMEOUT_SECONDS)
            self._task.cancel()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await _close(connection)


class NotifyListener:
    """``LISTEN`` on a connection of its own, reconnecting (with backoff) when it is lost;
    after listening again it wakes once, for what was rung meanwhile."""

    def __init__(self, engine: AsyncEngine, wake: Callable[[], None]) -> None:
        self.engine, self.wake = engine, wake
        self.listening = asyncio.Event()  # set while LISTEN is in effect (for tests)
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="router-listen")

    async def _run(self) -> None:
        delay, lost_before, failing = RECONNECT_SECONDS[0], False, False
        while True:
            try:
                lost = await self._listen()
            except Exception as exc:  # logged once per outage, not once per attempt
                log.log(
                    logging.DEBUG if failing else logging.WARNING,
                    "doorbell: cannot listen for new work (%s): polling, trying again in %.1fs",
                    _describe(self.engine, exc),
                    delay,
                )
                failing = True
                await self._drop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_SECONDS[1])
                continue
            if lost_before or failing:
                log.info("doorbell: listening for new work again")
                self.wake()  # rings while it was not listening were missed
            delay, lost_before, failing = RECONNECT_SECONDS[0], True, False
            reason = await self._until_lost(lost)
            self.listening.clear()
            await self._drop()
            log.warning("doorbell: lost the connection it listens on (%s): reconnecting", reason)

    async def _listen(self) -> asyncio.Event:
        self._connection = await asyncio.wait_for(_connect(self.engine), NOTIFY_TIMEOUT_SECONDS)
        lost = asyncio.Event()
        self._connection.add_termination_listener(lambda _connection: lost.set())
        await self._connection.add_listener(CHANNEL, self._heard)
        self.listening.set()
        return lost

    async def _until_lost(self, lost: asyncio.Event) -> str:
        """Wait until the connection ends; check it every ``CHECK_SECONDS`` meanwhile."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), CHECK_SECONDS)
                return "closed"
            try:
                await self._connection.execute("SELECT 1", timeout=NOTIFY_TIMEOUT_SECONDS)
            except Exception as exc:
                return _describe(self.engine, exc)

    def _heard(self, *_notification: object) -> None:
        self.wake()

    async def _drop(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                connection.terminate()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.listening.clear()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await _close(connection)
