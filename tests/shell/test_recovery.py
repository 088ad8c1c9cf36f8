"""A damaged state database on real files: each kind of damage is found, the damaged files are kept
aside untouched, what can be read is carried over, and the log is read again so that in the end
every entry is stored exactly once. A database that is only locked is not touched.
"""

from __future__ import annotations

import collections
import hashlib
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from damage_kit import (
    foreign_wal,
    garbage,
    garbage_wal,
    leaf_page,
    overwrite_page,
    torn_page,
    truncated,
    zero_length,
)
from tail_kit import Clock, builder

from irisd.errors import StateError
from irisd.shell.recovery import diagnose, is_corruption, recover_state
from irisd.shell.store import Store
from irisd.shell.tailer import Tailer, TailPolicy

NOW = datetime(2025, 11, 28, 9, 30, 5, tzinfo=UTC)
ASIDE = "irisd.sqlite3.corrupt-20251128T093005Z"
NUMBER = re.compile(r"entry (\d+)")


def entries(numbers: range) -> bytes:
    pad = "x" * 200  # a few hundred events fill many pages, so a page can be damaged on its own
    return b"".join(
        f"11/14/25-10:00:00:{n % 1000:03d} (4242) 0 [Utility.Event] entry {n} {pad}\n".encode()
        for n in numbers
    )


def tail_all(log: Path, db: Path) -> None:
    """What `irisd run` does with the log: read it to its end, committing as it goes."""
    store, clock = Store(db), Clock()
    tailer = Tailer(log, store, builder, TailPolicy(read_chunk_bytes=16 * 1024), clock=clock)
    try:
        for _ in range(10_000):
            if not tailer.step():
                clock.now += 10  # past the linger: the last entry is complete
                if not tailer.step():
                    return
        raise AssertionError("the tailer never went idle")
    finally:
        tailer.close()
        store.close()


def stored(db: Path) -> collections.Counter[int]:
    conn = sqlite3.connect(db)
    try:
        ids = {row[0] for row in conn.execute("SELECT event_id FROM events")}
        rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    assert len(ids) == rows
    store = Store(db)
    try:
        events = [e for _, e in store.recent_events(limit=1_000_000)]
    finally:
        store.close()
    return collections.Counter(int(NUMBER.search(e.message).group(1)) for e in events)  # type: ignore[union-attr]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage": (garbage, "file is not a database"),
    "truncated": (truncated, "malformed"),
    "torn-page": (lambda db: torn_page(db, 3), ""),
    "zero-length": (zero_length, "the file is empty (0 bytes)"),
    "foreign-wal": (foreign_wal, "its -wal file belongs to another database"),
    "garbage-wal": (garbage_wal, "its -wal file is not an SQLite write-ahead log"),
}


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.log = tmp_path / "mgr" / "messages.log"
        self.log.parent.mkdir()
        self.state = tmp_path / "state"
        self.db = self.state / "irisd.sqlite3"

    def files(self) -> dict[str, str]:
        return {p.name: digest(p) for p in sorted(self.state.iterdir())}


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_database_is_set_aside_and_every_entry_ends_up_stored_once(
    setup: Setup, kind: str
) -> None:
    damage, reason = DAMAGE[kind]
    setup.log.write_bytes(entries(range(400)))
    tail_all(setup.log, setup.db)
    damage(setup.db)
    before = setup.files()
    with open(setup.log, "ab") as f:  # IRIS wrote on while irisd was down
        f.write(entries(range(400, 450)))

    recovery = recover_state(setup.db, now=lambda: NOW)

    assert recovery is not None
    assert reason in recovery.reason
    assert recovery.moved_to == setup.state / ASIDE
    kept = {name.replace(ASIDE, "irisd.sqlite3"): d for name, d in setup.files().items()}
    for name, d in before.items():
        if not name.endswith("-shm"):  # the index SQLite rebuilds; its bytes are not data
            assert kept[name] == d, f"{name} was changed"
    tail_all(setup.log, setup.db)
    assert stored(setup.db) == collections.Counter(range(450))


def test_torn_events_page_keeps_the_readable_rows_and_rereads_from_zero(setup: Setup) -> None:
    setup.log.write_bytes(entries(range(400)))
    tail_all(setup.log, setup.db)
    torn_page(setup.db, 3)

    recovery = recover_state(setup.db, now=lambda: NOW)

    assert recovery is not None
    assert recovery.skipped >= 1
    assert 0 < recovery.salvaged["events"] < 400
    assert recovery.salvaged["checkpoints"] == 1
    assert recovery.reread
    store = Store(setup.db)
    checkpoint = store.checkpoint(str(setup.log))
    store.close()
    assert checkpoint is not None
    assert checkpoint.offset == 0  # the same file identity, read again from its start
    assert checkpoint.ino == setup.log.stat().st_ino
    tail_all(setup.log, setup.db)
    assert stored(setup.db) == collections.Counter(range(400))


def test_damaged_index_only_keeps_every_row_the_checkpoint_and_what_sinks_are_owed(
    setup: Setup,
) -> None:
    setup.log.write_bytes(entries(range(400)))
    store = Store(setup.db)
    store.register_sinks(["hook"])
    store.close()
    tail_all(setup.log, setup.db)
    store = Store(setup.db)
    checkpoint = store.checkpoint(str(setup.log))
    first = store.claim("hook", limit=100, max_bytes=1 << 30)
    store.ack("hook", [item.seq for item in first])
    store.close()
    conn = sqlite3.connect(setup.db)
    [(index,)] = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NULL"
    ).fetchall()  # the UNIQUE constraint's index
    conn.close()
    overwrite_page(setup.db, leaf_page(setup.db, index), seed=4)

    recovery = recover_state(setup.db, now=lambda: NOW)

    assert recovery is not None
    assert recovery.skipped == 0
    assert recovery.salvaged["events"] == 400
    assert not recovery.reread
    store = Store(setup.db)
    assert store.checkpoint(str(setup.log)) == checkpoint
    assert store.stats(now=0).rows == 300  # still owed to the sink
    store.close()


def tail_with_a_sink_acking_the_first(setup: Setup, acked: int) -> set[str]:
    """Tail 400 entries for one sink that has acknowledged the first `acked`; returns the ids of
    the events it still owes."""
    setup.log.write_bytes(entries(range(400)))
    store = Store(setup.db)
    store.register_sinks(["hook"])
    store.close()
    tail_all(setup.log, setup.db)
    store = Store(setup.db)
    owed = store.claim("hook", limit=1000, max_bytes=1 << 30)
    store.ack("hook", [item.seq for item in owed[:acked]])
    store.close()
    return {item.event_id for item in owed[acked:]}


def owed_after_recovery(setup: Setup) -> tuple[set[str], int]:
    """What the sink is owed once the log has been read again, and the outbox depth."""
    tail_all(setup.log, setup.db)
    store = Store(setup.db)
    try:
        claimed = store.claim("hook", limit=10_000, max_bytes=1 << 30)
        return {item.event_id for item in claimed}, store.stats(now=0).rows
    finally:
        store.close()


def test_lost_event_rows_are_owed_again_and_leave_no_orphans(setup: Setup) -> None:
    still_owed = tail_with_a_sink_acking_the_first(setup, 100)
    overwrite_page(setup.db, leaf_page(setup.db, "events", 20), seed=5)
    recovery = recover_state(setup.db, now=lambda: NOW)
    assert recovery is not None
    assert recovery.skipped
    owed, depth = owed_after_recovery(setup)
    assert still_owed <= owed  # nothing undelivered was dropped
    assert depth == len(owed)  # and nothing is counted as owed that can never be sent
    assert stored(setup.db) == collections.Counter(range(400))


def test_lost_outbox_rows_make_every_event_owed_again(setup: Setup) -> None:
    """Which events were delivered is no longer known: send them all again (receivers dedupe)."""
    still_owed = tail_with_a_sink_acking_the_first(setup, 100)
    overwrite_page(setup.db, leaf_page(setup.db, "owed", 0), seed=6)
    recovery = recover_state(setup.db, now=lambda: NOW)
    assert recovery is not None
    assert recovery.skipped
    owed, depth = owed_after_recovery(setup)
    assert still_owed < owed
    assert len(owed) == depth == 400


# -- not damage ----------------------------------------------------------------------------------


def test_healthy_database_is_left_alone(setup: Setup) -> None:
    setup.log.write_bytes(entries(range(10)))
    tail_all(setup.log, setup.db)
    before = setup.files()
    assert recover_state(setup.db, now=lambda: NOW) is None
    assert setup.files().keys() >= before.keys()
    assert digest(setup.db) == before["irisd.sqlite3"]


def test_absent_database_is_a_first_start(setup: Setup) -> None:
    assert recover_state(setup.db, now=lambda: NOW) is None
    assert not setup.state.exists()


@pytest.fixture
def locked(setup: Setup) -> Iterator[sqlite3.Connection]:
    """Another process holds the database exclusively (say, an operator's sqlite3 shell)."""
    setup.log.write_bytes(entries(range(10)))
    tail_all(setup.log, setup.db)
    holder = sqlite3.connect(setup.db, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    yield holder
    holder.execute("COMMIT")
    holder.close()


def test_locked_database_is_not_damage_and_the_store_refuses_it(
    setup: Setup, locked: sqlite3.Connection
) -> None:
    before = set(setup.files())
    assert diagnose(setup.db) is None
    assert recover_state(setup.db, now=lambda: NOW) is None
    with pytest.raises(StateError, match="database is locked"):
        Store(setup.db)
    assert set(setup.files()) == before


def test_an_interrupted_recovery_is_finished_at_the_next_start(setup: Setup) -> None:
    """Killed after the damaged files were moved aside but before the new one was renamed."""
    setup.log.write_bytes(entries(range(20)))
    tail_all(setup.log, setup.db)
    setup.db.rename(setup.state / "irisd.sqlite3.salvage")
    assert recover_state(setup.db, now=lambda: NOW) is None
    assert setup.db.exists()
    tail_all(setup.log, setup.db)
    assert stored(setup.db) == collections.Counter(range(20))


def test_a_second_recovery_in_the_same_second_keeps_both_copies(setup: Setup) -> None:
    for _ in range(2):
        setup.state.mkdir(exist_ok=True)
        setup.db.write_bytes(b"not a database at all" * 100)
        assert recover_state(setup.db, now=lambda: NOW) is not None
    names = {p.name for p in setup.state.iterdir()}
    assert {ASIDE, ASIDE + "-1"} <= names


def test_recovery_describes_itself_in_one_line(setup: Setup) -> None:
    setup.log.write_bytes(entries(range(400)))
    tail_all(setup.log, setup.db)
    torn_page(setup.db, 3)
    recovery = recover_state(setup.db, now=lambda: NOW)
    assert recovery is not None
    line = recovery.describe()
    assert "\n" not in line
    assert line.startswith(f"state database {setup.db} was damaged (")
    assert f"kept as {setup.state / ASIDE}" in line
    assert line.endswith("the log is read again from offset 0")
    assert recovery.as_dict()["moved_to"] == str(setup.state / ASIDE)


def test_is_corruption_follows_the_cause_and_ignores_other_errors(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.Error) as other:
        conn.execute("SELECT * FROM nowhere")
    conn.close()
    assert not is_corruption(other.value)
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x01" * 4096)
    conn = sqlite3.connect(junk)
    with pytest.raises(sqlite3.DatabaseError) as damaged:
        conn.execute("SELECT * FROM sqlite_master")
    conn.close()
    wrapped = StateError("cannot store events")
    wrapped.__cause__ = damaged.value
    assert is_corruption(wrapped)
