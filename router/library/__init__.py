"""The runbook library: markdown runbooks parsed into sections and indexed for routing.

``RunbookLibrary.load(paths)`` parses every runbook, finds which sections declare
which alert names and which built-in category each runbook is about, and resolves
cross-links; ``LibraryFinder`` picks the excerpt for one alert.
"""

from router.library.anchors import AnchorAllocator, github_slug
from router.library.finder import LibraryFinder
from router.library.library import RunbookLibrary
from router.library.model import RunbookFile, Section

__all__ = [
    "AnchorAllocator",
    "LibraryFinder",
    "RunbookFile",
    "RunbookLibrary",
    "Section",
    "github_slug",
]
