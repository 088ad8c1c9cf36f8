"""The state database's file and schema: opening it (WAL, `synchronous=NORMAL`, a short busy
timeout) and taking it from any older schema version to the current one.

Versions: 1 kept an event in 17 columns with a UNIQUE event id. 2 keeps each event as its one JSON
form (`body`, what every sink sends) plus the columns `/events` filters on; uniqueness is on
(source, offset), the inputs of the event id, an index that grows at its end (the UNIQUE index on
the random-looking id cost four inserts in five); what sinks owe lives in a narrow `owed` table, so
an acknowledgement does not rewrite the event row. 3 changes no table: `body` may hold the
stored form (`eventjson.stored_event`, a third smaller, without what the row's columns hold), which
an irisd of version 2 could not read, so the version says so. Why NORMAL is safe:
`irisd.shell.store`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from irisd.core.eventjson import stored_event
from irisd.core.model import Event, Severity
from irisd.errors import StateError

# Event rows are about 450 bytes of JSON, appended: a 16 KiB page (SQLite's default is 4 KiB)
# holds 35 of them, so a commit rewrites fewer partly filled pages and the B-trees stay shallower.
# Measured on bench/ingest.py's rows: inserts about 15% faster. Only a new database takes it; one
# made with another page size keeps its own (SQLite changes it only by a VACUUM, which irisd does not run).
PAGE_SIZE: Final = 16384

V1: Final = """
    CREATE TABLE checkpoints (
        path TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        dev INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        offset INTEGER NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        trace_id TEXT NOT NULL,
        host TEXT NOT NULL,
        instance TEXT NOT NULL,
        source TEXT NOT NULL,
        offset INTEGER NOT NULL,
        ts REAL,
        severity INTEGER NOT NULL,
        code TEXT NOT NULL,
        error_type TEXT NOT NULL,
        category TEXT,
        pid INTEGER,
        message TEXT NOT NULL,
        repeat INTEGER NOT NULL,
        labels TEXT,
        stored REAL NOT NULL,
        owed INTEGER NOT NULL
    );
    CREATE INDEX events_owed ON events(seq) WHERE owed != 0;
    CREATE TABLE sinks (name TEXT PRIMARY KEY, bit INTEGER NOT NULL UNIQUE);
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY,
        sink TEXT NOT NULL,
        seq INTEGER NOT NULL REFERENCES events(seq),
        status INTEGER,
        body TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX dead_letters_seq ON dead_letters(seq);
"""
_V2: Final = """
    CREATE TABLE sources (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    CREATE TABLE events_v2 (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        src INTEGER NOT NULL REFERENCES sources(id),
        offset INTEGER NOT NULL,
        ts REAL,
        severity INTEGER NOT NULL,
        code TEXT NOT NULL,
        body TEXT NOT NULL,
        stored REAL NOT NULL,
        UNIQUE (src, offset)
    );
    CREATE TABLE owed (seq INTEGER PRIMARY KEY, bits INTEGER NOT NULL)
"""
V1_COLUMNS: Final = (
    "seq, event_id, trace_id, host, instance, source, offset, ts, severity, code, error_type, "
    "category, pid, message, repeat, labels, stored, owed"
)


def open_database(path: Path, *, busy_timeout: float = 1.0) -> sqlite3.Connection:
    """`busy_timeout`: how long a write waits for another process's transaction (the
    `irisd deadletter` command's). The daemon calls this on its event loop, so it stays short:
    a write that still finds the database locked fails, and its caller retries later."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StateError(f"cannot create state directory {path.parent}: {exc}") from exc
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StateError(f"cannot use database {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect only in a new, empty file
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # why: irisd.shell.store's docstring
        conn.execute("PRAGMA cache_size=-1024")  # 1 MiB of pages: writes append, reads are recent
        _migrate(conn)  # before foreign keys are enforced: a migration may rebuild a table
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException as exc:
        conn.close()  # a database we cannot use is not held open (recovery may move it aside)
        if isinstance(exc, sqlite3.Error):
            raise StateError(f"cannot use database {path}: {exc}") from exc
        raise
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(_MIGRATIONS):
        raise StateError(
            f"database schema {version} is newer than this irisd knows ({len(_MIGRATIONS)})"
        )
    for target in range(version, len(_MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            _MIGRATIONS[target](conn)
            conn.execute(f"PRAGMA user_version={target + 1}")
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (disk full, I/O error): a second ROLLBACK
            # would fail and hide the error that matters.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)

    return run


def _to_v2(conn: sqlite3.Connection) -> None:
    """Rebuild the events table in the version 2 form, every row kept with its seq and owed bits
    (bodies in version 3's stored form: the next step, in the same opening, changes nothing)."""
    _script(_V2)(conn)
    sources: dict[str, int] = {}
    for row in conn.execute(f"SELECT {V1_COLUMNS} FROM events ORDER BY seq").fetchall():
        event = _v1_event(row)
        src = source_id(conn, sources, event.source)
        seq = _carry(conn, row[0], event_row(event, src, row[16]))
        if row[17]:
            conn.execute(
                "INSERT INTO owed (seq, bits) VALUES (?, ?)"
                " ON CONFLICT (seq) DO UPDATE SET bits = bits | excluded.bits",
                (seq, row[17]),
            )
    conn.execute("DROP TABLE events")
    conn.execute("ALTER TABLE events_v2 RENAME TO events")


def _carry(conn: sqlite3.Connection, seq: int, row: tuple[object, ...]) -> int:
    """Copy one version 1 row; returns the seq that now stands for its log entry. Version 1 could
    hold one entry twice under two event ids (the host name changed and the log was read again);
    version 2 keeps the first, and the second's dead letters move to it (so do its owed bits,
    in the caller), or they would point at no event and be owed for ever."""
    if conn.execute(
        "INSERT OR IGNORE INTO events_v2 VALUES (?,?,?,?,?,?,?,?,?)", (seq, *row)
    ).rowcount:
        return seq
    (kept,) = conn.execute(
        "SELECT seq FROM events_v2 WHERE src = ? AND offset = ?", (row[1], row[2])
    ).fetchone()
    conn.execute("UPDATE dead_letters SET seq = ? WHERE seq = ?", (kept, seq))
    return int(kept)


def _to_v3(conn: sqlite3.Connection) -> None:
    """Nothing to rewrite: rows of version 2 hold the whole form, which reads back as it is."""


_MIGRATIONS: Final[tuple[Callable[[sqlite3.Connection], None], ...]] = (
    _script(V1),
    _to_v2,
    _to_v3,
)
VERSION: Final = len(_MIGRATIONS)


def source_id(conn: sqlite3.Connection, cache: dict[str, int], name: str) -> int:
    if name not in cache:
        conn.execute("INSERT OR IGNORE INTO sources (name) VALUES (?)", (name,))
        cache[name] = conn.execute("SELECT id FROM sources WHERE name = ?", (name,)).fetchone()[0]
    return cache[name]


def event_row(e: Event, src: int, now: float) -> tuple[object, ...]:
    return (e.event_id, src, e.offset, e.timestamp, int(e.severity), e.code, stored_event(e), now)


def event_rows(
    events: Sequence[Event], source_id: Callable[[str], int], now: float
) -> list[tuple[object, ...]]:
    """`event_row` of each event, the source's id looked up once per run of one source (a tail
    batch is all one file). This loop runs once per stored event: it is in the compiled hot path
    (irisd/_hot.py)."""
    rows: list[tuple[object, ...]] = []
    last: str | None = None
    src = 0
    for e in events:
        if e.source != last:
            src, last = source_id(e.source), e.source
        rows.append(event_row(e, src, now))  # a native call: both are compiled
    return rows


def _v1_event(r: Sequence[Any]) -> Event:
    """A row of the version 1 events table (`V1_COLUMNS`) as an Event."""
    labels: Mapping[str, str] = json.loads(r[15]) if r[15] else {}
    return Event(r[1], r[2], r[3], r[4], r[5], r[6], r[7], Severity(r[8]), r[9], r[10], r[11],
                 r[12], r[13], r[14], tuple(labels.items()))  # fmt: skip
