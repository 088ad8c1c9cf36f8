"""`irisd run` over a damaged state database: it starts anyway, says once at error priority what it
found and where the damaged copy is, shows it in /status and /metrics, keeps the damaged files,
and in the end every entry of the log is stored exactly once. A database that is only locked, or
on a read-only file system, is no damage: exit 74, one line, nothing moved.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from damage_kit import foreign_wal, garbage, torn_page, truncated, zero_length
from test_daemon import Daemon, make_daemon, metric_samples, until

pytestmark = pytest.mark.slow
__all__ = ["make_daemon"]  # the fixture, imported for pytest

NUMBER = re.compile(r"entry (\d+)")


def lines(numbers: range) -> bytes:
    pad = "x" * 200  # enough rows to fill many pages, so one page can be damaged on its own
    return b"".join(
        f"11/14/25-10:00:00:{n % 1000:03d} (4242) 0 [Utility.Event] entry {n} {pad}\n".encode()
        for n in numbers
    )


def stored(db: Path) -> tuple[int, set[str], set[int]]:
    """Rows, distinct event ids, and the entry numbers the daemon stored."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        ids = {r[0] for r in conn.execute("SELECT event_id FROM events")}
        numbers = {int(m.group(1)) for (b,) in conn.execute("SELECT body FROM events")
                   if (m := NUMBER.search(b))}  # fmt: skip
    finally:
        conn.close()
    return rows, ids, numbers


def count(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return -1


DAMAGE = {
    "garbage": garbage,
    "truncated": truncated,
    "torn-page": torn_page,
    "zero-length": zero_length,
    "foreign-wal": foreign_wal,
}


async def run_until_stored(daemon: Daemon, n: int) -> None:
    daemon.start()
    daemon.notify.until("READY=1")

    async def all_stored() -> bool:
        return count(daemon.state / "irisd.sqlite3") == n

    await until(all_stored, within=30)


@pytest.mark.parametrize("kind", list(DAMAGE))
async def test_the_daemon_recovers_a_damaged_database_and_stores_every_line(
    make_daemon: Callable[..., Daemon], kind: str
) -> None:
    daemon = make_daemon(log_bytes=lines(range(300)))
    db = daemon.state / "irisd.sqlite3"
    await run_until_stored(daemon, 300)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0

    DAMAGE[kind](db)
    damaged = db.read_bytes()
    daemon.append(lines(range(300, 350)))  # IRIS wrote on while irisd was down
    await run_until_stored(daemon, 350)

    async with daemon.client() as api:
        status = await api.status()
        samples = metric_samples(await api.metrics())
    recovered = status["state"]["recovered"]  # type: ignore[index]
    aside = Path(recovered["moved_to"])
    assert aside.parent == daemon.state
    assert aside.name.startswith("irisd.sqlite3.corrupt-")
    assert aside.read_bytes() == damaged  # noqa: ASYNC240 - kept as it was, for an operator
    assert samples[("irisd_state_recoveries_total", ())] == 1
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0

    rows, ids, numbers = stored(db)
    assert rows == len(ids) == 350
    assert numbers == set(range(350))
    reports = [line for line in daemon.stderr.splitlines() if "state.recovered" in line]
    assert len(reports) == 1
    assert reports[0].startswith("<3>state database ")  # error priority
    assert f"kept as {aside}" in reports[0]


async def test_a_healthy_restart_reports_no_recovery(make_daemon: Callable[..., Daemon]) -> None:
    daemon = make_daemon(log_bytes=lines(range(5)))
    await run_until_stored(daemon, 5)
    async with daemon.client() as api:
        assert (await api.status())["state"]["recovered"] is None  # type: ignore[index]
        samples = metric_samples(await api.metrics())
    assert samples[("irisd_state_recoveries_total", ())] == 0
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


# -- not damage: exit 74, nothing moved -----------------------------------------------------------


def assert_refused_untouched(daemon: Daemon, before: set[str], reason: str) -> None:
    assert daemon.wait(within=30) == 74
    lines_ = daemon.stderr.strip().splitlines()
    assert lines_[-1].startswith("irisd: ")
    assert reason in lines_[-1]
    assert "state.recovered" not in daemon.stderr
    assert not [p for p in daemon.state.iterdir() if ".corrupt-" in p.name]
    sidecars = {"irisd.sqlite3-wal", "irisd.sqlite3-shm"}  # SQLite's own, made by any reader
    assert {p.name for p in daemon.state.iterdir()} - sidecars <= before


async def test_a_locked_database_exits_74_and_is_not_moved(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon(log_bytes=lines(range(5)))
    await run_until_stored(daemon, 5)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    before = {p.name for p in daemon.state.iterdir()}
    holder = sqlite3.connect(daemon.state / "irisd.sqlite3", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")  # an operator's sqlite3 shell, say
    try:
        daemon.start()
        assert_refused_untouched(daemon, before, "database is locked")
    finally:
        holder.execute("COMMIT")
        holder.close()


def read_only_mount(directory: Path) -> list[str]:
    """A prefix that runs a program with `directory` bind-mounted read-only (a private mount
    namespace: the host's mounts are untouched)."""
    script = 'd=$1; shift; mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh", str(directory)]


def can_mount_read_only(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        done = subprocess.run(
            [*read_only_mount(probe), "true"], check=False, capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.mark.parametrize("damaged", [False, True], ids=["healthy", "damaged"])
async def test_a_read_only_state_directory_exits_74_and_is_not_moved(
    make_daemon: Callable[..., Daemon], tmp_path: Path, damaged: bool
) -> None:
    if not can_mount_read_only(tmp_path):
        pytest.skip("no private mount namespace here (needs root and unshare)")
    daemon = make_daemon(log_bytes=lines(range(5)))
    await run_until_stored(daemon, 5)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    if damaged:
        garbage(daemon.state / "irisd.sqlite3")
    before = {p.name for p in daemon.state.iterdir()}
    daemon.start(prefix=read_only_mount(daemon.state))
    reason = "cannot be set aside: [Errno 30] Read-only file system" if damaged else "cannot use"
    assert_refused_untouched(daemon, before, reason)
