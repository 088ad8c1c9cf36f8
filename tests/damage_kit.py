"""Ways to damage an SQLite state database the way disks, power cuts and careless copies do; shared
by the recovery tests of the store (tests/shell) and of the daemon (tests/e2e)."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from pathlib import Path


def page_size(db: Path) -> int:
    """The page size the database file declares in its header (bytes 16-17; 1 means 65,536)."""
    with open(db, "rb") as f:
        header = f.read(100)
    size = int.from_bytes(header[16:18], "big")
    return 65536 if size == 1 else size


def leaf_page(db: Path, table: str, which: int | None = None) -> int:
    """The number of one leaf page of `table` (b-tree order): the `which`-th, or the middle one."""
    conn = sqlite3.connect(db)
    try:
        query = "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno"
        pages = [r[0] for r in conn.execute(query, (table,))]
    finally:
        conn.close()
    return int(pages[len(pages) // 2 if which is None else min(which, len(pages) - 1)])


def overwrite_page(db: Path, page: int, seed: int) -> None:
    """Replace page number `page` (1-based) with random bytes from `seed`, a whole page of them."""
    size = page_size(db)
    with open(db, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(random.Random(seed).randbytes(size))


def garbage(db: Path) -> None:
    db.write_bytes(random.Random(1).randbytes(db.stat().st_size))


def truncated(db: Path) -> None:
    os.truncate(db, db.stat().st_size // 3)


def torn_page(db: Path, which: int | None = None) -> None:
    overwrite_page(db, leaf_page(db, "events", which), seed=2)


def zero_length(db: Path) -> None:
    os.truncate(db, 0)


def foreign_wal(db: Path) -> None:
    """The -wal of another database (same page size) beside ours, as a careless copy leaves."""
    other = db.with_name("other.sqlite3")
    conn = sqlite3.connect(other, isolation_level=None)
    conn.execute(f"PRAGMA page_size={page_size(db)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.executemany("INSERT INTO notes VALUES (?)", [("n" * 300,)] * 50)
    shutil.copyfile(other.with_name("other.sqlite3-wal"), db.with_name(db.name + "-wal"))
    conn.close()
    other.unlink()


def garbage_wal(db: Path) -> None:
    db.with_name(db.name + "-wal").write_bytes(random.Random(3).randbytes(8192))
