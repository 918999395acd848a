"""HTTP probes against a real loopback server with healthy, failing and hanging endpoints."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from router.alerts import Alert
from router.config import HttpProbe, HttpProbeSettings
from router.diagnose.base import AlertContext, Check, ProviderError
from router.diagnose.http_probe import HttpProbeProvider
from router.triage import Classification


class Service:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.requests.append(("GET", self.path))
                if self.path.startswith("/slow"):
                    time.sleep(3)
                code = 503 if self.path.startswith("/fail") else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def service() -> Iterator[Service]:
    made = Service()
    yield made
    made.server.shutdown()


def context(labels: dict[str, str]) -> AlertContext:
    alert = Alert(
        status="firing", labels={"alertname": "T", **labels}, startsAt="2026-11-22T03:00:00Z"
    )
    return AlertContext(alert, Classification(), datetime.now(UTC), time.monotonic() + 5)


async def test_probes_matching_the_alert_are_rendered_and_checked(service: Service) -> None:
    settings = HttpProbeSettings(
        timeout_seconds=0.5,
        probes=[
            HttpProbe(matchers=['service="api"'], url=service.base + "/ok/{{ labels.namespace }}"),
            HttpProbe(matchers=['service="api"'], url=service.base + "/fail"),
            HttpProbe(matchers=['service="api"'], url=service.base + "/slow"),
            HttpProbe(matchers=['service="web"'], url=service.base + "/never"),
        ],
    )
    provider = HttpProbeProvider(settings)
    outcome = await provider.run(
        Check("h", "http", "probe", ""), context({"service": "api", "namespace": "shop"})
    )
    await provider.close()
    probes = {p["url"].removeprefix(service.base): p for p in outcome.facts["probes"]}
    assert set(probes) == {"/ok/shop", "/fail", "/slow"}
    assert probes["/ok/shop"]["ok"] and probes["/ok/shop"]["status"] == 200
    assert probes["/fail"]["status"] == 503 and not probes["/fail"]["ok"]
    assert probes["/slow"]["error"] == "timed out after 0.5 s"
    assert outcome.facts["failing"] == 2 and outcome.facts["all_ok"] is False
    assert outcome.findings[0].title == "2 of 3 health probe(s) failing"
    assert all(method == "GET" for method, _ in service.requests)


async def test_explicit_url_and_password_redaction(service: Service) -> None:
    provider = HttpProbeProvider(HttpProbeSettings())
    url = service.base.replace("http://", "http://probe:s3cr3t@") + "/ok"
    outcome = await provider.run(Check("h", "http", "probe", "", {"url": url}), context({}))
    await provider.close()
    assert outcome.facts["all_ok"]
    assert "s3cr3t" not in str(outcome.facts) and "s3cr3t" not in str(outcome.findings)


async def test_no_probe_for_the_alert_is_a_clear_error() -> None:
    provider = HttpProbeProvider(HttpProbeSettings())
    with pytest.raises(ProviderError, match="no health URL"):
        await provider.run(Check("h", "http", "probe", ""), context({"service": "api"}))
    await provider.close()
