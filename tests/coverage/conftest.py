"""A real Prometheus loaded with the rule files under ``fixtures/rules``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.harness.daemon import Daemon
from tests.harness.prometheus import PROMETHEUS, SKIP_REASON, PrometheusServer, available, config
from tests.procs import free_port

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


@pytest.fixture(name="config")
def router_config(tmp_path: Path) -> Path:
    """A configuration whose library is ``fixtures/runbooks`` only."""
    path = tmp_path / "router.yaml"
    path.write_text(f"runbooks: [{FIXTURES / 'runbooks'}]\n")
    return path


# bcrypt of PASSWORD (cost 4), as Prometheus's --web.config.file wants it
PASSWORD = "rules-reader-pw"
PASSWORD_HASH = "$2b$04$qi5Biy8a8EbAOhl30E9b3.E7kCYPhWTxAtvuD1DuLcYwA.r41f/vK"


@pytest.fixture(scope="module")
def guarded_prometheus() -> Iterator[str]:
    """A real Prometheus that answers only with basic auth ``reader``/``PASSWORD``; its URL."""
    if not available():
        pytest.skip(SKIP_REASON)
    folder = Path(tempfile.mkdtemp(prefix="prometheus-auth-"))
    port = free_port()
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config([], [RULE_FILE])))
    (folder / "web.yml").write_text(yaml.safe_dump({"basic_auth_users": {"reader": PASSWORD_HASH}}))
    argv = [
        PROMETHEUS,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--web.config.file={folder / 'web.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    ready = f"http://reader:{PASSWORD}@127.0.0.1:{port}/-/ready"
    daemon = Daemon("prometheus", argv, folder, ready)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        daemon.close()
