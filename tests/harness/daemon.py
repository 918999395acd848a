"""A server binary run for a test: started with its log in a temp folder, ready on ``/-/ready``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx

from tests.harness.waiting import eventually_sync


class Daemon:
    """Runs ``argv`` with output to ``folder/<name>.log``; ``close()`` stops it and removes the folder."""

    def __init__(self, name: str, argv: list[str], folder: Path, ready_url: str) -> None:
        self.name = name
        self.folder = folder
        self.log_path = folder / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready(ready_url)

    def _wait_ready(self, url: str, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()}")
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually_sync(ready, timeout, f"{self.name} to become ready at {url}", 0.1)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
