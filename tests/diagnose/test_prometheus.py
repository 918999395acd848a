"""The Prometheus provider against a real Prometheus scraping a test exporter."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote

import pytest

from router.alerts import Alert
from router.config import PrometheusSettings
from router.diagnose.base import AlertContext, Check, ProviderError
from router.diagnose.prometheus import PrometheusProvider, expression_unit, split_threshold
from router.triage import Classification
from tests.harness.prometheus import PrometheusServer
from tests.harness.quiet_http import QuietHTTPServer
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
    return AlertContext(alert, Classification(), datetime.now(UTC), time.monotonic() + seconds)


@pytest.fixture
async def provider(prometheus: PrometheusServer, traffic: None) -> PrometheusProvider:
    await prometheus.wait_for_sample(f"({RATIO}) > 0")
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
    assert outcome.findings[0].title.endswith("(code=200)")


async def test_range_sees_a_rising_trend(provider: PrometheusProvider, prometheus) -> None:
    await prometheus.wait_for_sample("count_over_time(work_queue_depth[1m]) > 4")
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
    assert still.facts["threshold"] == 0.05 and still.facts["operator"] == ">"
    # A ratio reads as a percentage, like its trend line: "10% (> 5%)", not "0.1 (> 0.05)".
    assert re.fullmatch(
        r"Alert expression still true now: \d+(\.\d+)?% \(> 5%\)", still.findings[0].title
    )
    assert re.search(r"^(rising|falling|flat) .*\d%", still.findings[0].evidence[0].text)
    assert still.findings[0].severity == "warning"
    gone = await provider.run(check, context(f"({RATIO}) > 0.5"))
    assert gone.facts["firing_now"] is False
    # The measured side is still shown and graphed, though the comparison filters it out.
    assert gone.facts["value"] == pytest.approx(0.1, abs=0.02)
    assert gone.facts["points"] >= 2 and gone.facts["max"] < 0.5
    title = gone.findings[0].title
    assert re.fullmatch(r"Alert expression no longer true now: [\d.]+% \(threshold > 50%\)", title)
    graph = [e for e in gone.findings[0].evidence if e.kind == "series"]
    assert graph and graph[0].points[-1][1] == pytest.approx(0.1, abs=0.02)


async def test_alert_expression_without_a_threshold(provider: PrometheusProvider) -> None:
    check = Check("e", "prometheus", "alert_expression", "", {"minutes": 1})
    outcome = await provider.run(check, context('absent(up{job="nope"})'))
    assert outcome.facts["firing_now"] is True and outcome.facts["threshold"] is None
    assert outcome.facts["value"] == 1


@pytest.mark.parametrize(
    ("expression", "unit"),
    [
        ('sum(rate(x{code=~"5.."}[5m])) / sum(rate(x[5m])) > 0.05', "ratio"),
        ("(a / b) < 0.2", "ratio"),
        ("rate(bytes_total[5m]) / 1024 > 500", ""),
        ("sum(pg_stat_activity_count) / sum(pg_settings_max_connections) * 100 > 80", "percent"),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m]))) > 0.5", "seconds"),
        (
            "rate(req_duration_seconds_sum[5m]) / rate(req_duration_seconds_count[5m]) > 0.3",
            "seconds",
        ),
        ("up == 0", ""),
    ],
)
def test_the_unit_of_an_alert_expression_comes_from_its_shape(expression: str, unit: str) -> None:
    threshold = split_threshold(expression)
    assert threshold is not None
    assert expression_unit(threshold.measured, threshold) == unit


@pytest.mark.parametrize(
    ("query", "value", "shown"),
    [("vector(0) / 0", None, "NaN"), ("vector(1) / 0", float("inf"), "+Inf")],
)
async def test_nan_and_inf_answers(provider: PrometheusProvider, query, value, shown) -> None:
    outcome = await provider.run(
        Check("q", "prometheus", "query", "Odd", {"query": query}), context()
    )
    assert outcome.facts["value"] == value and outcome.facts["values"][0]["value"] == value
    assert outcome.findings[0].title == f"Odd: {shown}"


async def test_histogram_quantile_in_milliseconds(provider, prometheus, exporter) -> None:
    exporter.histogram("rpc_seconds", {"service": "pay"}, {0.1: 10, 0.5: 80, 1.0: 10}, total=40)
    query = 'histogram_quantile(0.5, rpc_seconds_bucket{service="pay"})'
    await prometheus.wait_for_sample(query)
    check = Check("p50", "prometheus", "query", "p50", {"query": query, "unit": "seconds"})
    outcome = await provider.run(check, context())
    assert outcome.facts["value"] == pytest.approx(0.3)
    assert outcome.findings[0].title == "p50: 300 ms"


async def test_query_limits_the_table_and_names_the_top_series(provider, exporter, prometheus):
    for n in range(12):
        exporter.set("tenant_load", {"tenant": f"t{n:02}", "zone": "a"}, n)
    await prometheus.wait_for_sample("count(tenant_load) == 12")
    check = Check(
        "l", "prometheus", "query", "Load", {"query": "tenant_load", "limit": 3, "crit_above": 10}
    )
    outcome = await provider.run(check, context())
    (finding,) = outcome.findings
    assert finding.title == "Load: 11 (tenant=t11)" and finding.severity == "critical"
    table = finding.evidence[0]
    assert table.columns == ["tenant", "value"] and table.label == "top 3 of 12 series"
    assert table.rows == [["t11", "11"], ["t10", "10"], ["t09", "9"]]
    assert outcome.facts["series"] == 12 and len(outcome.facts["values"]) == 12


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

    def __init__(self, status: int = 200, body: object = None, hang: float = 0) -> None:
        self.headers: list[str | None] = []
        answer = body if body is not None else {"status": "success", "data": EMPTY}
        raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.headers.append(self.headers.get("Authorization"))
                time.sleep(hang)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


EMPTY = {"resultType": "vector", "result": []}
UP = Check("q", "prometheus", "query", "", {"query": "up"})


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder()
    yield made
    made.close()


async def test_bearer_and_basic_auth_are_sent(recorder: Recorder) -> None:
    bearer = PrometheusProvider(PrometheusSettings(url=recorder.url, token="prom-t0ken"))
    basic = PrometheusProvider(PrometheusSettings(url=recorder.url, username="u", password="pw"))
    await bearer.run(UP, context())
    await basic.run(UP, context())
    assert recorder.headers == ["Bearer prom-t0ken", "Basic " + base64.b64encode(b"u:pw").decode()]
    await bearer.close()
    await basic.close()


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (401, b"unauthorized", "Prometheus: 401 Unauthorized"),
        (403, b"", "Prometheus: 403 Forbidden"),
        (502, b"<html>bad gateway</html>", "Prometheus: HTTP 502, not a Prometheus API answer"),
        (200, b"[]", "Prometheus: HTTP 200, not a Prometheus API answer"),
        (
            422,
            {"status": "error", "errorType": "execution", "error": "token=prom-t0ken leaked"},
            "Prometheus: token=*** leaked",
        ),
    ],
)
async def test_error_answers_are_short_and_never_show_the_token(status, body, message) -> None:
    server = Recorder(status, body)
    provider = PrometheusProvider(PrometheusSettings(url=server.url, token="prom-t0ken"))
    with pytest.raises(ProviderError) as info:
        await provider.run(UP, context())
    assert str(info.value) == message
    await provider.close()
    server.close()


async def test_warnings_are_published_and_shown() -> None:
    answer = {"status": "success", "data": EMPTY, "warnings": ["partial response: store down"]}
    server = Recorder(body=answer)
    provider = PrometheusProvider(PrometheusSettings(url=server.url))
    outcome = await provider.run(UP, context())
    assert outcome.facts["warnings"] == ["partial response: store down"]
    assert outcome.facts["empty"] is True and outcome.findings[0].title == "Query: no data"
    (note,) = outcome.findings[0].evidence
    assert note.text == "partial response: store down"
    await provider.close()
    server.close()


async def test_a_slow_prometheus_is_cut_off_at_the_timeout() -> None:
    slow = Recorder(hang=5)
    provider = PrometheusProvider(
        PrometheusSettings(url=slow.url, timeout_seconds=0.3, token="secret-tok")
    )
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await provider.run(UP, context())
    assert time.monotonic() - started < 2
    assert str(info.value) == "Prometheus: timed out after 0.3 s"
    await provider.close()
    slow.close()


async def test_the_alert_deadline_shortens_the_timeout() -> None:
    slow = Recorder(hang=5)
    provider = PrometheusProvider(PrometheusSettings(url=slow.url, timeout_seconds=30))
    started = time.monotonic()
    with pytest.raises(ProviderError, match=r"timed out after 0\.[34]"):
        await provider.run(UP, context(seconds=0.4))
    assert time.monotonic() - started < 1.5
    with pytest.raises(ProviderError, match="no time left"):
        await provider.run(UP, context(seconds=0))
    await provider.close()
    slow.close()


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (Check("x", "prometheus", "query", "", {}), "needs a 'query' parameter"),
        (Check("x", "prometheus", "range", "", {"query": "up", "minutes": "an hour"}), "minutes"),
        (Check("x", "prometheus", "delete_series", "", {}), "unknown check kind"),
    ],
)
async def test_bad_checks_are_provider_errors(recorder: Recorder, check, message) -> None:
    provider = PrometheusProvider(PrometheusSettings(url=recorder.url))
    with pytest.raises(ProviderError, match=message):
        await provider.run(check, context())
    assert recorder.headers == []
    await provider.close()
