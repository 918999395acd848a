"""The Slack sink through the real slack-sdk client against a fake Slack over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router.config import BUILTIN_TEMPLATES, SlackSettings
from router.delivery import Delivery
from router.integrations.slack.sink import SlackSink
from router.library import RunbookLibrary
from router.store import Store, open_store
from router.triage import Classification, Evidence, Finding, Routing, RunbookLink, Verdict
from tests.harness.fake_slack import TOKEN, FakeSlack, triage_result

RUNBOOKS = Path(__file__).resolve().parents[3] / "runbooks"


def make_sink(fake: FakeSlack, store: Store, **settings: Any) -> SlackSink:
    values = {
        "bot_token": TOKEN,
        "api_url": f"{fake.base_url}/api/",
        "rate_per_second": 1000,  # the limiter has tests of its own
        "burst": 100,
        **settings,
    }
    return SlackSink(SlackSettings(**values), store, BUILTIN_TEMPLATES)


async def deliver(sink: SlackSink, deliveries: list[Delivery]) -> list[Any]:
    return [await sink.send(d) for d in deliveries]


def full_result(status: str = "firing", starts_at: str = "2026-11-22T03:25:00Z") -> Any:
    library = RunbookLibrary.load([RUNBOOKS])
    section = library.get("database-saturation.md#runbook-1-database-connection-saturation")
    assert section is not None
    verdict = Verdict(
        summary="One application holds 80% of connections",
        rule="one_app",
        runbook=RunbookLink(title="One application holds most connections", url="https://rb/x#one"),
    )
    findings = [
        Finding(title="pg: 96 of 100 connections used", source="postgres", severity="critical"),
        Finding(title="Top holder: checkout", source="postgres", verdict=verdict),
        Finding(
            title="Alert expression still true now",
            source="prometheus",
            evidence=[
                Evidence(
                    kind="series",
                    label="pg_conn_ratio > 0.8",
                    points=[(1.8e9, 0.5), (1.8e9 + 60, 0.9)],
                )
            ],
        ),
    ]
    return triage_result(
        status,
        name="DatabaseConnectionSaturation",
        starts_at=starts_at,
        runbook=library.excerpt(section),
        findings=findings,
        classification=Classification(
            category="db_saturation", matched_by="runbook", reasons=["declared by the runbook"]
        ),
        labels={"service": "checkout", "pod": "db-0"},
        annotations={"summary": "Connections near the limit", "dashboard": "https://grafana/d/pg"},
    )


def top_posts(fake: FakeSlack) -> list[Any]:
    return [c for c in fake.requests("chat.postMessage") if "thread_ts" not in c.body]


async def test_lifecycle_posts_once_then_edits_in_place_and_replies_in_thread(
    fake: FakeSlack, store: Store
) -> None:
    sink = make_sink(fake, store)
    firing = full_result()
    responses = await deliver(sink, sink.render(firing))
    ts = responses[0]["ts"]
    ref = await store.messages.get(firing.alert.fingerprint, "slack")
    assert ref == {
        "channel": "C0ALERTS1",
        "ts": ts,
        "posted_by": firing.alert.state_key,
        "permalink": f"https://fake.slack.com/archives/C0ALERTS1/p{ts.replace('.', '')}",
    }
    post = top_posts(fake)[0].body
    assert post["channel"] == "#alerts"
    assert post["unfurl_links"] is False and post["unfurl_media"] is False
    assert post["metadata"] == {
        "event_type": "runbook_router_alert",
        "event_payload": {
            "key": f"slack:publish:{firing.alert.state_key}",
            "fingerprint": firing.alert.fingerprint,
        },
    }
    assert post["text"].startswith("[FIRING] DatabaseConnectionSaturation (critical)")
    attachment = post["attachments"][0]
    assert attachment["color"] == "#e01e5a"
    kinds = [b["type"] for b in attachment["blocks"]]
    assert kinds[0] == "header" and kinds[-1] == "actions"
    assert attachment["blocks"][0]["text"]["text"] == (
        ":red_circle: FIRING · critical · DatabaseConnectionSaturation"
    )
    texts = "\n".join(b.get("text", {}).get("text", "") for b in attachment["blocks"])
    assert (
        "*Verdicts*\n:dart: One application holds 80% of connections → <https://rb/x#one|" in texts
    )
    assert texts.index("Verdicts") < texts.index("*Findings*")
    buttons = {e["action_id"]: e for e in attachment["blocks"][-1]["elements"]}
    assert buttons["open_dashboard"]["url"] == "https://grafana/d/pg"
    assert buttons["rerun_diagnostics"]["value"] == firing.alert.fingerprint
    assert buttons["open_silence"]["url"].startswith(
        "http://alertmanager:9093/#/silences/new?filter=%7Balertname%3D%22DatabaseConnectionSaturation%22%2Cnamespace%3D%22shop%22"
    )

    replies = [c.body for c in fake.requests("chat.postMessage") if "thread_ts" in c.body]
    assert replies and all(r["thread_ts"] == ts and r["channel"] == "C0ALERTS1" for r in replies)
    assert any("*Findings*" in b["text"]["text"] for r in replies for b in r["blocks"])
    upload = fake.requests("files.completeUploadExternal")[0].body
    assert (upload["channel_id"], upload["thread_ts"]) == ("C0ALERTS1", ts)
    assert [c.method for c in fake.calls if c.method.startswith(("files", "upload"))] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert fake.requests("upload")[0].body["bytes"].startswith(b"\x89PNG\r\n\x1a\n")

    resolved = full_result("resolved")
    await deliver(sink, sink.render(resolved))
    message = fake.top_level("#alerts")[0]
    assert message["attachments"][0]["color"] == "#2eb886"
    assert message["text"].startswith("[RESOLVED]")
    assert "*resolved 03:42 UTC* after 17 min" in str(message["attachments"])
    thread = fake.thread("#alerts", ts)
    assert (
        thread[-2]["blocks"][0]["text"]["text"]
        == ":white_check_mark: Resolved at 03:42 UTC after 17 min"
    )

    again = full_result(starts_at="2026-11-22T04:10:00Z")
    await deliver(sink, sink.render(again))
    assert len(top_posts(fake)) == 1
    updates = fake.requests("chat.update")
    assert len(updates) == 2 and {u.body["ts"] for u in updates} == {ts}
    assert fake.top_level("#alerts")[0]["attachments"][0]["color"] == "#e01e5a"
    texts = [m["blocks"][0]["text"]["text"] for m in fake.thread("#alerts", ts) if m.get("blocks")]
    assert ":fire: Firing again since 04:10 UTC" in texts


async def test_deliveries_have_unique_keys_and_the_expected_actions(
    fake: FakeSlack, store: Store
) -> None:
    deliveries = make_sink(fake, store).render(full_result())
    keys = [d.key for d in deliveries]
    assert len(set(keys)) == len(keys)
    state = full_result().alert.state_key
    assert keys[0] == f"slack:publish:{state}"
    assert keys[1] == f"slack:reply:{state}:0"
    assert keys[-1] == f"slack:graph:{state}"


async def test_no_graph_without_enough_points(fake: FakeSlack, store: Store) -> None:
    deliveries = make_sink(fake, store).render(triage_result())
    assert [d.action for d in deliveries] == ["publish", "reply"]


@pytest.mark.parametrize(
    ("settings", "routing", "labels", "expected"),
    [
        ({}, "#db-oncall", {}, "#db-oncall"),
        ({"channel_template": "#alerts-{{ labels.team }}"}, None, {"team": "pay"}, "#alerts-pay"),
        ({"channel_template": "#alerts-{{ labels.team }}"}, None, {}, "#alerts"),
        ({"default_channel": "C0DEFAULT"}, None, {}, "C0DEFAULT"),
    ],
)
async def test_channel_selection(
    fake: FakeSlack,
    store: Store,
    settings: dict[str, str],
    routing: str | None,
    labels: dict[str, str],
    expected: str,
) -> None:
    fake.add_channel(expected)
    sink = make_sink(fake, store, **settings)
    result = triage_result(
        labels=labels, classification=Classification(routing=Routing(slack_channel=routing))
    )
    await deliver(sink, sink.render(result))
    assert top_posts(fake)[0].body["channel"] == expected


async def test_one_message_per_group(fake: FakeSlack, store: Store) -> None:
    sink = make_sink(fake, store, message_per="group")
    first = triage_result(fingerprint="aaaa")
    second = triage_result(fingerprint="bbbb", labels={"pod": "api-2"})
    await deliver(sink, sink.render(first))
    await deliver(sink, sink.render(second))
    assert len(top_posts(fake)) == 1
    ts = fake.top_level("#alerts")[0]["ts"]
    line = fake.thread("#alerts", ts)[-1]["blocks"][0]["text"]["text"]
    assert line.startswith(":fire: *HighLatency* firing since 03:25 UTC") and "pod=`api-2`" in line


async def test_crash_between_post_and_record_is_recovered_from_metadata(
    fake: FakeSlack, store: Store, tmp_path: Path
) -> None:
    result = full_result()
    publish, first_reply, *rest = make_sink(fake, store).render(result)
    lost = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'lost.db'}")
    try:  # the process that posted died before its store recorded anything
        dying = make_sink(fake, lost)
        await dying.send(publish)
        await dying.send(first_reply)
        await dying.send(rest[-1])  # the graph
    finally:
        await lost.close()
    assert await store.messages.get(result.alert.fingerprint, "slack") is None

    restarted = make_sink(fake, store)
    assert await restarted.already_delivered(publish) is True
    ref = await store.messages.get(result.alert.fingerprint, "slack")
    assert ref is not None and ref["ts"] == fake.top_level("#alerts")[0]["ts"]
    assert ref["permalink"].startswith("https://fake.slack.com/archives/C0ALERTS1/")
    assert await restarted.already_delivered(first_reply) is True
    assert await restarted.already_delivered(rest[-1]) is True  # found by its file name
    assert await restarted.already_delivered(rest[0]) is False
    history = fake.requests("conversations.history")[0].body
    assert history["include_all_metadata"] == "1" and history["limit"] == "200"
    await deliver(restarted, rest[:-1])
    assert len(top_posts(fake)) == 1
    assert len(fake.requests("files.completeUploadExternal")) == 1


async def test_a_post_that_never_landed_is_not_found(fake: FakeSlack, store: Store) -> None:
    sink = make_sink(fake, store)
    publish = sink.render(triage_result())[0]
    assert await sink.already_delivered(publish) is False
    assert fake.requests("conversations.list")  # "#alerts" was looked up by name once


async def test_an_update_is_redone_after_a_crash(fake: FakeSlack, store: Store) -> None:
    sink = make_sink(fake, store)
    await deliver(sink, sink.render(triage_result()))
    update = sink.render(triage_result("resolved"))[0]
    assert await sink.already_delivered(update) is False
