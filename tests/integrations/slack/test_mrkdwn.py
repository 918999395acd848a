"""Markdown → Slack mrkdwn."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.integrations.slack.mrkdwn import Conversions, blocks, escape, to_mrkdwn
from router.library import RunbookLibrary
from router.placeholders import ready_to_paste

ROOT = Path(__file__).resolve().parents[3]


def test_headings_become_bold_lines() -> None:
    assert to_mrkdwn("# Title\n\n## Sub **x**") == "*Title*\n\n*Sub x*"


def test_emphasis_links_and_inline_code() -> None:
    text = "Some **bold**, _em_, ~~gone~~, `a<b` and [docs](https://x.io/a?b=1&c=2)."
    assert to_mrkdwn(text) == (
        "Some *bold*, _em_, ~gone~, `a&lt;b` and <https://x.io/a?b=1&amp;c=2|docs>."
    )


def test_relative_links_keep_only_their_text() -> None:
    assert to_mrkdwn("See [rollback](rollback.md#steps).") == "See rollback."


def test_special_characters_are_escaped() -> None:
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    assert to_mrkdwn("x > 1 && y < 2") == "x &gt; 1 &amp;&amp; y &lt; 2"


def test_fenced_code_is_kept_and_escaped() -> None:
    text = "```bash\nkubectl get pods -l app=<name>\n```"
    assert to_mrkdwn(text) == "```\nkubectl get pods -l app=&lt;name&gt;\n```"
    assert [b.kind for b in blocks(text)] == ["code"]


def test_lists_keep_bullets_numbers_and_nesting() -> None:
    text = "1. one\n2. two\n   - nested *a*\n     1. deep\n3. three\n\n- a\n- b"
    assert to_mrkdwn(text) == (
        "1. one\n2. two\n    ◦ nested _a_\n        1. deep\n3. three\n\n• a\n• b"
    )


def test_ordered_lists_keep_their_start() -> None:
    assert to_mrkdwn("3. c\n4. d") == "3. c\n4. d"


def test_tables_become_aligned_monospace() -> None:
    text = "| name | value |\n|---|---|\n| **api** | `12` |\n| worker-long | 3 |"
    assert to_mrkdwn(text) == (
        "```\nname        | value\n------------+------\napi         | 12\nworker-long | 3\n```"
    )


def test_blockquotes() -> None:
    assert to_mrkdwn("> careful\n>\n> really") == "> careful\n>\n> really"


def test_soft_breaks_join_lines() -> None:
    assert to_mrkdwn("one\ntwo") == "one two"


# A section converted as its template, values put in afterwards, reads exactly as the
# filled section converted on its own: the shipped runbooks and every test library.
LIBRARIES = [ROOT / "runbooks", ROOT / "tests" / "library" / "styles", ROOT / "tests" / "library"]
LABELS = [
    {"namespace": "shop", "pod": "api-7d9f-x2", "service": "checkout", "instance": "10.0.0.1:9100"},
    {"namespace": "a_b_", "pod": "1.", "job": "x_y.z", "node": "n@1/2", "datname": "db_main"},
    {"namespace": "bad value", "pod": "--all"},  # refused: nothing is filled
]


@pytest.mark.parametrize("labels", LABELS)
def test_a_section_converted_once_reads_as_the_filled_section(labels: dict[str, str]) -> None:
    library = RunbookLibrary.load(LIBRARIES)
    conversions = Conversions()
    for _ in range(2):  # the second time from what the first remembered
        for section in library.sections():
            excerpt = ready_to_paste(library.excerpt(section), labels)
            converted = conversions.blocks(excerpt.markdown, excerpt.template, excerpt.marks)
            assert converted == blocks(excerpt.markdown), section.ref


def test_a_marker_outside_code_converts_the_filled_text() -> None:
    template, marks = "Run `x` on \ue0000\ue001_ now", {"\ue0000\ue001": "a_b"}
    conversions = Conversions()
    assert conversions.blocks("Run `x` on a_b_ now", template, marks) == blocks(
        "Run `x` on a_b_ now"
    )


def test_remembered_conversions_stay_within_their_size() -> None:
    conversions = Conversions(size=2)
    for text in ("# a", "# b", "# c", "# a"):
        assert conversions.blocks(text) == blocks(text)
    assert len(conversions._done) == 2
