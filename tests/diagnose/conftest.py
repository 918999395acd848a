"""The real Prometheus (session-wide) and test exporter, with traffic for the diagnostics tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.harness.prometheus import TestExporter, exporter, prometheus

__all__ = ["exporter", "prometheus", "traffic"]


@pytest.fixture(scope="session")
def traffic(exporter: TestExporter) -> Iterator[None]:
    """Requests flowing: 90 a second succeed, 10 fail with 500; a queue keeps growing."""
    stop = threading.Event()

    def run() -> None:
        depth = 0.0
        while not stop.wait(0.2):
            exporter.add("http_requests_total", {"service": "api", "code": "200"}, 18)
            exporter.add("http_requests_total", {"service": "api", "code": "500"}, 2)
            depth += 1
            exporter.set("work_queue_depth", {"service": "api"}, depth)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()
