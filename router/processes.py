"""Triage and delivery in their own processes, so that webhook acks never wait on them.

``serve`` runs the web app in its own process and starts :class:`WorkerProcesses`:
``runbook-router work --supervised`` children that claim jobs, deliveries and
re-triage requests from the shared store under leases. A supervised worker runs at a
lower CPU priority than the web process (acks first). SIGTERM to the web process stops
the workers cleanly (each finishes or gives back its work); a web process killed outright
takes its workers with it (SIGKILL), so a replica dies as one and its leases expire
together. A worker that exits early is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

log = logging.getLogger("router")

WORKER_NICENESS = 10  # added to the web process's niceness
RESTART_DELAY_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess mode


def default_worker_processes() -> int:
    """One worker process per core beyond the first (the web process's), at least one."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


def worker_command(config_file: Path | None) -> list[str]:
    """How ``serve`` starts one worker process: the same interpreter and configuration."""
    config = ["--config", str(config_file)] if config_file else []
    return [sys.executable, "-m", "router", "work", "--supervised", str(os.getpid()), *config]


@contextlib.contextmanager
def metrics_shared_by_processes() -> Iterator[None]:
    """Every process started inside writes its metrics to one directory, which the web
    process's ``/metrics`` adds up. Enter before ``prometheus_client`` is imported."""
    if METRICS_DIR_VARIABLE in os.environ:  # the operator chose the directory
        yield
        return
    with tempfile.TemporaryDirectory(prefix="runbook-router-metrics-") as path:
        os.environ[METRICS_DIR_VARIABLE] = path
        try:
            yield
        finally:
            del os.environ[METRICS_DIR_VARIABLE]


def become_supervised(supervisor: int) -> None:
    """In a worker that the web process ``supervisor`` started, first thing: lower its
    priority; die when the web process dies, also if it died already."""
    os.nice(WORKER_NICENESS)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor:  # it went before the request took effect: orphaned
        os.kill(os.getpid(), signal.SIGKILL)


class WorkerProcesses:
    """``count`` worker processes running ``command``, kept running until :meth:`stop`."""

    def __init__(self, command: Sequence[str], count: int) -> None:
        self.command = list(command)
        self.count = count
        self._processes: list[subprocess.Popen[bytes]] = []
        self._watcher: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Every worker process is alive."""
        return len(self._processes) == self.count and all(p.poll() is None for p in self._processes)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes]

    def start(self) -> None:
        self._processes = [self._spawn() for _ in range(self.count)]
        self._watcher = asyncio.create_task(self._watch(), name="router-worker-processes")

    async def stop(self, timeout: float) -> None:
        """SIGTERM each worker (it finishes or gives back its work); SIGKILL after ``timeout``."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        await asyncio.gather(*(self._reap(p, timeout) for p in self._processes))
        self._processes.clear()

    def _spawn(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL)
        log.info("worker process %d started", process.pid)
        return process

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RESTART_DELAY_SECONDS)
            for index, process in enumerate(self._processes):
                code = process.poll()
                if code is not None:
                    log.error("worker process %d exited (%s), starting another", process.pid, code)
                    self._processes[index] = self._spawn()

    @staticmethod
    async def _reap(process: subprocess.Popen[bytes], timeout: float) -> None:
        try:
            await asyncio.to_thread(process.wait, timeout)
        except subprocess.TimeoutExpired:
            log.error("worker process %d did not stop in %.0fs, killing it", process.pid, timeout)
            process.kill()
            await asyncio.to_thread(process.wait)
