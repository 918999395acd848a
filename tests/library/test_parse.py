from __future__ import annotations

from pathlib import Path

from router.library import RunbookLibrary
from router.library.markdown import build_parser
from router.library.parse import parse_runbook


def parse(text: str, path: str = "doc.md"):
    return parse_runbook(build_parser(), text, path, Path("/runbooks") / path)


def outline(library: RunbookLibrary, path: str) -> list[tuple[int, str, str]]:
    return [(s.level, s.anchor, s.title) for s in library.sections() if s.path == path]


def test_numbered_style_tree(library: RunbookLibrary) -> None:
    rows = outline(library, "numbered.md")
    assert rows[:4] == [
        (0, "", "Payments operations"),
        (1, "payments-operations", "Payments operations"),
        (2, "contents", "Contents"),
        (
            2,
            "1-checkout-latency-p95--600ms-for-10min",
            "1. Checkout Latency (p95 > 600ms for 10min)",
        ),
    ]
    assert (3, "alert-1", "Alert") in rows
    assert (4, "if-cpu-bound", "If CPU-bound:") in rows
    latency = library.get("numbered.md#1-checkout-latency-p95--600ms-for-10min")
    assert latency is not None
    assert [c.title for c in latency.children] == [
        "Alert",
        "Symptoms",
        "Investigation Steps",
        "Resolution Actions",
    ]
    assert latency.children[2].children[0].parent is latency.children[2]


def test_comment_lines_in_code_blocks_are_not_headings(library: RunbookLibrary) -> None:
    titles = [s.title for s in library.sections()]
    assert not any("shell comment" in t for t in titles)


def test_section_markdown_is_sliced_byte_for_byte(library: RunbookLibrary, fixtures: Path) -> None:
    source = (fixtures / "numbered.md").read_text()
    step = library.get("numbered.md#step-1-look-at-the-pods")
    assert step is not None
    assert step.start_line == 22
    assert step.markdown in source
    assert "```bash\n# ## this is a shell comment, not a heading\nkubectl" in step.markdown
    assert "| Panel | Where |\n|-------|-------|\n| Latency | Golden signals |\n" in step.markdown


def test_section_markdown_includes_subsections_and_drops_trailing_rule(
    library: RunbookLibrary,
) -> None:
    section = library.get("numbered.md#1-checkout-latency-p95--600ms-for-10min")
    assert section is not None
    assert section.markdown.startswith("## 1. Checkout Latency")
    assert "#### If deploy-correlated:" in section.markdown
    assert section.markdown.endswith("See [Release Rollback](#3-release-rollback)\n")
    assert "## 2. Refund Errors" not in section.markdown


def test_titles_are_plain_text_after_inline_rendering() -> None:
    doc = parse("# The `kubectl` **rollout** [guide](http://x)\n\n## *Step* &amp; more\n")
    heading, sub = doc.root.children[0], doc.root.children[0].children[0]
    assert (heading.title, heading.anchor) == (
        "The kubectl rollout guide",
        "the-kubectl-rollout-guide",
    )
    assert (sub.title, sub.anchor) == ("Step & more", "step--more")


def test_setext_headings_and_skipped_levels() -> None:
    doc = parse("Title\n=====\n\n#### Deep\n\ntext\n\nOther\n-----\n")
    title = doc.root.children[0]
    assert [(c.level, c.title) for c in title.children] == [(4, "Deep"), (2, "Other")]
    assert title.children[1].start_line == 8


def test_front_matter_is_read_and_kept_out_of_the_markdown(library: RunbookLibrary) -> None:
    runbook = next(f for f in library.files() if f.path == "frontmatter.md")
    assert runbook.meta.owner == "team-search"
    assert runbook.meta.tags == ["search", "opensearch"]
    assert runbook.root.title == "Search cluster"
    assert runbook.top.anchor == "search-cluster-runbook"
    assert runbook.root.markdown.startswith("# Search cluster runbook")
    assert runbook.top.start_line == 9


def test_admonitions_stay_in_the_section_text(library: RunbookLibrary) -> None:
    top = library.get("frontmatter.md#search-cluster-runbook")
    assert top is not None
    assert ":::info\nQueries go through the `search-gateway` service." in top.markdown
    assert ":::warning\nNever restart more than one search node at a time.\n:::" in top.markdown
    assert [c.title for c in top.children] == ["Checks", "Restart a node"]
    inner = library.get("frontmatter.md#heading-inside-an-admonition")
    assert inner is top


def test_crlf_sources_keep_line_alignment() -> None:
    doc = parse("# A\r\n\r\ntext\r\n\r\n## B\r\n\r\nmore\r\n")
    b = doc.root.children[0].children[0]
    assert b.start_line == 5
    assert b.markdown == "## B\r\n\r\nmore\r\n"


def test_file_without_headings_is_one_section() -> None:
    doc = parse("Just restart it.\n", path="team/notes.md")
    assert doc.root.title == "notes"
    assert doc.top is doc.root
    assert doc.root.markdown == "Just restart it.\n"


def test_paths_are_relative_to_the_root_folder(write, tmp_path: Path) -> None:
    write("team/payments.md", "# Payments\n")
    write("a.markdown", "# A\n")
    write(".hidden/skip.md", "# Hidden\n")
    write("notes.txt", "# Not markdown\n")
    library = RunbookLibrary.load([tmp_path])
    assert [f.path for f in library.files()] == ["a.markdown", "team/payments.md"]
    payments = library.get("team/payments.md")
    assert payments is not None
    assert payments.source == (tmp_path / "team/payments.md").resolve()


def test_link_urls(library: RunbookLibrary, write) -> None:
    section = library.get("numbered.md#3-release-rollback")
    assert section is not None
    link = section.link()
    assert (
        link.url == "https://git.example.com/ops/blob/main/runbooks/numbered.md#3-release-rollback"
    )
    assert (link.path, link.anchor, link.title) == (
        "numbered.md",
        "3-release-rollback",
        "3. Release Rollback",
    )
    local = RunbookLibrary.load([write("x.md", "# X\n")])
    x = local.get("x.md#x")
    assert x is not None
    assert x.link().url == (x.source.as_uri() + "#x")
