"""``/triage`` and the re-run button, through real HTTP, the outbox and the fake Slack/PagerDuty."""

from __future__ import annotations

import json
from typing import Any

from tests import factories
from tests.harness.waiting import eventually
from tests.retriage.conftest import CRASHLOOP, Rig

FINGERPRINT = "c0ffee0123456789"


def crashloop(**overrides: Any) -> dict[str, Any]:
    return factories.alert(
        "PodCrashLooping", labels=CRASHLOOP, fingerprint=FINGERPRINT, **overrides
    )


def texts(message: dict[str, Any]) -> str:
    """Every text of a Slack message: its fallback, blocks and attachment blocks."""
    found = [message.get("text") or ""]
    blocks = [*message.get("blocks", [])]
    for attachment in message.get("attachments", []):
        blocks += attachment.get("blocks", [])
    for block in blocks:
        found.append((block.get("text") or {}).get("text", ""))
        found += [e.get("text", "") for e in block.get("elements", []) if isinstance(e, dict)]
    return "\n".join(str(t) for t in found)


async def test_help_list_and_unknown_are_answered_at_once(rig: Rig) -> None:
    await rig.fire(crashloop())
    for text in ("", "help", "HELP"):
        answer = await rig.command(text)
        assert answer.status_code == 200
        body = answer.json()
        assert body["response_type"] == "ephemeral"
        assert "`/triage list`" in body["text"] and "`/triage <alert name>`" in body["text"]
    listed = (await rig.command("list")).json()["text"]
    assert listed.startswith("*1 firing*")
    assert f"• *PodCrashLooping* `{FINGERPRINT}` — crashloop · " in listed
    assert listed.endswith(" min") or listed.endswith(" h") or " h " in listed
    unknown = (await rig.command("NoSuchAlert")).json()
    assert unknown["response_type"] == "ephemeral"
    assert unknown["text"].startswith(":grey_question: No alert matches `NoSuchAlert`.")
    assert "`/triage list`" in unknown["text"]
    assert await rig.store.retriages.rows() == []
    assert rig.diagnoser.runs == 1  # only the alert's own triage


async def test_ack_comes_before_slow_diagnostics_then_findings_land_everywhere(rig: Rig) -> None:
    await rig.fire(crashloop())
    (incident,) = rig.pagerduty.incidents
    assert len(incident.notes) == 1  # the alert's own triage
    rig.diagnoser.gate.clear()
    rig.diagnoser.started.clear()

    answer = await rig.command(FINGERPRINT)

    # Answered while diagnostics are still running (the gate is closed).
    assert answer.status_code == 200
    assert not rig.diagnoser.gate.is_set()
    body = answer.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith(
        ":arrows_counterclockwise: Re-running diagnostics for *PodCrashLooping* "
        f"(`{FINGERPRINT}`, firing since 10:00 UTC)…"
    )
    await rig.diagnoser.started.wait()
    assert rig.slack.responses["cmd-1"] == []
    (row,) = await rig.store.retriages.rows()
    assert (row["key"], row["state"]) == (
        "slack:1337.42.trigger1",
        "running",
    )  # claimed, under a lease

    rig.diagnoser.gate.set()
    await rig.settled()
    assert rig.diagnoser.runs == 2
    (response,) = rig.slack.responses["cmd-1"]
    assert response["response_type"] == "ephemeral" and response["replace_original"] is False
    assert "run 2: api-7d9c5-x2 restarted 7 times" in texts(response)
    assert "requested by <@U024ALICE>" in texts(response)

    message = rig.slack.top_level("#alerts")[0]
    replies = [texts(m) for m in rig.slack.thread("#alerts", message["ts"])]
    rerun = [r for r in replies if "Diagnostics re-run" in r]
    assert len(rerun) == 1
    assert "run 2: api-7d9c5-x2 restarted 7 times" in rerun[0]
    assert "*crashloop*" in rerun[0]

    assert len(incident.notes) == 2
    note = incident.notes[-1]["content"]
    assert note.startswith("Diagnostics re-run, requested by alice via /triage.")
    assert "run 2: api-7d9c5-x2 restarted 7 times" in note
    assert "runbook-router delivery: pagerduty:retriage-note:slack:1337.42.trigger1" in note
    (row,) = await rig.store.retriages.rows()
    assert row["state"] == "done" and "diagnostics re-run" in row["outcome"]
    assert json.loads(row["result_json"])["findings"][0]["title"].startswith("run 2:")


async def test_every_form_of_what(rig: Rig) -> None:
    await rig.fire(crashloop())
    other = factories.alert("CheckoutLatencyHigh", fingerprint="0dd0dd0123456789")
    await rig.fire(other)
    (incident, _) = rig.pagerduty.incidents
    # An event we ignore still tells us the incident's number.
    ignored = await rig.pd_event(incident.webhook("incident.priority_updated", "EVPRIO"))
    assert ignored.json()["status"] == "ignored"

    forms = {
        FINGERPRINT: "PodCrashLooping",
        "c0ff": "PodCrashLooping",  # a unique prefix
        "checkoutlatencyhigh": "CheckoutLatencyHigh",  # a name, in any case
        f"#{incident.number}": "PodCrashLooping",  # a PagerDuty incident number
        str(incident.number): "PodCrashLooping",
        incident.id: "PodCrashLooping",  # a PagerDuty incident id
        incident.id.lower(): "PodCrashLooping",
    }
    for what, name in forms.items():
        text = (await rig.command(what)).json()["text"]
        assert text.startswith(f":arrows_counterclockwise: Re-running diagnostics for *{name}* "), (
            what,
            text,
        )
    await rig.settled()
    rows = await rig.store.retriages.rows()
    assert len(rows) == len(forms)
    assert all(r["state"] == "done" for r in rows)
    assert [len(rig.slack.responses[f"cmd-{n}"]) for n in range(1, len(forms) + 1)] == [1] * len(
        forms
    )


async def test_ambiguity_is_listed(rig: Rig) -> None:
    await rig.fire(crashloop(starts_at="2026-11-22T09:00:00Z"))
    newer = factories.alert(
        "PodCrashLooping",
        labels={**CRASHLOOP, "pod": "api-7d9c5-y3"},
        fingerprint="c0ffee9999999999",
    )
    await rig.fire(newer)
    named = (await rig.command("PodCrashLooping")).json()["text"]
    assert "*PodCrashLooping* (`c0ffee9999999999`" in named  # the newest
    assert f"Also named PodCrashLooping: `{FINGERPRINT}` (PodCrashLooping, firing)." in named
    prefix = (await rig.command("c0ffee")).json()["text"]
    assert prefix.startswith(":grey_question: `c0ffee` is the start of 2 fingerprints")
    assert f"`{FINGERPRINT}`" in prefix and "`c0ffee9999999999`" in prefix
    await rig.settled()
    assert len(await rig.store.retriages.rows()) == 1  # the ambiguous prefix ran nothing


async def test_the_button_acks_then_answers_and_a_replay_does_nothing(rig: Rig) -> None:
    await rig.fire(crashloop())
    message = rig.slack.top_level("#alerts")[0]
    button = next(
        e
        for e in message["attachments"][0]["blocks"][-1]["elements"]
        if e["action_id"] == "rerun_diagnostics"
    )
    rig.diagnoser.gate.clear()
    pressed = await rig.press(button["value"])
    assert pressed.status_code == 200 and pressed.content == b""

    async def acknowledged() -> bool:
        return bool(rig.slack.responses["press-2001.42.press"])

    await eventually(acknowledged)  # the "re-running" answer does not wait for diagnostics
    assert not rig.diagnoser.gate.is_set()
    again = await rig.press(button["value"])  # Slack retrying the same interaction
    assert again.status_code == 200
    rig.diagnoser.gate.set()
    await rig.settled()

    ack, result = rig.slack.responses["press-2001.42.press"]
    assert ack["text"].startswith(":arrows_counterclockwise: Re-running diagnostics for")
    assert ack["response_type"] == "ephemeral" and ack["replace_original"] is False
    assert "run 2:" in texts(result) and "<@U024BOB00>" in texts(result)
    assert rig.diagnoser.runs == 2
    thread = [texts(m) for m in rig.slack.thread("#alerts", message["ts"])]
    assert sum("Diagnostics re-run" in t for t in thread) == 1
    assert len(rig.pagerduty.incidents[0].notes) == 2


async def test_a_resolved_alert_is_rerun_without_an_incident_note(rig: Rig) -> None:
    await rig.fire(crashloop())
    await rig.fire(crashloop(status="resolved", ends_at="2026-11-22T10:30:00Z"))
    answer = (await rig.command(FINGERPRINT)).json()["text"]
    assert "resolved since 10:00 UTC" in answer
    await rig.settled()
    assert len(rig.pagerduty.incidents[0].notes) == 1
    assert "run 3:" in texts(rig.slack.responses["cmd-1"][0])
