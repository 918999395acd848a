"""A real Prometheus scraping a test exporter whose values the test sets.

``TestExporter`` serves ``/metrics`` on a free loopback port; ``PrometheusServer``
runs the Debian package's ``prometheus`` binary against it with a one-second scrape
and evaluation interval (and, for end-to-end tests, rule files and Alertmanager
targets). The session fixtures ``exporter`` and ``prometheus`` are imported by the
``conftest.py`` that wants them::

    from tests.harness.prometheus import exporter, prometheus  # noqa: F401

Tests that need Prometheus skip, saying why, when the binary is not installed.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
import yaml

from tests.harness.daemon import Daemon
from tests.harness.quiet_http import QuietHTTPServer
from tests.harness.waiting import eventually, eventually_sync
from tests.procs import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SKIP_REASON = "the prometheus binary is not installed (Debian package 'prometheus')"

Key = tuple[str, tuple[tuple[str, str], ...]]


class TestExporter:
    """Serves the metrics it is given, in the Prometheus text format (untyped samples)."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._metrics: dict[Key, float] = {}
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

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.target = f"127.0.0.1:{self.port}"  # for a scrape config
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, name: str, labels: Mapping[str, str] | None = None, value: float = 0.0) -> None:
        """Set a gauge (or a counter, to any value) for the next scrape."""
        with self._lock:
            self._metrics[_key(name, labels)] = float(value)

    def add(self, name: str, labels: Mapping[str, str] | None = None, value: float = 1.0) -> None:
        """Increase a counter."""
        key = _key(name, labels)
        with self._lock:
            self._metrics[key] = self._metrics.get(key, 0.0) + value

    def histogram(
        self,
        name: str,
        labels: Mapping[str, str] | None,
        counts: Mapping[float, float],
        total: float = 0.0,
    ) -> None:
        """Set ``name_bucket{le=…}`` (cumulative), ``name_count`` and ``name_sum``.

        ``counts`` maps each upper bound to the observations in that bucket alone;
        the ``+Inf`` bucket is added.
        """
        running = 0.0
        for bound in sorted(counts):
            running += counts[bound]
            self.set(f"{name}_bucket", {**(labels or {}), "le": f"{bound:g}"}, running)
        self.set(f"{name}_bucket", {**(labels or {}), "le": "+Inf"}, running)
        self.set(f"{name}_count", labels, running)
        self.set(f"{name}_sum", labels, total)

    def remove(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Stop exposing a series (Prometheus marks it stale at the next scrape)."""
        with self._lock:
            self._metrics.pop(_key(name, labels), None)

    def render(self) -> str:
        with self._lock:
            items = sorted(self._metrics.items())
        lines = []
        for (name, labels), value in items:
            rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{rendered}}} {value!r}" if rendered else f"{name} {value!r}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PrometheusServer:
    """``prometheus`` on a free loopback port, scraping ``targets`` (job ``exporter``) every second."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        rule_files: Sequence[Path] = (),
        alertmanagers: Sequence[str] = (),
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = self.dir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config(targets, rule_files, alertmanagers)))
        self.daemon = Daemon(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            self.dir,
            f"{self.url}/-/ready",
        )

    def query(self, expr: str) -> list[dict]:
        """The result of an instant query (raises on an error answer)."""
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        if body.get("status") != "success":
            raise AssertionError(f"{expr}: {body.get('error')}")
        return body["data"]["result"]

    def wait_for(self, expr: str, timeout: float = 20) -> list[dict]:
        """Wait until ``expr`` returns at least one series (instead of sleeping blindly)."""
        return eventually_sync(
            lambda: self.query(expr), timeout, f"{expr} to return a series", interval=0.2
        )

    async def wait_for_sample(self, expr: str, timeout: float = 20) -> list[dict]:
        """``wait_for`` for async tests: ``await prom.wait_for_sample('up{job="exporter"} == 1')``."""
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:

            async def query() -> list[dict]:
                body = (await client.get("/api/v1/query", params={"query": expr})).json()
                if body.get("status") != "success":
                    raise AssertionError(f"{expr}: {body.get('error')}")
                return body["data"]["result"]

            return await eventually(query, timeout, f"{expr} to return a series", interval=0.2)

    def reload(self) -> None:
        """Re-read the configuration and rule files (``--web.enable-lifecycle``)."""
        httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def close(self) -> None:
        self.daemon.close()


def config(
    targets: Sequence[str], rule_files: Sequence[Path] = (), alertmanagers: Sequence[str] = ()
) -> dict:
    """A ``prometheus.yml``: scrape and evaluate every second, optional rules and Alertmanagers."""
    generated: dict = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "exporter", "static_configs": [{"targets": list(targets)}]}
        ],
        "rule_files": [str(p) for p in rule_files],
    }
    if alertmanagers:
        generated["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
        }
    return generated


def available() -> bool:
    return Path(PROMETHEUS).exists()


@pytest.fixture(scope="session")
def exporter() -> Iterator[TestExporter]:
    """One test exporter for the session; tests set the values they need."""
    served = TestExporter()
    yield served
    served.close()


@pytest.fixture(scope="session")
def prometheus(exporter: TestExporter) -> Iterator[PrometheusServer]:
    """One real Prometheus for the session, scraping ``exporter`` every second."""
    if not available():
        pytest.skip(SKIP_REASON)
    server = PrometheusServer([exporter.target])
    try:
        server.wait_for('up{job="exporter"} == 1')
        yield server
    finally:
        server.close()


def _key(name: str, labels: Mapping[str, str] | None) -> Key:
    return name, tuple(sorted((labels or {}).items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
