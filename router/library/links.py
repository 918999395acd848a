"""Resolving links and URLs to files of the library."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
GITHUB_ANCHOR_PREFIX = "user-content-"


def is_external(href: str) -> bool:
    """A URL with a scheme (``https:``, ``mailto:``) or a network path (``//host``)."""
    return bool(_SCHEME.match(href)) or href.startswith("//")


def split_ref(ref: str) -> tuple[str, str]:
    """``path#anchor`` → (path, anchor), both unquoted; anchor without GitHub's prefix."""
    path, _, fragment = ref.partition("#")
    anchor = unquote(fragment)
    if anchor.startswith(GITHUB_ANCHOR_PREFIX):
        anchor = anchor[len(GITHUB_ANCHOR_PREFIX) :]
    return unquote(path), anchor


def normalize_path(path: str) -> str:
    """``./team/a.md`` → ``team/a.md``; empty for the empty path."""
    if not path:
        return ""
    return posixpath.normpath(path).lstrip("/")


def relative_target(from_path: str, href_path: str) -> str:
    """Where a relative link written in ``from_path`` points, relative to the same root."""
    if href_path.startswith("/"):
        return normalize_path(href_path)
    return normalize_path(posixpath.join(posixpath.dirname(from_path), href_path))


def url_path(url: str) -> tuple[str, str]:
    """The path and anchor of a URL or a relative reference."""
    if is_external(url):
        parts = urlsplit(url)
        return unquote(parts.path), split_ref(f"#{parts.fragment}")[1]
    return split_ref(url)


def path_suffixes(path: str) -> Iterator[str]:
    """``a/b/c.md`` → ``a/b/c.md``, ``b/c.md``, ``c.md``."""
    segments = [s for s in path.split("/") if s and s != "."]
    for start in range(len(segments)):
        yield "/".join(segments[start:])


def prefix_match(anchor: str, anchors: list[str]) -> str | None:
    """The first anchor that extends ``anchor`` by whole words (``1-latency`` → ``1-latency-breach``)."""
    stem = f"{anchor}-"
    return next((a for a in anchors if a.startswith(stem)), None)
