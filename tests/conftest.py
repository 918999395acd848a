"""Fixtures every test package shares: a SQLite store, and the fake Slack and PagerDuty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from router.store import Store, open_store
from tests.harness.fake_pagerduty import ROUTING_KEY, FakePagerDuty, FakePagerDutyServer
from tests.harness.fake_slack import FakeSlack, FakeSlackServer


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite store (``tests/store`` runs its tests on PostgreSQL too)."""
    opened = await open_store(f"sqlite:///{tmp_path / 'router.db'}")
    yield opened
    await opened.close()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """The fake Slack, serving on loopback, with ``#alerts`` (``C0ALERTS1``)."""
    slack = FakeSlack()
    server = FakeSlackServer(slack)
    slack.add_channel("#alerts", "C0ALERTS1")
    yield slack
    server.stop()


@pytest.fixture
def fake_pagerduty(tmp_path: Path) -> Iterator[tuple[FakePagerDuty, FakePagerDutyServer]]:
    """The fake PagerDuty over HTTPS, with one service on :data:`ROUTING_KEY`."""
    fake = FakePagerDuty(services={ROUTING_KEY: "default"})
    server = FakePagerDutyServer(fake, tmp_path)
    yield fake, server
    server.stop()
