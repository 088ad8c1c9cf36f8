"""`irisd run` as a real child process under a real NOTIFY_SOCKET: systemd's view of it (READY,
STATUS, WATCHDOG, RELOADING, STOPPING, the exit code), what it detects through the API client and
/metrics, a configuration error's exit 78, and its stored counts against `irisd classify`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from irisd.api.client import ApiClient
from irisd.core.eventjson import restore_event

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "tests/data/messages.log"

CONFIG = """\
[instance]
name = "IRIS"
host = "e2e-host"
messages_log = "{log}"
timezone = "Europe/Helsinki"

[state]
dir = "{state}"

[api]
listen = "unix:{sock}"

[tail]
poll_interval = 0.1
entry_linger = 0.05
rotate_wait = 0.1

[daemon]
status_interval = 0.3
drain_timeout = 2

[log]
format = "stderr"
level = "{level}"
"""

ENTRIES = (
    b"11/14/25-09:45:55:740 (50778) 0 [WriteDaemon.Started] Write daemon started.\n"
    b"11/27/25-16:08:53:863 (213251) 3 [Generic.Event] *** SERIOUS INTERSYSTEMS IRIS ERROR THAT"
    b" COULD CAUSE DATABASE DEGRADATION\n"
    b"\tHAS OCCURRED.  TO PREVENT DEGRADATION THE WRITE DAEMON WILL NOT RUN ***\n"
)
MORE = (
    b"11/28/25-09:09:27:483 (4829) 1 [Utility.Event] Shutdown detected WDSTOP set\n"
    b"11/20/25-13:27:24:883 (40158) 2 [Generic.Event] JRNCREATE in jrnstart() - Error 13="
    b"(Permission denied)\n"
)


class Notifications:
    """The datagram socket systemd would own; the daemon finds it in $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.seen: list[list[str]] = []

    def until(self, field: str, within: float = 15.0) -> list[str]:
        """Receive datagrams until one has a field starting with `field` (e.g. "READY=1");
        return that datagram's fields."""
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {field} within {within}s; saw {self.seen}"
            self.sock.settimeout(remaining)
            try:
                fields = self.sock.recv(4096).decode().split("\n")
            except TimeoutError:
                continue
            self.seen.append(fields)
            if any(f.startswith(field) for f in fields):
                return fields

    def during(self, seconds: float) -> list[list[str]]:
        """Every datagram that arrives in the next `seconds` (to show that one does not)."""
        deadline = time.monotonic() + seconds
        got: list[list[str]] = []
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                got.append(self.sock.recv(4096).decode().split("\n"))
            except TimeoutError:
                break
        self.seen.extend(got)
        return got

    def first(self, field: str) -> int:
        """The index of the first datagram that held `field`."""
        return next(i for i, fields in enumerate(self.seen) if field in fields)

    def close(self) -> None:
        self.sock.close()


class Daemon:
    """`irisd run` in a scratch directory: config, log, state and API socket all in tmp_path."""

    def __init__(self, tmp_path: Path, *, log_bytes: bytes = b"", level: str = "info") -> None:
        self.dir = tmp_path
        self.log = tmp_path / "mgr" / "messages.log"
        self.state = tmp_path / "state"
        self.sock = tmp_path / "api.sock"
        self.config = tmp_path / "irisd.toml"
        self.stderr_path = tmp_path / "stderr.log"
        self.log.parent.mkdir()
        self.log.write_bytes(log_bytes)
        self.write_config(level)
        self.notify = Notifications(tmp_path / "notify.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self, level: str = "info", extra: str = "") -> None:
        text = CONFIG.format(log=self.log, state=self.state, sock=self.sock, level=level)
        self.config.write_text(text + extra)

    def start(self, *, watchdog_usec: int = 2_000_000, prefix: Sequence[str] = ()) -> None:
        """`prefix` runs the daemon through another program (setpriv, unshare)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IRISD_", "JOURNAL_"))}
        env |= {"NOTIFY_SOCKET": str(self.notify.sock.getsockname())}
        env |= {"WATCHDOG_USEC": str(watchdog_usec)}
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [*prefix, sys.executable, "-m", "irisd.cli", "run", "--config", str(self.config)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def set_tail(self, key: str, value: str) -> None:
        self.config.write_text(
            self.config.read_text().replace("[tail]\n", f"[tail]\n{key} = {value}\n")
        )

    def append(self, data: bytes) -> None:
        with open(self.log, "ab") as f:
            f.write(data)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, within: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(within)

    def client(self) -> ApiClient:
        token = (self.state / "api.token").read_text().strip()
        return ApiClient(self.sock, token)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.notify.close()


@pytest.fixture
def make_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    made: list[Daemon] = []

    def make(**kw: object) -> Daemon:
        d = Daemon(tmp_path, **kw)  # type: ignore[arg-type]
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


async def until(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# -- the service lifecycle ---------------------------------------------------------------------------


async def test_systemd_sees_ready_watchdog_status_reload_and_stopping(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon(log_bytes=ENTRIES)
    daemon.start()
    ready = daemon.notify.until("READY=1")
    assert daemon.sock.is_socket(), "READY=1 came before the API socket was bound"
    assert any(f.startswith("STATUS=") for f in ready)
    async with daemon.client() as api:
        assert (await api.health())["status"] == "ok"
    daemon.notify.until("WATCHDOG=1")
    [status] = daemon.notify.until("STATUS=following; 2 entries")
    assert status == "STATUS=following; 2 entries, lag 0 bytes, outbox 0"

    daemon.write_config(level="debug")
    daemon.signal(signal.SIGHUP)
    reloading = daemon.notify.until("RELOADING=1")
    assert any(f.startswith("MONOTONIC_USEC=") for f in reloading)
    daemon.notify.until("READY=1")

    daemon.config.write_text("[tail]\npoll_interval = -1\n")  # a broken file: reload refused
    daemon.signal(signal.SIGHUP)
    daemon.notify.until("RELOADING=1")
    daemon.notify.until("READY=1")
    daemon.notify.until("WATCHDOG=1")  # still running, still making progress

    daemon.signal(signal.SIGTERM)
    daemon.notify.until("STOPPING=1")
    assert daemon.wait() == 0
    order = ["READY=1", "WATCHDOG=1", "RELOADING=1", "STOPPING=1"]
    assert sorted(order, key=daemon.notify.first) == order
    assert daemon.notify.seen[-1][0] == "STOPPING=1"
    assert "configuration reloaded" in daemon.stderr
    assert "reload refused" in daemon.stderr
    assert "tail.poll_interval" in daemon.stderr


async def test_sigusr1_writes_every_threads_stack_and_the_daemon_runs_on(
    make_daemon: Callable[..., Daemon],
) -> None:
    """The way to see where a stuck daemon is: the interpreter writes the stacks itself."""
    daemon = make_daemon(log_bytes=ENTRIES)
    daemon.start()
    daemon.notify.until("READY=1")
    assert daemon.proc is not None
    threads = len(os.listdir(f"/proc/{daemon.proc.pid}/task"))
    daemon.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 15
    # The signalled (event loop) thread comes last, and its stack ends in the module runpy ran:
    # wait for that, so the whole dump has been written before it is read.
    while "_run_module_as_main" not in daemon.stderr.partition("Current thread 0x")[2]:
        assert time.monotonic() < deadline, "no whole stack dump on stderr"
        await asyncio.sleep(0.05)
    others, _, current = daemon.stderr.partition("Current thread 0x")
    assert "irisd/daemon.py" in current  # the event loop's thread, in the daemon's own code
    assert others.count("Thread 0x") == threads - 1  # and every other thread the daemon has
    async with daemon.client() as api:
        assert (await api.health())["status"] == "ok"
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


async def test_appended_entries_show_up_through_the_api_and_metrics(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon(log_bytes=ENTRIES)
    daemon.start()
    daemon.notify.until("READY=1")
    async with daemon.client() as api:

        async def stored(n: int) -> bool:
            return len((await api.events([("limit", "100")]))["events"]) == n  # type: ignore[arg-type]

        await until(lambda: stored(2))
        daemon.append(MORE)
        await until(lambda: stored(4))
        page = await api.events([("min_severity", "severe")])
        codes = [(e["code"], e["severity"]) for e in page["events"]]  # type: ignore[index,union-attr]
        assert codes == [("journal.error", 2), ("lifecycle.abnormal_shutdown", 2),
                         ("database.degradation", 3)]  # fmt: skip
        newest = page["events"][0]  # type: ignore[index]
        assert newest["host"] == "e2e-host"
        assert len(newest["trace_id"]) == 32

        samples = metric_samples(await api.metrics())
        assert samples[("irisd_entries_total", ())] == 4
        assert samples[("irisd_lines_total", ())] == 5
        assert (
            samples[("irisd_events_total", (("code", "database.degradation"), ("severity", "3")))]
            == 1
        )
        assert samples[("irisd_parse_failures_total", ())] == 0
        assert samples[("irisd_tail_lag_bytes", ())] == 0

        status = await api.status()
        assert status["tail"]["entries"] == 4  # type: ignore[index]
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


async def test_severe_and_fatal_entries_are_logged_under_their_taxonomy_code(
    make_daemon: Callable[..., Daemon],
) -> None:
    """What README promises for `journalctl -u irisd IRISD_CODE=journal.error`: each severe or
    fatal entry is one log line at error or critical priority carrying its code and ids.
    (Appended after start: entries already in the log then are counted, not logged one by one;
    see test_journal_backlog.)"""
    daemon = make_daemon()
    daemon.start()
    daemon.notify.until("READY=1")
    daemon.append(ENTRIES + MORE)
    events: list[dict[str, object]] = []
    async with daemon.client() as api:

        async def severe_stored() -> bool:
            page = await api.events([("min_severity", "severe")])
            rows = page["events"]
            assert isinstance(rows, list)
            events[:] = rows
            return len(events) == 3

        await until(severe_stored)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    logged = [line for line in daemon.stderr.splitlines() if "event_id=" in line]
    assert len(logged) == len(events) == 3
    for event in events:
        [line] = [x for x in logged if f"event_id={event['event_id']}" in x]
        priority = "<2>" if event["severity"] == 3 else "<3>"
        assert line.startswith(f"{priority}{event['code']}: ")
        assert f" code={event['code']} " in line
        assert f"trace_id={event['trace_id']}" in line


async def test_watchdog_stops_while_the_tail_is_stalled_and_status_says_why(
    make_daemon: Callable[..., Daemon],
) -> None:
    """A real stall: the test holds the state database's write lock, as an operator's `sqlite3`
    shell inside a transaction would. The tailer cannot commit what it read, so it stops making
    progress: WATCHDOG=1 stops (systemd would restart irisd after WatchdogSec) while STATUS says
    why. When the lock goes, the entries are stored and WATCHDOG=1 comes back."""
    daemon = make_daemon(log_bytes=ENTRIES)
    daemon.set_tail("retry_interval", "0.5")
    daemon.start()
    daemon.notify.until("READY=1")
    daemon.notify.until("STATUS=following; 2 entries")
    daemon.notify.until("WATCHDOG=1")
    holder = sqlite3.connect(daemon.state / "irisd.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        daemon.append(MORE)
        [status] = daemon.notify.until("STATUS=stalled: ", within=30)
        assert "database is locked; retrying every 0.5s" in status
        quiet = daemon.notify.during(3.0)  # longer than WatchdogSec (2 s)
        assert not [d for d in quiet if "WATCHDOG=1" in d]
        assert all(f.startswith("STATUS=stalled: ") for d in quiet for f in d)
    finally:
        holder.execute("COMMIT")
        holder.close()
    daemon.notify.until("WATCHDOG=1", within=30)
    daemon.notify.until("STATUS=following; 4 entries")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert "code=tail.stalled" in daemon.stderr
    assert "code=tail.unstalled" in daemon.stderr


def without_read_override(scratch: Path) -> list[str] | None:
    """A prefix that runs the daemon subject to file permissions. Root reads anything through
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: drop both from its bounding set. None if that is
    not possible here."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    secret = scratch / "unreadable"
    secret.write_text("x")
    secret.chmod(0)
    try:
        probe = subprocess.run(
            [*prefix, "cat", str(secret)], check=False, capture_output=True, timeout=10
        )
    except OSError:
        return None
    finally:
        secret.unlink()
    return prefix if probe.returncode != 0 else None


async def test_an_unreadable_log_is_reported_retried_and_read_once_readable(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    prefix = without_read_override(tmp_path)
    if prefix is None:
        pytest.skip("cannot run the daemon without root's permission overrides here")
    daemon = make_daemon(log_bytes=ENTRIES)
    daemon.log.chmod(0)
    daemon.set_tail("retry_interval", "0.2")
    daemon.start(prefix=prefix)
    daemon.notify.until("READY=1")
    problem = f"cannot open {daemon.log}: Permission denied"
    daemon.notify.until(f"STATUS={problem}")
    daemon.notify.until("WATCHDOG=1")  # no stall: a restart would not make the log readable
    async with daemon.client() as api:
        assert (await api.status())["tail"]["state"] == problem  # type: ignore[index]
        daemon.log.chmod(0o644)

        async def caught_up() -> bool:
            tail = (await api.status())["tail"]
            return tail["entries"] == 2 and tail["state"] == "following"  # type: ignore[index]

        await until(caught_up)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    reports = [line for line in daemon.stderr.splitlines() if "tail.unreadable" in line]
    assert reports == [f"<4>{problem}; retrying every 0.2s code=tail.unreadable"]


def test_configuration_error_exits_78_naming_the_key_on_one_line(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon()
    daemon.write_config(extra="[outbox]\nmax_events = 5\n")
    daemon.start()
    assert daemon.wait() == 78
    lines = daemon.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("irisd: outbox.max_events: ")
    assert str(daemon.config) in lines[0]
    assert daemon.notify.seen == []
    assert not daemon.sock.exists()


# -- the daemon's counts equal the offline classifier's ----------------------------------------------


def classify_summary(path: Path) -> dict[str, object]:
    """`irisd classify --summary`, as an operator runs it on an old log."""
    offline = subprocess.run(
        [sys.executable, "-m", "irisd.cli", "classify", "--summary", "--timezone",
         "Europe/Helsinki", str(path)],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    summary: dict[str, object] = json.loads(offline.stdout)
    return summary


@pytest.mark.skipif(not SAMPLE.exists(), reason="the real sample log is not here")
async def test_classify_summary_equals_what_the_daemon_stored(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    daemon = make_daemon()
    shutil.copyfile(SAMPLE, daemon.log)
    summary = classify_summary(daemon.log)
    daemon.start()
    daemon.notify.until("READY=1")
    async with daemon.client() as api:

        async def caught_up() -> bool:
            tail = (await api.status())["tail"]
            return tail["entries"] == summary["entries"] and tail["lag_bytes"] == 0  # type: ignore[index]

        await until(caught_up, within=30)
        samples = metric_samples(await api.metrics())
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0

    db = sqlite3.connect(daemon.state / "irisd.sqlite3")
    by_code: dict[str, int] = {}
    by_severity: dict[int, int] = {}
    for row in db.execute("SELECT body, event_id, offset, ts FROM events"):
        stored = json.loads(restore_event(*row))
        by_code[stored["code"]] = by_code.get(stored["code"], 0) + stored["repeat"]
        by_severity[stored["severity"]] = by_severity.get(stored["severity"], 0) + stored["repeat"]
    (rows,) = db.execute("SELECT count(*) FROM events").fetchone()
    (unparsed,) = db.execute(
        "SELECT count(*) FROM events WHERE code = 'unknown.unparsed'"
    ).fetchone()
    db.close()
    assert rows == summary["entries"] == 11_950
    assert unparsed == summary["unparsed"] == 0
    assert by_code == summary["by_code"]
    names = ("info", "warning", "severe", "fatal")
    assert {names[s]: n for s, n in by_severity.items()} == summary["by_severity"]
    assert samples[("irisd_lines_total", ())] == summary["lines"] == 49_449
    assert samples[("irisd_bytes_total", ())] == summary["bytes"]
    metric_codes: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if name == "irisd_events_total":
            code = dict(labels)["code"]
            metric_codes[code] = metric_codes.get(code, 0) + value
    assert metric_codes == by_code
