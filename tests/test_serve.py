"""``runbook-router serve`` as a real process: embedded defaults, and a clean SIGTERM."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests import factories
from tests.harness.waiting import eventually_sync
from tests.procs import RouterProcess


def post(router: RouterProcess, *alerts: dict, token: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(
        f"{router.url}/alertmanager", content=factories.body(*alerts), headers=headers, timeout=5
    )


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""  # written at the first delivery


def containing(path: Path, *texts: str) -> str:
    """The file's content once it holds every one of ``texts``; else ""."""
    content = read(path)
    return content if all(text in content for text in texts) else ""


def wait_for_text(path: Path, text: str, timeout: float = 20) -> str:
    return eventually_sync(
        lambda: containing(path, text),
        timeout,
        lambda: f"{text!r} to appear in {path}:\n{read(path)[-3000:]}",
    )


def test_no_configuration_accepts_a_webhook_and_prints_it(tmp_path: Path) -> None:
    router = RouterProcess(tmp_path, {}).start()  # no ROUTER_* variable, no config file
    try:
        alert = factories.alert(
            "PodCrashLooping", labels={"namespace": "shop", "pod": "api-7d9c5-x2"}
        )
        response = post(router, alert)
        assert response.status_code == 202
        assert response.json() == {"status": "accepted", "alerts": 1, "new": 1, "duplicates": 0}
        output = wait_for_text(router.log_path, "==> [FIRING] PodCrashLooping")
    finally:
        assert router.terminate() == 0
    assert "category: crashloop (by rule pod-crash-looping)" in output
    assert "crashloop.md#pod-crash-loops" in output
    assert "    why:      declares PodCrashLooping\n" in output
    filled = "    filled:   Filled from the alert: namespace=shop, pod=api-7d9c5-x2\n"
    assert filled in output
    assert "UNAUTHENTICATED" in output  # the start-up warning
    assert (tmp_path / "data" / "router.db").exists()  # SQLite under ./data


def test_sigterm_finishes_or_gives_back_work_and_exits_cleanly(tmp_path: Path) -> None:
    console = tmp_path / "console.txt"
    env = {"ROUTER_CONSOLE_PATH": str(console), "ROUTER_WEBHOOK_TOKEN": "t0k"}
    router = RouterProcess(tmp_path, env).start()
    names = [f"Drain{i}" for i in range(60)]
    for name in names:
        assert post(router, factories.alert(name), token="t0k").status_code == 202
    assert router.terminate() == 0
    log = router.log_path.read_text()
    assert "runbook-router stopped" in log
    router = RouterProcess(tmp_path, env).start()  # whatever was given back is done now
    try:
        wait_for_text(console, f"==> [FIRING] {names[-1]} ")
        output = eventually_sync(
            lambda: containing(console, *(f"==> [FIRING] {n} " for n in names)),
            20,
            "every acknowledged alert (one was lost)",
        )
    finally:
        assert router.terminate() == 0
    assert all(output.count(f"==> [FIRING] {n} ") == 1 for n in names)


def test_problems_that_check_reports_are_logged_at_start_up(tmp_path: Path) -> None:
    rules = tmp_path / "rules" / "team.yaml"
    rules.parent.mkdir()
    rules.write_text(
        "rules:\n  - name: slow\n    matchers: ['alertname = Slow']\n    category: latency\n"
        "    runbook: latency.md#no-such-section\n"
    )
    (tmp_path / "router.yaml").write_text(f"rules: [{rules.parent}]\n")
    router = RouterProcess(tmp_path, {"ROUTER_CONFIG": str(tmp_path / "router.yaml")}).start()
    try:
        logged = wait_for_text(router.log_path, "no-such-section")
    finally:
        assert router.terminate() == 0
    assert f"{rules}:5:" in logged and "runbook-router check" in logged


def test_unknown_variables_are_logged_once_and_do_not_stop_the_router(tmp_path: Path) -> None:
    env = {
        "ROUTER_DATABSE_URL": "postgresql://u@db/router",
        "ROUTER_SLACK_SERVICE_HOST": "10.0.0.7",
    }
    router = RouterProcess(tmp_path, env).start()
    assert router.terminate() == 0
    log = router.log_path.read_text()
    assert log.count("ROUTER_DATABSE_URL: did you mean ROUTER_DATABASE_URL?") == 1
    assert log.count("ROUTER_SLACK_SERVICE_HOST: a Kubernetes service link") == 1
    assert (tmp_path / "data" / "router.db").exists()  # and it said so: SQLite it is
