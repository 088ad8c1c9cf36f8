"""Nothing lost, ever: the real daemon under kill -9, a flapping receiver and log rotation.

Each test runs `irisd run` as a child process against a messages.log the test appends to in IRIS's
own line format, delivering to a webhook receiver in the test's event loop. Every line carries
its number, so what arrives is counted against what was written: every line must arrive, and a
line may arrive twice only under the same `event_id` (the receiver's dedupe key).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp import web

pytestmark = pytest.mark.slow

CONFIG = """\
[instance]
name = "IRIS"
host = "e2e"
messages_log = "{log}"
timezone = "UTC"

[state]
dir = "{state}"

[api]
listen = "unix:{state}/api.sock"
token_file = "{state}/api.token"

[tail]
poll_interval = 0.1
entry_linger = 0.05

[daemon]
drain_timeout = 2

[log]
format = "stderr"
level = "warning"

[[sinks]]
name = "hook"
type = "webhook"
url = "{url}"
secret = "e2e-secret"
linger_ms = 5
timeout = 2
backoff_base = 0.02
backoff_cap = 0.2
"""


def iris_line(n: int) -> str:
    now = datetime.now(UTC)
    stamp = now.strftime("%m/%d/%y-%H:%M:%S:") + f"{now.microsecond // 1000:03d}"
    return f"{stamp} (4242) 1 [Utility.Event] e2e line {n}\n"


@dataclass
class Receiver:
    """Answers 503 with probability `flap` (a flapping receiver), or `refuse` with a body saying
    why when set, else 200; counts receipts."""

    flap: float = 0.0
    refuse: int | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    ids_by_line: dict[int, set[str]] = field(default_factory=dict)
    receipts: int = 0
    refused: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.rng.random() < self.flap:
            self.refused += 1
            return web.Response(status=503)
        if self.refuse is not None:
            self.refused += 1
            return web.Response(status=self.refuse, text="tenant e2e is not known here")
        for event in body["events"]:
            n = int(event["message"].rsplit(" ", 1)[1])
            self.ids_by_line.setdefault(n, set()).add(event["event_id"])
            self.receipts += 1
        self.changed.set()
        return web.Response(status=200)

    async def until_all(self, written: int, within: float = 60.0) -> None:
        try:
            async with asyncio.timeout(within):
                while len(self.ids_by_line) < written:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            missing = sorted(set(range(written)) - set(self.ids_by_line))
            raise AssertionError(
                f"{len(missing)} lines never arrived: {_ranges(missing)}"
            ) from None

    async def until_any_from(self, first: int) -> None:
        async with asyncio.timeout(30):
            while not self.ids_by_line or max(self.ids_by_line) < first:
                self.changed.clear()
                await self.changed.wait()


def _ranges(numbers: list[int]) -> str:
    spans: list[list[int]] = []
    for n in numbers:
        if spans and spans[-1][1] == n - 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans[:20])


@dataclass
class Rig:
    root: Path
    receiver: Receiver
    url: str

    @property
    def log(self) -> Path:
        return self.root / "mgr" / "messages.log"

    def config(self) -> Path:
        path = self.root / "irisd.toml"
        state = self.root / "state"
        path.write_text(CONFIG.format(log=self.log, state=state, url=self.url))
        return path

    @property
    def stderr(self) -> Path:
        return self.root / "daemon.stderr"

    def start(self) -> subprocess.Popen[bytes]:
        stderr = self.stderr.open("ab")
        with stderr:
            return subprocess.Popen(
                [sys.executable, "-m", "irisd.cli", "run", "--config", str(self.config())],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    async def following(self) -> subprocess.Popen[bytes]:
        """Start the daemon and return once it delivers: rotations before it ever opened the
        log would hide lines from it that no tailer could know of."""
        proc = self.start()
        self.log.write_text(iris_line(-1))
        async with asyncio.timeout(30):
            while -1 not in self.receiver.ids_by_line:
                self.receiver.changed.clear()
                await self.receiver.changed.wait()
        del self.receiver.ids_by_line[-1]
        self.receiver.receipts -= 1
        return proc


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    (tmp_path / "mgr").mkdir()
    (tmp_path / "mgr" / "messages.log").touch()
    yield Rig(tmp_path, receiver, f"http://127.0.0.1:{port}/hook")
    await runner.cleanup()


class Writer:
    """Appends numbered lines in bursts, like an instance under load, until stopped."""

    def __init__(self, log: Path, *, per_burst: int = 20, pause: float = 0.005) -> None:
        self.log = log
        self.written = 0
        self.per_burst = per_burst
        self.pause = pause
        self.paused = asyncio.Lock()  # held by a rotation that must not race a write

    async def run(self, total: int) -> None:
        while self.written < total:
            async with self.paused:
                count = min(self.per_burst, total - self.written)
                lines = "".join(iris_line(self.written + i) for i in range(count))
                with self.log.open("a") as out:
                    out.write(lines)
                self.written += count
            await asyncio.sleep(self.pause)  # the pace of the instance, not a wait for a result


async def stop(proc: subprocess.Popen[bytes], stderr: Path) -> int:
    """SIGTERM, and the exit status. A daemon that has not exited 30 s later is asked for its
    threads' stacks (SIGUSR1) and killed, so it cannot outlive its test, and the test fails with
    the end of its stderr, stacks included: where it hung."""
    proc.send_signal(signal.SIGTERM)
    try:
        return await asyncio.to_thread(proc.wait, 30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(1)
        proc.kill()
        await asyncio.to_thread(proc.wait)
        tail = (await asyncio.to_thread(stderr.read_text, errors="replace"))[-6000:]
        raise AssertionError(f"the daemon did not exit within 30 s of SIGTERM:\n{tail}") from None


def verdict(receiver: Receiver, written: int) -> tuple[int, int]:
    """(distinct lines, duplicate receipts), after checking each line kept one event_id."""
    assert sorted(receiver.ids_by_line) == list(range(written)), "a line never arrived"
    unstable = {n: ids for n, ids in receiver.ids_by_line.items() if len(ids) != 1}
    assert not unstable, f"a re-delivered line changed its event_id: {unstable}"
    return len(receiver.ids_by_line), receiver.receipts - len(receiver.ids_by_line)


async def test_kill_9_at_random_moments_with_a_flapping_receiver_loses_nothing(rig: Rig) -> None:
    rig.receiver.flap = 0.3
    total = 10_000
    writer = Writer(rig.log, per_burst=25, pause=0.02)  # ~10 s of writing
    writing = asyncio.create_task(writer.run(total))
    rng = random.Random(11)
    kills = 0
    proc = rig.start()
    while not writing.done() or kills < 10:
        await asyncio.sleep(rng.uniform(0.3, 1.5))  # a random moment, by design
        proc.kill()
        await asyncio.to_thread(proc.wait, 30)
        kills += 1
        proc = rig.start()
    await writing
    with rig.log.open("a") as out:  # one more, which only the last incarnation can deliver:
        out.write(iris_line(total))  # once it arrives, that daemon is up and SIGTERM is handled
    try:
        await rig.receiver.until_all(total + 1)
    finally:
        assert await stop(proc, rig.stderr) == 0
    lines, duplicates = verdict(rig.receiver, total + 1)
    refused = rig.receiver.refused
    print(f"\nkill -9 x{kills}: {lines} lines, {duplicates} duplicates, {refused} refusals")


async def test_rotation_by_rename_under_continuous_writing_loses_nothing(rig: Rig) -> None:
    total = 6000
    writer = Writer(rig.log, pause=0.02)  # ~8 s of writing
    proc = await rig.following()
    writing = asyncio.create_task(writer.run(total))
    rotations = 0
    while not writing.done():
        # Rotate as soon as the daemon has the current file open (a line of it arrived) while
        # the writer keeps going: far more often than any logrotate, but never twice before the
        # daemon saw the file in between (no tailer can read a file it never knew of).
        await rig.receiver.until_any_from(writer.written)
        rig.log.rename(rig.log.with_name(f"messages.log.{rotations}"))
        rig.log.touch()  # a writer's next open(..., "a") would create it anyway
        rotations += 1
    await writing
    try:
        await rig.receiver.until_all(total)
    finally:
        assert await stop(proc, rig.stderr) == 0
    lines, duplicates = verdict(rig.receiver, total)
    assert rotations >= 5
    print(f"\nrename x{rotations}: {lines} lines delivered, {duplicates} duplicates")


async def test_rotation_by_copytruncate_under_continuous_writing(rig: Rig) -> None:
    """copytruncate: what the daemon had not read when the file was truncated exists only in the
    copy. The writer is held while copy+truncate runs (as logrotate's copy is not atomic with
    the writer either, the window is what is counted): every line the daemon could see arrives,
    and the lines that were only ever in a copy are counted and reported."""
    total = 6000
    writer = Writer(rig.log)
    proc = await rig.following()
    writing = asyncio.create_task(writer.run(total))
    copies: list[Path] = []
    while not writing.done():
        await asyncio.sleep(0.15)
        async with writer.paused:
            copy = rig.log.with_name(f"messages.log.{len(copies)}")
            copy.write_bytes(rig.log.read_bytes())
            with rig.log.open("r+") as live:
                live.truncate(0)
            copies.append(copy)
    await writing
    live_lines = {int(ln.rsplit(" ", 1)[1]) for ln in rig.log.read_text().splitlines()}
    try:
        await _until_settled(rig.receiver, total)
    finally:
        assert await stop(proc, rig.stderr) == 0
    arrived = set(rig.receiver.ids_by_line)
    missing = sorted(set(range(total)) - arrived)
    assert live_lines <= arrived, "a line still in the live file never arrived"
    assert len(copies) >= 5
    assert len(missing) <= total // 10, f"lost {len(missing)} lines to copytruncate windows"
    print(
        f"\ncopytruncate x{len(copies)}: {len(arrived)} of {total} lines delivered; "
        f"{len(missing)} existed only in a copy (truncated before the daemon read them)"
    )


async def test_a_long_receiver_outage_loses_nothing_keeps_memory_flat_and_catches_up(
    rig: Rig,
) -> None:
    rig.receiver.flap = 1.0  # down: every request refused (503), retried with backoff
    total = 100_000
    proc = rig.start()
    daemon = psutil.Process(proc.pid)
    writer = Writer(rig.log, per_burst=200, pause=0.01)
    writing = asyncio.create_task(writer.run(total))
    rss: list[int] = []
    while not writing.done() or len(rss) < 20 or rig.receiver.refused < 20:
        await asyncio.sleep(0.1)  # sample the daemon's memory through the outage
        rss.append(daemon.memory_info().rss)
    await writing
    refused_during_outage = rig.receiver.refused
    rig.receiver.flap = 0.0  # back up
    try:
        await rig.receiver.until_all(total)
    finally:
        assert await stop(proc, rig.stderr) == 0
    lines, duplicates = verdict(rig.receiver, total)
    settled = rss[len(rss) // 4 :]  # after start-up and the first fill of SQLite's page cache
    growth = (max(settled) - min(settled)) / 2**20
    assert growth < 8, f"RSS grew {growth:.1f} MiB while the receiver was down"
    print(
        f"\noutage: {lines} lines after {refused_during_outage} refusals, {duplicates} "
        f"duplicates; RSS {min(settled) / 2**20:.1f}-{max(settled) / 2**20:.1f} MiB"
    )


async def test_dead_letters_come_back_through_the_cli_while_the_daemon_runs(rig: Rig) -> None:
    """A 400 dead-letters its batch for good. `irisd deadletter list`, another process on the
    same database, shows each refused line with the answer; `irisd deadletter retry --all` makes
    them pending again, and the running daemon delivers them without being told, while new lines
    keep coming."""
    proc = await rig.following()
    rig.receiver.refuse = 400
    refused = 300
    with rig.log.open("a") as out:
        out.write("".join(iris_line(n) for n in range(refused)))
    try:
        letters = await _dead_lettered(rig, refused)
        assert sorted(int(d["event"]["message"].rsplit(" ", 1)[1]) for d in letters) == list(
            range(refused)
        )
        assert {(d["sink"], d["status"], d["body"]) for d in letters} == {
            ("hook", 400, "tenant e2e is not known here")
        }
        assert not rig.receiver.ids_by_line, "a refused line was counted as delivered"
        rig.receiver.refuse = None
        total = refused + 3000
        writer = Writer(rig.log)
        writer.written = refused
        writing = asyncio.create_task(writer.run(total))
        await asyncio.sleep(0.2)  # the writer is under way: the retry lands amid new lines
        retried = await _deadletter(rig, "retry", "--all")
        assert retried.strip() == f"{refused} dead letters back to pending"
        await writing
        await rig.receiver.until_all(total)
    finally:
        assert await stop(proc, rig.stderr) == 0
    lines, duplicates = verdict(rig.receiver, total)
    assert await _deadletter_list(rig) == []
    print(f"\ndead letters: {refused} refused, retried by the CLI; {lines} lines, {duplicates} dup")


async def _dead_lettered(rig: Rig, count: int) -> list[dict[str, Any]]:
    """`irisd deadletter list` once it shows `count` dead letters (polled: they are another
    process's rows in the database, nothing here is told of them)."""
    for _ in range(300):
        letters = await _deadletter_list(rig)
        if len(letters) >= count:
            return letters
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(letters)} dead letters after 30 s, not {count}")


async def _deadletter(rig: Rig, *argv: str) -> str:
    """`irisd deadletter ARGV --config ...` as its own process; its standard output."""
    cmd = [sys.executable, "-m", "irisd.cli", "deadletter", *argv, "--config", str(rig.config())]
    done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _deadletter_list(rig: Rig) -> list[dict[str, Any]]:
    out = await _deadletter(rig, "list", "--json")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


async def _until_settled(receiver: Receiver, total: int, quiet: float = 2.0) -> None:
    """Until every line arrived, or nothing more arrives for `quiet` seconds."""
    async with asyncio.timeout(90):
        while len(receiver.ids_by_line) < total:
            receiver.changed.clear()
            try:
                async with asyncio.timeout(quiet):
                    await receiver.changed.wait()
            except TimeoutError:
                return
