"""How Slack failures reach the outbox: transient (retried) or permanent, never with the token."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from router.config import BUILTIN_TEMPLATES
from router.delivery import DEFAULT_RETRY_AFTER, DeliveryError
from router.integrations.slack.sink import SlackSink
from router.store import Store
from tests.harness.fake_slack import TOKEN, FakeSlack, settings_for, triage_result
from tests.procs import free_port


@pytest.fixture(autouse=True)
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)  # slack-sdk logs requests at debug level
    yield
    assert TOKEN not in caplog.text
    assert TOKEN.split("-")[-1] not in caplog.text


async def publish_error(sink: SlackSink) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await sink.send(sink.render(triage_result())[0])
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value.__dict__)
    assert caught.value.__cause__ is None
    return caught.value


def sink_for(fake: FakeSlack, store: Store, **settings: object) -> SlackSink:
    return SlackSink(settings_for(fake, **settings), store, BUILTIN_TEMPLATES)


async def test_a_500_is_transient_and_the_retry_posts_once(fake: FakeSlack, store: Store) -> None:
    sink = sink_for(fake, store)
    fake.fail("chat.postMessage", status=500)
    error = await publish_error(sink)
    assert (error.permanent, error.reason) == (False, "chat.postMessage: HTTP 500")
    await sink.send(sink.render(triage_result())[0])
    assert len(fake.top_level("#alerts")) == 1


async def test_a_429_carries_retry_after(fake: FakeSlack, store: Store) -> None:
    fake.fail("chat.postMessage", status=429, error="ratelimited", retry_after=7)
    error = await publish_error(sink_for(fake, store))
    assert (error.permanent, error.retry_after) == (False, 7.0)


async def test_ratelimited_in_the_body_is_transient(fake: FakeSlack, store: Store) -> None:
    fake.fail("chat.postMessage", error="ratelimited")
    error = await publish_error(sink_for(fake, store))
    assert not error.permanent and error.retry_after == DEFAULT_RETRY_AFTER
    assert error.kind == "rate_limited"


async def test_a_hanging_slack_times_out_transiently(fake: FakeSlack, store: Store) -> None:
    fake.fail("chat.postMessage", hang=True)
    error = await publish_error(sink_for(fake, store, timeout_seconds=0.3))
    assert not error.permanent and "no answer within 0.3 s" in error.reason


async def test_connection_refused_is_transient(store: Store) -> None:
    nowhere = FakeSlack(base_url=f"http://127.0.0.1:{free_port()}")
    error = await publish_error(sink_for(nowhere, store))
    assert not error.permanent and error.reason.startswith("chat.postMessage: ClientConnectorError")


@pytest.mark.parametrize(
    "code", ["channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "invalid_blocks"]
)
async def test_slack_errors_that_will_not_heal_are_permanent(
    fake: FakeSlack, store: Store, code: str
) -> None:
    fake.fail("chat.postMessage", error=code)
    error = await publish_error(sink_for(fake, store))
    assert (error.permanent, error.reason) == (True, code)


async def test_an_unknown_channel_is_permanent(fake: FakeSlack, store: Store) -> None:
    error = await publish_error(sink_for(fake, store, default_channel="#nope"))
    assert (error.permanent, error.reason) == (True, "channel_not_found")


async def test_a_wrong_token_is_permanent_and_never_shown(fake: FakeSlack, store: Store) -> None:
    wrong = "xoxb-9999-8888-wrongtoken"
    sink = sink_for(fake, store, bot_token=wrong)
    error = await publish_error(sink)
    assert (error.permanent, error.reason) == (True, "invalid_auth")
    assert fake.calls[0].headers["authorization"] == f"Bearer {wrong}"


async def test_a_failed_permalink_does_not_fail_the_post(fake: FakeSlack, store: Store) -> None:
    sink = sink_for(fake, store)
    fake.fail("chat.getPermalink", status=503)
    response = await sink.send(sink.render(triage_result())[0])
    assert response is not None and response["permalink"] is None
    ref = await store.messages.get(triage_result().alert.fingerprint, "slack")
    assert ref is not None and ref["ts"] == response["ts"]


async def test_replies_without_a_message_fail_for_good(fake: FakeSlack, store: Store) -> None:
    sink = sink_for(fake, store)
    with pytest.raises(DeliveryError) as caught:
        await sink.send(sink.render(triage_result())[1])
    assert caught.value.permanent
