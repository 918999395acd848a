"""The project's own runbooks in ``runbooks/`` load cleanly and cover every category."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.library import RunbookLibrary
from router.library.structure import kind
from router.triage import BUILTIN_CATEGORIES

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"


@pytest.fixture(scope="module")
def shipped() -> RunbookLibrary:
    return RunbookLibrary.load([RUNBOOKS])


def test_loads_without_problems(shipped: RunbookLibrary) -> None:
    assert [str(p) for p in shipped.problems] == []
    assert {f.path for f in shipped.files()} >= {
        "latency.md",
        "error-rate.md",
        "database-saturation.md",
        "crashloop.md",
        "rollback.md",
    }


@pytest.mark.parametrize("category", BUILTIN_CATEGORIES)
def test_every_builtin_category_has_a_section(shipped: RunbookLibrary, category: str) -> None:
    assert shipped.best_for_category(category) is not None


@pytest.mark.parametrize(
    ("alert", "path"),
    [
        ("LatencyP95Breaching", "latency.md"),
        ("SLOAvailabilityFastBurn", "error-rate.md"),
        ("DatabaseConnectionSaturation", "database-saturation.md"),
        ("PodCrashLooping", "crashloop.md"),
        ("KubePodCrashLooping", "crashloop.md"),
    ],
)
def test_user_alert_names_are_declared(shipped: RunbookLibrary, alert: str, path: str) -> None:
    section = shipped.declared(alert)
    assert section is not None
    assert section.path == path
    assert kind(section) == "topic"


@pytest.mark.parametrize(
    ("alert", "words", "anchor"),
    [
        ("PodCrashLooping", ["oomkilled"], "oomkilled"),
        ("PodCrashLooping", ["crashloopbackoff"], "crashloopbackoff-application-error"),
        ("PodCrashLooping", ["failed", "probes"], "failed-probes"),
        ("PodCrashLooping", ["missing", "secret"], "missing-secret-or-configmap"),
        ("PodCrashLooping", ["image", "pull"], "image-pull-errors"),
        ("LatencyP95Breaching", ["hpa"], "cpu-saturation--hpa-at-max"),
        ("LatencyP95Breaching", ["pool", "saturated"], "database-pool-saturated"),
        ("LatencyP95Breaching", ["deploy-correlated"], "deploy-correlated"),
        ("LatencyP95Breaching", ["rollback", "helm"], "rollback-with-helm"),
        ("SLOAvailabilityFastBurn", ["crashlooping"], "pods-crashlooping"),
        ("SLOAvailabilityFastBurn", ["database", "unreachable"], "database-unreachable"),
        ("SLOAvailabilityFastBurn", ["bad", "deployment"], "bad-deployment"),
        ("SLOAvailabilityFastBurn", ["rollback"], "deployment-rollback"),
        (
            "DatabaseConnectionSaturation",
            ["one", "application"],
            "one-application-holds-most-connections",
        ),
        ("DatabaseConnectionSaturation", ["idle", "in", "transaction"], "idle-in-transaction"),
        (
            "DatabaseConnectionSaturation",
            ["lock", "chains"],
            "long-running-queries-and-lock-chains",
        ),
        (
            "DatabaseConnectionSaturation",
            ["max_connections"],
            "pool-size--replicas-exceeds-max_connections",
        ),
    ],
)
def test_verdict_subsections_are_addressable(
    shipped: RunbookLibrary, alert: str, words: list[str], anchor: str
) -> None:
    section = shipped.declared(alert)
    assert section is not None
    found = shipped.find_subsection(section, words)
    assert found is not None
    assert found.anchor == anchor


def test_rollback_has_kubectl_and_helm_procedures(shipped: RunbookLibrary) -> None:
    helm = shipped.get("rollback.md#rollback-with-helm")
    kubectl = shipped.get("rollback.md#rollback-with-kubectl")
    assert helm is not None and 'helm -n "$NS" rollback' in helm.markdown
    assert kubectl is not None and 'kubectl -n "$NS" rollout undo' in kubectl.markdown


def test_spec_example_url(shipped: RunbookLibrary) -> None:
    section = shipped.from_url(
        "https://github.com/acme/ops/blob/main/runbooks/latency.md#1-latency-breach"
    )
    assert section is shipped.declared("LatencyP95Breaching")


def test_a_thousand_sections_are_indexed_with_their_declarations(tmp_path: Path) -> None:
    for n in range(4):
        body = "".join(
            f"## {i}. Service {i} latency\n\n### Alert\n**Name**: `Team{n}Service{i}Slow`\n\n"
            f"### Fixes\nSee [next](#{i + 1}-service-{i + 1}-latency) and [rollback](r{i % 7}.md).\n\n"
            for i in range(250)
        )
        (tmp_path / f"r{n}.md").write_text(f"# Team {n}\n\n{body}")
    library = RunbookLibrary.load([tmp_path])  # its speed is measured in bench/cost_growth.py
    assert len(library.sections()) >= 3000
    assert library.declared("Team3Service249Slow").path == "r3.md"
    # Cross-links resolve; only the ones made to point nowhere are reported.
    broken = ("r4.md", "r5.md", "r6.md", "#250-service-250-latency")
    assert library.problems
    assert all(any(name in str(p) for name in broken) for p in library.problems)
