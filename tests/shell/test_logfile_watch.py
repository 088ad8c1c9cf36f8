"""`watch`: real inotify (through watchdog) on a real directory, woken on a real event loop."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from irisd.shell.logfile import watch


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


async def test_other_files_in_the_directory_do_not_wake_the_tailer(tmp_path: Path) -> None:
    """An IRIS mgr/ holds the IRISSYS database, alerts.log, iris.ids...: their writes are not
    the log's, and each would cost a read round."""
    log = tmp_path / "messages.log"
    log.write_bytes(b"")
    other = tmp_path / "IRIS.DAT"
    other.write_bytes(b"")
    wakes = Wakes()
    stop = watch(log, wakes, asyncio.get_running_loop())
    try:
        for n in range(20):
            append(other, b"block %d\n" % n)
        append(tmp_path / "alerts.log", b"alert\n")
        await asyncio.sleep(0.5)
        assert wakes.count == 0
        append(log, b"line\n")  # the same watch does see the log itself
        await until(lambda: wakes.count >= 1)
    finally:
        stop()


async def test_the_log_its_rotation_and_its_removal_wake_the_tailer(tmp_path: Path) -> None:
    log = tmp_path / "messages.log"
    log.write_bytes(b"first\n")
    wakes = Wakes()
    stop = watch(log, wakes, asyncio.get_running_loop())
    try:
        append(log, b"second\n")
        await until(lambda: wakes.count >= 1)
        seen = wakes.count
        os.rename(log, tmp_path / "messages.old_20251128")  # IRIS's own rotation
        await until(lambda: wakes.count > seen)
        seen = wakes.count
        log.write_bytes(b"new file\n")  # the new log appears
        await until(lambda: wakes.count > seen)
        seen = wakes.count
        (tmp_path / "messages.old_20251128").unlink()
        await until(lambda: wakes.count > seen)
    finally:
        stop()


async def test_a_burst_of_events_while_the_loop_is_busy_costs_one_wake_up(tmp_path: Path) -> None:
    """A writer doing one write() per line makes one inotify event per line; while a wake-up is
    pending on the loop, more events add nothing to it. (Writes alternate between the log and a
    rotated sibling so that watchdog's own skipping of identical events does not hide a wake-up
    per event.)"""
    log = tmp_path / "messages.log"
    rotated = tmp_path / "messages.log.1"
    wakes = Wakes()
    with log.open("ab", buffering=0) as a, rotated.open("ab", buffering=0) as b:
        stop = watch(log, wakes, asyncio.get_running_loop())
        try:
            for n in range(100):
                a.write(b"line %d\n" % n)
                b.write(b"line %d\n" % n)
            time.sleep(1.0)  # noqa: ASYNC251 - the loop is busy (blocked) while watchdog sees every write
            await until(lambda: wakes.count >= 1)
            await asyncio.sleep(0.3)  # let whatever else was pending run
            assert 1 <= wakes.count < 20  # not one per event (200)
        finally:
            stop()


async def test_a_log_named_without_an_extension_wakes_the_tailer(tmp_path: Path) -> None:
    """`messages` (no suffix) is its own name, not `<stem>.`-something: it must wake all the same,
    and so must its rotations (`messages.1`)."""
    log = tmp_path / "messages"
    log.write_bytes(b"")
    wakes = Wakes()
    stop = watch(log, wakes, asyncio.get_running_loop())
    try:
        append(log, b"line\n")
        await until(lambda: wakes.count >= 1)
        seen = wakes.count
        os.rename(log, tmp_path / "messages.1")
        await until(lambda: wakes.count > seen)
    finally:
        stop()
