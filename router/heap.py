"""After start-up, keep the cyclic garbage collector off what start-up built.

The app, the runbook index, rules and templates live as long as the process. Left in
the collector's generations, every full collection walks them all again: a pause of
tens of milliseconds on the event loop at a hundred thousand objects, more on a busy
machine, which a webhook waiting for its ack feels (``bench/README.md``, "Lean
ingest"). Frozen, they are in no generation; a larger first threshold makes young
collections rarer, each about as cheap as before.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython 3.11: 700)


def settle() -> None:
    """Collect start-up's garbage, then freeze what is left (call once, when started)."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
