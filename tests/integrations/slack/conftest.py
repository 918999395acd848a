"""The Slack tests' fake Slack (shared: ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from tests.harness.fake_slack import FakeSlack


@pytest.fixture
def fake(fake_slack: FakeSlack) -> FakeSlack:
    return fake_slack
