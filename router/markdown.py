"""The one markdown-it parser factory: the runbook library and Slack rendering parse alike.

CommonMark with tables, strikethrough and ``:::info`` / ``:::warning`` (…) admonition
containers; the library also reads front matter, which only a whole file has.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from mdit_py_plugins.container import container_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

ADMONITIONS = ("info", "warning", "note", "tip", "danger", "caution", "important")


def markdown_parser(*, front_matter: bool = False) -> MarkdownIt:
    """A parser of runbook markdown; ``front_matter`` for whole files."""
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    if front_matter:
        md.use(front_matter_plugin)
    for name in ADMONITIONS:
        md.use(container_plugin, name)
    return md
