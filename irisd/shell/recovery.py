"""Start-up check of the state database, and recovery from a damaged one.

Theory of operation
-------------------
* Before the store opens the database, `recover_state` looks at it without writing: a zero-length
  file, a -wal file that is not SQLite's or that belongs to another database, then
  `PRAGMA quick_check`. Only SQLITE_CORRUPT and SQLITE_NOTADB mean damage. Any other error
  (locked, read-only, permission, I/O) is not ours to repair: the store's own open reports it and
  irisd exits 74, the database untouched.
* What can be read from a damaged database is copied into a new one built from the damaged one's
  own schema and `user_version` (the store then migrates it as usual). Tables are copied parents
  first, row by row in rowid order; a scan that meets a damaged page steps over it and carries on.
  Rows the new database refuses (NULLs where none may be, a reference to a lost row) are left out.
* If anything could not be carried over, the checkpoints stay but point at offset 0: each file is
  read again from its start under the same identity, so events get the same ids (host + file
  identity + offset), the store keeps one row per id, and a receiver drops what it already had.
  At least once, never a gap. Without a checkpoint the tailer starts the log at 0 anyway.
  The outbox is settled to match (`_settle_outbox`): what a sink owes for a lost event goes (the
  event is owed anew when read again), and if what sinks owe was itself lost, all is owed again.
* Order on disk: the new database is written complete under `<name>.salvage` (rollback journal,
  so it is one file); the damaged files are renamed to `<name>.corrupt-<UTC stamp>` (-wal and
  -shm first, so no stale -wal can ever sit beside a new database); then `.salvage` is renamed
  into place. A crash before the second step redoes the recovery; a crash after it is finished
  at the next start (`.salvage` present, database absent). Damaged files are never deleted.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from irisd.errors import StateError
from irisd.shell.durable import fsync_dir

log = logging.getLogger("irisd.recovery")

_CORRUPT: Final = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB (primary codes)
_WAL_MAGIC: Final = frozenset({0x377F0682, 0x377F0683})
_BATCH: Final = 512
_MAX_ROWID: Final = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a recovery did, for the log line, /status and the metrics."""

    at: datetime
    reason: str
    database: Path
    moved_to: Path
    salvaged: Mapping[str, int] = field(default_factory=dict)
    skipped: int = 0  # damaged stretches stepped over plus rows the new database refused
    reread: bool = True  # the tail restarts its file(s) at offset 0

    def describe(self) -> str:
        rows = ", ".join(f"{n} {t}" for t, n in self.salvaged.items() if n) or "nothing"
        tail = "the log is read again from offset 0" if self.reread else "tailing resumes"
        lost = f", {self.skipped} damaged rows or pages skipped" if self.skipped else ""
        return (
            f"state database {self.database} was damaged ({self.reason}); kept as "
            f"{self.moved_to}; salvaged {rows}{lost}; {tail}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "reason": self.reason,
            "moved_to": str(self.moved_to),
            "salvaged": dict(self.salvaged),
            "skipped": self.skipped,
            "reread": self.reread,
        }


def is_corruption(exc: BaseException) -> bool:
    """True if `exc` (or what it was raised from) is SQLite saying the file is damaged."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, sqlite3.Error) and (cause.sqlite_errorcode or 0) & 0xFF in _CORRUPT:
            return True
        cause = cause.__cause__
    return False


def recover_state(
    path: Path, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Recovery | None:
    """Check the database at `path` before it is opened; if it is damaged, recover it."""
    salvage = _sidecar(path, ".salvage")
    if not path.exists() and salvage.exists():
        _replace(salvage, path)  # a recovery interrupted after the damaged files were moved
        return None
    damage = diagnose(path)
    if damage is None:
        return None
    at = now()
    try:
        salvaged, skipped, reread = _salvage(path, salvage, without_wal=damage.without_wal)
        moved_to = _move_aside(path, at)
        if salvage.exists():
            _replace(salvage, path)
    except OSError as exc:
        raise StateError(
            f"state database {path} is damaged ({damage.reason}) and cannot be set aside: {exc}"
        ) from exc
    done = Recovery(at, damage.reason, path, moved_to, salvaged, skipped, reread)
    log.error(done.describe(), extra={"irisd_code": "state.recovered"})
    return done


# -- diagnosis ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Damage:
    reason: str
    without_wal: bool = False  # the -wal does not belong: salvage reads the main file alone


def diagnose(path: Path) -> Damage | None:
    """Why the database at `path` is damaged, or None if it is not (or is not ours to judge)."""
    try:
        size = path.stat().st_size
    except OSError:
        return None  # absent: a first start; unreadable: the store says so
    wal = _sidecar(path, "-wal")
    if size == 0 and _size(wal) == 0:
        return Damage("the file is empty (0 bytes)")
    problem = _wal_problem(path, wal) if _size(wal) else None
    if problem is not None:
        return Damage(problem, without_wal=True)
    try:
        with closing(_connect(path)) as conn:
            result = [row[0] for row in conn.execute("PRAGMA quick_check")]
    except sqlite3.Error as exc:
        return Damage(str(exc)) if is_corruption(exc) else None
    return None if result == ["ok"] else Damage(f"quick_check: {result[0].splitlines()[-1]}")


def _wal_problem(path: Path, wal: Path) -> str | None:
    with open(wal, "rb") as f:
        header = f.read(32)
    if len(header) < 32:
        return None  # SQLite ignores a -wal too short to hold a header, and so can we
    magic, _version, page_size = struct.unpack(">III", header[:12])
    if magic not in _WAL_MAGIC or _wal_checksum(header[:24], magic & 1) != header[24:32]:
        return "its -wal file is not an SQLite write-ahead log"
    if _page_size(path) not in (None, page_size):
        return "its -wal file belongs to a database with another page size"
    try:
        alone, applied = _schema(path, immutable=True), _schema(path, immutable=False)
    except sqlite3.Error:
        return None  # quick_check judges
    if alone[1] - applied[1] or applied[0] < alone[0]:
        return "its -wal file belongs to another database"
    return None


def _wal_checksum(data: bytes, big_endian: int) -> bytes:
    """SQLite's WAL checksum (two running 32-bit sums over pairs of words)."""
    words = struct.unpack((">" if big_endian else "<") + f"{len(data) // 4}I", data)
    s0 = s1 = 0
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return struct.pack(">II", s0, s1)


def _page_size(path: Path) -> int | None:
    with open(path, "rb") as f:
        header = f.read(18)
    if len(header) < 18 or not header.startswith(b"SQLite format 3\0"):
        return None
    size: int = struct.unpack(">H", header[16:18])[0]
    return 65536 if size == 1 else size


def _schema(path: Path, *, immutable: bool) -> tuple[int, set[str]]:
    with closing(_connect(path, immutable=immutable)) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return int(version), tables


# -- salvage -----------------------------------------------------------------------------------------


def _salvage(path: Path, target: Path, *, without_wal: bool) -> tuple[dict[str, int], int, bool]:
    """Copy what can be read from `path` into a new database at `target`. Returns the rows
    carried over per table, how many rows or pages were skipped, and whether the tail must read
    its files again from offset 0."""
    target.unlink(missing_ok=True)
    try:
        src = _connect(path, immutable=without_wal)
        # Lets a schema that points at a lost page be read at all; the connection is read-only.
        src.execute("PRAGMA writable_schema=ON")
        schema = src.execute(
            "SELECT type, name, sql FROM sqlite_master"
            " WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        version = int(src.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error:
        return {}, 0, True  # not even the schema: the store starts a new database
    try:
        with closing(src), closing(sqlite3.connect(target, isolation_level=None)) as dst:
            counts, lost = _copy(src, dst, schema, version)
            skipped = sum(lost.values())
            if skipped:
                _settle_outbox(dst, lost)
            if skipped and "checkpoints" in counts:
                dst.execute("UPDATE checkpoints SET offset = 0")
    except sqlite3.Error as exc:
        log.warning(
            "could not salvage %s (%s); starting a new state database",
            path,
            exc,
            extra={"irisd_code": "state.salvage_failed"},
        )
        target.unlink(missing_ok=True)
        return {}, 0, True
    return counts, skipped, skipped > 0 or not counts.get("checkpoints")


def _copy(
    src: sqlite3.Connection,
    dst: sqlite3.Connection,
    schema: list[tuple[str, str, str]],
    version: int,
) -> tuple[dict[str, int], dict[str, int]]:
    """Rows copied and rows lost, per table. Tables, then indexes (so a UNIQUE one refuses a
    duplicate row), then rows parents first
    (with foreign keys on, a row whose parent was lost is refused), then triggers and views."""
    dst.execute("PRAGMA foreign_keys=ON")
    dst.execute("BEGIN")
    rank = {"table": 0, "index": 1}
    for kind, _, sql in sorted(schema, key=lambda r: rank.get(r[0], 2)):
        if kind in rank:
            dst.execute(sql)
    counts: dict[str, int] = {}
    lost: dict[str, int] = {}
    for table in _parents_first(dst, [name for kind, name, _ in schema if kind == "table"]):
        counts[table], lost[table] = _copy_table(src, dst, table)
    for kind, _, sql in schema:
        if kind not in rank:
            dst.execute(sql)
    dst.execute(f"PRAGMA user_version={version}")
    dst.execute("COMMIT")
    return counts, lost


def _settle_outbox(dst: sqlite3.Connection, lost: Mapping[str, int]) -> None:
    """Keep the outbox's promise across a partial salvage. This knows the store's outbox tables
    (`owed`: which sinks still owe an event's `seq`; `sinks`: their bits) and does nothing to a
    schema without them. An `owed` row whose event was lost goes: the log is read again and the
    event owed anew. If `owed` or `dead_letters` rows were lost, no one can tell which events
    were delivered, so every event is owed to every sink again; receivers drop what they have.

    A row is never dropped for carrying the bit of a sink whose `sinks` row was lost: the store
    hands such orphaned bits on when the sinks are registered (`Store.register_sinks`). When
    `sinks` rows were lost, "every sink" includes those unknown ones, so the events owed again
    also carry a bit no surviving sink holds, for that same rule to act on."""
    tables = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"events", "owed", "sinks"} <= tables:
        return
    dst.execute("DELETE FROM owed WHERE seq NOT IN (SELECT seq FROM events)")
    every = dst.execute("SELECT coalesce(sum(bit), 0) FROM sinks").fetchone()[0]  # one bit each
    if lost.get("sinks"):
        every |= ~every & (every + 1)  # the lowest bit no surviving sink holds
    if (lost.get("owed") or lost.get("dead_letters")) and every:
        # `WHERE true`: SQLite needs a WHERE before an upsert's ON CONFLICT in INSERT ... SELECT.
        dst.execute(
            "INSERT INTO owed (seq, bits) SELECT seq, ? FROM events WHERE true"
            " ON CONFLICT (seq) DO UPDATE SET bits = bits | excluded.bits",
            (every,),
        )


def _parents_first(dst: sqlite3.Connection, tables: list[str]) -> list[str]:
    out: list[str] = []

    def visit(name: str, seen: tuple[str, ...]) -> None:
        if name in out or name in seen or name not in tables:
            return
        for ref in dst.execute(f"PRAGMA foreign_key_list({_quote(name)})"):
            visit(ref[2], (*seen, name))
        out.append(name)

    for name in tables:
        visit(name, ())
    return out


def _copy_table(src: sqlite3.Connection, dst: sqlite3.Connection, table: str) -> tuple[int, int]:
    """Rows copied, and rows or damaged places skipped."""
    columns = [r[1] for r in dst.execute(f"PRAGMA table_info({_quote(table)})")]
    names = ", ".join(_quote(c) for c in columns)
    marks = ", ".join("?" * len(columns))
    insert = f"INSERT INTO {_quote(table)} ({names}) VALUES ({marks})"  # noqa: S608 - see _quote
    damaged = [0]
    copied = refused = 0
    for row in _scan(src, table, names, damaged):
        if any(isinstance(v, str) and "\0" in v for v in row):
            # The zero-filled rest of a torn or truncated page. irisd stores no text with NUL in
            # it (event bodies are JSON), and a row wrongly left out is read again from the log.
            refused += 1
            continue
        try:
            dst.execute(insert, row)
            copied += 1
        except sqlite3.IntegrityError:
            refused += 1
    return copied, refused + damaged[0]


def _scan(
    src: sqlite3.Connection, table: str, names: str, damaged: list[int]
) -> Iterator[tuple[object, ...]]:
    """Every readable row of `table` in rowid order; `damaged[0]` counts the places skipped."""
    sql = f"SELECT rowid, {names} FROM {_quote(table)} WHERE rowid > ? ORDER BY rowid LIMIT ?"  # noqa: S608
    after: int | None = -_MAX_ROWID - 1
    while after is not None:
        rows: list[tuple[int, ...]] = []
        broken = False
        try:
            for row in src.execute(sql, (after, _BATCH)):
                rows.append(row)  # one at a time: the rows before a damaged one are kept
        except sqlite3.DatabaseError:
            broken = True
        yield from (r[1:] for r in rows)
        last = rows[-1][0] if rows else after
        if broken:
            damaged[0] += 1
            after = _step_over(src, table, last)
        else:
            after = last if len(rows) == _BATCH else None


def _step_over(src: sqlite3.Connection, table: str, after: int) -> int | None:
    """Past a damaged row or page: the rowid just before the next row that can be found,
    probing ever further ahead, or None if there is none."""
    probe = f"SELECT rowid FROM {_quote(table)} WHERE rowid > ? ORDER BY rowid LIMIT 1"  # noqa: S608
    step = 1
    while after + step < _MAX_ROWID:
        try:
            row = src.execute(probe, (after + step,)).fetchone()
        except sqlite3.DatabaseError:
            step *= 2
            continue
        if row is not None and row[0] <= after + step:
            step *= 2  # a damaged interior page answered with a row behind us: never go back
            continue
        return None if row is None else int(row[0]) - 1
    return None


# -- files -------------------------------------------------------------------------------------------


def _move_aside(path: Path, at: datetime) -> Path:
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 0
    while any(_sidecar(aside, s).exists() for s in ("", "-wal", "-shm")):
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("-wal", "-shm", "-journal", ""):  # the main file last: see the module docstring
        if _sidecar(path, suffix).exists():
            _sidecar(path, suffix).rename(_sidecar(aside, suffix))
    fsync_dir(path.parent)
    return aside


def _replace(source: Path, path: Path) -> None:
    source.rename(path)
    fsync_dir(path.parent)


def _connect(path: Path, *, immutable: bool = False) -> sqlite3.Connection:
    mode = "immutable=1" if immutable else "mode=ro"
    return sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, timeout=1.0)


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _quote(name: str) -> str:
    """An SQL identifier. Every name quoted here comes from a database's own schema."""
    return '"' + name.replace('"', '""') + '"'
