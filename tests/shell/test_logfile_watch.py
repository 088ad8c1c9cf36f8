"""`watch`: real inotify on a real directory, woken on a real event loop; each test runs with the
descriptor read on the loop (the default on Linux) and through watchdog (the fallback)."""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from irisd.shell.logfile import Backend, inotify_events, watch


@pytest.fixture(params=["inotify", "watchdog"])
def backend(request: pytest.FixtureRequest) -> Backend:
    value: Backend = request.param
    return value


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


async def test_other_files_in_the_directory_do_not_wake_the_tailer(
    tmp_path: Path, backend: Backend
) -> None:
    """An IRIS mgr/ holds the IRISSYS database, alerts.log, iris.ids...: their writes are not
    the log's, and each would cost a read round."""
    log = tmp_path / "messages.log"
    log.write_bytes(b"")
    other = tmp_path / "IRIS.DAT"
    other.write_bytes(b"")
    wakes = Wakes()
    stop = watch(log, wakes, asyncio.get_running_loop(), backend=backend)
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


async def test_the_log_its_rotation_and_its_removal_wake_the_tailer(
    tmp_path: Path, backend: Backend
) -> None:
    log = tmp_path / "messages.log"
    log.write_bytes(b"first\n")
    wakes = Wakes()
    stop = watch(log, wakes, asyncio.get_running_loop(), backend=backend)
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


async def test_a_burst_of_events_while_the_loop_is_busy_costs_one_wake_up(
    tmp_path: Path, backend: Backend
) -> None:
    """A writer doing one write() per line makes one inotify event per line; while a wake-up is
    pending on the loop, more events add nothing to it. (Writes alternate between the log and a
    rotated sibling so that watchdog's own skipping of identical events does not hide a wake-up
    per event.)"""
    log = tmp_path / "messages.log"
    rotated = tmp_path / "messages.log.1"
    wakes = Wakes()
    with log.open("ab", buffering=0) as a, rotated.open("ab", buffering=0) as b:
        stop = watch(log, wakes, asyncio.get_running_loop(), backend=backend)
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


async def test_a_log_named_without_an_extension_wakes_the_tailer(
    tmp_path: Path, backend: Backend
) -> None:
    """`messages` (no suffix) is its own name, not `<stem>.`-something: it must wake all the same,
    and so must its rotations (`messages.1`)."""
    log = tmp_path / "messages"
    log.write_bytes(b"")
    wakes = Wakes()
    stop = watch(log, wakes, asyncio.get_running_loop(), backend=backend)
    try:
        append(log, b"line\n")
        await until(lambda: wakes.count >= 1)
        seen = wakes.count
        os.rename(log, tmp_path / "messages.1")
        await until(lambda: wakes.count > seen)
    finally:
        stop()


async def test_on_linux_the_default_reads_inotify_on_the_loop_without_threads(
    tmp_path: Path,
) -> None:
    log = tmp_path / "messages.log"
    log.write_bytes(b"")
    wakes = Wakes()
    before = threading.active_count()
    stop = watch(log, wakes, asyncio.get_running_loop())
    try:
        assert threading.active_count() == before
        append(log, b"line\n")
        await until(lambda: wakes.count >= 1)
    finally:
        stop()


def event(mask: int, name: bytes, pad: int = 0) -> bytes:
    raw = name + b"\0" * (pad or 1) if name else b""
    return struct.pack("iIII", 1, mask, 0, len(raw)) + raw


def test_inotify_events_reads_each_event_of_a_buffer() -> None:
    data = event(0x2, b"messages.log", pad=4) + event(0x4000, b"") + event(0x100, b"IRIS.WIJ")
    assert list(inotify_events(data)) == [
        (1, 0x2, b"messages.log"),
        (1, 0x4000, b""),
        (1, 0x100, b"IRIS.WIJ"),
    ]
    assert list(inotify_events(b"")) == []


async def test_after_a_rotation_writes_to_the_new_log_and_to_the_rotated_one_wake(
    tmp_path: Path, backend: Backend
) -> None:
    """The watch follows the name to the new file, and a writer that still appends to the file it
    had open (now renamed) still wakes the tailer, which reads that file to its end. The log is
    rotated again and again: each time it holds."""
    log = tmp_path / "messages.log"
    log.write_bytes(b"first\n")
    wakes = Wakes()
    stop = watch(log, wakes, asyncio.get_running_loop(), backend=backend)
    try:
        for rotation in range(3):
            with log.open("ab", buffering=0) as late_writer:
                os.rename(log, tmp_path / f"messages.log.{rotation}")
                log.write_bytes(b"new file\n")
                await asyncio.sleep(0.1)
                for write in (lambda: append(log, b"line\n"), lambda: late_writer.write(b"late\n")):
                    seen = wakes.count
                    write()
                    await until(lambda seen=seen: wakes.count > seen)
    finally:
        stop()


async def test_a_log_that_appears_after_the_watch_began_is_watched_from_then_on(
    tmp_path: Path, backend: Backend
) -> None:
    log = tmp_path / "messages.log"
    wakes = Wakes()
    stop = watch(log, wakes, asyncio.get_running_loop(), backend=backend)
    try:
        log.write_bytes(b"")  # IRIS creates it at its first start
        await until(lambda: wakes.count >= 1)
        await asyncio.sleep(0.1)
        seen = wakes.count
        append(log, b"line\n")
        await until(lambda: wakes.count > seen)
    finally:
        stop()
