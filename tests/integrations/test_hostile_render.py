"""What the renderers make of hostile alert text: Slack gets it escaped, PagerDuty plain.

Slack parses ``<!channel>``, ``<@U…>`` and ``<url|text>`` in every mrkdwn text field,
the top-level notification ``text`` included; none may come from alert data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.config import BUILTIN_TEMPLATES, Settings
from router.integrations.console import ConsoleSink
from router.integrations.pagerduty import render as pd
from router.integrations.slack import blocks as kit
from router.integrations.slack.flow import Storm
from router.integrations.slack.message import SlackMessages, hhmm
from router.render.limits import MAX_SHOWN
from router.service import build_pipeline, load_components
from router.triage import Classification, Finding, Verdict
from tests.harness.fake_slack import triage_result

MESSAGES = SlackMessages(BUILTIN_TEMPLATES)
GROUPED = SlackMessages(BUILTIN_TEMPLATES, per_group=True)
CONTROLS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U024BE7LH>",
    "<https://evil.example|click me>",
]


def mrkdwn_texts(message: Any, top: bool = True) -> Iterator[str]:
    """Every text Slack parses as mrkdwn: the top-level ``text`` and mrkdwn objects."""
    if isinstance(message, dict):
        if top and isinstance(message.get("text"), str):
            yield message["text"]
        if message.get("type") == "mrkdwn":
            yield message["text"]
        for key, value in message.items():
            if key != "text" or not top:
                yield from mrkdwn_texts(value, top=False)
    elif isinstance(message, list):
        for item in message:
            yield from mrkdwn_texts(item, top=False)


def everything(result: Any) -> list[Any]:
    """Every message the Slack sink can build for ``result``."""
    return [
        MESSAGES.message(result),
        GROUPED.message(result),
        *MESSAGES.first_replies(result),
        MESSAGES.change_reply(result),
        GROUPED.change_reply(result),
        *MESSAGES.retriage_replies(result, "someone <!here>"),
        MESSAGES.retriage_response(result, "someone"),
    ]


def hostile_result(text: str, status: str = "firing") -> Any:
    verdict = Verdict(rule="r", summary=text)
    findings = [
        Finding(title=text, source=text, severity="warning", verdict=verdict),
        Finding(title=text, source="kubernetes"),
    ]
    return triage_result(
        status,
        name=f"Name{text}",
        labels={"namespace": text, "pod": text, "service": text},
        annotations={"summary": text, "description": f"more {text}"},
        classification=Classification(category="latency", rule=text, reasons=[text]),
        findings=findings,
    )


def assert_no_control_sequence(message: Any) -> None:
    for text in mrkdwn_texts(message):
        for mark in ("<!", "<@", "<#", "<https://evil"):
            assert mark not in text, (mark, text)


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_control_sequences_in_alert_text_are_escaped_in_every_field(
    control: str, status: str
) -> None:
    result = hostile_result(control, status)
    messages = everything(result)
    for message in messages:
        assert_no_control_sequence(message)
    top = MESSAGES.message(result)["text"]
    assert control.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in top


def test_the_storm_summary_escapes_alert_names() -> None:
    storm = Storm(channel="#alerts", started=0.0, last_added=0.0)
    storm.add("k1", "<!channel>", "latency", "<!channel> line", 0.0)
    assert_no_control_sequence(MESSAGES.storm(storm))


def test_the_header_is_plain_text_and_shown_as_written() -> None:
    (header,) = [
        b
        for b in MESSAGES.message(hostile_result("a & b"))["attachments"][0]["blocks"]
        if b["type"] == "header"
    ]
    assert header["text"]["type"] == "plain_text" and "Namea & b" in header["text"]["text"]


def test_pagerduty_stays_plain_text() -> None:
    result = hostile_result("<!channel> & co")
    assert "<!channel> & co" in pd.summary(result)
    assert "<!channel> & co" in pd.note_text(result)


def test_times_are_shown_in_utc_whatever_the_offset() -> None:
    result = triage_result(starts_at="2026-11-22T09:58:00+02:00")
    assert hhmm(result.alert.startsAt) == "07:58 UTC"
    assert "firing since 07:58 UTC" in GROUPED.change_reply(result)["text"]


async def test_an_alert_with_5000_labels_is_triaged_and_rendered_within_every_limit() -> None:
    labels = {f"label_{i:05d}": f"value-{i}-{'x' * 40}" for i in range(5000)}
    wide = triage_result(labels=labels, annotations={"summary": "wide", "big": "y" * 100_000})
    pipeline = build_pipeline(Settings(), load_components(Settings()), [])
    result = await pipeline.triage(wide)
    assert result.classification.reasons and result.runbook is not None
    assert [f.title for f in result.findings] == [
        "Not checked: Prometheus, Kubernetes API (not configured)"
    ]
    message = MESSAGES.message(result)
    buttons = [
        e
        for b in message["attachments"][0]["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert all(len(e.get("url", "")) <= kit.URL for e in buttons)
    assert any("silences/new" in e.get("url", "") for e in buttons)
    details = pd.custom_details(result)
    assert len(details["labels"]) == MAX_SHOWN + 1 and details["labels"]["…"] == "4953 more"
    assert len(details["annotations"]["big"]) <= 500
    assert len(json.dumps(pd.trigger_event(result))) < 64 * 1024
    console = ConsoleSink(BUILTIN_TEMPLATES).render_text(result)
    assert "label_00040=" in console and "label_04999" not in console


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("<>&!@#|: hU0-*_`~\n"), max_size=40))
def test_no_alert_text_becomes_slack_markup(text: str) -> None:
    for message in everything(hostile_result(text)):
        assert_no_control_sequence(message)
        for part in mrkdwn_texts(message):
            # a "<" in a text field is only ever a link the router made itself
            for piece in part.split("<")[1:]:
                assert piece.startswith(("http://", "https://")), part


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_any_alert_text_renders(text: str) -> None:
    result = hostile_result(text)
    for message in everything(result):
        assert json.dumps(message)
    assert len(pd.summary(result)) <= 1024
    assert pd.note_text(result)
