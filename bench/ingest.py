"""Ingest speed and footprint, on a 1,000,000-line realistic messages.log backlog.

The backlog is the real 49,449-line sample replayed with moving timestamps (each replay shifted
past the previous one). Printed figures, each on one core:

  read+split      read 1 MiB chunks and split into lines: the ceiling for any tailer
  assemble        the same through LineAssembler (entries with offsets, caps, decoding)
  classify        `irisd classify --summary` (in process, and the CLI end to end)
  daemon path     file → parsed → classified → committed to SQLite (Tailer over a real Store)
  daemon RSS/CPU  `irisd run` as a child: peak RSS after ingesting the backlog, CPU while idle

Targets (issue "Foundation"): classify --summary ≥ 1,000,000 lines/s; daemon path ≥ 300,000 lines/s;
RSS < 60 MiB; idle CPU < 0.2 % of a core.

The two paths with a target run `--repeat` times (default 3), each in a fresh process as the CLI
and the daemon do, and print every run, the median and the best: on a shared VM one run can be a
third slower than the next, so a single figure says little. Before each run a fixed pure-Python
loop is timed; its time over the fastest such time of the whole bench is printed with the run
(`@1.00` is the machine at its fastest, `@1.40` a moment when the same loop took 40% longer), so a
slow run can be told from a slow machine.

    .venv/bin/python bench/ingest.py [--lines 1000000] [--idle 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import psutil

SAMPLE = Path(__file__).resolve().parents[1] / "tests/data/messages.log"
_STAMP = re.compile(rb"^(\d\d/\d\d/\d\d-\d\d:\d\d:\d\d):(\d\d\d) ", re.M)


def make_backlog(path: Path, lines: int) -> int:
    sample = SAMPLE.resolve().read_bytes()
    per = sample.count(b"\n")
    written = 0
    with open(path, "wb") as out:
        shift = timedelta(0)
        while written < lines:

            def moved(m: re.Match[bytes], shift: timedelta = shift) -> bytes:
                when = datetime.strptime(m.group(1).decode(), "%m/%d/%y-%H:%M:%S") + shift
                return when.strftime("%m/%d/%y-%H:%M:%S").encode() + b":" + m.group(2) + b" "

            out.write(_STAMP.sub(moved, sample) if shift else sample)
            written += per
            shift += timedelta(days=40)
    return written


def rate(lines: int, seconds: float) -> str:
    return f"{lines / seconds:>12,.0f} lines/s  ({seconds:.2f} s)"


def bench_read_split(path: Path) -> float:
    start = time.perf_counter()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            chunk.split(b"\n")
    return time.perf_counter() - start


def bench_assemble(path: Path) -> float:
    from irisd.core.lines import LineAssembler

    start = time.perf_counter()
    a = LineAssembler()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            a.feed(chunk)
    a.flush(final=True)
    return time.perf_counter() - start


def bench_classify(path: Path) -> tuple[float, dict[str, object]]:
    from datetime import UTC

    from irisd.offline import classify_files
    from irisd.shell import gctune

    gctune.settle()  # as `irisd classify` and `irisd run` do once started
    start = time.perf_counter()
    summary = classify_files([str(path)], io.StringIO(), zone=UTC, rules_dir=None, mode="summary")
    return time.perf_counter() - start, summary


def bench_classify_cli(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "irisd.cli",
            "classify",
            "--summary",
            "--timezone",
            "UTC",
            str(path),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def bench_daemon_path(path: Path, work: Path) -> tuple[float, int]:
    from datetime import UTC

    from irisd.core.events import EventBuilder
    from irisd.core.logline import LocalClock
    from irisd.rules import default_classifier
    from irisd.shell.store import Store
    from irisd.shell.tailer import Tailer, TailPolicy

    store = Store(work / "bench.sqlite3")
    classifier = default_classifier()

    def builder(source: str) -> EventBuilder:
        return EventBuilder(
            host="bench",
            instance="IRIS",
            source=source,
            clock=LocalClock(UTC),
            classifier=classifier,
        )

    tailer = Tailer(path, store, builder, TailPolicy(entry_linger=0.0))
    start = time.perf_counter()
    while tailer.step():
        pass
    elapsed = time.perf_counter() - start
    rows = store.event_count()
    store.close()
    return elapsed, rows


def bench_daemon_path_child(path: Path, tree: Path | None = None) -> tuple[float, int, str]:
    """`bench_daemon_path` in a fresh interpreter, set up as `irisd run` is once started: its
    seconds, the events stored, and the hot path it ran ("compiled" or "pure Python"). With
    `tree`, the irisd imported is that checkout's (bench/ab.py): the editable install of this one
    answers `import irisd` through a finder of its own ahead of sys.path, so it is dropped."""
    other = (
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()];"
        "sys.path.insert(0, sys.argv[3]); import irisd;"
        "assert Path(irisd.__file__).is_relative_to(sys.argv[3]), irisd.__file__;"
        if tree is not None
        else ""
    )
    code = (
        "import sys, tempfile; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        f"{other}"
        "import ingest; from irisd.shell import gctune; gctune.settle();"
        "d = tempfile.TemporaryDirectory(); t, n = ingest.bench_daemon_path(Path(sys.argv[2]), Path(d.name));"
        # (an older revision has no irisd._hot: whether its assembler is compiled tells)
        "import irisd.core.lines as L; print(t, n, 'pure Python' if L.__file__.endswith('.py') else 'compiled')"
    )
    args = [str(Path(__file__).parent), str(path)] + ([str(tree)] if tree is not None else [])
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    ).stdout.split(maxsplit=2)
    return float(out[0]), int(out[1]), out[2].strip()


def reference() -> float:
    """CPU seconds of a fixed pure-Python loop: how fast the machine is at this moment."""
    start = time.process_time()
    total = 0
    for i in range(3_000_000):
        total += i
    return time.process_time() - start


def timed(run: Callable[[], float]) -> tuple[float, float]:
    """`run()`'s seconds, and the reference loop's seconds just before it."""
    ref = reference()
    return run(), ref


def runs(lines: int, measured: list[tuple[float, float]], fastest: float, target: float) -> str:
    rates = [lines / s for s, _ in measured]
    median, best = statistics.median(rates), max(rates)
    each = ", ".join(
        f"{r / 1000:,.0f}k@{ref / fastest:.2f}" for r, (_, ref) in zip(rates, measured, strict=True)
    )
    return (
        f"median {median:>11,.0f} lines/s  best {best:,.0f}  (runs {each})"
        f"  target {target:,.0f}  ratio {median / target:.2f} (best {best / target:.2f})"
    )


def bench_daemon_process(
    path: Path, work: Path, lines: int, idle: float
) -> tuple[float, float, float]:
    config = work / "irisd.toml"
    config.write_text(
        f'[instance]\nmessages_log = "{path}"\ntimezone = "UTC"\n[state]\ndir = "{work / "state"}"\n'
        f'[api]\nlisten = "unix:{work / "api.sock"}"\n[log]\nformat = "json"\n',
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "irisd.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    p = psutil.Process(proc.pid)
    peak = 0
    start = time.perf_counter()
    db = work / "state" / "irisd.sqlite3"
    try:
        import sqlite3

        while True:
            peak = max(peak, p.memory_info().rss)
            if db.exists():
                try:
                    done = sqlite3.connect(db).execute("SELECT offset FROM checkpoints").fetchone()
                except sqlite3.Error:
                    done = None
                if done and done[0] >= path.stat().st_size - 4096:
                    break
            time.sleep(0.05)
        ingest = time.perf_counter() - start
        time.sleep(2)
        cpu0 = p.cpu_times()
        t0 = time.perf_counter()
        time.sleep(idle)
        cpu1 = p.cpu_times()
        idle_cpu = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (
            time.perf_counter() - t0
        )
        peak = max(peak, p.memory_info().rss)
    finally:
        proc.terminate()
        proc.wait(20)
    return ingest, peak / 2**20, idle_cpu * 100


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path with a target")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="irisd-bench-") as tmp:
        work = Path(tmp)
        log = work / "messages.log"
        lines = make_backlog(log, args.lines)
        size = log.stat().st_size
        print(
            f"backlog: {lines:,} lines, {size / 2**20:.1f} MiB (real sample replayed, timestamps moving)"
        )
        from irisd._hot import hot_path

        print(
            f"python {sys.version.split()[0]}, pid {os.getpid()}, hot path {hot_path()},"
            " one core per measurement\n"
        )
        ceiling = bench_read_split(log)
        print(f"read+split         {rate(lines, ceiling)}   ceiling")
        print(f"assemble           {rate(lines, bench_assemble(log))}")
        t, summary = bench_classify(log)
        print(
            f"classify --summary {rate(lines, t)}   in process  target 1,000,000  ratio {lines / t / 1e6:.2f}"
        )
        print(f"  entries {summary['entries']:,}, unparsed {summary['unparsed']}")
        cli = [timed(lambda: bench_classify_cli(log)) for _ in range(args.repeat)]
        stored: set[int] = set()

        def daemon_path() -> float:
            seconds, events, _ = bench_daemon_path_child(log)
            stored.add(events)
            return seconds

        daemon = [timed(daemon_path) for _ in range(args.repeat)]
        fastest = min(ref for _, ref in cli + daemon)
        print(f"classify --summary {runs(lines, cli, fastest, 1e6)}   CLI, process start included")
        print(f"daemon path        {runs(lines, daemon, fastest, 3e5)}   file→SQLite")
        print(
            f"  {', '.join(f'{n:,}' for n in sorted(stored))} events stored per run, each in a fresh process"
        )
        ingest, rss, cpu = bench_daemon_process(log, work, lines, args.idle)
        print(f"irisd run          {rate(lines, ingest)}   real daemon, backlog to checkpoint")
        print(
            f"  peak RSS {rss:.1f} MiB (target < 60), idle CPU {cpu:.3f} % of a core (target < 0.2)"
        )


if __name__ == "__main__":
    main()
