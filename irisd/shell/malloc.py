"""Give the C heap back to the system after a burst, so the daemon's RSS follows its steady load.

Why: a backlog or a burst makes the daemon hold, for a few seconds, batches of hundreds of KiB (the
JSON of up to `batch_max_events` events per sink, `concurrency` of them at once). glibc's malloc
serves a request that large from mmap and unmaps it when freed, but after the first such free it
raises that threshold (up to 32 MiB) and serves the next ones from the heap, whose freed pages it
keeps. Measured with bench/deliver.py (a 200,000-line burst, then 1,000 lines/s): RSS stayed
about 5 MiB above the steady figure for good.

What: `tune()` (once, at start-up) pins the mmap threshold at glibc's default of 128 KiB, so a
batch buffer is always unmapped when freed; `Releaser` calls `malloc_trim(0)`, which returns the
heap's free pages, once the pipeline has worked through a burst and caught up. Both do nothing
where the C library is not glibc (musl has neither call).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Final

log = logging.getLogger("irisd.malloc")

_M_MMAP_THRESHOLD: Final = -3  # glibc's malloc.h
MMAP_THRESHOLD: Final = 128 * 1024
BURST_ENTRIES: Final = 10_000  # entries worked through since the last trim that make a burst


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC: Final = _glibc()


def tune() -> bool:
    """Pin the mmap threshold; False where that is not possible (not glibc)."""
    return _LIBC is not None and _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


def trim() -> bool:
    """Return the heap's free pages to the system; True if glibc released any."""
    return _LIBC is not None and _LIBC.malloc_trim(0) == 1


class Releaser:
    """Trims once a burst is over: `BURST_ENTRIES` or more entries since the last trim, and the
    tailer has caught up. Called from the daemon's housekeeping with the tailer's running count;
    cheap to call often (a comparison), the trim itself takes a few milliseconds."""

    def __init__(self, *, burst: int = BURST_ENTRIES) -> None:
        self.burst = burst
        self._at = 0
        self.trims = 0

    def after(self, entries: int, *, caught_up: bool) -> bool:
        if not caught_up or entries - self._at < self.burst:
            return False
        self._at = entries
        self.trims += 1
        trim()
        return True
