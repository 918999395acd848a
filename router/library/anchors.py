"""GitHub-compatible heading anchors.

GitHub lowercases the heading's rendered text, drops every character that is
not a letter, mark, digit, underscore, hyphen or space, and turns each space
into one hyphen. Repeated slugs in one document get ``-1``, ``-2``… suffixes.
"""

from __future__ import annotations

import unicodedata

# Unicode general categories GitHub keeps: letters, marks, digits, letter numbers, "_".
_KEPT_MAJOR = ("L", "M")
_KEPT_MINOR = ("Nd", "Nl", "Pc")


def _kept(char: str) -> bool:
    if char in "- ":
        return True
    category = unicodedata.category(char)
    return category[0] in _KEPT_MAJOR or category in _KEPT_MINOR


def github_slug(text: str) -> str:
    """The anchor GitHub renders for a heading whose plain text is ``text``."""
    lowered = text.strip().lower()
    return "".join(char for char in lowered if _kept(char)).replace(" ", "-")


class AnchorAllocator:
    """Hands out unique anchors for the headings of one document, in order."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def allocate(self, text: str) -> str:
        """The next unique anchor for a heading with this plain text."""
        base = github_slug(text)
        slug = base
        while slug in self._seen:
            self._seen[base] += 1
            slug = f"{base}-{self._seen[base]}"
        self._seen[slug] = 0
        return slug
