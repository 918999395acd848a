"""Exactly once across SIGKILL and failover: real router processes, fake Slack and PagerDuty."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests import factories
from tests.e2e.delivery import CHANNEL, DeliveryStack
from tests.pg import fresh_database
from tests.procs import RouterProcess

LEASE = 3.0  # DeliveryStack's worker.lease_seconds
HEARTBEAT = LEASE / 2


def firing(n: int) -> list[dict]:
    return [factories.alert(f"Crowded{i}", fingerprint=f"c0ded{i:011x}") for i in range(n)]


def ours(stack: DeliveryStack) -> list[dict]:
    """Top-level messages the router posted (the others have no metadata)."""
    return [m for m in stack.messages() if m.get("metadata")]


@pytest.mark.timeout(120)
def test_sigkill_with_posts_in_flight_then_a_busy_channel_posts_nothing_twice(
    tmp_path: Path,
) -> None:
    stack = DeliveryStack(tmp_path)
    channel = stack.slack.find(CHANNEL)
    assert channel is not None
    try:
        stack.slack.answer_late("chat.postMessage", 20, times=3)  # posted; no answer comes
        assert stack.post(*firing(3)).status_code == 202
        stack.wait(lambda: len(ours(stack)) == 3, "the three posts to land")
        stack.router.kill()
        for n in range(500):  # the channel moves on while the router is down
            channel.messages.append({"type": "message", "ts": f"{time.time():.0f}.{n:06d}9"})
        stack.start_router()
        stack.wait(lambda: all(stack.thread(m) for m in ours(stack)), "the replies", 60)
        assert len(ours(stack)) == 3  # none posted twice
        assert len(stack.messages()) == 503
        histories = stack.slack.requests("conversations.history")
        assert any(h.body.get("cursor") for h in histories)  # the look-up paged back
        assert all(float(h.body["oldest"]) > 0 for h in histories)  # bounded by time
    finally:
        stack.close()


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_a_killed_replicas_claimed_work_is_finished_by_another_within_two_heartbeats(
    tmp_path: Path,
) -> None:
    with _database() as url:
        stack = DeliveryStack(tmp_path, config={"database": {"url": url}})
        try:
            stack.slack.fail("chat.postMessage", times=3, hang=True)
            assert stack.post(*firing(3)).status_code == 202
            stack.wait(lambda: len(stack.slack.requests("chat.postMessage")) == 3, "the claims")
            other = RouterProcess(tmp_path, stack.env).start()  # idle: the work is held
            try:
                stack.slack.failures.clear()
                killed = time.monotonic()
                stack.router.kill()
                stack.wait(lambda: len(ours(stack)) == 3, "the other replica's posts", 30)
                took = time.monotonic() - killed
            finally:
                other.terminate()
            print(f"failover: all claimed work finished {took:.2f} s after the kill")
            assert took < 2 * HEARTBEAT + 1.0  # 1 s for the poll, the look-up and the posts
            assert len(ours(stack)) == 3
        finally:
            stack.close()


class _database:
    """A throw-away PostgreSQL database for a synchronous test."""

    def __enter__(self) -> str:
        self._loop = asyncio.new_event_loop()
        self._context = fresh_database()
        return self._loop.run_until_complete(self._context.__aenter__())

    def __exit__(self, *exc: object) -> None:
        self._loop.run_until_complete(self._context.__aexit__(None, None, None))
        self._loop.close()
