"""A real Prometheus loaded with the rule files under ``fixtures/rules``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.prometheus import SKIP_REASON, PrometheusServer, available

FIXTURES = Path(__file__).parent / "fixtures"
RULE_FILE = FIXTURES / "rules" / "payments.rules.yml"


@pytest.fixture(scope="module")
def rules_prometheus() -> Iterator[PrometheusServer]:
    if not available():
        pytest.skip(SKIP_REASON)
    server = PrometheusServer([], rule_files=[RULE_FILE])
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration whose library is ``fixtures/runbooks`` only."""
    path = tmp_path / "router.yaml"
    path.write_text(f"runbooks: [{FIXTURES / 'runbooks'}]\n")
    return path
