"""PagerDuty webhooks (v3): incident events add one note with the latest findings."""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories
from tests.retriage.conftest import CRASHLOOP, PD_OLD_SECRET, Rig, retriages_counted

FINGERPRINT = "feed0123456789ab"


def crashloop() -> dict[str, Any]:
    return factories.alert("PodCrashLooping", labels=CRASHLOOP, fingerprint=FINGERPRINT)


@pytest.mark.parametrize("rig_options", [{"findings_max_age_seconds": 0}])
async def test_a_replayed_event_makes_one_note(rig: Rig) -> None:
    await rig.fire(crashloop())
    (incident,) = rig.pagerduty.incidents
    assert len(incident.notes) == 1  # the alert's own triage
    event = incident.webhook("incident.acknowledged", "01EVACK0000000000000000000")

    first = await rig.pd_event(event)
    assert first.status_code == 202
    assert first.json() == {"status": "accepted", "event": "01EVACK0000000000000000000"}
    replays = [
        await rig.pd_event(event),
        await rig.pd_event(event, secret=PD_OLD_SECRET),  # signed during a rotation
        await rig.pd_event(event),
    ]
    assert [r.status_code for r in replays] == [200, 200, 200]
    assert {r.json()["status"] for r in replays} == {"duplicate"}
    await rig.settled()

    assert len(incident.notes) == 2
    note = incident.notes[-1]["content"]
    assert note.startswith("Diagnostics re-run, requested by PagerDuty incident.acknowledged.")
    assert "run 2: api-7d9c5-x2 restarted 7 times" in note  # findings older than 0 s: re-run
    assert "pagerduty:retriage-note:pagerduty:01EVACK0000000000000000000" in note
    assert rig.diagnoser.runs == 2
    assert retriages_counted(rig) == {("pagerduty", "rerun"): 1, ("pagerduty", "duplicate"): 3}
    (row,) = await rig.store.retriages.rows()
    assert (row["source"], row["state"]) == ("pagerduty", "done")
    # PagerDuty events never reply in Slack
    message = rig.slack.top_level("#alerts")[0]
    thread = rig.slack.thread("#alerts", message["ts"])
    assert not any("Diagnostics re-run" in str(m) for m in thread)


@pytest.mark.parametrize("event_type", ["incident.triggered", "incident.reopened"])
@pytest.mark.parametrize("rig_options", [{"findings_max_age_seconds": 0}])
async def test_triggered_and_reopened_are_handled(rig: Rig, event_type: str) -> None:
    await rig.fire(crashloop())
    (incident,) = rig.pagerduty.incidents
    answer = await rig.pd_event(incident.webhook(event_type, f"EV-{event_type}"))
    assert answer.status_code == 202
    await rig.settled()
    assert len(incident.notes) == 2
    assert f"requested by PagerDuty {event_type}" in incident.notes[-1]["content"]


async def test_fresh_findings_already_on_the_incident_are_not_noted_again(rig: Rig) -> None:
    await rig.fire(crashloop())
    (incident,) = rig.pagerduty.incidents
    answer = await rig.pd_event(incident.webhook("incident.triggered", "EVTRIG"))
    assert answer.status_code == 202
    await rig.settled()
    assert len(incident.notes) == 1  # the triage's own note already says it
    assert rig.diagnoser.runs == 1
    (row,) = await rig.store.retriages.rows()
    assert row["outcome"] == "findings already noted"


async def test_fresh_findings_not_noted_yet_are_reused(rig: Rig) -> None:
    rig.pagerduty.fail("/incidents", 403)  # the triage's own note is given up on
    await rig.fire(crashloop())
    (incident,) = rig.pagerduty.incidents
    assert incident.notes == []
    answer = await rig.pd_event(incident.webhook("incident.acknowledged", "EVACK"))
    assert answer.status_code == 202
    await rig.settled()
    assert rig.diagnoser.runs == 1  # younger than findings_max_age_seconds: no new run
    (note,) = incident.notes
    assert note["content"].startswith("Latest findings (of ")
    assert "run 1: api-7d9c5-x2 restarted 7 times" in note["content"]


async def test_other_events_and_other_incidents_are_accepted_and_ignored(rig: Rig) -> None:
    await rig.fire(crashloop())
    (incident,) = rig.pagerduty.incidents
    resolved = await rig.pd_event(incident.webhook("incident.resolved", "EVRES"))
    assert resolved.status_code == 200
    assert resolved.json()["reason"] == "no note for this event type"
    foreign = incident.webhook("incident.acknowledged", "EVFOREIGN")
    foreign["event"]["data"]["incident_key"] = "someone-elses-key"
    answer = await rig.pd_event(foreign)
    assert answer.status_code == 200
    assert answer.json()["reason"] == "not an incident of an alert routed here"
    unknown = incident.webhook("incident.acknowledged", "EVUNKNOWN")
    unknown["event"]["data"]["incident_key"] = "runbook-router-0000000000000000"
    assert (await rig.pd_event(unknown)).json()["status"] == "ignored"
    ping = await rig.pd_event({"event": {"id": "EVPING", "event_type": "pagey.ping", "data": {}}})
    assert ping.status_code == 200 and ping.json()["status"] == "ignored"
    malformed = await rig.pd_event({"messages": []})
    assert malformed.status_code == 400
    await rig.settled()
    assert await rig.store.retriages.rows() == []
    assert len(incident.notes) == 1
