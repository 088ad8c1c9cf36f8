"""irisd.shell.malloc on this machine's glibc: the trim really returns memory, and the releaser
trims once per burst, only after the pipeline caught up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from irisd.shell import malloc

pytestmark = pytest.mark.skipif(malloc._LIBC is None, reason="not glibc")

# 64 MiB in 1 KiB blocks (too big for Python's small-object allocator, so malloc's heap holds
# them), all freed but the last, which pins the top of the heap: free() alone cannot give the
# pages back, malloc_trim can.
CHILD = """
import sys
from irisd.shell import malloc
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
blocks = [bytes(1024) for _ in range(65536)]
keep = bytes(1024)
del blocks
before = rss()
trimmed = malloc.trim() if sys.argv[1] == "trim" else False
print(before, rss(), trimmed)
"""


def run_child(mode: str) -> tuple[int, int, bool]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[0]), int(out[1]), out[2] == "True"


def test_trim_gives_freed_heap_pages_back_to_the_system() -> None:
    before, after, trimmed = run_child("trim")
    assert trimmed
    assert before - after > 32 << 20  # most of the 64 MiB freed


def test_without_the_trim_the_freed_pages_stay() -> None:
    before, after, _ = run_child("none")
    assert abs(before - after) < 4 << 20


def test_tune_pins_the_mmap_threshold() -> None:
    assert malloc.tune()


def test_the_releaser_trims_once_a_burst_is_worked_through() -> None:
    releaser = malloc.Releaser(burst=100)
    assert not releaser.after(50, caught_up=True)  # not a burst yet
    assert not releaser.after(500, caught_up=False)  # a burst, still being read
    assert releaser.after(500, caught_up=True)
    assert not releaser.after(550, caught_up=True)  # counted from the last trim
    assert releaser.after(600, caught_up=True)
    assert releaser.trims == 2
