"""``runbook-router serve`` delivering to Slack and PagerDuty, end to end.

The router runs as a real process with its durable store; the fake Slack and the fake
PagerDuty (over TLS, trusted through ``pagerduty.ca_file``) answer through the real
slack-sdk and pagerduty clients. Every test ends by counting what arrived: one Slack
message and one PagerDuty incident per alert, whatever happened on the way.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import Response

from router.alerts import Alert
from router.integrations.pagerduty.render import dedup_key
from tests import factories
from tests.e2e.delivery import FROM, ROUTING_KEY, RUNBOOKS_URL, DeliveryStack
from tests.harness.fake_slack import FakeSlack

pytestmark = pytest.mark.timeout(120)

LATENCY_EXPR = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{job="checkout"}[5m]))) > 0.8'
)


def latency_alert(status: str = "firing", name: str = "CheckoutLatencyHigh") -> dict[str, Any]:
    return factories.alert(
        name,
        status=status,
        labels={"namespace": "shop", "service": "checkout", "severity": "critical"},
        annotations={"summary": "checkout p99 above 800ms", "runbook_url": "latency.md"},
        expr=LATENCY_EXPR,
    )


def key_of(raw: dict[str, Any]) -> str:
    return dedup_key(Alert.model_validate(raw))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DeliveryStack]:
    built = DeliveryStack(tmp_path)
    yield built
    built.close()


def test_firing_then_resolved_is_one_message_edited_and_one_incident(
    stack: DeliveryStack,
) -> None:
    firing = latency_alert()
    # The same webhook three times, two of them at once: one alert state.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(lambda _: stack.post(firing).status_code, range(2)))
    assert statuses == [202, 202] and stack.post(firing).status_code == 202

    message = stack.wait(lambda: stack.message_for("CheckoutLatencyHigh"), "the Slack message")
    incident = stack.wait(lambda: stack.pagerduty.by_key(key_of(firing)), "the incident")[0]
    stack.wait(lambda: incident.notes, "the incident note")
    replies = stack.wait(lambda: stack.thread(message), "the runbook in the thread")

    text = str(message)
    assert message["text"].startswith("[FIRING] CheckoutLatencyHigh")
    assert "CheckoutLatencyHigh" in text and "checkout p99 above 800ms" in text
    assert "latency" in text.lower()
    assert any("runbook" in str(reply).lower() for reply in replies)
    trigger = stack.pagerduty.events()[0]
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == ROUTING_KEY
    assert trigger["payload"]["severity"] == "critical"
    runbook = trigger["links"][0]
    assert runbook["href"].startswith(f"{RUNBOOKS_URL}/latency.md#"), runbook
    assert runbook["href"] in text  # the same link is a button on the Slack message
    assert (
        stack.pagerduty.calls("POST", f"/incidents/{incident.id}/notes")[0].headers["from"] == FROM
    )

    assert stack.post(latency_alert("resolved")).status_code == 202
    stack.wait(lambda: incident.status == "resolved", "the incident resolved")
    edited = stack.wait(
        lambda: (m := stack.message_for("CheckoutLatencyHigh")) and "edited" in m and m,
        "the message edited in place",
    )
    assert edited["text"].startswith("[RESOLVED] CheckoutLatencyHigh")
    header = edited["attachments"][0]["blocks"][0]["text"]["text"]
    assert "RESOLVED" in header and "resolved 10:30 UTC" in str(edited["attachments"])
    stack.wait(lambda: len(stack.thread(message)) > len(replies), "the resolve told in the thread")

    assert len(stack.messages()) == 1  # edited, never posted again
    assert len(stack.slack.requests("chat.update")) == 1
    assert [e["event_action"] for e in stack.pagerduty.events()] == ["trigger", "resolve"]
    assert {e["dedup_key"] for e in stack.pagerduty.events()} == {incident.incident_key}
    assert len(incident.notes) == 1


def test_transient_failures_end_in_exactly_one_delivery(stack: DeliveryStack) -> None:
    stack.slack.fail("chat.postMessage", status=500)
    stack.slack.fail("chat.postMessage", status=429, retry_after=1)
    stack.pagerduty.fail("/v2/enqueue", 500)
    stack.pagerduty.fail("/v2/enqueue", 429, retry_after="1")
    firing = latency_alert()
    assert stack.post(firing).status_code == 202

    stack.wait(lambda: stack.message_for("CheckoutLatencyHigh"), "the Slack message")
    stack.wait(lambda: stack.pagerduty.by_key(key_of(firing)), "the incident")
    stack.post(firing)  # Alertmanager's repeat: changes nothing
    stack.wait(lambda: stack.thread(stack.messages()[0]), "the thread")
    assert len(stack.messages()) == 1
    assert len(stack.slack.requests("chat.postMessage")) >= 3  # two failures, then one post
    triggers = [e for e in stack.pagerduty.events() if e["event_action"] == "trigger"]
    assert len(triggers) == 3 and len(stack.pagerduty.incidents) == 1


def test_a_permanent_slack_error_is_not_retried_and_pagerduty_still_delivers(
    stack: DeliveryStack,
) -> None:
    stack.slack.fail("chat.postMessage", error="channel_not_found")
    firing = latency_alert()
    assert stack.post(firing).status_code == 202
    stack.wait(lambda: stack.pagerduty.by_key(key_of(firing)), "the incident")
    stack.wait(lambda: "channel_not_found" in stack.log_tail(), "the permanent error logged")
    metrics = stack.wait(lambda: _metrics(stack), "metrics")
    assert 'outcome="failed"' in metrics or 'outcome="gave_up"' in metrics
    assert len(stack.slack.requests("chat.postMessage")) == 1
    assert stack.messages() == []


class AnswerLateSlack(FakeSlack):
    """Posts the first alert message, then never answers: the router dies waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.posted = threading.Event()

    async def _chat_postMessage(self, body: dict[str, Any]) -> Response:
        answer = await super()._chat_postMessage(body)
        if not body.get("thread_ts") and not self.posted.is_set():
            self.posted.set()
            await self._hang()
        return answer


def test_killed_between_the_slack_call_and_recording_it_posts_once(tmp_path: Path) -> None:
    stack = DeliveryStack(tmp_path, slack=AnswerLateSlack())
    try:
        assert stack.post(latency_alert()).status_code == 202
        assert stack.slack.posted.wait(30), stack.log_tail()
        stack.router.kill()  # Slack has the message; the router never learned its ts
        stack.start_router()
        message = stack.wait(lambda: stack.message_for("CheckoutLatencyHigh"), "the message")
        stack.wait(lambda: stack.thread(message), "the thread replies after recovery")
        assert stack.post(latency_alert("resolved")).status_code == 202
        stack.wait(lambda: stack.slack.requests("chat.update"), "the edit on resolve")
        assert len(stack.messages()) == 1
        assert stack.slack.requests("conversations.history")  # recovery looked before re-posting
        assert stack.slack.requests("chat.update")[0].body["ts"] == message["ts"]
    finally:
        stack.close()


def _metrics(stack: DeliveryStack) -> str | None:
    import httpx

    text = httpx.get(f"{stack.router.url}/metrics", timeout=5).text
    return text if "runbook_router_deliveries_total" in text else None
