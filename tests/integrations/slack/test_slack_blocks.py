"""Slack's limits hold for every shipped runbook section and for oversized ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from router.config import BUILTIN_TEMPLATES
from router.integrations.slack import blocks as kit
from router.integrations.slack.message import SlackMessages
from router.integrations.slack.mrkdwn import Block, blocks
from router.library import RunbookLibrary
from router.render.silence import silence_url
from router.triage import AlertHistory, Evidence, Finding, RunbookExcerpt, RunbookLink
from tests.harness.fake_slack import triage_result

RUNBOOKS = Path(__file__).resolve().parents[3] / "runbooks"
MESSAGES = SlackMessages(BUILTIN_TEMPLATES)


def check(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Assert every documented limit; return the message's blocks."""
    assert 0 < len(message["text"]) <= kit.FALLBACK_TEXT
    found = list(message.get("blocks", []))
    for attachment in message.get("attachments", []):
        found += attachment["blocks"]
    assert 0 < len(found) <= kit.MAX_BLOCKS
    for block in found:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= kit.HEADER_TEXT
        if block["type"] == "section":
            assert 0 < len(block["text"]["text"]) <= kit.SECTION_TEXT
            assert block["text"]["text"].count("```") % 2 == 0  # fences never cut open
            assert len(block.get("fields", [])) <= kit.MAX_FIELDS
            assert all(len(f["text"]) <= kit.FIELD_TEXT for f in block.get("fields", []))
        if block["type"] == "context":
            assert len(block["elements"]) <= kit.CONTEXT_ELEMENTS
        if block["type"] == "actions":
            for button in block["elements"]:
                assert len(button["text"]["text"]) <= kit.BUTTON_TEXT
                assert len(button.get("url", "")) <= kit.URL
    return found


def section_texts(message: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


def sections() -> list[Any]:
    library = RunbookLibrary.load([RUNBOOKS])
    return [pytest.param(library.excerpt(s), id=f"{s.path}#{s.anchor}") for s in library.sections()]


@pytest.mark.parametrize("excerpt", sections())
def test_every_shipped_runbook_section_fits(excerpt: RunbookExcerpt) -> None:
    result = triage_result(runbook=excerpt, findings=_findings())
    check(MESSAGES.message(result))
    replies = MESSAGES.first_replies(result)
    for reply in replies:
        check(reply)
    check(MESSAGES.change_reply(result))
    if MESSAGES.runbook_is_long(result):
        shown = "\n".join(section_texts(r) for r in replies)
        for part in blocks(excerpt.markdown):
            assert part.text in shown  # the whole section, in order, in the thread


def test_the_message_says_why_this_section() -> None:
    excerpt = RunbookExcerpt(
        link=RunbookLink(title="High latency", url="https://rb/latency"),
        markdown="## High latency\n\nCheck the p99.",
        why="ranked best for this alert (2.1): High latency <the p99>",
    )
    message = MESSAGES.message(triage_result(runbook=excerpt))
    contexts = [e["text"] for b in check(message) if b["type"] == "context" for e in b["elements"]]
    why = "_Why this section: ranked best for this alert (2.1): High latency &lt;the p99&gt;_"
    assert why in contexts
    unexplained = excerpt.model_copy(update={"why": ""})
    shown = str(MESSAGES.message(triage_result(runbook=unexplained)))
    assert "Why this section" not in shown


def test_the_message_says_which_placeholders_were_filled() -> None:
    excerpt = RunbookExcerpt(
        link=RunbookLink(title="Crash loop", url="https://rb/crashloop"),
        markdown="## Crash loop\n\n`kubectl -n shop get pods`",
        why="declares PodCrashLooping",
        filled="Filled from the alert: namespace=shop",
    )
    message = MESSAGES.message(triage_result(runbook=excerpt))
    contexts = [e["text"] for b in check(message) if b["type"] == "context" for e in b["elements"]]
    assert "_Filled from the alert: namespace=shop_" in contexts
    assert contexts.index("_Why this section: declares PodCrashLooping_") + 1 == contexts.index(
        "_Filled from the alert: namespace=shop_"
    )


def test_a_huge_runbook_is_summarised_and_split_at_block_boundaries() -> None:
    code = "\n".join(f"kubectl -n shop get pods --selector=app=api-{i} -o wide" for i in range(300))
    table = "| a | b |\n|---|---|\n" + "\n".join(f"| row{i} | {'x' * 40} |" for i in range(200))
    paragraphs = "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(80))
    markdown = f"## Huge\n\nFirst paragraph.\n\n```bash\n{code}\n```\n\n{table}\n\n{paragraphs}"
    subsections = [
        RunbookLink(title=f"Step {i}", url=f"https://rb/huge#step-{i}") for i in range(30)
    ]
    excerpt = RunbookExcerpt(
        link=RunbookLink(title="Huge", url="https://rb/huge"),
        markdown=markdown,
        subsections=subsections,
    )
    result = triage_result(runbook=excerpt, labels={f"l{i}": "v" * 300 for i in range(30)})
    message = MESSAGES.message(result)
    shown = str(check(message))
    assert (
        "First paragraph." in shown and "Step 29" in shown and "Full runbook in the thread" in shown
    )
    assert "kubectl" not in shown
    replies = MESSAGES.first_replies(result)
    assert len(replies) > 3
    text = "\n".join(section_texts(check(r) and r) for r in replies)
    assert all(f"app=api-{i} " in text for i in range(300))
    assert "Paragraph 79" in text and "row199" in text
    assert replies[0]["text"] == f"Runbook: Huge (1/{len(replies)})"


def test_split_refences_a_code_block_longer_than_a_section() -> None:
    code = Block("code", "```\n" + "\n".join(f"line {i:04d}" for i in range(1000)) + "\n```")
    pieces = kit.split([Block("paragraph", "intro"), code], limit=500)
    assert all(len(p) <= 500 and p.count("```") in (0, 2) for p in pieces)
    assert pieces[0].startswith("intro")
    joined = "".join(pieces)
    assert all(f"line {i:04d}" in joined for i in range(1000))


def test_split_prefers_block_boundaries() -> None:
    parts = [
        Block("paragraph", "a" * 40),
        Block("code", "```\nb\n```"),
        Block("paragraph", "c" * 40),
    ]
    assert kit.split(parts, limit=60) == ["a" * 40 + "\n\n```\nb\n```", "c" * 40]


def test_long_texts_are_clipped() -> None:
    assert kit.header("x" * 500)["text"]["text"] == "x" * 149 + "…"
    assert len(kit.section("y" * 5000)["text"]["text"]) == kit.SECTION_TEXT
    assert kit.clip("ab &amp; cd", 6) == "ab …"
    assert kit.link_button("Open", "https://x/" + "a" * 3000, "open") is None
    assert kit.link_button("Open", "file:///runbooks/x.md", "open") is None


def test_blocks_are_capped_keeping_the_buttons() -> None:
    many = [kit.section(str(i)) for i in range(80)] + [
        kit.actions([kit.value_button("b", "a", "v")])
    ]
    fitted = kit.fit(many)
    assert len(fitted) == kit.MAX_BLOCKS and fitted[-1]["type"] == "actions"


def test_a_long_silence_url_drops_labels_to_fit() -> None:
    labels = {"alertname": "HighLatency", **{f"label{i:02d}": "v" * 200 for i in range(40)}}
    url = silence_url("http://am:9093", labels, kit.URL)
    assert len(url) <= kit.URL and "alertname%3D%22HighLatency%22" in url
    shown = unquote(url.split("filter=")[1])
    assert shown.startswith('{alertname="HighLatency",label00="') and shown.endswith('"}')
    assert 2 < shown.count("label") < 40


def _findings() -> list[Finding]:
    rows = [[f"pod-{i}", "CrashLoopBackOff", str(i)] for i in range(120)]
    return [
        Finding(
            title="Pods restarting",
            source="kubernetes",
            severity="critical",
            evidence=[
                Evidence(
                    kind="table", label="pods", columns=["pod", "reason", "restarts"], rows=rows
                ),
                Evidence(kind="log", label="previous logs", text="panic: boom\n" * 400),
                Evidence(kind="value", label="restarts", value="37"),
            ],
        )
        for _ in range(3)
    ]


@pytest.mark.parametrize("with_runbook", [True, False])
def test_the_message_says_what_the_store_knows_of_earlier_firings(with_runbook: bool) -> None:
    history = AlertHistory(days=7, earlier=3, minutes_to_resolve=[6, 9, 14], last_verdict="a → b")
    excerpt = RunbookExcerpt(link=RunbookLink(title="Latency", url="https://rb/l"), markdown="x")
    result = triage_result(runbook=excerpt if with_runbook else None)
    message = MESSAGES.message(result.model_copy(update={"history": history}))
    contexts = [e["text"] for b in check(message) if b["type"] == "context" for e in b["elements"]]
    text = "4th time in 7 days; resolved after 6\u201314 min (median 9); last time: a → b"
    assert f"_History: {text}_" in contexts
