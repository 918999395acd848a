"""Shared pieces of the process-level benchmarks (``end_to_end.py``, ``storm.py``).

A fake Slack that notes when each alert's message arrived, a TCP listener that
accepts and never answers (a hung backend), ``/proc`` readings of a process, a
router configuration file, payload builders and percentiles.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness.fake_slack import TOKEN, FakeSlack  # noqa: E402
from tests.procs import RouterProcess  # noqa: E402

PG_URL = os.environ.get("ROUTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHANNEL = "#alerts"
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class TimedSlack(FakeSlack):
    """The test suite's fake Slack, also noting when each alert's top-level post arrived.

    ``posted[fingerprint]`` lists the ``time.monotonic()`` of every ``chat.postMessage``
    that carried the alert's delivery metadata and no ``thread_ts`` (more than one entry
    is a duplicate notification).
    """

    posted: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    async def _chat_postMessage(self, body: dict[str, Any]) -> Any:
        arrived = time.monotonic()
        response = await super()._chat_postMessage(body)
        fingerprint = _fingerprint(body.get("metadata"))
        if fingerprint and not body.get("thread_ts") and b'"ok":true' in response.body:
            self.posted[fingerprint].append(arrived)
        return response

    def storm_total(self) -> int:
        """Alerts counted in storm summaries, as their latest text says."""
        total = 0
        for channel in self.channels.values():
            for message in channel.messages:
                text = str(message.get("text", ""))
                if "Alert storm:" in text:
                    total += int(text.split("Alert storm:", 1)[1].split()[0].strip("*"))
        return total


def _fingerprint(metadata: Any) -> str | None:
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    if not isinstance(metadata, dict):
        return None
    value = (metadata.get("event_payload") or {}).get("fingerprint")
    return str(value) if value else None


class HangingServer:
    """Accepts TCP connections and never answers (until closed): a hung backend."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.held: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)  # read nothing, answer nothing

    def close(self) -> None:
        self._closed = True
        self.sock.close()
        for conn in self.held:
            conn.close()


@dataclass(frozen=True)
class ProcSample:
    """One reading of ``/proc/PID``: CPU seconds (user + system), RSS now and its peak, MiB."""

    cpu_seconds: float
    rss_mib: float
    hwm_mib: float


def proc_sample(pid: int) -> ProcSample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; utime and stime are 14, 15
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    status: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            status[key] = int(value.split()[0]) / 1024
    return ProcSample(cpu, status.get("VmRSS", 0.0), status.get("VmHWM", 0.0))


def family(pid: int) -> list[int]:
    """``pid`` and its child processes (``serve``'s worker processes)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(child) for child in (task / "children").read_text().split()]
    return [pid, *kids]


def write_config(workdir: Path, **sections: Any) -> Path:
    """A router YAML configuration under ``workdir``: SQLite there, Slack at the fake, no Kubernetes."""
    config: dict[str, Any] = {
        "data_dir": str(workdir / "data"),
        "slack": {"bot_token": TOKEN, "default_channel": CHANNEL},
        "diagnostics": {"kubernetes": {"enabled": False}},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = _merged(config[key], value)
        else:
            config[key] = value
    path = workdir / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merged(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def router_env(config: Path, log_level: str = "info") -> dict[str, str]:
    return {
        "ROUTER_CONFIG": str(config),
        "ROUTER_LOG_LEVEL": log_level,
        "KUBECONFIG": str(config.parent / "no-kubeconfig"),
        "PYTHONPATH": str(ROOT),
    }


class ProfiledRouter(RouterProcess):
    """``runbook-router serve`` under pyinstrument (``pip install pyinstrument`` into .venv);
    the text report is written to ``report`` when the router exits."""

    def __init__(self, workdir: Path, env: dict[str, str], report: Path) -> None:
        super().__init__(workdir, env)
        self.report = report

    def start(self, timeout: float = 30.0) -> RouterProcess:
        import subprocess

        import httpx

        argv = [sys.executable, "-m", "pyinstrument", "-r", "text"]
        argv += ["-o", str(self.report), "-m", "router", "serve", "--port", str(self.port)]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            argv, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"router not ready:\n{self.log_path.read_text()}")


def payload(alerts: list[dict[str, Any]], group: str) -> bytes:
    """A version-4 Alertmanager webhook carrying ``alerts``."""
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{group}"}}',
            "status": "firing",
            "receiver": "runbook-router",
            "externalURL": "http://alertmanager:9093",
            "groupLabels": {"alertname": group},
            "commonLabels": {},
            "commonAnnotations": {},
            "alerts": alerts,
        }
    ).encode()


def alert(
    name: str,
    fingerprint: str,
    labels: dict[str, str],
    expr: str,
    summary: str = "benchmark alert",
) -> dict[str, Any]:
    from urllib.parse import quote

    return {
        "status": "firing",
        "labels": {"alertname": name, "severity": "critical", **labels},
        "annotations": {"summary": summary},
        "startsAt": "2026-11-22T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": f"http://prometheus:9090/graph?g0.expr={quote(expr)}&g0.tab=1",
        "fingerprint": fingerprint,
    }


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def machine() -> str:
    mem = 0.0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) / 1024 / 1024
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, {mem:.0f} GiB, load average {load:.2f} at start"
