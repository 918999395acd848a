"""HTTP probes against a real loopback server with healthy, failing and hanging endpoints."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

import pytest

from router.alerts import Alert
from router.config import HttpProbe, HttpProbeSettings
from router.diagnose.base import AlertContext, Check, ProviderError
from router.diagnose.http_probe import HttpProbeProvider
from router.triage import Classification
from tests.harness.quiet_http import QuietHTTPServer
from tests.procs import free_port


class Service:
    """/ok → 200, /fail → 503, /slow hangs, /moved → /ok, /away → another host, /big → 1 MiB."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.requests.append(("GET", self.path))
                if self.path.startswith("/slow"):
                    time.sleep(3)
                redirect = {"/moved": "/ok", "/away": "http://example.invalid/ok"}
                body = b"x" * (1 << 20) if self.path == "/big" else b"ok"
                code = 503 if self.path.startswith("/fail") else 200
                code = 302 if self.path in redirect else code
                self.send_response(code)
                if code == 302:
                    self.send_header("Location", redirect[self.path])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the prober stops reading: the point
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def service() -> Iterator[Service]:
    made = Service()
    yield made
    made.server.shutdown()


def context(labels: dict[str, str], annotations: dict[str, str] | None = None) -> AlertContext:
    alert = Alert(
        status="firing",
        labels={"alertname": "T", **labels},
        annotations=annotations or {},
        startsAt="2026-11-22T03:00:00Z",
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
    assert probes["/slow"]["latency_ms"] == pytest.approx(500, abs=300)
    assert probes["/ok/shop"]["latency_ms"] < 400
    assert outcome.facts["failing"] == 2 and outcome.facts["all_ok"] is False
    (finding,) = outcome.findings
    assert finding.title == "2 of 3 health probes failing" and finding.severity == "warning"
    table = finding.evidence[0]
    assert table.columns == ["url", "status", "latency", "error"]
    assert [row[1] for row in table.rows][-1] == "200"  # failing probes first
    assert all(method == "GET" for method, _ in service.requests)
    assert not any(path == "/never" for _, path in service.requests)


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


async def test_redirects_are_followed_only_on_the_same_host(service: Service) -> None:
    provider = HttpProbeProvider(HttpProbeSettings())
    check = Check(
        "h", "http", "probe", "", {"url": [service.base + "/moved", service.base + "/away"]}
    )
    outcome = await provider.run(check, context({}))
    await provider.close()
    moved, away = outcome.facts["probes"]
    assert moved["status"] == 200 and moved["ok"]
    assert away["status"] == 302 and not away["ok"]
    assert away["error"] == "redirect to example.invalid not followed"
    assert ("GET", "/ok") in service.requests


async def test_a_big_body_is_not_read_whole_and_a_closed_port_fails_fast(service) -> None:
    provider = HttpProbeProvider(HttpProbeSettings(timeout_seconds=2))
    closed = f"http://127.0.0.1:{free_port()}/healthz"
    check = Check("h", "http", "probe", "", {"url": [service.base + "/big", closed]})
    outcome = await provider.run(check, context({}))
    await provider.close()
    big, down = outcome.facts["probes"]
    assert big["ok"] and big["latency_ms"] < 1000
    assert down["status"] is None and down["error"] == "connection refused or host unreachable"
    assert outcome.findings[0].title == "1 of 2 health probes failing"


async def test_templates_read_annotations_and_a_missing_label_skips_the_probe(service) -> None:
    settings = HttpProbeSettings(
        probes=[
            HttpProbe(url=service.base + "{{ annotations.health_path }}"),
            HttpProbe(url=service.base + "/ok/{{ labels.namespace }}"),
        ]
    )
    provider = HttpProbeProvider(settings)
    outcome = await provider.run(
        Check("h", "http", "probe", ""), context({}, {"health_path": "/ok"})
    )
    assert [p["url"] for p in outcome.facts["probes"]] == [service.base + "/ok"]
    (skipped,) = outcome.facts["skipped"]
    assert skipped["url"].endswith("/ok/{{ labels.namespace }}")
    assert "UndefinedError" in skipped["error"] and "namespace" in skipped["error"]
    assert outcome.findings[0].evidence[-1].label == "skipped probes"
    with pytest.raises(ProviderError, match=r"no health URL.*namespace"):
        await provider.run(Check("h", "http", "probe", ""), context({}, {}))
    await provider.close()
    assert not any("{{" in path or path == "/ok/" for _, path in service.requests)


@pytest.mark.parametrize(
    "template", ["{{ labels.__class__ }}", "{{ labels['__class__'] }}", "{{ ''.__class__ }}"]
)
def test_a_private_attribute_in_a_url_template_is_refused_at_load(template: str) -> None:
    settings = HttpProbeSettings(probes=[HttpProbe(url="http://h/" + template)])
    with pytest.raises(ValueError, match="unsafe attribute '__class__'"):
        HttpProbeProvider(settings)


async def test_the_sandbox_refuses_what_slips_past_the_load_check(service: Service) -> None:
    template = service.base + "/ok/{{ labels | attr('__class__') }}"
    provider = HttpProbeProvider(HttpProbeSettings(probes=[HttpProbe(url=template)]))
    with pytest.raises(ProviderError, match="SecurityError"):
        await provider.run(Check("h", "http", "probe", ""), context({}))
    await provider.close()
    assert service.requests == []


@pytest.mark.parametrize(
    ("service_label", "why"),
    [
        ("evil.example/x?", "not a host name"),
        ("evil.example#", "not a host name"),
        ("user@evil.example", "not a host name"),
        ("-oops", "not a host name"),
    ],
)
async def test_a_label_value_cannot_change_the_host_probed(
    service: Service, service_label: str, why: str
) -> None:
    port = service.base.rsplit(":", 1)[1]
    template = "http://{{ labels.service }}.127.0.0.1.nip.invalid:" + port + "/ok"
    provider = HttpProbeProvider(HttpProbeSettings(probes=[HttpProbe(url=template)]))
    with pytest.raises(ProviderError, match=why):
        await provider.run(Check("h", "http", "probe", ""), context({"service": service_label}))
    await provider.close()
    assert service.requests == []


async def test_values_in_the_path_and_query_are_encoded_and_an_address_may_be_the_host(
    service: Service,
) -> None:
    host = service.base.removeprefix("http://")  # 127.0.0.1:port, as an instance label
    template = "http://{{ labels.instance }}/ok/{{ labels.pod }}?ns={{ labels.namespace }}"
    provider = HttpProbeProvider(HttpProbeSettings(probes=[HttpProbe(url=template)]))
    labels = {"instance": host, "pod": "a/b?c=1#d", "namespace": "x&y=z"}
    outcome = await provider.run(Check("h", "http", "probe", ""), context(labels))
    await provider.close()
    (probe,) = outcome.facts["probes"]
    assert probe["url"] == f"http://{host}/ok/a/b%3Fc=1%23d?ns=x%26y%3Dz"
    assert service.requests == [("GET", "/ok/a/b%3Fc=1%23d?ns=x%26y%3Dz")]
