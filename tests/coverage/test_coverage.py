"""``runbook-router coverage`` against a real Prometheus loaded with our own rule files."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from router.cli import main
from router.config import PrometheusSettings
from router.coverage import rules_from_prometheus
from tests.coverage.conftest import FIXTURES, PASSWORD, RULE_FILE
from tests.harness.prometheus import PrometheusServer
from tests.procs import free_port

BACKLOG = "payments.md#payment-queue-backlog"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rules_from_prometheus_are_the_loaded_alerting_rules(
    rules_prometheus: PrometheusServer,
) -> None:
    rules = rules_from_prometheus(PrometheusSettings(url=rules_prometheus.url))
    assert [(r.name, r.expr) for r in rules] == [
        ("PaymentsQueueBacklog", "max(payments_queue_depth) > 1000"),
        ("FrobnicatorWobble", "frobnicator_wobble_ratio > 3"),
    ]
    assert rules[0].source == f"group payments in {RULE_FILE}"
    assert rules[0].labels == {"severity": "warning"}
    assert rules[0].annotations["summary"].startswith("Queue depth is {{ $value }}")


def test_json_report_from_prometheus(
    capsys: pytest.CaptureFixture[str], rules_prometheus: PrometheusServer, config: Path
) -> None:
    code, out, err = run(
        capsys, "coverage", "--config", str(config), "--prometheus", rules_prometheus.url,
        "--format", "json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["summary"] == {
        "rules": 2,
        "covered": 1,
        "percent": 50.0,
        "text": "1 of 2 alerting rules have a runbook section",
    }
    missing, covered = report["rules"]
    assert (missing["alert"], missing["runbook"]) == ("FrobnicatorWobble", None)
    assert "nothing declares FrobnicatorWobble" in missing["why"]
    assert (covered["alert"], covered["runbook"]) == ("PaymentsQueueBacklog", BACKLOG)
    assert covered["why"] == "declares PaymentsQueueBacklog"
    unreached = [s["section"] for s in report["unreached"]]
    assert "payments.md#certificate-expiry" in unreached
    assert BACKLOG not in unreached


@pytest.mark.parametrize(("threshold", "expected"), [("50", 0), ("50.1", 1)])
def test_fail_under(
    capsys: pytest.CaptureFixture[str], config: Path, threshold: str, expected: int
) -> None:
    code, out, _ = run(
        capsys, "coverage", "--config", str(config), str(RULE_FILE), "--fail-under", threshold
    )
    assert code == expected
    assert out.rstrip().endswith("1 of 2 alerting rules have a runbook section")


def test_table_and_markdown_list_missing_rules_first(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    files = [str(RULE_FILE), str(FIXTURES / "rules" / "prometheusrule.yaml")]
    _, table, _ = run(capsys, "coverage", "--config", str(config), *files)
    rows = table.splitlines()[1:5]
    assert [r.split()[0] for r in rows] == [
        "FrobnicatorWobble",
        "UnknownGadgetBroken",
        "PaymentsQueueBacklog",
        "PaymentsQueueBacklog",
    ]
    assert rows[0].split()[2] == "none" and rows[2].split()[2] == BACKLOG
    _, markdown, _ = run(
        capsys, "coverage", "--config", str(config), *files, "--format", "markdown"
    )
    assert "**2 of 4 alerting rules have a runbook section** (50 %)" in markdown
    body = [line for line in markdown.splitlines() if line.startswith("| ")][2:]
    assert body[0].startswith("| FrobnicatorWobble | unclassified | **none** |")
    assert body[2].startswith(f"| PaymentsQueueBacklog | unclassified | {BACKLOG} |")


def test_unreachable_prometheus_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(capsys, "coverage", "--config", str(config), "--prometheus", url)
    assert code == 1 and out == ""
    assert err.startswith(f"error: {url}: cannot read the alerting rules")
    assert "Traceback" not in err


def test_no_source_is_a_usage_error(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, _, err = run(capsys, "coverage", "--config", str(config))
    assert code == 2 and "rule files or --prometheus" in err
    code, _, err = run(
        capsys, "coverage", "--config", str(config), str(RULE_FILE), "--fail-under", "120"
    )
    assert code == 2 and "from 0 to 100" in err


class _Page(HTMLParser):
    """What the rendered DOM shows: the summary, the rule table's rows, the unreached list."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.texts: dict[str, str] = {}
        self.external: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for key in ("src", "href"):
            if named.get(key):
                self.external.append(str(named[key]))
        if tag == "tr":
            self.rows.append([])
        if tag == "td":
            self.rows[-1].append("")
        self._in.append(named.get("id") or tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if "td" in self._in[-2:]:
            self.rows[-1][-1] += data
        for key in ("summary", "unreached"):
            if key in self._in:
                self.texts[key] = self.texts.get(key, "") + data


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package 'chromium')"
)
def test_html_page_in_headless_chromium(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    _, html, _ = run(
        capsys, "coverage", "--config", str(config), str(RULE_FILE), "--format", "html"
    )
    page_file = tmp_path / "coverage.html"
    page_file.write_text(html)
    dom = subprocess.run(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
            page_file.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    page = _Page()
    page.feed(dom)
    assert page.texts["summary"] == "1 of 2 alerting rules have a runbook section (50 %)"
    cells = [row[:3] for row in page.rows if row]
    assert cells == [
        ["FrobnicatorWobble", "unclassified", "none"],
        ["PaymentsQueueBacklog", "unclassified", BACKLOG],
    ]
    assert "payments.md#certificate-expiry" in page.texts["unreached"]
    assert page.external == []  # self-contained: nothing to load


@pytest.mark.parametrize(("password", "code"), [(PASSWORD, 0), ("wrong-secret", 1)])
def test_prometheus_is_read_with_the_diagnostics_auth(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, guarded_prometheus: str, password: str,
    code: int,
) -> None:  # fmt: skip
    settings = tmp_path / "auth.yaml"
    settings.write_text(
        f"runbooks: [{FIXTURES / 'runbooks'}]\n"
        f"prometheus:\n  url: {guarded_prometheus}\n  username: reader\n  password: {password}\n"
    )
    exit_code, out, err = run(capsys, "coverage", "--config", str(settings), "--prometheus")
    assert exit_code == code
    if code == 0:
        assert out.rstrip().endswith("1 of 2 alerting rules have a runbook section")
    else:
        assert err == f"error: {guarded_prometheus}: /api/v1/rules answered 401: Unauthorized\n"
    assert password not in out + err
