"""Fixtures: a fake PagerDuty over HTTPS, a store, and sinks pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from router.integrations.pagerduty.sink import PagerDutySink
from router.store import Store
from tests.harness.fake_pagerduty import FakePagerDuty, FakePagerDutyServer
from tests.integrations.pagerduty.support import (
    DB_KEY,
    ROUTING_KEY,
    settings_for,
)


@pytest.fixture
def fake() -> FakePagerDuty:
    return FakePagerDuty(services={ROUTING_KEY: "default", DB_KEY: "databases"})


@pytest.fixture
def server(fake: FakePagerDuty, tmp_path: Path) -> Iterator[FakePagerDutyServer]:
    running = FakePagerDutyServer(fake, tmp_path)
    yield running
    running.stop()


@pytest.fixture
async def make_sink(
    server: FakePagerDutyServer, store: Store
) -> AsyncIterator[Callable[..., PagerDutySink]]:
    """``make_sink(**settings)``: a sink on the fake, closed at the end of the test."""
    made: list[PagerDutySink] = []

    def make(secrets: list[str] | None = None, **overrides: Any) -> PagerDutySink:
        made.append(PagerDutySink(settings_for(server, **overrides), store, secrets or ()))
        return made[-1]

    yield make
    for sink in made:
        await sink.aclose()


@pytest.fixture
def sink(make_sink: Callable[..., PagerDutySink]) -> PagerDutySink:
    return make_sink()
