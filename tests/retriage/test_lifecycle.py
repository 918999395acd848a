"""Re-triage work across a shutdown, and the ``response_url`` sink's failures."""

from __future__ import annotations

import pytest

from router.alerts import WebhookPayload
from router.config import BUILTIN_TEMPLATES
from router.delivery import Delivery, DeliveryError
from router.integrations.slack.response import SlackResponseSink
from router.retriage import Retriager
from router.retriage_request import RetriageRequest
from router.store import Store
from tests import factories
from tests.harness.fake_slack import FakeSlack
from tests.retriage.conftest import CRASHLOOP, Rig, retriages_counted


async def test_work_cut_short_by_shutdown_is_taken_up_again(rig: Rig) -> None:
    await rig.fire(factories.alert("PodCrashLooping", labels=CRASHLOOP))
    rig.diagnoser.gate.clear()
    rig.diagnoser.started.clear()
    await rig.command("PodCrashLooping")
    await rig.diagnoser.started.wait()
    await rig.retriager.close(grace=0)  # shutting down: the running request is given back
    assert rig.retriager.busy == 0
    (row,) = await rig.store.retriages.rows()
    assert row["state"] == "pending" and row["lease_owner"] is None
    assert rig.slack.responses["cmd-1"] == []

    rig.diagnoser.gate.set()
    await rig.retriager.start()  # as a restarted process does
    await rig.settled()
    (row,) = await rig.store.retriages.rows()
    assert row["state"] == "done"
    assert len(rig.slack.responses["cmd-1"]) == 1
    assert rig.diagnoser.runs == 3


async def test_a_failed_run_is_recorded_and_told_without_its_details(rig: Rig) -> None:
    await rig.fire(factories.alert("PodCrashLooping", labels=CRASHLOOP))
    rig.diagnoser.error = RuntimeError("kaboom token=s3cr3t")
    await rig.command("PodCrashLooping")
    await rig.settled()
    (row,) = await rig.store.retriages.rows()
    assert row["state"] == "failed" and row["outcome"].startswith("RuntimeError: kaboom")
    assert retriages_counted(rig) == {("slack", "failed"): 1}
    (answer,) = rig.slack.responses["cmd-1"]
    assert answer["text"] == (
        ":warning: Re-running diagnostics failed: an internal error "
        "(the router's log has the details)"
    )
    assert len(rig.pagerduty.incidents[0].notes) == 1


async def test_response_url_failures(fake_slack: FakeSlack) -> None:
    sink = SlackResponseSink(BUILTIN_TEMPLATES, timeout=5, api_url=f"{fake_slack.base_url}/api/")
    url = fake_slack.response_url("once")
    message = {"response_url": url, "message": {"text": "hi"}}
    try:
        assert await sink.send(Delivery("slack_response", "respond", "k1", message)) == {
            "status": 200
        }
        assert fake_slack.responses["once"] == [{"text": "hi"}]
        expired = {**message, "response_url": f"{fake_slack.base_url}/response/expired"}
        with pytest.raises(DeliveryError) as failed:
            await sink.send(Delivery("slack_response", "respond", "k2", expired))
        assert failed.value.permanent and failed.value.reason == "response_url: expired_url"
        with pytest.raises(DeliveryError) as failed:
            await sink.send(Delivery("slack_response", "respond", "k3", {"message": {}}))
        assert failed.value.permanent
        for hostile in (url + "\r\nX-Injected: 1", "https://evil.example/response/once"):
            with pytest.raises(DeliveryError) as failed:
                await sink.send(
                    Delivery(
                        "slack_response", "respond", "k4", {**message, "response_url": hostile}
                    )
                )
            assert failed.value.permanent
        assert fake_slack.responses["once"] == [{"text": "hi"}]
        assert sink.render(None) == []  # type: ignore[arg-type]
    finally:
        await sink.aclose()


async def test_a_request_rings_for_the_worker_processes_when_this_one_does_not_work(
    store: Store,
) -> None:
    """``serve`` with worker processes records requests but works on none: each one recorded
    rings (their doorbell), a duplicate does not."""
    payload = WebhookPayload.model_validate(factories.payload(factories.alert("Rung")))
    await store.ingest(payload)
    (alert,) = await store.lookup.by_name("Rung")
    rings: list[None] = []
    retriager = Retriager(store, None, on_queued=lambda: rings.append(None))  # type: ignore[arg-type]
    request = RetriageRequest("slack:t1", "slack", "alice via /triage")
    assert await retriager.submit(request, alert) is True
    assert await retriager.submit(request, alert) is False
    assert len(rings) == 1
