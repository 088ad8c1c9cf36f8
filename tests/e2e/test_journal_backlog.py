"""`irisd run` as a real process over a messages.log that already holds months of history: the
severe and fatal entries found at first start are not logged one by one (journald would
rate-limit thousands of old lines, irisd's own among them) but counted in one info line; what
is appended afterwards is logged as before, also across a restart in the middle of the backlog.
The `<N>`-prefixed stderr lines are what journald would receive.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable

import pytest
from test_daemon import Daemon, make_daemon, until

pytestmark = pytest.mark.slow
__all__ = ["make_daemon"]  # the fixture, imported for pytest

NUMBER = re.compile(r"entry (\d+)")
COUNT_CODE = "code=log.backlog_not_journaled"
COUNTS = re.compile(r"(\d+) severe and (\d+) fatal entries")


def entries(numbers: range, severity: int = 2) -> bytes:
    """Numbered entries; with `severity` 2, every third one is fatal."""
    out = []
    for n in numbers:
        sev = 3 if severity == 2 and n % 3 == 0 else severity
        minute, second = divmod(n % 3600, 60)
        stamp = f"11/14/25-10:{minute:02d}:{second:02d}:{n % 1000:03d}"
        out.append(f"{stamp} (4242) {sev} [Utility.Event] entry {n}\n".encode())
    return b"".join(out)


def journaled(stderr: str) -> list[int]:
    """The entries logged one by one, in order."""
    return [int(m.group(1)) for line in stderr.splitlines()
            if "event_id=" in line and (m := NUMBER.search(line))]  # fmt: skip


def count_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if COUNT_CODE in line]


def counted(line: str) -> tuple[int, int]:
    m = COUNTS.search(line)
    assert m is not None, line
    return int(m.group(1)), int(m.group(2))


async def stored(daemon: Daemon, n: int) -> None:
    """Wait until the daemon has read `n` entries, the log's end."""
    async with daemon.client() as api:

        async def caught_up() -> bool:
            tail = (await api.status())["tail"]
            assert isinstance(tail, dict)
            return bool(tail["entries"] == n and tail["lag_bytes"] == 0)

        await until(caught_up, within=30)


async def logged(daemon: Daemon, check: Callable[[str], bool]) -> None:
    async def seen() -> bool:
        return check(daemon.stderr)

    await until(seen)


async def test_the_backlog_is_one_info_line_and_appended_entries_are_logged(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon(log_bytes=entries(range(1, 31)) + entries(range(31, 41), severity=0))
    daemon.start()
    daemon.notify.until("READY=1")
    await stored(daemon, 40)
    await logged(daemon, lambda text: bool(count_lines(text)))
    async with daemon.client() as api:
        page = await api.events([("min_severity", "severe"), ("limit", "1000")])
        assert len(page["events"]) == 30  # type: ignore[arg-type]  # /events has the backlog
    daemon.append(entries(range(41, 44)))
    await stored(daemon, 43)
    await logged(daemon, lambda text: len(journaled(text)) == 3)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0

    text = daemon.stderr
    assert journaled(text) == [41, 42, 43]
    [line] = count_lines(text)
    assert line.startswith(f"<6>{daemon.log} held 20 severe and 10 fatal entries when irisd ")
    assert counted(line) == (20, 10)
    assert "irisd events --min-severity severe" in line
    priorities = [x[:3] for x in text.splitlines() if "event_id=" in x]
    assert priorities == ["<3>", "<2>", "<3>"]  # 42 is fatal


async def test_a_restart_in_the_backlog_keeps_its_boundary(
    make_daemon: Callable[..., Daemon],
) -> None:
    """The first run stops for certain in the middle of the backlog: a sink that never answers
    fills the outbox (1000 events), and a full outbox stops the reading. The second run, without
    that sink, reads on: the rest of the backlog is counted, what was appended while irisd was
    down and after it started is logged."""
    daemon = make_daemon(log_bytes=entries(range(1, 1501)))
    daemon.write_config(
        extra='[outbox]\nmax_events = 1000\n\n[[sinks]]\nname = "nowhere"\ntype = "webhook"\n'
        'url = "http://127.0.0.1:9/"\n'
    )
    daemon.set_tail("read_chunk_bytes", "16384")
    daemon.start()
    daemon.notify.until("READY=1")
    daemon.notify.until("STATUS=backpressure: outbox full")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    first = daemon.stderr
    assert journaled(first) == []
    [stopped] = count_lines(first)
    assert stopped.startswith(f"<6>stopping before the end of what {daemon.log} held when ")
    severe1, fatal1 = counted(stopped)
    assert 0 < severe1 + fatal1 < 1500

    daemon.append(entries(range(1501, 1504)))  # while irisd is down: new to the operator
    daemon.write_config()
    daemon.set_tail("read_chunk_bytes", "16384")
    daemon.start()
    daemon.notify.until("READY=1")
    await stored(daemon, 1503 - severe1 - fatal1)
    daemon.append(entries(range(1504, 1506)))
    await logged(daemon, lambda text: len(journaled(text)) == 5)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0

    second = daemon.stderr
    assert journaled(second) == [1501, 1502, 1503, 1504, 1505]
    [ended] = count_lines(second)
    severe2, fatal2 = counted(ended)
    assert (severe1 + severe2, fatal1 + fatal2) == (1000, 500)
    lines = second.splitlines()
    assert lines.index(ended) < min(i for i, x in enumerate(lines) if "event_id=" in x)
