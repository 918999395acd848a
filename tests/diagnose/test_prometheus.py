"""The Prometheus provider against a real Prometheus scraping a test exporter."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

from router.alerts import Alert
from router.config import PrometheusSettings
from router.diagnose.base import AlertContext, Check, ProviderError
from router.diagnose.prometheus import PrometheusProvider
from router.triage import Classification
from tests.harness.prometheus import PrometheusServer
from tests.procs import free_port

RATIO = 'sum(rate(http_requests_total{code=~"5.."}[10s])) / sum(rate(http_requests_total[10s]))'


def context(expr: str | None = None, seconds: float = 5.0) -> AlertContext:
    url = f"http://prometheus/graph?g0.expr={quote(expr)}&g0.tab=1" if expr else ""
    alert = Alert(
        status="firing",
        labels={"alertname": "T"},
        startsAt="2026-11-22T03:00:00Z",
        generatorURL=url,
    )
    from datetime import UTC, datetime

    return AlertContext(alert, Classification(), datetime.now(UTC), time.monotonic() + seconds)


@pytest.fixture
async def provider(prometheus: PrometheusServer) -> PrometheusProvider:
    prometheus.wait_for(f"({RATIO}) > 0")
    made = PrometheusProvider(PrometheusSettings(url=prometheus.url))
    yield made
    await made.close()


async def test_instant_query_reports_the_5xx_ratio(provider: PrometheusProvider) -> None:
    check = Check(
        "ratio",
        "prometheus",
        "query",
        "5xx ratio",
        {"query": RATIO, "unit": "ratio", "warn_above": 0.05},
    )
    outcome = await provider.run(check, context())
    assert outcome.facts["value"] == pytest.approx(0.1, abs=0.02)
    assert outcome.facts["series"] == 1 and not outcome.facts["empty"]
    (finding,) = outcome.findings
    assert finding.title.startswith("5xx ratio: 10") and finding.title.endswith("%")
    assert finding.severity == "warning"


async def test_query_table_shows_the_labels_that_differ(provider: PrometheusProvider) -> None:
    query = "sum by (code) (rate(http_requests_total[10s]))"
    outcome = await provider.run(
        Check("c", "prometheus", "query", "by code", {"query": query}), context()
    )
    assert [v["labels"]["code"] for v in outcome.facts["values"]] == ["200", "500"]
    table = outcome.findings[0].evidence[0]
    assert table.columns == ["code", "value"] and table.rows[0][0] == "200"


async def test_range_sees_a_rising_trend(provider: PrometheusProvider, prometheus) -> None:
    prometheus.wait_for("count_over_time(work_queue_depth[1m]) > 4")
    check = Check(
        "q", "prometheus", "range", "Queue", {"query": "work_queue_depth", "minutes": 1, "step": 1}
    )
    outcome = await provider.run(check, context())
    facts = outcome.facts
    assert facts["trend"] == "rising" and facts["last"] > facts["first"]
    assert facts["points"] >= 4 and len(facts["samples"][0]) == 2
    assert "rising from" in outcome.findings[0].title


async def test_alert_expression_still_true_and_no_longer_true(provider: PrometheusProvider) -> None:
    check = Check("e", "prometheus", "alert_expression", "Expression", {"minutes": 1})
    still = await provider.run(check, context(f"({RATIO}) > 0.05"))
    assert still.facts["firing_now"] is True and still.facts["value"] == pytest.approx(
        0.1, abs=0.02
    )
    gone = await provider.run(check, context(f"({RATIO}) > 0.5"))
    assert gone.facts["firing_now"] is False
    assert gone.findings[0].title == "Alert expression no longer true now"


async def test_alert_without_expression_is_a_clear_error(provider: PrometheusProvider) -> None:
    with pytest.raises(ProviderError, match="no expression"):
        await provider.run(Check("e", "prometheus", "alert_expression", ""), context())


async def test_bad_query_reports_prometheus_message(provider: PrometheusProvider) -> None:
    with pytest.raises(ProviderError, match="parse error"):
        await provider.run(Check("q", "prometheus", "query", "", {"query": "sum(("}), context())


async def test_prometheus_down_fails_fast() -> None:
    down = PrometheusProvider(PrometheusSettings(url=f"http://127.0.0.1:{free_port()}"))
    started = time.monotonic()
    with pytest.raises(ProviderError, match="connection refused"):
        await down.run(Check("q", "prometheus", "query", "", {"query": "up"}), context())
    assert time.monotonic() - started < 2
    await down.close()


class Recorder:
    """A loopback server answering like Prometheus (or never), recording Authorization."""

    def __init__(self, hang: bool = False) -> None:
        self.headers: list[str | None] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.headers.append(self.headers.get("Authorization"))
                if hang:
                    time.sleep(5)
                body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder()
    yield made
    made.server.shutdown()


async def test_bearer_and_basic_auth_are_sent(recorder: Recorder) -> None:
    bearer = PrometheusProvider(PrometheusSettings(url=recorder.url, token="prom-t0ken"))
    basic = PrometheusProvider(PrometheusSettings(url=recorder.url, username="u", password="pw"))
    check = Check("q", "prometheus", "query", "", {"query": "up"})
    await bearer.run(check, context())
    await basic.run(check, context())
    assert recorder.headers == ["Bearer prom-t0ken", "Basic " + base64.b64encode(b"u:pw").decode()]
    await bearer.close()
    await basic.close()


async def test_a_slow_prometheus_is_cut_off_at_the_timeout() -> None:
    slow = Recorder(hang=True)
    provider = PrometheusProvider(
        PrometheusSettings(url=slow.url, timeout_seconds=0.3, token="secret-tok")
    )
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await provider.run(Check("q", "prometheus", "query", "", {"query": "up"}), context())
    assert time.monotonic() - started < 2
    assert "timed out after 0.3 s" in str(info.value) and "secret-tok" not in str(info.value)
    await provider.close()
    slow.server.shutdown()
