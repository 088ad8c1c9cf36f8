"""The jsonl sink on real files: append and fsync per batch, rotation, reopen, torn lines."""

from __future__ import annotations

import asyncio
import json
import os
import resource
from pathlib import Path

import pytest
from delivery_kit import FastClock, make_events

from irisd.core.eventjson import dumps_event
from irisd.core.sinks.jsonl import jsonl_lines
from irisd.shell.jsonl_sink import JsonlDriver, JsonlFile
from irisd.shell.outbox import MemoryOutbox, OutboxItem
from irisd.shell.publisher import Publisher, SinkOptions


def ids_in(*paths: Path) -> list[str]:
    return [json.loads(line)["event_id"] for p in paths for line in p.read_text().splitlines()]


def oldest_first(target: Path) -> list[Path]:
    rotated = sorted(target.parent.glob(target.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    return [*rotated, target]


def stored(n: int, size: int = 0) -> OutboxItem:
    """Event `n` as the outbox hands it to a sink."""
    [event] = make_events(1, start=n, size=size)
    text = dumps_event(event)
    return OutboxItem(n, event.event_id, event.severity, len(text.encode()), text)


def test_append_writes_whole_lines_and_creates_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "out" / "events.jsonl"
    sink = JsonlFile(target)
    sink.append(jsonl_lines([stored(0), stored(1)]))
    sink.append(jsonl_lines([stored(2)]))
    sink.close()
    assert ids_in(target) == [f"{n:032x}" for n in range(3)]


def test_rotation_by_size_keeps_numbered_files_and_never_splits_a_batch(tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    sink = JsonlFile(target, max_bytes=1500, keep=2)
    for n in range(0, 12, 2):
        sink.append(jsonl_lines([stored(n, 200), stored(n + 1, 200)]))  # ~1 KiB a batch
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    current, older, oldest = target, tmp_path / "events.jsonl.1", tmp_path / "events.jsonl.2"
    assert ids_in(oldest, older, current) == [f"{n:032x}" for n in range(6, 12)]
    assert all(len(ids_in(p)) == 2 for p in (current, older, oldest))


def test_a_file_renamed_away_by_another_rotator_is_reopened(tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    sink = JsonlFile(target)
    sink.append(jsonl_lines([stored(0)]))
    target.rename(tmp_path / "events.jsonl-20261101")  # logrotate without copytruncate
    sink.append(jsonl_lines([stored(1)]))
    target.unlink()
    sink.append(jsonl_lines([stored(2)]))
    sink.close()
    assert ids_in(tmp_path / "events.jsonl-20261101") == [f"{0:032x}"]
    assert ids_in(target) == [f"{2:032x}"]


def test_a_torn_last_line_from_a_crash_is_left_alone_on_its_own_line(tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    target.write_bytes(jsonl_lines([stored(0)]) + b'{"event_id":"half-writ')
    sink = JsonlFile(target)
    sink.append(jsonl_lines([stored(1)]))
    sink.close()
    lines = target.read_text().splitlines()
    assert lines[1] == '{"event_id":"half-writ'
    assert json.loads(lines[2])["event_id"] == f"{1:032x}"


def test_a_write_that_stops_part_way_leaves_the_retry_on_lines_of_its_own(tmp_path: Path) -> None:
    """A full disk can take part of a batch: that torn line must not swallow the retried batch's
    first line. The file-size limit makes the kernel write part of it, then refuse (EFBIG)."""
    target = tmp_path / "events.jsonl"
    sink = JsonlFile(target)
    sink.append(jsonl_lines([stored(0)]))
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (target.stat().st_size + 10, limits[1]))
    try:
        with pytest.raises(OSError, match="too large"):
            sink.append(jsonl_lines([stored(1), stored(2)]))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    sink.append(jsonl_lines([stored(1), stored(2)]))  # the publisher's retry
    sink.close()
    lines = target.read_text().splitlines()
    assert len(lines[1]) == 10  # the torn part, alone
    assert [json.loads(line)["event_id"] for line in (lines[0], *lines[2:])] == [
        f"{n:032x}" for n in range(3)
    ]


async def test_the_publisher_delivers_through_the_jsonl_driver(tmp_path: Path) -> None:
    clock = FastClock()
    outbox = MemoryOutbox(clock=clock.time)
    target = tmp_path / "events.jsonl"
    options = SinkOptions(name="file", batch_max_events=7, linger=0.0, concurrency=4)
    driver = JsonlDriver(options, JsonlFile(target, max_bytes=4096, keep=100))
    publisher = Publisher(outbox, [driver], clock=clock)
    task = asyncio.create_task(publisher.run())
    outbox.append(make_events(100))
    async with asyncio.timeout(10):
        while outbox.stats(now=clock.time()).rows:  # noqa: ASYNC110 - no event for an ack
            await asyncio.sleep(0.005)
    publisher.close()
    await task
    driver.close()
    assert ids_in(*oldest_first(target)) == [f"{n:032x}" for n in range(100)]  # in order, once each
    assert driver.options.concurrency == 1


async def test_a_failing_disk_write_is_retried_not_dropped(tmp_path: Path) -> None:
    clock = FastClock()
    outbox = MemoryOutbox(clock=clock.time)
    blocked = tmp_path / "ro"
    blocked.mkdir()
    target = blocked / "events.jsonl"
    os.chmod(blocked, 0o500)  # nothing can be created in it (the test runs as root: see below)
    driver = JsonlDriver(SinkOptions(name="file", linger=0.0), JsonlFile(target))
    publisher = Publisher(outbox, [driver], clock=clock)
    task = asyncio.create_task(publisher.run())
    if os.geteuid() == 0:  # root ignores the mode; a directory where the file should be does not
        target.mkdir()
    outbox.append(make_events(3))
    async with asyncio.timeout(10):
        while publisher.counters.value(publisher.counters.retried, "file") < 6:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    os.chmod(blocked, 0o700)
    if target.is_dir():
        target.rmdir()
    async with asyncio.timeout(10):
        while outbox.stats(now=clock.time()).rows:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    publisher.close()
    await task
    driver.close()
    assert ids_in(target) == [f"{n:032x}" for n in range(3)]
