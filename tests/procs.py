"""A real ``runbook-router serve`` process on a free loopback port, for tests that kill it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RouterProcess:
    """``python -m router serve`` (or ``command serve``) with the given environment and extra
    ``args``; logs go to ``log_path``."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        port: int | None = None,
        command: list[str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.command = command or [sys.executable, "-m", "router"]
        self.port = port or free_port()
        self.args = args or []
        self.env = {**_clean_environ(), **env}
        self.log_path = workdir / f"router-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> RouterProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.command, "serve", "--port", str(self.port), *self.args],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"router exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"router not ready after {timeout}s:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
