"""The journal of severe and fatal entries over a real tailer, store and log file: the backlog found
at first start is counted in one line instead of logged entry by entry, what comes after it is
logged, and the boundary (file identity + byte offset) survives a restart, a rotation and a
truncation.

The tailer is driven by `step()` with an injected clock; the log lines are read from the real
logging records (caplog), not from a stand-in for the journal.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from tail_kit import Clock, builder

from irisd.config import InstanceSection, LogSection, Settings, StateSection
from irisd.daemon import event_journal
from irisd.shell.event_journal import (
    CODE,
    MARK_FILE,
    BacklogMark,
    EventJournal,
    load_mark,
    save_mark,
    take_mark,
)
from irisd.shell.store import Checkpoint, Store
from irisd.shell.tailer import Tailer, TailPolicy

NUMBER = re.compile(r"entry (\d+)")


def entry(n: int, severity: int) -> bytes:
    minute, second = divmod(n % 3600, 60)
    stamp = f"11/14/25-10:{minute:02d}:{second:02d}:{n % 1000:03d}"
    return f"{stamp} (4242) {severity} [Utility.Event] entry {n}\n".encode()


def entries(numbers: range, severity: int = 2) -> bytes:
    """Entries numbered `numbers`; every third one is fatal when `severity` is 2."""
    return b"".join(entry(n, 3 if severity == 2 and n % 3 == 0 else severity) for n in numbers)


class Rig:
    """A log, a state directory with its store, and daemon-like starts of tailer + journal."""

    def __init__(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        (tmp_path / "mgr").mkdir()
        self.log = tmp_path / "mgr" / "messages.log"
        self.state = tmp_path / "state"
        self.store = Store(self.state / "irisd.sqlite3")
        self.clock = Clock()
        self.caplog = caplog
        self.tailer: Tailer | None = None
        self.journal: EventJournal | None = None

    def write(self, data: bytes) -> None:
        with self.log.open("ab") as f:
            f.write(data)

    def start(self, *, chunk: int = 64 << 10, journal_backlog: bool = False) -> None:
        """As the daemon starts: the journal (and so the mark) first, then the tailer."""
        settings = Settings(
            instance=InstanceSection(messages_log=self.log),
            state=StateSection(dir=self.state),
            log=LogSection(journal_backlog=journal_backlog),
        )
        self.journal = event_journal(settings, self.store)
        policy = TailPolicy(poll_interval=0.05, entry_linger=0.5, read_chunk_bytes=chunk)
        self.tailer = Tailer(
            self.log, self.store, builder, policy, on_events=self.journal, clock=self.clock
        )

    def settle(self) -> None:
        """Read to the end of the log, letting the clock pass the linger so the last entry ends."""
        assert self.tailer is not None
        for _ in range(10_000):
            if not self.tailer.step():
                self.clock.now += 10
                if not self.tailer.step():
                    return
        raise AssertionError("the tailer never settled")

    def stop(self) -> None:
        assert self.tailer is not None
        assert self.journal is not None
        self.tailer.close()
        self.journal.close()

    def logged(self) -> list[int]:
        """The entry numbers logged one by one, in order."""
        return [int(x) for x in self.order() if x != "count"]

    def counts(self) -> list[tuple[int, int]]:
        """(severe, fatal) of each backlog line, in order."""
        return [
            (r.__dict__["irisd_severe"], r.__dict__["irisd_fatal"]) for r in self.count_records()
        ]

    def order(self) -> list[str]:
        """What was logged, in order: "count" for a backlog line, else the entry's number."""
        return [
            "count" if getattr(r, "irisd_code", "") == CODE else NUMBER.findall(r.getMessage())[0]
            for r in self.caplog.records
            if r.name == "irisd.event"
        ]

    def event_levels(self) -> list[int]:
        return [r.levelno for r in self.caplog.records if r.name == "irisd.event"]

    def count_records(self) -> list[logging.LogRecord]:
        return [r for r in self.caplog.records if getattr(r, "irisd_code", "") == CODE]


@pytest.fixture
def rig(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Rig]:
    caplog.set_level(logging.INFO)
    made = Rig(tmp_path, caplog)
    yield made
    if made.tailer is not None:
        made.tailer.close()
    made.store.close()


def stop_in_the_backlog(rig: Rig, backlog: bytes) -> None:
    """A first start over `backlog` that stops after a few chunks, its checkpoint inside."""
    rig.write(backlog)
    rig.start(chunk=1024)
    for _ in range(5):
        assert rig.tailer is not None
        assert rig.tailer.step()
    rig.stop()
    checkpoint = rig.store.checkpoint(str(rig.log))
    assert checkpoint is not None
    assert 0 < checkpoint.offset < len(backlog)


# -- the mark ----------------------------------------------------------------------------------------


def test_the_mark_names_the_file_and_its_end_as_the_tailer_checkpoints_them(rig: Rig) -> None:
    rig.write(entries(range(10), severity=0))
    mark = take_mark(rig.log)
    rig.start()
    rig.settle()
    checkpoint = rig.store.checkpoint(str(rig.log))
    assert checkpoint is not None
    assert (mark.source, mark.offset) == (checkpoint.source, checkpoint.offset)
    assert mark.offset == rig.log.stat().st_size


@pytest.mark.parametrize(
    "content", [None, b"", b"11/14/25-10:00:00:000 (1) 2 [Utility.Event] half a li"],
    ids=["missing", "empty", "no-complete-first-line"],
)  # fmt: skip
def test_a_log_without_a_first_line_holds_no_backlog(tmp_path: Path, content: bytes | None) -> None:
    log = tmp_path / "messages.log"
    if content is not None:
        log.write_bytes(content)
    assert take_mark(log) == BacklogMark(str(log), "", 0)


def test_a_saved_mark_is_read_back_only_for_its_own_log(tmp_path: Path) -> None:
    file, log = tmp_path / MARK_FILE, tmp_path / "messages.log"
    mark = BacklogMark(str(log), "fd01:2a:0123456789abcdef:0", 4096)
    save_mark(file, mark)
    assert load_mark(file, log) == mark
    assert load_mark(file, tmp_path / "other.log") is None
    assert load_mark(tmp_path / "absent.json", log) is None
    assert [p.name for p in tmp_path.iterdir()] == [MARK_FILE]  # no temporary file left


def test_an_unreadable_mark_file_means_no_backlog_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / MARK_FILE
    file.write_text('{"path": "/x", "offset": "many"}')
    assert load_mark(file, Path("/x")) is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.__dict__["irisd_code"] == "log.backlog_mark_unreadable"


# -- the journal over a real tailer ------------------------------------------------------------------


def test_the_backlog_is_one_count_and_what_follows_is_logged_entry_by_entry(rig: Rig) -> None:
    rig.write(entries(range(1, 31)) + entries(range(31, 41), severity=0))
    rig.start()
    rig.settle()
    assert rig.logged() == []
    assert rig.counts() == [(20, 10)]
    [line] = rig.count_records()
    assert line.levelno == logging.INFO
    assert str(rig.log) in line.getMessage()
    assert "irisd events --min-severity severe" in line.getMessage()

    rig.write(entries(range(41, 44)) + entries(range(44, 46), severity=1))
    rig.settle()
    assert rig.logged() == [41, 42, 43]
    assert rig.counts() == [(20, 10)]  # said once
    assert rig.event_levels() == [logging.INFO, logging.ERROR, logging.CRITICAL, logging.ERROR]


def test_entries_appended_before_the_backlog_is_read_are_logged_after_the_count(
    rig: Rig,
) -> None:
    """The mark is the log's size at start, not what the first read finds."""
    rig.write(entries(range(1, 6)))
    rig.start()
    rig.write(entries(range(6, 9)))
    rig.settle()
    assert rig.order() == ["count", "6", "7", "8"]
    assert rig.counts() == [(4, 1)]


def test_a_backlog_without_severe_entries_says_nothing(rig: Rig) -> None:
    rig.write(entries(range(1, 20), severity=1))
    rig.start()
    rig.settle()
    rig.write(entries(range(20, 22)))
    rig.settle()
    assert rig.order() == ["20", "21"]


def test_a_restart_in_the_backlog_keeps_the_boundary_and_logs_what_came_meanwhile(
    rig: Rig,
) -> None:
    stop_in_the_backlog(rig, entries(range(1, 301)))
    [(severe1, fatal1)] = rig.counts()  # "stopping before the end": how many so far

    rig.write(entries(range(301, 304)))  # appended while irisd was down: new to the operator
    rig.start(chunk=1024)
    rig.settle()
    assert rig.logged() == [301, 302, 303]
    (_, (severe2, fatal2)) = rig.counts()
    assert (severe1 + severe2, fatal1 + fatal2) == (200, 100)
    assert rig.order()[-4:] == ["count", "301", "302", "303"]


def test_a_start_with_a_checkpoint_and_no_saved_mark_logs_every_new_entry(rig: Rig) -> None:
    """A state database from before the mark existed: the past was logged then."""
    rig.write(entries(range(1, 4)))
    rig.start()
    rig.settle()
    rig.stop()
    (rig.state / MARK_FILE).unlink()
    rig.write(entries(range(4, 6)))
    rig.start()
    rig.settle()
    assert rig.logged() == [4, 5]


def test_a_start_without_a_checkpoint_takes_a_new_mark(rig: Rig) -> None:
    """A new state database (the old one lost) reads the log from its start again: all of it is
    the past now, so none of it floods the journal."""
    rig.write(entries(range(1, 4)))
    save_mark(rig.state / MARK_FILE, take_mark(rig.log))
    rig.write(entries(range(4, 7)))
    rig.start()
    rig.settle()
    assert rig.logged() == []
    assert rig.counts() == [(4, 2)]


def test_a_file_rotated_in_while_down_holds_no_backlog_and_the_old_one_still_does(
    rig: Rig,
) -> None:
    stop_in_the_backlog(rig, entries(range(1, 301)))
    os.rename(rig.log, rig.log.with_name("messages.log.1"))
    rig.write(entries(range(301, 303)))
    rig.start(chunk=1024)
    rig.settle()
    assert rig.logged() == [301, 302]
    assert sum(severe + fatal for severe, fatal in rig.counts()) == 300


def test_a_file_truncated_and_rewritten_while_down_holds_no_backlog(rig: Rig) -> None:
    """Same inode, new content: a new source, although its offsets are below the mark."""
    stop_in_the_backlog(rig, entries(range(1, 301)))
    rig.log.write_bytes(entries(range(301, 303)))
    rig.start(chunk=1024)
    rig.settle()
    assert rig.logged() == [301, 302]


def test_a_file_truncated_while_read_holds_no_backlog(rig: Rig) -> None:
    rig.write(entries(range(1, 301)))
    rig.start(chunk=1024)
    assert rig.tailer is not None
    assert rig.tailer.step()
    rig.log.write_bytes(entries(range(301, 303)))
    rig.settle()
    assert rig.logged() == [301, 302]


def test_journal_backlog_true_logs_the_backlog_entry_by_entry_as_before(rig: Rig) -> None:
    rig.write(entries(range(1, 4)))
    rig.start(journal_backlog=True)
    rig.settle()
    assert rig.logged() == [1, 2, 3]
    assert rig.counts() == []
    assert not (rig.state / MARK_FILE).exists()


def test_a_mark_is_passed_at_its_offset_or_by_another_file(rig: Rig) -> None:
    mark = BacklogMark(str(rig.log), "s", 10)
    assert mark.passed(Checkpoint(str(rig.log), "s", 0, 0, "fp", 10))
    assert mark.passed(Checkpoint(str(rig.log), "t", 0, 0, "fp", 0))
    assert not mark.passed(Checkpoint(str(rig.log), "s", 0, 0, "fp", 9))
