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
