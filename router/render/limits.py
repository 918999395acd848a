"""How much of an alert's own data a message shows: a bounded number of entries, each clipped.

An alert may carry thousands of labels or annotations; every destination shows at most
:data:`MAX_SHOWN` of each (by name), values clipped to :data:`MAX_VALUE_CHARS`, and
says how many it left out. The stored alert keeps everything.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

MAX_SHOWN = 50
MAX_VALUE_CHARS = 500
LEFT_OUT = "…"


def shown(entries: Mapping[str, str], limit: int = MAX_SHOWN) -> dict[str, str]:
    """The first ``limit`` entries by name, values clipped; ``"…"`` counts the rest."""
    names = heapq.nsmallest(limit, entries) if len(entries) > limit else sorted(entries)
    out = {name[:MAX_VALUE_CHARS]: clip(entries[name]) for name in names}
    if len(entries) > limit:
        out[LEFT_OUT] = f"{len(entries) - limit} more"
    return out


def clip(text: str, chars: int = MAX_VALUE_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"
