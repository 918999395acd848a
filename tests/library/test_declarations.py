from __future__ import annotations

import pytest

from router.library import RunbookLibrary


@pytest.mark.parametrize(
    ("alert", "ref"),
    [
        # ### Alert / **Name**: `X` → the numbered runbook, not the ### Alert container
        ("CheckoutLatencyHigh", "numbered.md#1-checkout-latency-p95--600ms-for-10min"),
        ("RefundErrorRate", "numbered.md#2-refund-errors-5xx--2"),
        # a heading that is itself an alert name
        ("KubePodCrashLooping", "severity.md#kubepodcrashlooping"),
        # Alert: X label under a descriptive heading
        ("CheckoutPodsDown", "severity.md#checkout-pods-down"),
        # CamelCase code span on a line that says "alert"
        ("NodeDiskAlmostFull", "severity.md#disk-almost-full"),
        # front matter alerts apply to the file's top section
        ("SearchQueriesSlow", "frontmatter.md#search-cluster-runbook"),
        ("SearchNodeDown", "frontmatter.md#search-cluster-runbook"),
        # table rows: the row's link wins over the section holding the table
        ("QueueBacklogGrowing", "table.md#backlog-growing"),
        ("QueueConsumerDown", "table.md#consumers-down"),
    ],
)
def test_declared_section(library: RunbookLibrary, alert: str, ref: str) -> None:
    section = library.declared(alert)
    assert section is not None
    assert section.ref == ref
    assert alert in section.alerts


@pytest.mark.parametrize(
    "name",
    [
        "KafkaConsumerLag",  # code span on a line that does not talk about alerts
        "CrashLoopBackOff",  # a Kubernetes reason, not an alert
        "Alert",
        "Symptoms",
    ],
)
def test_not_declared(library: RunbookLibrary, name: str) -> None:
    assert library.declared(name) is None


def test_duplicate_declaration_first_wins_and_is_reported(library: RunbookLibrary) -> None:
    assert library.declared("CheckoutLatencyHigh").path == "numbered.md"  # type: ignore[union-attr]
    duplicates = [p for p in library.problems if "CheckoutLatencyHigh" in p.message]
    assert len(duplicates) == 1
    problem = duplicates[0]
    assert problem.path.endswith("table.md")
    assert problem.line == 7
    assert "already declared by numbered.md#1-checkout-latency" in problem.message


def test_labelled_lines_and_lists(write, tmp_path) -> None:
    write(
        "a.md",
        "# Disk\n\n## Volume full\n\n- Alertname: VolumeFull\n- Alerts: `VolumeFillingUp`, `InodesLow`\n"
        "- Alert: HighErrorRate (critical)\n- Alert: something is broken\n\n"
        "**Alert name:** `Watchdog`\n",
    )
    library = RunbookLibrary.load([tmp_path])
    section = library.get("a.md#volume-full")
    assert section is not None
    assert section.alerts == [
        "VolumeFull",
        "VolumeFillingUp",
        "InodesLow",
        "HighErrorRate",
        "Watchdog",
    ]
    assert library.declared("something") is None


def test_headings_under_a_part_do_not_declare(write, tmp_path) -> None:
    write("a.md", "## Pods down\n\n### Common causes\n\n#### ImagePullFailing\n\ntext\n")
    library = RunbookLibrary.load([tmp_path])
    assert library.declared("ImagePullFailing") is None


def test_every_alert_name_is_listed(library: RunbookLibrary) -> None:
    names = set(library.declarations())
    assert {"CheckoutLatencyHigh", "KubePodCrashLooping", "QueueConsumerDown"} <= names


@pytest.mark.parametrize(
    ("markdown", "declared"),
    [
        ("## Alert: InstanceDown (severity: critical)\n\nA target stopped.\n", "InstanceDown"),
        ('##### Alert: "KubePodCrashLooping"\n\nRestarts.\n', "KubePodCrashLooping"),
        ("### 1. Alert: `HighAPILatency`\n\nSlow.\n", "HighAPILatency"),
        ("## Slow API\n\n**Alert:** ApiSlowRequests\n", "ApiSlowRequests"),
        ("## Slow API\n\n- Alert: `ApiP99High`\n", "ApiP99High"),
        ("## Slow API\n\n**Name**: ApiLatencyBudget\n", "ApiLatencyBudget"),
        (
            "## gateway\n\n|Name|Summary|\n|---|---|\n|GatewayUpstreamErrors|Upstreams fail.|\n",
            "GatewayUpstreamErrors",
        ),
    ],
)
def test_every_written_form_declares(write, tmp_path, markdown: str, declared: str) -> None:
    write("runbook.md", "# Team runbook\n\n" + markdown)
    library = RunbookLibrary.load([tmp_path])
    section = library.declared(declared)
    assert section is not None and section.path == "runbook.md" and section.level > 1


def test_headings_that_name_a_problem_declare_nothing(write, tmp_path) -> None:
    write("runbook.md", "# Runbook\n\n## Alert: Elevated 5xx Error Rate\n\n## Alert: Cache drift\n")
    write("names.md", "# Names\n\n|Name|Owner|\n|---|---|\n|payments|team-money|\n")
    assert RunbookLibrary.load([tmp_path]).declarations() == {}
