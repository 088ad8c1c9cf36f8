"""The SQLite store on real files: a tail batch and its checkpoint commit together or not at all,
event ids are unique, the schema is versioned, and /events queries page through history.

The outbox side (claim, ack, release, dead letters) runs in the contract suite shared with
`MemoryOutbox`, tests/delivery/test_outbox_contract.py; here are what only the store has.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tail_kit import event

from irisd.core.eventjson import dumps_event
from irisd.core.model import Event
from irisd.errors import StateError
from irisd.shell import schema
from irisd.shell.store import Checkpoint, Store


def checkpoint(offset: int, path: str = "/iris/mgr/messages.log") -> Checkpoint:
    return Checkpoint(path, "803:1a2b:fp:0", 0x803, 0x1A2B, "fp", offset)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state" / "irisd.sqlite3", clock=lambda: 1_000.0)
    yield s
    s.close()


def stored_ids(store: Store) -> list[str]:
    return [e.event_id for _, e in store.recent_events(limit=1000)][::-1]


# -- one transaction per batch -----------------------------------------------------------------------


def test_batch_and_checkpoint_are_stored_together(store: Store) -> None:
    assert store.checkpoint("/iris/mgr/messages.log") is None
    assert store.commit_batch([event(0), event(1)], checkpoint(200)) == 2
    assert store.checkpoint("/iris/mgr/messages.log") == checkpoint(200)
    assert stored_ids(store) == [event(0).event_id, event(1).event_id]
    reader = sqlite3.connect(store.path)  # another connection sees both, committed
    assert reader.execute("SELECT count(*) FROM events").fetchone() == (2,)
    assert reader.execute("SELECT offset FROM checkpoints").fetchone() == (200,)
    reader.close()


def test_failing_insert_leaves_neither_events_nor_checkpoint(store: Store) -> None:
    store.commit_batch([event(0)], checkpoint(100))
    store.conn.execute(
        'CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.body LIKE \'%"message":"boom"%\''
        " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    )
    with pytest.raises(StateError, match=r"cannot store events in .*irisd.sqlite3: refused"):
        store.commit_batch([event(1), event(2, message="boom"), event(3)], checkpoint(400))
    assert stored_ids(store) == [event(0).event_id]
    assert store.checkpoint("/iris/mgr/messages.log") == checkpoint(100)
    assert not store.conn.in_transaction
    assert store.commit_batch([event(1)], checkpoint(200)) == 1  # the store carries on


def test_a_value_sqlite_cannot_bind_also_rolls_back(store: Store) -> None:
    """Not every failure is a sqlite3.Error: an offset past 2**63 raises OverflowError."""
    store.commit_batch([event(0)], checkpoint(100))
    with pytest.raises(OverflowError):
        store.commit_batch([event(1), event(2, offset=2**70)], checkpoint(300))
    assert not store.conn.in_transaction
    assert stored_ids(store) == [event(0).event_id]
    assert store.checkpoint("/iris/mgr/messages.log") == checkpoint(100)
    assert store.commit_batch([event(1)], checkpoint(200)) == 1


def test_duplicate_event_ids_are_ignored_and_the_checkpoint_still_moves(store: Store) -> None:
    assert store.commit_batch([event(0), event(1)], checkpoint(200)) == 2
    assert store.commit_batch([event(1), event(2)], checkpoint(300)) == 1
    assert store.commit_batch([event(0), event(1), event(2)], checkpoint(300)) == 0
    assert store.event_count() == 3
    assert store.checkpoint("/iris/mgr/messages.log") == checkpoint(300)


def test_an_empty_batch_moves_only_the_checkpoint(store: Store) -> None:
    assert store.commit_batch([], checkpoint(50)) == 0
    assert store.checkpoint("/iris/mgr/messages.log") == checkpoint(50)
    assert store.commit_batch([], checkpoint(0, "/other.log")) == 0
    assert store.checkpoint("/other.log") == checkpoint(0, "/other.log")
    assert store.event_count() == 0


def test_events_read_back_equal_what_was_stored(store: Store) -> None:
    full = event(7, labels=(("cut_lines", "12"), ("truncated", "true")), repeat=5)
    bare = event(8, timestamp=None, pid=None, category=None, code="unknown.unparsed")
    store.commit_batch([full, bare], checkpoint(900))
    assert [e for _, e in store.recent_events()] == [bare, full]


# -- schema and files --------------------------------------------------------------------------------


def test_schema_version_and_wal(store: Store) -> None:
    assert store.conn.execute("PRAGMA user_version").fetchone() == (schema.VERSION,)
    assert store.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store.path.parent.stat().st_mode & 0o777 == 0o700


def test_a_new_database_has_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    fresh = Store(tmp_path / "new.sqlite3")
    assert fresh.conn.execute("PRAGMA page_size").fetchone() == (schema.PAGE_SIZE,)
    fresh.close()
    old = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(old)
    conn.execute("CREATE TABLE t (x)")  # a database made with SQLite's default pages
    (before,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    assert before != schema.PAGE_SIZE
    reopened = Store(old)
    assert reopened.conn.execute("PRAGMA page_size").fetchone() == (before,)
    assert reopened.event_count() == 0
    reopened.close()


def test_reopen_keeps_events_and_checkpoint_and_migrates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "irisd.sqlite3"
    first = Store(path)
    first.commit_batch([event(0), event(1)], checkpoint(200))
    first.close()
    again = Store(path)
    assert again.conn.execute("PRAGMA user_version").fetchone() == (schema.VERSION,)
    assert again.event_count() == 2
    assert again.checkpoint("/iris/mgr/messages.log") == checkpoint(200)
    assert again.commit_batch([event(1)], checkpoint(200)) == 0  # ids survive the restart
    again.close()


def test_rows_keep_the_stored_form_and_give_back_the_whole_json(tmp_path: Path) -> None:
    """A row's body leaves out what its columns hold; claims, /events and dead letters put it
    back. An event whose trace id is not derived from its event id is kept whole."""
    store = Store(tmp_path / "irisd.sqlite3")
    store.register_sinks(["hook"])
    derived, whole = event(1), event(2, trace_id="f" * 32)
    store.commit_batch([derived, whole], checkpoint(300))
    bodies = dict(store.conn.execute("SELECT event_id, body FROM events"))
    assert bodies[whole.event_id] == dumps_event(whole)
    assert not bodies[derived.event_id].startswith("{")
    assert len(bodies[derived.event_id]) < len(dumps_event(derived)) * 3 // 4
    items = store.claim("hook", limit=10, max_bytes=1 << 20)
    assert [i.json for i in items] == [dumps_event(derived), dumps_event(whole)]
    assert [i.size for i in items] == [len(dumps_event(derived)), len(dumps_event(whole))]
    assert [e for _, e in store.recent_events()] == [whole, derived]
    store.dead_letter("hook", [items[0].seq], status=400, body="no")
    assert [d.event for d in store.dead_letters()] == [derived]
    store.close()


def test_a_version_2_database_reads_on_with_its_whole_rows(tmp_path: Path) -> None:
    """Version 2 stored every body whole; version 3 changes no table and reads those rows as
    they are, next to new rows in the stored form."""
    path = tmp_path / "irisd.sqlite3"
    store = Store(path)
    store.register_sinks(["hook"])
    store.commit_batch([event(1)], checkpoint(200))
    store.conn.execute("UPDATE events SET body = ?", (dumps_event(event(1)),))
    store.conn.execute("PRAGMA user_version=2")
    store.close()
    again = Store(path)
    assert again.conn.execute("PRAGMA user_version").fetchone() == (3,)
    again.commit_batch([event(2)], checkpoint(300))
    assert [e for _, e in again.recent_events()] == [event(2), event(1)]
    items = again.claim("hook", limit=10, max_bytes=1 << 20)
    assert [i.json for i in items] == [dumps_event(event(1)), dumps_event(event(2))]
    again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "irisd.sqlite3"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=9")
    conn.close()
    with pytest.raises(StateError, match="schema 9 is newer than this irisd knows"):
        Store(path)


def test_a_file_that_is_not_a_database_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "irisd.sqlite3"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StateError, match=f"cannot use database {path}"):
        Store(path)


# -- /events: filters and paging ---------------------------------------------------------------------


@pytest.fixture
def history(store: Store) -> Store:
    events = [event(n) for n in range(12)] + [event(12, timestamp=None, code="unknown.unparsed")]
    store.commit_batch(events, checkpoint(1300))
    return store


def offsets(rows: list[tuple[int, Event]]) -> list[int]:
    return [e.offset // 100 for _, e in rows]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({}, list(range(12, -1, -1)), id="newest-first"),
        pytest.param({"limit": 3}, [12, 11, 10], id="limit"),
        pytest.param({"codes": [("journal.error", False)]}, [8, 4, 0], id="exact-code"),
        pytest.param({"codes": [("journal.", True)]}, [9, 8, 5, 4, 1, 0], id="code-prefix"),
        pytest.param({"codes": [("journal", False)]}, [], id="exact-is-not-prefix"),
        pytest.param(
            {"codes": [("unknown.", True), ("journal.switch", False)]},
            [12, 11, 9, 7, 5, 3, 1],
            id="codes-or",
        ),
        pytest.param({"min_severity": 3}, [11, 7, 3], id="min-severity"),
        pytest.param({"severities": [0, 2]}, [12, 10, 8, 6, 4, 2, 0], id="severities"),
        pytest.param({"since": 1_763_106_355.0 + 10}, [11, 10], id="since-inclusive-skips-null-ts"),
        pytest.param({"until": 1_763_106_355.0 + 2}, [1, 0], id="until-exclusive"),
        pytest.param({"after": 5, "limit": 2}, [3, 2], id="after-a-seq"),
    ],
)
def test_recent_events_filters(
    history: Store, query: dict[str, object], expected: list[int]
) -> None:
    assert offsets(history.recent_events(**query)) == expected  # type: ignore[arg-type]


def test_paging_walks_every_row_once(history: Store) -> None:
    seen: list[int] = []
    after = None
    while page := history.recent_events(after=after, limit=5):
        seen += [seq for seq, _ in page]
        after = page[-1][0]
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == 13


# -- what only the store counts ----------------------------------------------------------------------


def test_outbox_fills_to_capacity_and_empties_on_ack(tmp_path: Path) -> None:
    store = Store(tmp_path / "irisd.sqlite3", capacity=3)
    heard: list[None] = []
    store.add_listener(lambda: heard.append(None))
    store.commit_batch([event(0)], checkpoint(100))
    assert heard == []  # nothing is owed while no sink is registered
    store.register_sinks(["hook"])
    store.commit_batch([event(1), event(2), event(3)], checkpoint(400))
    assert len(heard) == 1
    assert store.full
    claimed = store.claim("hook", limit=10, max_bytes=1 << 20)
    store.ack("hook", [claimed[0].seq])
    assert not store.full
    assert store.stats(now=0).rows == 2
    store.close()


def test_repeated_ack_does_not_uncount_a_row_another_sink_owes(tmp_path: Path) -> None:
    store = Store(tmp_path / "irisd.sqlite3", capacity=1000)
    store.register_sinks(["a", "b"])
    store.commit_batch([event(1), event(2)], checkpoint(300))
    [one, two] = [seq for seq, _ in store.recent_events()][::-1]
    store.ack("a", [two])
    store.ack("b", [two])  # row 2 is done
    store.ack("b", [one, two])  # row 1 still owed by a; row 2 acked a second time
    assert store.stats(now=0).rows == 1
    reopened = Store(store.path)  # the count on disk agrees
    assert reopened.stats(now=0).rows == 1
    store.close()
    reopened.close()


def test_prune_keeps_owed_and_dead_lettered_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "irisd.sqlite3", retain_events=2)
    store.register_sinks(["hook"])
    store.commit_batch([event(n) for n in range(6)], checkpoint(600))
    seqs = sorted(seq for seq, _ in store.recent_events())
    store.ack("hook", seqs[:3])
    store.dead_letter("hook", [seqs[3]], status=400, body="no")
    assert store.prune() == 3  # 0-2: delivered and older than the newest two; 3 is dead
    assert offsets(store.recent_events()) == [5, 4, 3]
    assert [d.event.offset for d in store.dead_letters()] == [300]
    store.close()


def test_a_version_1_database_migrates_keeping_rows_owed_bits_and_dead_letters(
    tmp_path: Path,
) -> None:
    """Version 1 kept an event in 17 columns; version 2 keeps its JSON. Every row, its seq, what
    each sink still owes and the dead letters pointing at it survive the rebuild."""
    path = tmp_path / "irisd.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(schema.V1 + "; PRAGMA user_version=1;")
    conn.execute("INSERT INTO sinks VALUES ('hook', 1), ('am', 2)")
    old = [event(0), event(1, labels=(("cut_lines", "3"),), repeat=4), event(2, timestamp=None)]
    for seq, (e, owed) in enumerate(zip(old, (0, 3, 1), strict=True), start=10):
        labels = json.dumps(dict(e.labels)) if e.labels else None
        conn.execute(
            f"INSERT INTO events ({schema.V1_COLUMNS}) VALUES ({','.join('?' * 18)})",
            (seq, *e[:14], labels, 5.0, owed),
        )
    conn.execute(
        "INSERT INTO dead_letters (sink, seq, status, body, at) VALUES ('am',10,400,'no',6)"
    )
    conn.close()
    store = Store(path)
    assert store.conn.execute("PRAGMA user_version").fetchone() == (schema.VERSION,)
    assert [(seq, e) for seq, e in store.recent_events()][::-1] == list(
        zip((10, 11, 12), old, strict=True)
    )
    assert [i.seq for i in store.claim("hook", limit=10, max_bytes=1 << 20)] == [11, 12]
    assert [i.seq for i in store.claim("am", limit=10, max_bytes=1 << 20)] == [11]
    assert [(d.seq, d.event) for d in store.dead_letters()] == [(10, old[0])]
    assert store.commit_batch([event(1)], checkpoint(200)) == 0  # (source, offset) still unique
    store.close()


def test_an_ack_that_rolls_back_leaves_every_row_owed_and_counted(tmp_path: Path) -> None:
    """The count of owed rows moves only with a committed ack: a failure in the second IN-list
    of a large scattered ack undoes the first, and the count must not keep the first's rows off."""
    store = Store(tmp_path / "irisd.sqlite3", capacity=1000)
    store.register_sinks(["hook"])
    store.commit_batch([event(n) for n in range(1200)], checkpoint(120_000))
    seqs = sorted(seq for seq, _ in store.recent_events(limit=2000))
    scattered = seqs[::2]  # 600 seqs, not consecutive: two IN lists of 500 and 100
    for write in ("UPDATE", "DELETE"):  # an ack clears a row by either
        store.conn.execute(
            f"CREATE TRIGGER refuse_{write} BEFORE {write} ON owed WHEN OLD.seq = {scattered[-1]}"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    with pytest.raises(StateError, match=r"cannot record delivery in .*: refused by the test"):
        store.ack("hook", scattered)
    assert store.stats(now=0).rows == 1200
    assert store.full
    assert store.conn.execute("SELECT count(*) FROM owed").fetchone() == (1200,)
    store.close()


def test_retry_of_dead_letters_on_a_locked_database_is_a_state_error(tmp_path: Path) -> None:
    """`irisd deadletter retry` beside a daemon mid-write: one line naming the database, not a
    sqlite3 traceback, and nothing changed."""
    store = Store(tmp_path / "irisd.sqlite3", busy_timeout=0.05)
    store.register_sinks(["hook"])
    store.commit_batch([event(0)], checkpoint(100))
    store.dead_letter("hook", [seq for seq, _ in store.recent_events()], status=400, body="no")
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StateError, match=r"cannot retry dead letters in .*: database is locked"):
        store.retry_dead_letters()
    other.execute("ROLLBACK")
    other.close()
    assert len(store.dead_letters()) == 1
    assert store.stats(now=0).rows == 0
    store.close()


def test_a_sink_registration_that_fails_changes_nothing(tmp_path: Path) -> None:
    """Dropping sink a fails half-way: the database rolls back, and the store's own idea of the
    sinks (their bits, what is in flight) must stay with it."""
    store = Store(tmp_path / "irisd.sqlite3")
    store.register_sinks(["a", "b"])
    store.commit_batch([event(0)], checkpoint(100))
    store.conn.execute(
        "CREATE TRIGGER refuse BEFORE DELETE ON sinks"
        " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    )
    with pytest.raises(StateError, match=r"cannot register sinks in .*: refused by the test"):
        store.register_sinks(["b", "c"])
    assert store.sinks() == ("a", "b")
    assert [i.seq for i in store.claim("a", limit=10, max_bytes=1 << 20)] == [1]
    assert store.stats(now=0).rows == 1
    store.conn.execute("DROP TRIGGER refuse")
    store.register_sinks(["b", "c"])  # and once nothing refuses, it takes
    assert sorted(store.sinks()) == ["b", "c"]
    assert store.stats(now=0).sinks["c"].pending == 0  # c sees only what is stored from now on
    store.close()


def test_a_version_1_entry_stored_twice_migrates_to_one_row_owing_what_both_owed(
    tmp_path: Path,
) -> None:
    """Version 1 was unique on the event id, so one log entry read under two host names was two
    rows; version 2 is unique on (source, offset) and keeps the first. What the second owed and
    its dead letters move to the first, not to a row that no longer exists."""
    path = tmp_path / "irisd.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(schema.V1 + "; PRAGMA user_version=1;")
    conn.execute("INSERT INTO sinks VALUES ('hook', 1), ('am', 2)")
    first, again = event(0), event(0, event_id=f"{99:032x}", host="db1.example.com")
    for seq, e, owed in ((10, first, 1), (11, again, 2)):
        conn.execute(
            f"INSERT INTO events ({schema.V1_COLUMNS}) VALUES ({','.join('?' * 18)})",
            (seq, *e[:14], None, 5.0, owed),
        )
    conn.execute("INSERT INTO dead_letters (sink, seq, status, body, at) VALUES ('am',11,400,'',6)")
    conn.close()
    store = Store(path)
    assert [seq for seq, _ in store.recent_events()] == [10]
    assert store.stats(now=0).rows == 1
    assert [i.seq for i in store.claim("hook", limit=10, max_bytes=1 << 20)] == [10]
    assert [i.seq for i in store.claim("am", limit=10, max_bytes=1 << 20)] == [10]
    assert [(d.sink, d.seq, d.event) for d in store.dead_letters()] == [("am", 10, first)]
    store.close()


def test_a_refused_database_is_not_held_open(tmp_path: Path) -> None:
    """Recovery moves a database it cannot use aside: the refused open must not keep a handle."""
    path = tmp_path / "irisd.sqlite3"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=9")
    conn.close()

    def handles() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if str(path) in str(_readlink(fd)))

    with pytest.raises(StateError, match="schema 9 is newer"):
        Store(path)
    assert handles() == 0


def _readlink(fd: Path) -> str:
    try:
        return str(fd.readlink())
    except OSError:
        return ""


def test_registering_the_same_sinks_again_writes_nothing(tmp_path: Path) -> None:
    """A restart with an unchanged configuration must not need the write lock another process
    (`irisd deadletter retry`) may hold."""
    path = tmp_path / "irisd.sqlite3"
    Store(path).register_sinks(["a", "b"])
    store = Store(path, busy_timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        store.register_sinks(["a", "b"])
        assert store.sinks() == ("a", "b")
        with pytest.raises(StateError, match="locked"):
            store.register_sinks(["a", "b", "c"])
        assert store.sinks() == ("a", "b")
    finally:
        other.execute("ROLLBACK")
        other.close()
        store.close()
