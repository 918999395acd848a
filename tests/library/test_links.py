from __future__ import annotations

import pytest

from router.library import RunbookLibrary


def refs(sections) -> list[str]:
    return [s.ref for s in sections]


def test_same_file_cross_link_becomes_related(library: RunbookLibrary) -> None:
    latency = library.get("numbered.md#1-checkout-latency-p95--600ms-for-10min")
    assert latency is not None
    assert refs(latency.related) == ["numbered.md#3-release-rollback"]
    excerpt = library.excerpt(latency)
    assert [r.anchor for r in excerpt.related] == ["3-release-rollback"]
    assert [s.title for s in excerpt.subsections] == [
        "Alert",
        "Symptoms",
        "Investigation Steps",
        "Resolution Actions",
    ]
    assert excerpt.markdown == latency.markdown


def test_cross_file_link_resolves(library: RunbookLibrary) -> None:
    consumers = library.get("table.md#consumers-down")
    assert consumers is not None
    assert refs(consumers.related) == ["numbered.md#3-release-rollback"]


def test_links_into_the_section_itself_are_not_related(library: RunbookLibrary) -> None:
    top = library.get("numbered.md#payments-operations")
    assert top is not None
    assert top.related == []


def test_broken_links_are_problems_with_lines(library: RunbookLibrary) -> None:
    messages = {(p.path.rsplit("/", 1)[-1], p.line, p.message) for p in library.problems}
    assert (
        "table.md",
        16,
        "broken link 'numbered.md#no-such-section': no section #no-such-section in numbered.md",
    ) in messages
    abbreviated = [m for m in messages if "'#1-checkout-latency'" in m[2]]
    assert abbreviated == [
        (
            "numbered.md",
            5,
            "link '#1-checkout-latency' is not a GitHub anchor; "
            "did you mean #1-checkout-latency-p95--600ms-for-10min?",
        )
    ]


def test_link_to_missing_markdown_file_and_ignored_links(write, tmp_path) -> None:
    write("docs/script.sh", "echo\n")
    write(
        "docs/a.md",
        "# A\n\n[gone](./missing.md) [web](https://example.com/x.md) [sh](script.sh) "
        "[mail](mailto:x@example.com) [b](../b.md#b)\n",
    )
    write("b.md", "# B\n")
    library = RunbookLibrary.load([tmp_path])
    assert [(p.line, p.message) for p in library.problems] == [
        (3, "broken link './missing.md': no such runbook")
    ]
    assert refs(library.get("docs/a.md#a").related) == ["b.md#b"]  # type: ignore[union-attr]


def test_find_subsection_in_descendants_and_related(library: RunbookLibrary) -> None:
    latency = library.get("numbered.md#1-checkout-latency-p95--600ms-for-10min")
    assert latency is not None
    assert library.find_subsection(latency, ["cpu-bound"]).anchor == "if-cpu-bound"  # type: ignore[union-attr]
    assert (
        library.find_subsection(latency, ["DEPLOY", "correlated"]).anchor == "if-deploy-correlated"
    )  # type: ignore[union-attr]
    assert library.find_subsection(latency, ["rollback"]).anchor == "3-release-rollback"  # type: ignore[union-attr]
    assert library.find_subsection(latency, ["helm"]).anchor == "option-a-helm-rollback"  # type: ignore[union-attr]
    assert library.find_subsection(latency, ["oomkilled"]) is None
    assert library.find_subsection(latency, []) is None


@pytest.mark.parametrize(
    ("url", "ref"),
    [
        (
            "https://github.com/acme/ops/blob/main/runbooks/numbered.md#3-release-rollback",
            "numbered.md#3-release-rollback",
        ),
        (
            "https://github.com/acme/ops/blob/main/runbooks/numbered.md#user-content-3-release-rollback",
            "numbered.md#3-release-rollback",
        ),
        # an abbreviated anchor, as people write them in runbook_url annotations
        (
            "https://github.com/acme/ops/blob/main/runbooks/numbered.md#1-checkout-latency",
            "numbered.md#1-checkout-latency-p95--600ms-for-10min",
        ),
        ("https://wiki.example.com/runbooks/portal.md", "portal.md#helpdesk-runbooks"),
        ("runbooks/severity.md#KubePodCrashLooping", "severity.md#kubepodcrashlooping"),
        ("./table.md#backlog-growing", "table.md#backlog-growing"),
        ("table.md", "table.md#queue-alerts"),
    ],
)
def test_from_url(library: RunbookLibrary, url: str, ref: str) -> None:
    section = library.from_url(url)
    assert section is not None
    assert section.ref == ref


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/ops/blob/main/runbooks/numbered.md#nothing-like-this",
        "https://github.com/acme/ops/blob/main/runbooks/other.md#1-checkout-latency",
        "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
        "",
    ],
)
def test_from_url_outside_the_library(library: RunbookLibrary, url: str) -> None:
    assert library.from_url(url) is None


def test_from_url_prefers_the_longest_path_match(write, tmp_path) -> None:
    write("latency.md", "# Root latency\n")
    write("team/latency.md", "# Team latency\n")
    library = RunbookLibrary.load([tmp_path])
    assert (
        library.from_url("https://x/blob/main/runbooks/team/latency.md").path == "team/latency.md"
    )  # type: ignore[union-attr]
    assert library.from_url("https://x/blob/main/runbooks/latency.md").path == "latency.md"  # type: ignore[union-attr]


def test_get(library: RunbookLibrary) -> None:
    assert library.get("numbered.md#3-release-rollback").title == "3. Release Rollback"  # type: ignore[union-attr]
    assert library.get("./numbered.md").level == 0  # type: ignore[union-attr]
    assert library.get("numbered.md#1-checkout-latency") is None  # get is exact
    assert library.get("missing.md") is None
    assert library.get("numbered.md#") is not None
