"""A real Prometheus scraping a test exporter whose values the test sets.

``TestExporter`` serves ``/metrics`` on a free loopback port; ``PrometheusServer``
runs the Debian package's ``prometheus`` binary against it with a one-second scrape
interval (and, for end-to-end tests, rule files and Alertmanager targets). Tests
that need it skip, saying why, when the binary is not installed.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import yaml

from tests.harness.daemon import Daemon
from tests.procs import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class TestExporter:
    """Serves the metrics it is given, in the Prometheus text format."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, name: str, labels: dict[str, str] | None = None, value: float = 0.0) -> None:
        key = (name, tuple(sorted((labels or {}).items())))
        with self._lock:
            self._metrics[key] = value

    def add(self, name: str, labels: dict[str, str] | None = None, value: float = 1.0) -> None:
        key = (name, tuple(sorted((labels or {}).items())))
        with self._lock:
            self._metrics[key] = self._metrics.get(key, 0.0) + value

    def render(self) -> str:
        with self._lock:
            items = sorted(self._metrics.items())
        lines = []
        for (name, labels), value in items:
            rendered = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PrometheusServer:
    """``prometheus`` on a free loopback port, scraping ``targets`` every second."""

    def __init__(
        self,
        targets: list[str],
        *,
        rule_files: list[Path] = (),
        alertmanagers: list[str] = (),
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "exporter", "static_configs": [{"targets": targets}]}],
            "rule_files": [str(p) for p in rule_files],
        }
        if alertmanagers:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}]
            }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.daemon = Daemon(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            self.dir,
            f"{self.url}/-/ready",
        )

    def query(self, expr: str) -> list[dict]:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        return body["data"]["result"]

    def wait_for(self, expr: str, timeout: float = 20) -> list[dict]:
        """Wait until ``expr`` returns at least one series (instead of sleeping blindly)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.2)
        raise AssertionError(f"{expr} returned nothing within {timeout}s")

    def close(self) -> None:
        self.daemon.close()


def available() -> bool:
    return Path(PROMETHEUS).exists()
