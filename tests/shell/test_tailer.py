"""The tailer on real files and a real SQLite store: every entry written is stored exactly once
through appends, rotation by rename, copytruncate, deletion, restarts and crashes mid-rotation.

Most tests drive `Tailer.step()` by hand with an injected clock, so they are deterministic; the
writer-thread tests and the `run()` test use the real clock and poll with a deadline.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tail_kit import Clock, builder

from irisd.core.lines import Limits
from irisd.core.model import Event
from irisd.errors import StateError
from irisd.shell.logfile import watch
from irisd.shell.store import Store
from irisd.shell.tailer import Tailer, TailPolicy

NUMBER = re.compile(r"entry (\d+)")


def entry(n: int, *, detail: bool = False) -> bytes:
    """One IRIS entry carrying its number; with `detail`, a continuation line too."""
    minute, second = divmod(n % 3600, 60)
    head = (
        f"11/14/25-10:{minute:02d}:{second:02d}:{n % 1000:03d} (4242) 0 [Utility.Event] entry {n}\n"
    )
    return (head + (f"\tdetail of {n}\n" if detail else "")).encode()


def entries(numbers: range, *, detail: bool = False) -> bytes:
    return b"".join(entry(n, detail=detail) for n in numbers)


class Rig:
    """A log directory, a store, and the tailers made over them; records every event emitted."""

    def __init__(self, tmp_path: Path, **policy: object) -> None:
        self.dir = tmp_path / "mgr"
        self.dir.mkdir()
        self.log = self.dir / "messages.log"
        self.store = Store(tmp_path / "state" / "irisd.sqlite3")
        self.clock = Clock()
        self.emitted: list[Event] = []
        self.policy = TailPolicy(
            **{"poll_interval": 0.05, "entry_linger": 0.5, "rotate_wait": 0.2, **policy}  # type: ignore[arg-type]
        )
        self.tailers: list[Tailer] = []

    def tailer(self, clock: Callable[[], float] | None = None) -> Tailer:
        t = Tailer(
            self.log,
            self.store,
            self.builder,
            self.policy,
            on_events=self.emitted.extend,
            clock=clock or self.clock,
        )
        self.tailers.append(t)
        return t

    builder = staticmethod(builder)

    def write(self, data: bytes, path: Path | None = None) -> None:
        with open(path or self.log, "ab") as f:
            f.write(data)

    def read_then_stop(self, numbers: range) -> None:
        """A daemon that read these entries to the end of the log, then stopped."""
        self.write(entries(numbers))
        first = self.tailer()
        self.settle(first)
        first.close()

    def settle(self, tailer: Tailer, *, linger: bool = True) -> None:
        """Step until idle. With `linger`, also let the clock pass the linger and rotate waits,
        again and again, until a step after that finds nothing to do."""
        for _ in range(100):
            for _ in range(10_000):
                if not tailer.step():
                    break
            else:
                raise AssertionError("the tailer never went idle")
            if not linger:
                return
            self.clock.now += 10
            if not tailer.step():
                return
        raise AssertionError("the tailer never settled")

    def numbers_emitted(self) -> collections.Counter[int]:
        return collections.Counter(number(e) for e in self.emitted)

    def numbers_stored(self) -> collections.Counter[int]:
        rows = self.store.recent_events(limit=1_000_000)
        return collections.Counter(number(e) for _, e in rows)

    def assert_exactly_once(self, expected: range | set[int]) -> None:
        wanted = collections.Counter(expected)
        assert self.numbers_emitted() == wanted, _diff(self.numbers_emitted(), wanted)
        assert self.numbers_stored() == wanted, _diff(self.numbers_stored(), wanted)

    def close(self) -> None:
        for t in self.tailers:
            t.close()
        self.store.close()


def number(e: Event) -> int:
    m = NUMBER.search(e.message)
    assert m is not None, f"an event that is no written entry: {e.message[:80]!r}"
    return int(m.group(1))


def _diff(got: collections.Counter[int], wanted: collections.Counter[int]) -> str:
    missing = sorted(set(wanted) - set(got))
    twice = sorted(n for n, c in got.items() if c > 1)
    extra = sorted(set(got) - set(wanted))
    return f"missing {missing[:20]} ({len(missing)}), twice {twice[:20]}, unexpected {extra[:20]}"


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


# -- appending ---------------------------------------------------------------------------------------


def test_entries_are_stored_with_their_continuations_and_offsets(rig: Rig) -> None:
    rig.write(entries(range(3), detail=True))
    tailer = rig.tailer()
    rig.settle(tailer)
    rig.assert_exactly_once(range(3))
    assert [e.message for e in rig.emitted][1] == "entry 1\n\tdetail of 1"
    assert [e.offset for e in rig.emitted] == [
        0,
        len(entry(0, detail=True)),
        2 * len(entry(0, detail=True)),
    ]
    assert tailer.stats.entries == 3
    assert tailer.stats.lines == 6
    assert tailer.stats.lag_bytes == 0


def test_last_entry_waits_for_the_linger_then_is_flushed(rig: Rig) -> None:
    rig.write(entries(range(2)))
    tailer = rig.tailer()
    rig.settle(tailer, linger=False)
    assert rig.numbers_emitted() == collections.Counter([0])  # 1 may still get continuations
    rig.clock.now += 0.49
    assert not tailer.step()
    rig.clock.now += 0.02
    assert tailer.step()
    rig.assert_exactly_once(range(2))


def test_partial_last_line_is_not_read_until_complete(rig: Rig) -> None:
    whole = entries(range(2))
    rig.write(whole[:-10])
    tailer = rig.tailer()
    rig.settle(tailer)
    rig.assert_exactly_once({0})
    rig.write(whole[-10:])
    rig.settle(tailer)
    rig.assert_exactly_once(range(2))


def test_one_mebibyte_line_is_truncated_and_flagged_and_the_next_entry_read(tmp_path: Path) -> None:
    rig = Rig(tmp_path, read_chunk_bytes=64 * 1024)
    huge = b"11/14/25-10:00:00:000 (4242) 2 [Generic.Event] entry 0 " + b"x" * (1 << 20) + b"\n"
    rig.write(huge + entries(range(1, 3)))
    tailer = rig.tailer()
    rig.settle(tailer)
    rig.assert_exactly_once(range(3))
    first = rig.emitted[0]
    assert dict(first.labels) == {"truncated": "true"}
    assert len(first.message.encode()) < Limits().max_line_bytes
    assert tailer.stats.truncated_lines == 1
    assert tailer.stats.bytes == len(huge) + len(entries(range(1, 3)))
    rig.close()


def test_invalid_utf8_is_replaced_and_counted(rig: Rig) -> None:
    rig.write(entry(0)[:-1] + b" caf\xe9 \xff\n" + entries(range(1, 2)))
    tailer = rig.tailer()
    rig.settle(tailer)
    rig.assert_exactly_once(range(2))
    assert rig.emitted[0].message == "entry 0 caf\ufffd \ufffd"
    assert dict(rig.emitted[0].labels) == {"decode_errors": "2"}
    assert tailer.stats.decode_errors == 2


# -- a missing log ------------------------------------------------------------------------------------


def test_missing_log_is_reported_once_then_read_when_it_appears(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    tailer = rig.tailer()
    with caplog.at_level(logging.WARNING, logger="irisd.tailer"):
        for _ in range(5):
            assert not tailer.step()
    assert tailer.stats.state == f"cannot open {rig.log}: No such file or directory"
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot open {rig.log}: No such file or directory; retrying every 5s"
    ]
    rig.write(entries(range(2)))
    rig.settle(tailer)
    assert tailer.stats.state == "following"
    rig.assert_exactly_once(range(2))


def test_empty_log_is_followed_until_its_first_line_arrives(rig: Rig) -> None:
    rig.log.touch()
    tailer = rig.tailer()
    rig.settle(tailer)
    rig.write(entry(0)[:20])
    rig.settle(tailer)
    assert rig.emitted == []
    rig.write(entry(0)[20:] + entry(1))
    rig.settle(tailer)
    rig.assert_exactly_once(range(2))


# -- rotation by rename --------------------------------------------------------------------------------


def test_rename_rotation_reads_the_old_file_to_its_end_then_the_new(rig: Rig) -> None:
    rig.write(entries(range(3)))
    tailer = rig.tailer()
    rig.settle(tailer, linger=False)
    rig.write(entries(range(3, 5)))  # written to the old file, not read yet
    rig.log.rename(rig.dir / "messages.old_20251114")
    rig.write(entries(range(5, 8)))
    rig.settle(tailer)
    rig.assert_exactly_once(range(8))
    assert tailer.stats.rotations == 1
    assert len({e.source for e in rig.emitted}) == 2


def test_two_rotations_before_the_tailer_catches_up_lose_nothing(rig: Rig) -> None:
    rig.write(entries(range(2)))
    tailer = rig.tailer()
    assert tailer.step()
    rig.log.rename(rig.dir / "messages.old_1")
    rig.write(entries(range(2, 4)))
    tailer.step()  # still draining the first file; sees the second at the path and holds it
    rig.log.rename(rig.dir / "messages.old_2")
    rig.write(entries(range(4, 6)))
    rig.settle(tailer)
    rig.assert_exactly_once(range(6))
    assert tailer.stats.rotations == 2


def test_two_rotations_while_the_daemon_is_down_lose_nothing(rig: Rig) -> None:
    rig.read_then_stop(range(3))
    rig.log.rename(rig.dir / "messages.old_1")
    rig.write(entries(range(3, 6)))
    rig.log.rename(rig.dir / "messages.old_2")
    rig.write(entries(range(6, 9)))
    rig.settle(rig.tailer())
    rig.assert_exactly_once(range(9))


def test_three_rotations_after_a_crash_mid_file_read_each_file_in_order(tmp_path: Path) -> None:
    """The first process dies part way through the file; IRIS rotates three times before the
    next one starts. It reads the rest of the first file, the two between, then the live one."""
    rig = Rig(tmp_path, read_chunk_bytes=200)
    rig.write(entries(range(10)))
    first = rig.tailer()
    first.step()
    first.step()
    first.close()
    assert 0 < len(rig.emitted) < 10
    for n, name in enumerate(
        ["messages.old_20251126", "messages.old_20251127", "messages.old_20251128"]
    ):
        rig.log.rename(rig.dir / name)
        rig.write(entries(range(10 + 4 * n, 14 + 4 * n)))
    second = rig.tailer()
    rig.settle(second)
    rig.assert_exactly_once(range(22))
    assert [number(e) for e in rig.emitted] == sorted(number(e) for e in rig.emitted)
    assert second.stats.rotations == 3
    assert len({e.source for e in rig.emitted}) == 4
    rig.close()


def test_logrotate_numbered_siblings_are_read_oldest_first(rig: Rig) -> None:
    """logrotate's names count the other way: messages.log.2 is older than messages.log.1."""
    rig.read_then_stop(range(3))
    rig.log.rename(rig.dir / "messages.log.1")
    rig.write(entries(range(3, 6)))
    (rig.dir / "messages.log.1").rename(rig.dir / "messages.log.2")
    rig.log.rename(rig.dir / "messages.log.1")
    rig.write(entries(range(6, 9)))
    rig.settle(rig.tailer())
    rig.assert_exactly_once(range(9))
    assert [number(e) for e in rig.emitted][3:] == list(range(3, 9))


def test_a_vanished_rotated_file_is_reported_and_the_newer_ones_still_read(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The file the checkpoint names was rotated and then deleted (or compressed) while irisd was
    down. That is reported; the rotated file after it and the live one are read all the same."""
    rig.read_then_stop(range(3))
    rig.log.rename(rig.dir / "messages.old_1")
    rig.write(entries(range(3, 6)))
    rig.log.rename(rig.dir / "messages.old_2")
    rig.write(entries(range(6, 9)))
    (rig.dir / "messages.old_1").unlink()
    (rig.dir / "messages.old_0.gz").write_bytes(b"\x1f\x8b compressed, never read")
    with caplog.at_level(logging.WARNING, logger="irisd.tailer"):
        rig.settle(rig.tailer())
    rig.assert_exactly_once(range(9))
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.getMessage().startswith(f"the file last read as {rig.log} (inode ")
    assert "is gone" in warning.getMessage()


def test_rename_rotation_while_a_writer_thread_appends(tmp_path: Path) -> None:
    """A writer appends whole entries and rotates by rename every 300, each time once the tailer
    has started on the file (IRIS rotates at 1 MB at the least); the tailer follows with the real
    clock, often behind the writer. Nothing is lost and nothing is read twice."""
    rig = Rig(tmp_path, read_chunk_bytes=4096, entry_linger=0.05, rotate_wait=0.05)
    total, every = 1500, 300
    done = threading.Event()
    reached: set[int] = set()  # inodes the tailer has committed a checkpoint in
    progress = threading.Condition()

    def writer() -> None:
        fd = os.open(rig.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        for n in range(total):
            os.write(fd, entry(n, detail=n % 7 == 0))
            if n % every == every - 1:
                ino = os.fstat(fd).st_ino
                with progress:
                    assert progress.wait_for(lambda ino=ino: ino in reached, timeout=20)
                os.close(fd)
                rig.log.rename(rig.dir / f"messages.old_{n // every}")
                fd = os.open(rig.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.close(fd)
        done.set()

    tailer = rig.tailer(clock=time.monotonic)
    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 30
    while not (done.is_set() and len(rig.numbers_emitted()) >= total):
        tailer.step()
        checkpoint = rig.store.checkpoint(str(rig.log))
        if checkpoint is not None and checkpoint.ino not in reached:
            with progress:
                reached.add(checkpoint.ino)
                progress.notify_all()
        assert time.monotonic() < deadline, _diff(
            rig.numbers_emitted(), collections.Counter(range(total))
        )
    thread.join()
    rig.assert_exactly_once(range(total))
    assert tailer.stats.rotations == total // every
    rig.close()


# -- copytruncate --------------------------------------------------------------------------------------


def copytruncate(rig: Rig, name: str) -> None:
    shutil.copyfile(rig.log, rig.dir / name)
    os.truncate(rig.log, 0)


@pytest.mark.parametrize(
    "new",
    [
        pytest.param(range(100, 102), id="new-content-shorter-than-the-old-offset"),
        pytest.param(range(100, 130), id="new-content-longer-than-the-old-offset"),
    ],
)
def test_copytruncate_restarts_at_zero_and_keeps_the_open_entry(rig: Rig, new: range) -> None:
    rig.write(entries(range(5)))
    tailer = rig.tailer()
    rig.settle(tailer, linger=False)  # entry 4 is still open, waiting for continuations
    copytruncate(rig, "messages.log.1")
    rig.write(entries(new))
    rig.settle(tailer)
    rig.assert_exactly_once(set(range(5)) | set(new))
    assert tailer.stats.truncations == 1
    assert len({e.source for e in rig.emitted}) == 2


def test_copytruncate_while_a_writer_thread_appends_loses_only_the_unread_tail(
    tmp_path: Path,
) -> None:
    """The writer copies and truncates every 500 entries, each time once the tailer is 100
    entries into the file, so the tailer is usually behind. What it had not read exists only in
    the copy; every other entry is read exactly once, and what is missing is a copy's end."""
    rig = Rig(tmp_path, read_chunk_bytes=4096, entry_linger=0.05)
    total, every = 1500, 500
    done = threading.Event()
    cuts: list[int] = []
    newest = [-1]  # the highest entry number the tailer has emitted
    progress = threading.Condition()

    def writer() -> None:
        fd = os.open(rig.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        for n in range(total):
            os.write(fd, entry(n))
            if n % every == every - 1 and n < total - 1:
                start = n + 1 - every
                with progress:
                    assert progress.wait_for(lambda s=start: newest[0] >= s + 100, timeout=20)
                copytruncate(rig, f"messages.log.{n // every}")
                cuts.append(n)
        os.close(fd)
        done.set()

    tailer = rig.tailer(clock=time.monotonic)
    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 30
    while not (done.is_set() and newest[0] == total - 1):
        tailer.step()
        with progress:
            newest[0] = max(rig.numbers_emitted(), default=-1)
            progress.notify_all()
        assert time.monotonic() < deadline
    thread.join()
    got = rig.numbers_emitted()
    assert all(c == 1 for c in got.values()), _diff(got, collections.Counter(range(total)))
    assert rig.numbers_stored() == got
    assert tailer.stats.truncations == len(cuts) == 2
    starts = [0] + [c + 1 for c in cuts]
    for start, cut in zip(starts, [*cuts, total - 1], strict=True):
        lost = [n for n in range(start, cut + 1) if n not in got]
        assert lost == list(range(cut + 1 - len(lost), cut + 1)), "lost entries before read ones"
        assert len(lost) < cut + 1 - start - 100
    assert all(n in got for n in range(cuts[-1] + 1, total))
    rig.close()


# -- deletion ------------------------------------------------------------------------------------------


def test_file_deleted_while_open_is_read_to_its_end(rig: Rig) -> None:
    rig.write(entries(range(2)))
    tailer = rig.tailer()
    rig.settle(tailer, linger=False)
    fd = os.open(rig.log, os.O_WRONLY | os.O_APPEND)
    rig.log.unlink()
    os.write(fd, entries(range(2, 4)))  # the writer still holds the deleted file
    os.close(fd)
    rig.settle(tailer)
    rig.assert_exactly_once(range(4))
    assert tailer.stats.state.startswith(f"cannot open {rig.log}")
    rig.write(entries(range(4, 6)))  # a new log at the path
    rig.settle(tailer)
    rig.assert_exactly_once(range(6))


# -- restarts ------------------------------------------------------------------------------------------


def test_restart_from_checkpoint_reads_nothing_twice_and_skips_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, read_chunk_bytes=300)
    rig.write(entries(range(20), detail=True))
    first = rig.tailer()
    for _ in range(4):  # a few chunks, then the process dies
        first.step()
    read_before = len(rig.emitted)
    assert 0 < read_before < 20
    first.close()
    rig.write(entries(range(20, 25)))
    second = rig.tailer()
    rig.settle(second)
    rig.assert_exactly_once(range(25))
    rig.close()


def test_restart_after_every_chunk_gives_the_same_events(tmp_path: Path) -> None:
    """A crash after any committed chunk: the next process resumes at the checkpoint."""
    rig = Rig(tmp_path, read_chunk_bytes=300)
    rig.write(entries(range(30), detail=True))
    previous, restarts = None, 0
    while (checkpoint := rig.store.checkpoint(str(rig.log))) != previous or restarts == 0:
        previous, restarts = checkpoint, restarts + 1
        tailer = rig.tailer()  # a new process: one chunk, committed, then it dies
        tailer.step()
        tailer.close()
    assert restarts > 10
    rig.settle(rig.tailer())
    rig.assert_exactly_once(range(30))
    assert len({e.event_id for e in rig.emitted}) == 30
    rig.close()


def test_resume_a_rotated_file_after_a_crash_mid_rotation(tmp_path: Path) -> None:
    rig = Rig(tmp_path, read_chunk_bytes=256)
    rig.write(entries(range(10)))
    first = rig.tailer()
    first.step()
    first.step()
    first.close()  # crashed part way through the file
    rig.log.rename(rig.dir / "messages.old_20251128")
    rig.write(entries(range(10, 14)))
    second = rig.tailer()
    rig.settle(second)
    rig.settle(second)
    rig.assert_exactly_once(range(14))


def test_log_truncated_while_the_daemon_was_down_is_read_from_zero(rig: Rig) -> None:
    rig.read_then_stop(range(5))
    with open(rig.log, "wb") as f:  # truncated and rewritten in place, same inode
        f.write(entries(range(5, 7)))
    second = rig.tailer()
    rig.settle(second)
    rig.assert_exactly_once(range(7))
    assert len({e.source for e in rig.emitted}) == 2


# -- backpressure --------------------------------------------------------------------------------------


def test_nothing_is_read_while_the_outbox_is_full(tmp_path: Path) -> None:
    rig = Rig(tmp_path, read_chunk_bytes=len(entry(0)))
    rig.store.close()
    rig.store = Store(tmp_path / "state" / "irisd.sqlite3", capacity=3)
    rig.store.register_sinks(["hook"])
    rig.write(entries(range(10)))
    tailer = rig.tailer()
    rig.settle(tailer)
    assert tailer.store.full
    assert tailer.stats.state == "backpressure: outbox full"
    held = len(rig.emitted)
    assert held == 3
    for _ in range(5):
        assert not tailer.step()
    assert len(rig.emitted) == held
    while claimed := rig.store.claim("hook", limit=2, max_bytes=1 << 20):
        rig.store.ack("hook", [item.seq for item in claimed])
        rig.settle(tailer)
    rig.assert_exactly_once(range(10))
    rig.close()


# -- run() and inotify ---------------------------------------------------------------------------------


async def test_run_is_woken_by_inotify_long_before_the_poll_interval(tmp_path: Path) -> None:
    rig = Rig(tmp_path, poll_interval=30.0, entry_linger=0.02)
    rig.write(entries(range(2)))
    tailer = rig.tailer(clock=time.monotonic)
    stop = watch(rig.log, tailer.wake, asyncio.get_running_loop())
    task = asyncio.create_task(tailer.run())
    try:
        await until(lambda: len(rig.emitted) == 2)
        rig.write(entries(range(2, 4)))
        started = time.monotonic()
        await until(lambda: len(rig.emitted) == 4)
        assert time.monotonic() - started < 5  # the poll interval is 30 s
    finally:
        task.cancel()
        stop()
        with pytest.raises(asyncio.CancelledError):
            await task
    rig.assert_exactly_once(range(4))
    rig.close()


async def test_run_lets_the_event_loop_turn_between_chunks_of_a_backlog(tmp_path: Path) -> None:
    """A backlog is read a chunk at a time, and other tasks (the API, the publisher, signal
    handlers, the watchdog ping) run between chunks: a large messages.log at first start must
    not hold the loop until its end (a /health that waited 5 s on 1M lines, a systemd watchdog
    that would kill irisd on a larger log)."""
    total = 3000
    rig = Rig(tmp_path, read_chunk_bytes=4096, entry_linger=0.0)
    rig.write(entries(range(total)))  # about 75 chunks of 4 KiB
    tailer = rig.tailer(clock=time.monotonic)
    seen_mid_backlog: list[int] = []

    async def other_task() -> None:
        while len(rig.emitted) < total:
            if rig.emitted:
                seen_mid_backlog.append(len(rig.emitted))
            await asyncio.sleep(0)

    task = asyncio.create_task(tailer.run())
    try:
        await asyncio.wait_for(other_task(), 30)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(set(seen_mid_backlog)) >= 10  # it ran between many chunks, not only at the end
    rig.assert_exactly_once(range(total))
    rig.close()


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class CountingStore(Store):
    """The real SQLite store, recording the size and checkpoint of each committed batch."""

    batches: list[tuple[int, int]]

    def commit_batch(self, events, checkpoint):  # type: ignore[no-untyped-def]
        self.batches.append((len(events), checkpoint.offset))
        return super().commit_batch(events, checkpoint)


def test_a_large_read_commits_in_batches_each_a_valid_restart_point(tmp_path: Path) -> None:
    """batch_max_events caps a transaction; every batch's checkpoint is where its successor starts,
    so a restart at any of them reads nothing twice and skips nothing."""
    rig = Rig(tmp_path, batch_max_events=10)
    rig.store.close()
    rig.store = store = CountingStore(tmp_path / "state" / "irisd.sqlite3")
    store.batches = []
    data = entries(range(25))
    rig.write(data)
    rig.settle(rig.tailer())
    sizes = [n for n, _ in store.batches if n]
    assert sizes[:2] == [10, 10]
    assert sum(sizes) == 25
    starts = [m.start() for m in re.finditer(rb"^11/", data, re.M)]
    assert [offset for _, offset in store.batches[:2]] == [starts[10], starts[20]]
    rig.assert_exactly_once(range(25))
    rig.close()


# -- a store that refuses commits, a log that is not a file ---------------------------------------


@pytest.fixture
def locked_store(rig: Rig) -> Iterator[sqlite3.Connection]:
    """Another process holds the database's write lock (an operator's sqlite3 shell, say). The
    store waits 50 ms for it instead of its usual 5 s, to keep the test quick."""
    rig.store.conn.execute("PRAGMA busy_timeout = 50")
    holder = sqlite3.connect(rig.store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    if holder.in_transaction:
        holder.execute("COMMIT")
    holder.close()


def test_a_refused_commit_stalls_the_tail_and_loses_nothing(
    rig: Rig, locked_store: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    rig.write(entries(range(5)))
    tailer = rig.tailer()
    with caplog.at_level(logging.WARNING, logger="irisd.tailer"):
        tailer.step()
        for _ in range(5):
            assert not tailer.step()  # nothing more is read while the first read is unsaved
    assert tailer.stats.state.startswith("stalled: cannot store events in ")
    assert tailer.stats.state.endswith("database is locked; retrying every 5s")
    assert rig.emitted == []
    assert tailer.stats.bytes == 0
    assert [r.getMessage() for r in caplog.records] == [f"tailing {tailer.stats.state}"]
    locked_store.execute("COMMIT")
    rig.write(entries(range(5, 8)))
    rig.settle(tailer)
    assert tailer.stats.state == "following"
    rig.assert_exactly_once(range(8))


def test_a_refused_commit_while_draining_a_rotated_file_finishes_it_later(
    rig: Rig, locked_store: sqlite3.Connection
) -> None:
    rig.write(entries(range(3)))
    tailer = rig.tailer()
    locked_store.execute("COMMIT")
    rig.settle(tailer, linger=False)
    rig.write(entries(range(3, 6)))
    rig.log.rename(rig.dir / "messages.old_1")
    rig.write(entries(range(6, 9)))
    locked_store.execute("BEGIN IMMEDIATE")
    rig.clock.now += 10  # the rotated file has been quiet long enough: it is finished now
    for _ in range(5):
        tailer.step()
    assert tailer.stats.state.startswith("stalled: ")
    locked_store.execute("COMMIT")
    rig.settle(tailer)
    rig.assert_exactly_once(range(9))
    assert tailer.stats.rotations == 1


async def test_the_heartbeat_stops_while_commits_are_refused_and_comes_back(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, retry_interval=0.05, entry_linger=0.01)
    rig.store.conn.execute("PRAGMA busy_timeout = 10")
    tailer = rig.tailer(clock=time.monotonic)
    task = asyncio.create_task(tailer.run())
    try:
        rig.write(entries(range(2)))
        await until(lambda: len(rig.emitted) == 2)
        holder = sqlite3.connect(rig.store.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        rig.write(entries(range(2, 4)))
        tailer.wake()
        await until(lambda: tailer.stats.state.startswith("stalled: "))
        stalled_at = tailer.stats.heartbeat
        await asyncio.sleep(0.3)  # an absence shows only over time: some six refused retries
        assert tailer.stats.heartbeat == stalled_at
        assert tailer.stats.state.startswith("stalled: ")
        holder.execute("COMMIT")
        holder.close()
        await until(lambda: tailer.stats.heartbeat > stalled_at and len(rig.emitted) == 4)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    rig.assert_exactly_once(range(4))
    rig.close()


class DamagedStore(Store):
    """The real store, except that its file is found damaged at the next commit."""

    def commit_batch(self, events, checkpoint):  # type: ignore[no-untyped-def]
        junk = self.path.with_name("junk.sqlite3")
        junk.write_bytes(b"\x01" * 4096)
        conn = sqlite3.connect(junk)
        try:
            conn.execute("SELECT * FROM sqlite_master")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot store events in {self.path}: {exc}") from exc
        finally:
            conn.close()
        raise AssertionError("SQLite read a file of garbage")


def test_a_damaged_database_is_not_retried_but_raised(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.store.close()
    rig.store = DamagedStore(tmp_path / "state" / "irisd.sqlite3")
    rig.write(entries(range(2)))
    tailer = rig.tailer()
    with pytest.raises(StateError, match="file is not a database"):
        rig.settle(tailer)
    rig.close()


def test_a_fifo_at_the_log_path_is_reported_not_waited_on(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    os.mkfifo(rig.log)
    tailer = rig.tailer()
    with caplog.at_level(logging.WARNING, logger="irisd.tailer"):
        assert not tailer.step()  # a blocking open would wait here for a writer, forever
    assert tailer.stats.state == f"cannot open {rig.log}: not a regular file"
    assert [r.irisd_code for r in caplog.records] == ["tail.unreadable"]  # type: ignore[attr-defined]
    rig.log.unlink()
    rig.write(entries(range(2)))
    rig.settle(tailer)
    rig.assert_exactly_once(range(2))
