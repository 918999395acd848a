"""Markdown → Slack mrkdwn."""

from __future__ import annotations

from router.integrations.slack.mrkdwn import blocks, escape, to_mrkdwn


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


def test_an_admonition_is_a_quote_headed_by_its_kind():
    text = to_mrkdwn(":::warning\nDo **not** delete `/data`.\n:::\n\nThen restart.")
    assert text == "> *Warning*\n>\n> Do *not* delete `/data`.\n\nThen restart."
    assert ":::" not in text


def test_an_admonition_title_is_kept_and_escaped():
    text = to_mrkdwn(":::info Before you <start>\n- check the pager\n:::")
    assert text.splitlines() == [
        "> *Info: Before you &lt;start&gt;*",
        ">",
        "> • check the pager",
    ]


def test_the_library_and_slack_read_admonitions_alike():
    from router.library.markdown import build_parser

    source = ":::danger\nstop\n:::\n"
    library = [t.type for t in build_parser().parse(source)]
    assert "container_danger_open" in library
    assert to_mrkdwn(source) == "> *Danger*\n>\n> stop"
