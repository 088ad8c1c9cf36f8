"""The daemon's one SQLite database: tail checkpoints, events, and the outbox over them.

Theory of operation
-------------------
* One file in the state directory, WAL mode, `synchronous=NORMAL`: a commit survives the daemon's
  crash at once and reaches the disk at the next WAL checkpoint, so a power cut can take back the
  last transactions, whole (events with their checkpoint, acks). That loses nothing: the tail
  checkpoint goes back with the events, the log is read again from there, the same bytes give the
  same event ids, and a receiver drops what it already had. FULL paid an fsync per commit, a
  tenth of the daemon's time in a burst and most of its latency at a steady rate.
* The schema is versioned with `PRAGMA user_version`; `irisd.shell.schema` opens the file and
  takes an older one to the current version, each step once, in a transaction.
* `commit_batch` writes a tail batch — the events and the checkpoint that produced them — in one
  transaction. A crash either keeps both or neither, so on restart the tailer neither skips nor
  repeats an entry. An event row is its JSON form (`body`, stored once, sent by every sink) less
  what the row's columns hold (`eventjson.stored_event`; a claim restores it) plus the columns
  `/events` filters on. (source, offset) is unique — the inputs of
  `event_id` — so re-reading the same bytes (a lost checkpoint) inserts nothing twice.
* The outbox is the `owed` table beside the events: a row per event some sink registered when it
  was stored has not yet acknowledged, `bits` the mask of those sinks. An ack deletes the rows it
  was the last sink owed (one write a row) and clears its bit on the rest; event rows are written
  once and never rewritten. "In flight" is memory only, so after a restart
  every unacknowledged row is pending again (at-least-once, deduplicated by `event_id`). A sink's
  dead letters clear its bit and are kept in `dead_letters` until retried. A claim starts at a
  per-sink cursor (every owed row below it is in flight), so a window of batches in flight is not
  rescanned; a release puts it back below the released rows, a retry of dead letters or an
  empty claim back to the start.
* Every write is one transaction (`_transaction`); the counts and sets the store keeps in
  memory change only after it committed, so a failed write leaves both sides as they were.
* Rows nobody owes stay as history for `/events` and are pruned beyond `retain_events`; rows still
  owed or dead-lettered are never pruned.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from irisd.core.eventjson import loads_event, restore_event
from irisd.core.model import Event, Severity
from irisd.errors import StateError
from irisd.shell.outbox import DeadLetter, Listener, OutboxItem, OutboxStats, SinkStats
from irisd.shell.schema import event_rows, open_database, source_id

_INSERT: Final = (
    "INSERT OR IGNORE INTO events (event_id, src, offset, ts, severity, code, body, stored)"
    " VALUES (?,?,?,?,?,?,?,?)"
)
# The columns an event's whole JSON is restored from, in `restore_event`'s order.
_JSON: Final = "e.body, e.event_id, e.offset, e.ts"
_MAX_SINKS: Final = 62
_SEVERITIES: Final = tuple(Severity)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    path: str
    source: str
    dev: int
    ino: int
    fingerprint: str
    offset: int


class Store:
    """Checkpoints, events and the outbox (`SqliteOutbox` protocol methods) over one connection."""

    def __init__(
        self,
        path: Path,
        *,
        capacity: int = 1_000_000,
        retain_events: int = 100_000,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 1.0,
    ) -> None:
        self.path = path
        self.conn = open_database(path, busy_timeout=busy_timeout)
        self.capacity = capacity
        self.retain_events = retain_events
        self._clock = clock
        # In registration order: rows are inserted in configuration order (see `register_sinks`).
        self._bits: dict[str, int] = dict(
            self.conn.execute("SELECT name, bit FROM sinks ORDER BY rowid")
        )
        self._in_flight: dict[str, set[int]] = {name: set() for name in self._bits}
        self._listeners: list[Listener] = []
        self._owed_rows = self._count("SELECT count(*) FROM owed")
        self._sources: dict[str, int] = {}
        # Per sink, a seq below which every owed row is in flight: claims start there instead of
        # skipping over a whole window of batches in flight. See the module docstring.
        self._cursor: dict[str, int] = dict.fromkeys(self._bits, 0)

    def close(self) -> None:
        self.conn.close()

    # -- the tail side -----------------------------------------------------------------------------

    def checkpoint(self, path: str) -> Checkpoint | None:
        row = self.conn.execute(
            "SELECT path, source, dev, ino, fingerprint, offset FROM checkpoints WHERE path = ?",
            (path,),
        ).fetchone()
        return Checkpoint(*row) if row else None

    def checkpoint_updated(self, path: str) -> float | None:
        """When the checkpoint of `path` was last written (Unix seconds), or None."""
        try:
            row = self.conn.execute(
                "SELECT updated FROM checkpoints WHERE path = ?", (path,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the checkpoint in {self.path}: {exc}") from exc
        return None if row is None or row[0] is None else float(row[0])

    def commit_batch(self, events: Sequence[Event], checkpoint: Checkpoint) -> int:
        """Store `events` and move the checkpoint, atomically. Returns how many rows were new."""
        now = self._clock()
        owed = self._all_bits()
        with self._transaction("store events") as conn:
            rows = event_rows(events, self._source_id, now)
            (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
            before = conn.total_changes
            conn.executemany(_INSERT, rows)
            inserted = conn.total_changes - before
            if owed and inserted:
                conn.execute(
                    "INSERT INTO owed SELECT seq, ? FROM events WHERE seq > ?", (owed, last)
                )
            conn.execute(
                "INSERT INTO checkpoints (path, source, dev, ino, fingerprint, offset, updated)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET source=excluded.source,"
                " dev=excluded.dev, ino=excluded.ino, fingerprint=excluded.fingerprint,"
                " offset=excluded.offset, updated=excluded.updated",
                (
                    checkpoint.path,
                    checkpoint.source,
                    checkpoint.dev,
                    checkpoint.ino,
                    checkpoint.fingerprint,
                    checkpoint.offset,
                    now,
                ),
            )
        if owed and inserted:
            self._owed_rows += inserted
            self._notify()
        return inserted

    def prune(self) -> int:
        """Drop delivered history beyond `retain_events` rows; never a row still owed."""
        cur = self.conn.execute(
            "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?"
            " AND seq NOT IN (SELECT seq FROM owed) AND seq NOT IN (SELECT seq FROM dead_letters)",
            (self.retain_events,),
        )
        return cur.rowcount

    def recent_events(
        self,
        *,
        codes: Sequence[tuple[str, bool]] = (),
        min_severity: int | None = None,
        severities: Sequence[int] = (),
        since: float | None = None,
        until: float | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> list[tuple[int, Event]]:
        """Newest first. `codes` are (text, is_prefix) pairs; `after` is a seq to page below."""
        where: list[str] = []
        args: list[object] = []
        if codes:
            parts = []
            for text, prefix in codes:
                if prefix:
                    parts.append("substr(code, 1, ?) = ?")
                    args += [len(text), text]
                else:
                    parts.append("code = ?")
                    args.append(text)
            where.append("(" + " OR ".join(parts) + ")")
        if min_severity is not None:
            where.append("severity >= ?")
            args.append(min_severity)
        if severities:
            where.append(f"severity IN ({','.join('?' * len(severities))})")
            args += list(severities)
        if since is not None or until is not None:
            where.append("ts IS NOT NULL")
        for clause, value in (("ts >= ?", since), ("ts < ?", until), ("seq < ?", after)):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = f"SELECT e.seq, {_JSON} FROM events e"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ?"
        rows = self.conn.execute(sql, (*args, limit))
        return [(r[0], loads_event(restore_event(*r[1:]))) for r in rows]

    def event_count(self) -> int:
        return self._count("SELECT count(*) FROM events")

    # -- the outbox (irisd.shell.outbox.Outbox) ----------------------------------------------------

    def sinks(self) -> Sequence[str]:
        """In the configuration's order of the last `register_sinks`; in a store just opened, the
        order the sinks were first registered in."""
        return tuple(self._bits)

    def register_sinks(self, names: Sequence[str]) -> None:
        """Make `names` the registered sinks. A sink left out forgets what it owed; a sink added
        is owed what is stored from now on, and inherits the debts of sinks the `sinks` table
        no longer knows.

        Such orphaned bits come only from a salvage that lost `sinks` rows but kept `owed` rows
        (a removal clears its bit). Nothing may be lost and a receiver drops duplicates, so each
        row carrying a bit no sink in the table holds is owed to every sink this call adds, or,
        if it adds none, to every configured sink; with none configured, nothing is owed.
        The usual start (same sinks, no orphans) costs one read and writes nothing, so it never
        waits for the write lock `irisd deadletter` may hold."""
        wanted = list(dict.fromkeys(names))
        if len(wanted) > _MAX_SINKS:
            raise StateError(f"at most {_MAX_SINKS} sinks are supported, {len(wanted)} configured")
        gone = {n: b for n, b in self._bits.items() if n not in wanted}
        kept = {n: self._bits[n] for n in wanted if n in self._bits}
        free = (1 << i for i in range(_MAX_SINKS) if (1 << i) not in kept.values())
        added = {n: next(free) for n in wanted if n not in kept}
        unknown = ~self._all_bits()  # every bit no row of `sinks` holds, as a signed 64-bit mask
        if not gone and not added and not self._owes(unknown):
            self._bits = kept  # only the order may have changed
            return
        heirs = _mask(added.values()) or _mask(kept.values())
        with self._transaction("register sinks") as conn:
            adopted = _rewrite_debts(conn, _mask(gone.values()), unknown, heirs)
            conn.executemany("DELETE FROM dead_letters WHERE sink = ?", [(n,) for n in gone])
            conn.executemany("DELETE FROM sinks WHERE name = ?", [(n,) for n in gone])
            conn.executemany("INSERT INTO sinks (name, bit) VALUES (?, ?)", added.items())
        # Memory follows the database only once it committed: a failed registration changes nothing.
        self._bits = {n: kept.get(n) or added[n] for n in wanted}
        self._in_flight = {n: self._in_flight.get(n, set()) for n in self._bits}
        # An heir may now owe rows below its cursor: it starts its next claim from the beginning.
        self._cursor = {n: 0 if adopted else self._cursor.get(n, 0) for n in self._bits}
        self._owed_rows = self._count("SELECT count(*) FROM owed")
        if adopted:
            self._notify()

    def _owes(self, mask: int) -> bool:
        """Whether any owed row carries a bit of `mask` (a scan of `owed` that stops at the first)."""
        row = self.conn.execute("SELECT 1 FROM owed WHERE bits & ? LIMIT 1", (mask,)).fetchone()
        return row is not None

    def claim(self, sink: str, *, limit: int, max_bytes: int) -> list[OutboxItem]:
        bit = self._bits[sink]
        flight = self._in_flight[sink]
        out: list[OutboxItem] = []
        total = 0
        rows = self.conn.execute(
            f"SELECT o.seq, e.severity, {_JSON} FROM owed o JOIN events e ON e.seq = o.seq"
            " WHERE o.bits & ? AND o.seq > ? ORDER BY o.seq LIMIT ?",
            (bit, self._cursor[sink], limit + len(flight)),
        )
        for seq, severity, stored, event_id, offset, ts in rows:
            if seq in flight:
                continue
            body = restore_event(stored, event_id, offset, ts)
            size = len(body) if body.isascii() else len(body.encode())
            if len(out) >= limit or (out and total + size > max_bytes):
                break
            out.append(OutboxItem(seq, event_id, _SEVERITIES[severity], size, body))
            total += size
        if out:
            flight.update(item.seq for item in out)
            self._cursor[sink] = out[-1].seq
        else:
            self._idle(sink)
        return out

    def _idle(self, sink: str) -> None:
        """Nothing to claim: start the next claim from the beginning and count the owed rows
        afresh, since another process (`irisd deadletter retry`) may have made rows owed."""
        self._cursor[sink] = 0
        self._owed_rows = self._count("SELECT count(*) FROM owed")

    def ack(self, sink: str, seqs: Sequence[int]) -> None:
        self._clear(sink, seqs)

    def release(self, sink: str, seqs: Sequence[int]) -> None:
        flight = self._in_flight[sink]
        released = [s for s in seqs if s in flight]
        flight.difference_update(released)
        if released:
            self._cursor[sink] = min(self._cursor[sink], min(released) - 1)
            self._notify()

    def dead_letter(self, sink: str, seqs: Sequence[int], *, status: int | None, body: str) -> None:
        now = self._clock()
        self._clear(sink, seqs, dead=(status, body[:1024], now))

    def dead_letters(self, sink: str | None = None) -> Sequence[DeadLetter]:
        sql = (
            f"SELECT d.id, d.sink, d.status, d.body, d.at, d.seq, {_JSON}"
            " FROM dead_letters d JOIN events e ON e.seq = d.seq"
        )
        args: tuple[str, ...] = ()
        if sink is not None:
            sql += " WHERE d.sink = ?"
            args = (sink,)
        rows = self.conn.execute(sql + " ORDER BY d.id", args)
        return [
            DeadLetter(r[0], r[1], r[5], loads_event(restore_event(*r[6:])), r[2], r[3], r[4])
            for r in rows
        ]

    def retry_dead_letters(self, ids: Sequence[int] | None = None) -> int:
        with self._transaction("retry dead letters") as conn:
            if ids is None:
                chosen = conn.execute("SELECT id, sink, seq FROM dead_letters").fetchall()
            else:
                chosen = [
                    r
                    for i in ids
                    for r in conn.execute(
                        "SELECT id, sink, seq FROM dead_letters WHERE id = ?", (i,)
                    )
                ]
            for dead_id, sink, seq in chosen:
                conn.execute(
                    "INSERT INTO owed (seq, bits) VALUES (?, ?)"
                    " ON CONFLICT (seq) DO UPDATE SET bits = bits | excluded.bits",
                    (seq, self._bits[sink]),
                )
                conn.execute("DELETE FROM dead_letters WHERE id = ?", (dead_id,))
        if chosen:
            self._owed_rows = self._count("SELECT count(*) FROM owed")
            self._cursor = dict.fromkeys(self._cursor, 0)
            self._notify()
        return len(chosen)

    def stats(self, *, now: float) -> OutboxStats:
        per_sink = {name: self._sink_stats(name, bit, now) for name, bit in self._bits.items()}
        ages = [s.oldest_age for s in per_sink.values() if s.oldest_age is not None]
        return OutboxStats(
            rows=self._owed_rows,
            capacity=self.capacity,
            sinks=MappingProxyType(per_sink),
            oldest_age=max(ages, default=None),
        )

    @property
    def full(self) -> bool:
        return self._owed_rows >= self.capacity

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- helpers -----------------------------------------------------------------------------------

    def _sink_stats(self, name: str, bit: int, now: float) -> SinkStats:
        owed, first = self.conn.execute(
            "SELECT count(*), min(seq) FROM owed WHERE bits & ?", (bit,)
        ).fetchone()
        oldest = None
        if first is not None:  # events are stored in seq order: the first owed is the oldest
            oldest = self.conn.execute(
                "SELECT stored FROM events WHERE seq = ?", (first,)
            ).fetchone()[0]
        dead = self._count("SELECT count(*) FROM dead_letters WHERE sink = ?", (name,))
        flight = len(self._in_flight[name])
        return SinkStats(
            pending=owed - flight,
            in_flight=flight,
            dead=dead,
            oldest_age=None if oldest is None else max(0.0, now - oldest),
        )

    def _clear(
        self, sink: str, seqs: Sequence[int], dead: tuple[int | None, str, float] | None = None
    ) -> None:
        bit = self._bits.get(sink)
        if bit is None or not seqs:
            return
        done = 0
        with self._transaction("record delivery") as conn:
            for where, args in _seq_filters(seqs):
                # Only rows this call clears count: a row in `seqs` that was already done (a
                # repeated ack) must neither be counted again nor dead-lettered. A row owed to
                # this sink alone (with one sink, every row) is deleted in one step, the rest
                # lose the sink's bit: each row is written once.
                done_rows = conn.execute(
                    f"DELETE FROM owed WHERE {where} AND bits = ? RETURNING seq", (*args, bit)
                ).fetchall()
                still_owed = conn.execute(
                    f"UPDATE owed SET bits = bits & ~? WHERE {where} AND bits & ? RETURNING seq",
                    (bit, *args, bit),
                ).fetchall()
                if dead is not None:
                    conn.executemany(
                        "INSERT INTO dead_letters (sink, seq, status, body, at) VALUES (?,?,?,?,?)",
                        [(sink, s, *dead) for (s,) in sorted(done_rows + still_owed)],
                    )
                done += len(done_rows)
        # Counted only once committed: a rolled-back ack leaves every row owed, and counted.
        self._owed_rows -= done
        self._in_flight[sink].difference_update(seqs)

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction. Any failure (also one that is not sqlite3's, such as an int too
        large to bind) rolls it back, or the connection would stay inside it for good; sqlite3's
        errors leave as `StateError` saying what could not be done."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._sources.clear()  # ids handed out in a rolled-back transaction are gone
            if isinstance(exc, sqlite3.Error):
                raise StateError(f"cannot {doing} in {self.path}: {exc}") from exc
            raise

    def _source_id(self, name: str) -> int:
        """The integer standing for a source name in `events.src`; call inside a transaction."""
        found = self._sources.get(name)
        if found is None:
            found = self._sources[name] = source_id(self.conn, {}, name)
        return found

    def _all_bits(self) -> int:
        mask = 0
        for bit in self._bits.values():
            mask |= bit
        return mask

    def _count(self, sql: str, args: tuple[object, ...] = ()) -> int:
        return int(self.conn.execute(sql, args).fetchone()[0])

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()


def _mask(bits: Iterable[int]) -> int:
    mask = 0
    for bit in bits:
        mask |= bit
    return mask


def _rewrite_debts(conn: sqlite3.Connection, gone: int, unknown: int, heirs: int) -> int:
    """Clear the bits of sinks removed, then hand rows carrying `unknown` bits to `heirs`, in that
    order: an added sink may take a removed sink's bit. Returns how many rows were handed on."""
    if gone:
        conn.execute("UPDATE owed SET bits = bits & ? WHERE bits & ?", (~gone, gone))
    adopted = conn.execute(
        "UPDATE owed SET bits = (bits & ?) | ? WHERE bits & ?", (~unknown, heirs, unknown)
    ).rowcount
    if gone or (adopted and not heirs):
        conn.execute("DELETE FROM owed WHERE bits = 0")
    return adopted


def _seq_filters(seqs: Sequence[int]) -> Iterable[tuple[str, tuple[int, ...]]]:
    """WHERE clauses covering `seqs`: one range when they are consecutive (a batch usually is),
    otherwise IN lists of at most 500."""
    low, high = min(seqs), max(seqs)
    if high - low + 1 == len(seqs) == len(set(seqs)):
        yield "seq BETWEEN ? AND ?", (low, high)
        return
    for i in range(0, len(seqs), 500):
        chunk = tuple(seqs[i : i + 500])
        yield f"seq IN ({','.join('?' * len(chunk))})", chunk
