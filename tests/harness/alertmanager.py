"""A real Alertmanager (the Debian package's binary) posting to the router's webhook."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml

from tests.harness.daemon import Daemon
from tests.procs import free_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager") or ""


def available() -> bool:
    return bool(ALERTMANAGER) and Path(ALERTMANAGER).exists()


class AlertmanagerServer:
    """Alertmanager on a free loopback port, routing every alert to ``webhook_url`` at once."""

    def __init__(self, webhook_url: str, token: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="alertmanager-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.dir / "token").write_text(token)
        config = {
            "route": {
                "receiver": "runbook-router",
                "group_by": ["alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "runbook-router",
                    "webhook_configs": [
                        {
                            "url": webhook_url,
                            "send_resolved": True,
                            "max_alerts": 0,
                            "http_config": {
                                "authorization": {
                                    "type": "Bearer",
                                    "credentials_file": str(self.dir / "token"),
                                }
                            },
                        }
                    ],
                }
            ],
        }
        (self.dir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self.daemon = Daemon(
            "alertmanager",
            [
                ALERTMANAGER,
                f"--config.file={self.dir / 'alertmanager.yml'}",
                f"--storage.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            self.dir,
            f"{self.url}/-/ready",
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.daemon.close()
