"""Commands ready to paste: placeholders in code filled from the alert, safely."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from router.alerts import Alert
from router.library import LibraryFinder, RunbookLibrary
from router.pipeline import Pipeline
from router.placeholders import fill, values_from_labels
from router.triage import Classification, Diagnosis, TriageResult
from tests import factories

ROOT = Path(__file__).resolve().parents[1]
VALUES = {"namespace": "shop", "pod": "api-7d9c5-x2", "deployment": "api", "datname": "orders"}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("kubectl -n <namespace> describe pod <pod>", "kubectl -n shop describe pod api-7d9c5-x2"),
        ("kubectl -n <NAMESPACE> logs <pod-name>", "kubectl -n shop logs api-7d9c5-x2"),
        ("export NS=<namespace> POD=<pod>", "export NS=shop POD=api-7d9c5-x2"),
        ("NAMESPACE=... ; DEPLOYMENT=''", "NAMESPACE=shop ; DEPLOYMENT=api"),
        ('kubectl -n "$NS" rollout undo deploy/${DEPLOYMENT}', 'kubectl -n "shop" rollout undo deploy/api'),
        ("psql -d {{ datname }} -c 'select 1' # {{ $labels.namespace }} {{.Labels.pod}}",
         "psql -d orders -c 'select 1' # shop api-7d9c5-x2"),
        # not recognised, or no value: left as written
        ("kubectl -n <namespace> get <resource> -c <container> $HOME", "kubectl -n shop get <resource> -c <container> $HOME"),
        ("echo $pod $PODS", "echo $pod $PODS"),
    ],
)  # fmt: skip
def test_recognised_forms_in_a_code_block(code: str, expected: str) -> None:
    result = fill(f"Run:\n\n```sh\n{code}\n```\n", VALUES)
    assert result.markdown == f"Run:\n\n```sh\n{expected}\n```\n"


def test_only_code_is_touched_and_the_note_says_what_was_filled() -> None:
    markdown = (
        "Find the <pod> in $NAMESPACE first.\n\n"
        "Then run `kubectl -n <namespace> get pod <pod>` and:\n\n"
        "~~~\nkubectl logs <pod>\n```\nstill code <namespace>\n~~~\n"
        "After the block, <namespace> is prose again.\n"
    )
    result = fill(markdown, VALUES)
    assert result.markdown == (
        "Find the <pod> in $NAMESPACE first.\n\n"
        "Then run `kubectl -n shop get pod api-7d9c5-x2` and:\n\n"
        "~~~\nkubectl logs api-7d9c5-x2\n```\nstill code shop\n~~~\n"
        "After the block, <namespace> is prose again.\n"
    )
    assert result.filled == {"namespace": "shop", "pod": "api-7d9c5-x2"}
    assert result.note() == "Filled from the alert: namespace=shop, pod=api-7d9c5-x2"


HOSTILE = [
    "x; rm -rf /",
    "$(id)",
    "`id`",
    "api\nrm -rf /",
    "a'b",
    'a"b',
    "a b",
    "--all",
    "-n",
    "a|b",
    "a&&b",
    "a>b",
    "${IFS}",
    "a\\b",
    "x" * 254,
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_that_is_not_a_plain_token_is_never_substituted(value: str) -> None:
    code = 'export NS=<namespace>\nkubectl -n "$NS" delete pod <pod> `echo {{ pod }}`'
    result = fill(f"```\n{code}\n```\n", {"namespace": "shop", "pod": value})
    expected = 'export NS=shop\nkubectl -n "shop" delete pod <pod> `echo {{ pod }}`'
    assert result.markdown == f"```\n{expected}\n```\n"
    assert value == "" or result.refused == ["pod"]
    if value:
        assert result.note().endswith("not filled (not a plain value): pod")


@pytest.mark.parametrize("value", ["api-7d9c5-x2", "10.0.0.7:9100", "svc@v1", "a_b.c/d"])
def test_a_plain_value_stays_one_word_of_the_command(value: str) -> None:
    code = "kubectl -n <namespace> exec <pod> -- ls"
    result = fill(f"`{code}`", {"namespace": value, "pod": value})
    filled = result.markdown.strip("`")
    assert shlex.split(filled) == ["kubectl", "-n", value, "exec", value, "--", "ls"]


def test_values_come_from_the_labels_in_order_of_preference() -> None:
    labels = {"pod_name": "old", "pod": "new", "exported_namespace": "ns", "service": "checkout"}
    assert values_from_labels(labels) == {"pod": "new", "namespace": "ns", "service": "checkout"}


class Crashloop:
    def classify(self, alert: Alert) -> Classification:
        return Classification(category="crashloop")


class FoundTheDeployment:
    """Diagnostics that found the alert's Deployment (and another pod, which must not win)."""

    async def diagnose(self, result: TriageResult, deadline: float) -> Diagnosis:
        return Diagnosis(names={"deployment": "api", "pod": "api-other", "node": "n 1"})


async def test_the_pipeline_fills_the_shipped_section_from_labels_then_from_diagnostics() -> None:
    library = RunbookLibrary.load([ROOT / "runbooks"])
    alert = Alert.model_validate(
        factories.alert("PodCrashLooping", labels={"namespace": "shop", "pod": "api-1"})
    )
    finder = LibraryFinder(library)
    as_written = finder.find(alert, Classification(category="crashloop"))
    assert as_written is not None and as_written.link.anchor == "pod-crash-loops"
    assert "export NS=<namespace> POD=<pod>" in as_written.markdown and not as_written.filled

    pipeline = Pipeline(Crashloop(), finder, FoundTheDeployment(), sinks=[])
    excerpt = (await pipeline.triage(TriageResult(alert=alert))).runbook
    assert excerpt is not None
    assert "export NS=shop POD=api-1\n" in excerpt.markdown  # the label wins over what was found
    assert 'kubectl -n "shop" logs "api-1" --previous --tail=100' in excerpt.markdown
    assert "set resources deployment/api -c <container>" in excerpt.markdown  # none known
    assert excerpt.filled == (
        "Filled from the alert: namespace=shop, pod=api-1; found by diagnostics: deployment=api"
    )


def test_values_only_found_by_diagnostics_say_so() -> None:
    result = fill("`kubectl rollout undo deploy/<deployment>`", {"deployment": "api"})
    assert result.note(found=["deployment"]) == "Filled from what diagnostics found: deployment=api"
