"""Delivery speed: messages.log → loopback HTTP receiver, irisd against syslog-ng in the same run.

For each shipper, in a fresh directory with an empty log file:
  1. start it (irisd: `irisd run` with a webhook sink; syslog-ng: a file source and an http
     destination, tuned: follow-freq 0.05 s, batches of 1,000 lines, 100 ms batch timeout,
     4 workers; plus flow control so nothing is dropped, and a fetch limit and window large
     enough that reading is not throttled at 10 lines per poll) and wait for a first line;
  2. paced: append at R lines/s (default 1,000) for S seconds, each line stamped with the time it
     was written; latency is receipt minus that stamp (p50, p99); the shipper's CPU over the
     paced run and its peak RSS (sustained load) are read from /proc;
  3. burst: append N lines (default 200,000) in one write; throughput is N over the time from
     the write to the last line's receipt; the peak RSS while it is worked through is printed
     apart (a burst's batches in flight are a spike, not the steady footprint).
  4. drain (irisd only, `--drain N`, default 200,000; 0 skips it): the receiver answers 503 while
     N lines are appended and irisd stores them all in its outbox (read from its database), then
     200 again; the rate is N over the time from that switch to the last line's receipt: how fast
     irisd catches up after a receiver outage, its publishing alone (the tailer has nothing left
     to do). The bench's sink retries at most 0.2 s apart, which bounds the wait for the first.
Lines are single-line IRIS entries (`MM/DD/YY-HH:MM:SS:mmm (pid) sev [Category] text`), so a line
is an event for irisd and a message for syslog-ng. The receiver (aiohttp, in this process) only
counts and timestamps: one regular expression finds each line's mark (`bench KIND N t=NS`) in
the raw body, a JSON batch from irisd or newline-separated messages from syslog-ng alike, so both
shippers meet the same receiver. Parsing irisd's JSON and splitting syslog-ng's lines in Python
made the receiver the bottleneck (about 90,000 events/s for JSON, 270,000 lines/s for text): it
measured itself, and held syslog-ng's burst figure down by a fifth.

Targets (issue "Durable delivery"): irisd burst ≥ 1.5x syslog-ng's; irisd p99 ≤ 50 ms at 1,000
lines/s. With syslog-ng measured, the run ends with bench/floor.py's figure over the same burst:
the per-entry work any Python shipper of these events does, nothing stored or sent, as a ratio
to syslog-ng too (the ceiling for the first target).

    .venv/bin/python bench/deliver.py [--burst 200000] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor  # a sibling script, found through the path set just above

IRISD_CONFIG = """\
[instance]
name = "IRIS"
host = "bench"
messages_log = "{log}"
timezone = "UTC"

[state]
dir = "{state}"

[api]
listen = "unix:{state}/api.sock"
token_file = "{state}/api.token"

[tail]
poll_interval = 1.0
entry_linger = 0.02

[log]
format = "stderr"
level = "warning"

[[sinks]]
name = "bench"
type = "webhook"
url = "{url}"
secret = "bench-secret"
batch_max_events = 1000
linger_ms = {linger_ms}
concurrency = {concurrency}
timeout = 10
backoff_base = 0.05
backoff_cap = 0.2
"""

SYSLOG_NG_CONFIG = """\
@version: 3.38
options {{ stats-freq(0); }};
source s_log {{
  file("{log}" follow-freq(0.05) flags(no-parse) log-fetch-limit(1000) log-iw-size(100000));
}};
destination d_http {{
  http(url("{url}") method("POST") batch-lines(1000) batch-timeout(100) workers(4)
       body("${{MESSAGE}}") delimiter("\\n"));
}};
log {{ source(s_log); destination(d_http); flags(flow-control); }};
"""


SYSLOG_NG = shutil.which("syslog-ng") or shutil.which("syslog-ng", path="/usr/sbin") or ""


def stamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%m/%d/%y-%H:%M:%S:") + f"{now.microsecond // 1000:03d}"


# A real message shape (memory.shm_allocated), so the classifier's shape cache applies as it does
# to a real log; `--message` takes another (an unmatched one costs irisd ~100 us in the classifier).
MESSAGE = "[Generic.Event] Allocated 504MB shared memory using Huge Pages"


def line(kind: str, n: int, head: str) -> str:
    return f"{head} (4242) 0 {MESSAGE} bench {kind} {n} t={time.time_ns()}\n"


_MARK = re.compile(rb"bench (\w+) (\d+) t=(\d+)")


@dataclass
class Tally:
    """What arrived of one kind of line, and when."""

    seen: set[bytes] = field(default_factory=set)
    latencies_ms: list[float] = field(default_factory=list)
    last_ns: int = 0


@dataclass
class Receiver:
    tallies: dict[str, Tally] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    down: bool = False  # answer 503 to everything, take nothing

    def take(self, body: bytes, now_ns: int) -> None:
        for kind, n, sent in _MARK.findall(body):
            tally = self.tallies.get(kind.decode())
            if tally is None:
                tally = self.tallies[kind.decode()] = Tally()
            if n not in tally.seen:
                tally.seen.add(n)
                tally.latencies_ms.append((now_ns - int(sent)) / 1e6)
            tally.last_ns = now_ns

    async def count(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.down:
            return web.Response(status=503)
        self.take(body, time.time_ns())
        self.changed.set()
        return web.Response(status=200)

    async def until(self, kind: str, count: int, stall: float = 20.0) -> bool:
        """True once `count` lines of `kind` arrived; False if nothing new came for `stall` s."""
        while len(self.tallies.get(kind, Tally()).seen) < count:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), stall)
            except TimeoutError:
                return False
        return True


@dataclass
class Result:
    name: str
    burst_lines: int
    burst_seconds: float
    burst_complete: bool
    p50_ms: float
    p99_ms: float
    paced_complete: bool
    cpu_percent: float  # of one core, over the paced run
    rss_mib: float  # peak over the paced run
    burst_rss_mib: float  # peak while the burst was worked through
    drain_lines: int = 0  # irisd only: lines published after the receiver came back
    drain_seconds: float = 0.0
    drain_complete: bool = True


class Shipper:
    name = ""

    def start(self, work: Path, log: Path, url: str) -> subprocess.Popen[bytes]:
        raise NotImplementedError


class Irisd(Shipper):
    name = "irisd"

    def __init__(self, linger_ms: int, concurrency: int) -> None:
        self.linger_ms = linger_ms
        self.concurrency = concurrency

    def start(self, work: Path, log: Path, url: str) -> subprocess.Popen[bytes]:
        config = work / "irisd.toml"
        config.write_text(
            IRISD_CONFIG.format(
                log=log,
                state=work / "state",
                url=url + "/irisd",
                linger_ms=self.linger_ms,
                concurrency=self.concurrency,
            )
        )
        cmd = [sys.executable, "-m", "irisd.cli", "run", "--config", str(config)]
        return _spawn(cmd, work)


class SyslogNg(Shipper):
    name = "syslog-ng"

    def start(self, work: Path, log: Path, url: str) -> subprocess.Popen[bytes]:
        config = work / "syslog-ng.conf"
        config.write_text(SYSLOG_NG_CONFIG.format(log=log, url=url + "/syslog-ng"))
        cmd = [SYSLOG_NG, "-F", "--no-caps", "-f", str(config), "-R", str(work / "persist")]
        cmd += ["-p", str(work / "pid"), "-c", str(work / "ctl")]
        return _spawn(cmd, work)


def _spawn(cmd: list[str], work: Path) -> subprocess.Popen[bytes]:
    with (work / "stderr").open("wb") as err:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)


async def measure(
    shipper: Shipper, receiver: Receiver, url: str, args: argparse.Namespace
) -> Result:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{shipper.name}-"))
    log = work / "messages.log"
    log.touch()
    proc = shipper.start(work, log, url)
    try:
        return await _measure(shipper, proc, receiver, log, args)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
        shutil.rmtree(work, ignore_errors=True)


async def _measure(
    shipper: Shipper,
    proc: subprocess.Popen[bytes],
    receiver: Receiver,
    log: Path,
    args: argparse.Namespace,
) -> Result:
    tag = shipper.name.replace("-", "")
    with log.open("a") as out:
        out.write(line(f"{tag}warm", 0, stamp()) + line(f"{tag}warm", 1, stamp()))
    if not await receiver.until(f"{tag}warm", 1, stall=30):
        raise SystemExit(f"{shipper.name} delivered nothing; see its stderr")
    process = psutil.Process(proc.pid)
    cpu_before = process.cpu_times()
    started = time.monotonic()
    peak = await _paced(receiver, log, f"{tag}paced", args, process)
    paced_ok = await receiver.until(f"{tag}paced", int(args.rate * args.seconds))
    elapsed = time.monotonic() - started
    cpu = process.cpu_times()
    used = (cpu.user - cpu_before.user) + (cpu.system - cpu_before.system)
    latencies = sorted(receiver.tallies[f"{tag}paced"].latencies_ms)
    burst_lines, burst_seconds, burst_ok, burst_peak = await _burst(
        receiver, log, f"{tag}burst", args.burst, process
    )
    drained: tuple[int, float, bool] = (0, 0.0, True)
    if isinstance(shipper, Irisd) and args.drain:
        database = log.parent / "state" / "irisd.sqlite3"
        drained = await _drain(receiver, log, f"{tag}drain", args.drain, database)
    return Result(
        name=shipper.name,
        burst_lines=burst_lines,
        burst_seconds=burst_seconds,
        burst_complete=burst_ok,
        p50_ms=statistics.median(latencies),
        p99_ms=latencies[int(len(latencies) * 0.99) - 1],
        paced_complete=paced_ok,
        cpu_percent=100 * used / elapsed,
        rss_mib=peak / 2**20,
        burst_rss_mib=burst_peak / 2**20,
        drain_lines=drained[0],
        drain_seconds=drained[1],
        drain_complete=drained[2],
    )


async def _burst(
    receiver: Receiver, log: Path, kind: str, count: int, process: psutil.Process
) -> tuple[int, float, bool, int]:
    head = stamp()
    data = "".join(line(kind, n, head) for n in range(count))
    peak = process.memory_info().rss
    start = time.time_ns()
    with log.open("a") as out:
        out.write(data)
    done = asyncio.ensure_future(receiver.until(kind, count))
    while not done.done():
        peak = max(peak, process.memory_info().rss)
        await asyncio.wait({done}, timeout=0.05)
    tally = receiver.tallies[kind]
    return len(tally.seen), (tally.last_ns - start) / 1e9, done.result(), peak


async def _drain(
    receiver: Receiver, log: Path, kind: str, count: int, database: Path
) -> tuple[int, float, bool]:
    """Receiver down while `count` lines are stored, then up: (received, seconds, complete)."""
    head = stamp()
    data = "".join(line(kind, n, head) for n in range(count))
    await _until_owed(database, lambda owed: owed == 0, "acknowledge the burst")
    receiver.down = True
    try:
        with log.open("a") as out:
            out.write(data)
        # Nothing else is owed now: once `count` rows are, the whole drain is stored.
        await _until_owed(database, lambda owed: owed >= count, f"store {count:,} lines")
    finally:
        receiver.down = False
    start = time.time_ns()
    complete = await receiver.until(kind, count)
    tally = receiver.tallies.get(kind, Tally())
    return len(tally.seen), (tally.last_ns - start) / 1e9, complete


async def _until_owed(database: Path, done: Callable[[int], bool], what: str) -> None:
    """Poll irisd's outbox (rows owed to the sink) until `done` says so; 120 s at most."""
    deadline = time.monotonic() + 120
    while not done(_owed(database)):
        if time.monotonic() > deadline:
            raise SystemExit(f"irisd did not {what} in 120 s")
        await asyncio.sleep(0.05)


def _owed(database: Path) -> int:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT count(*) FROM owed").fetchone()[0])
    finally:
        conn.close()


async def _paced(
    receiver: Receiver, log: Path, kind: str, args: argparse.Namespace, process: psutil.Process
) -> int:
    """Append at `rate` lines/s in 5 ms ticks for `seconds`; the peak RSS seen meanwhile."""
    total = int(args.rate * args.seconds)
    tick = 0.005
    per_tick = args.rate * tick
    loop = asyncio.get_running_loop()
    begin = loop.time()
    written = 0
    peak = process.memory_info().rss
    with log.open("a", buffering=1) as out:
        while written < total:
            due = min(total, int((loop.time() - begin) / tick * per_tick) + 1)
            while written < due:
                out.write(line(kind, written, stamp()))
                written += 1
            out.flush()
            if written % 500 == 0:
                peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(tick)
    return peak


async def main(args: argparse.Namespace) -> None:
    receiver = Receiver()
    app = web.Application(client_max_size=256 << 20)
    app.router.add_post("/irisd", receiver.count)
    app.router.add_post("/syslog-ng", receiver.count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    shippers: list[Shipper] = [Irisd(args.linger_ms, args.concurrency)]
    if SYSLOG_NG and not args.irisd_only:
        shippers.append(SyslogNg())
    elif not args.irisd_only:
        print("syslog-ng not installed (apt-get install syslog-ng-core syslog-ng-mod-http)")
    results = [await measure(s, receiver, url, args) for s in shippers]
    await runner.cleanup()
    bound = floor.floor_rate(floor.burst(args.burst, MESSAGE), args.burst)
    report(results, args, bound)


def report(results: list[Result], args: argparse.Namespace, bound: float) -> None:
    """`bound`: bench/floor.py's rate over the same burst, printed against syslog-ng's."""
    print(f"burst of {args.burst:,} lines; paced {args.rate:,} lines/s for {args.seconds:g} s")
    print(
        f"{'shipper':<10} {'burst lines/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'CPU %':>7}"
        f" {'RSS MiB':>8} {'burst RSS':>10}"
    )
    for r in results:
        rate = r.burst_lines / r.burst_seconds
        flag = "" if r.burst_complete and r.paced_complete else "  (INCOMPLETE: lines missing)"
        print(
            f"{r.name:<10} {rate:>14,.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} "
            f"{r.cpu_percent:>7.1f} {r.rss_mib:>8.1f} {r.burst_rss_mib:>10.1f}{flag}"
        )
    print("(p50, p99, CPU and RSS at the paced rate; burst RSS: the peak while the burst ran)")
    for r in results:
        if r.drain_lines:
            flag = "" if r.drain_complete else "  (INCOMPLETE: lines missing)"
            print(
                f"{r.name} catch-up after a receiver outage: {r.drain_lines:,} stored lines"
                f" published at {r.drain_lines / r.drain_seconds:,.0f} lines/s{flag}"
            )
    if len(results) == 2:
        ours, theirs = (r.burst_lines / r.burst_seconds for r in results)
        print(f"irisd / syslog-ng burst throughput: {ours / theirs:.2f}x (target >= 1.5x)")
        print(
            f"floor (bench/floor.py: per-entry work only, nothing stored or sent): {bound:,.0f}"
            f" lines/s = {bound / theirs:.2f}x syslog-ng"
        )
        print(f"irisd p99 at {args.rate:,} lines/s: {results[0].p99_ms:.1f} ms (target <= 50 ms)")
    print(f"irisd RSS at {args.rate:,} lines/s: {results[0].rss_mib:.1f} MiB (target < 60 MiB)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--burst", type=int, default=200_000, help="lines in the burst")
    parser.add_argument(
        "--drain",
        type=int,
        default=200_000,
        help="lines stored while the receiver is down (0: skip)",
    )
    parser.add_argument("--rate", type=int, default=1000, help="paced lines per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced run")
    parser.add_argument("--linger-ms", type=int, default=5, help="irisd sink linger_ms")
    parser.add_argument("--concurrency", type=int, default=4, help="irisd sink concurrency")
    parser.add_argument("--message", default=MESSAGE, help="[Category] text of every line")
    parser.add_argument(
        "--irisd-only", action="store_true", help="skip syslog-ng (no ratio is printed)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    MESSAGE = arguments.message
    asyncio.run(main(arguments))
