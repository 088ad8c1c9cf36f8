"""How the daemon and `irisd classify` set CPython's cyclic garbage collector once start-up is done.

The pipeline allocates hundreds of thousands of short-lived tuples a second (entries, events,
rows); reference counting frees them, yet each allocation counts toward the collector's young
generation, which CPython collects every 700 of them, walking every young container each time.
Start-up objects (modules, pydantic models, the rule table) would also be walked again by every
older-generation pass. So, once start-up is over: collect once, freeze what is left (the collector
ignores it from then on), and collect the young generation every 20,000 allocations. Only cyclic
garbage waits longer to be freed, and the pipeline makes almost none. Measured on the daemon path
(file → SQLite, bench/ingest.py's backlog): about a fifth faster.
"""

from __future__ import annotations

import gc

YOUNG = 20_000
MIDDLE = 50
OLD = 100


def settle() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, OLD)
