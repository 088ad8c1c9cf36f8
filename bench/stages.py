"""Where a delivered entry's time goes: the pipeline's stages in one process, without the event loop.

The bench/deliver.py burst (single-line entries, each message new) is fed through the same pieces
the daemon runs — LineAssembler, EventBuilder, Store.commit_batch in batches of 1,000 with a
checkpoint, Store.claim, the webhook body, Store.ack — and each stage's time is printed per entry.
What the daemon adds on top (asyncio, aiohttp, HMAC, metrics) is the difference between this
total and bench/deliver.py's burst rate.

    .venv/bin/python bench/stages.py [--lines 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floor import burst  # the same burst lines, from the sibling script

STAGES = ("assemble", "build", "commit", "claim", "body", "ack")


def run(data: bytes, lines: int) -> dict[str, float]:
    """Seconds per stage for one pass over `data`, in a fresh database."""
    from irisd.core.events import EventBuilder
    from irisd.core.lines import LineAssembler
    from irisd.core.logline import LocalClock
    from irisd.core.sinks.webhook import webhook_body
    from irisd.rules import default_classifier
    from irisd.shell import gctune
    from irisd.shell.store import Checkpoint, Store

    work = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    store = Store(work / "irisd.sqlite3")
    store.register_sinks(["hook"])
    builder = EventBuilder(host="bench", instance="IRIS", source="1:2:fp:0",
                           clock=LocalClock(UTC), classifier=default_classifier())  # fmt: skip
    assembler = LineAssembler(offset=0)
    gctune.settle()
    spent: dict[str, float] = defaultdict(float)
    claimed = 0
    clock = time.perf_counter
    chunk = 64 << 10  # the daemon's read_chunk_bytes
    for start in range(0, len(data) + chunk, chunk):
        t = clock()
        piece = data[start : start + chunk]
        raws = assembler.feed(piece) if piece else assembler.flush(final=True)
        spent["assemble"] += clock() - t
        for first in range(0, len(raws), 1000):
            part = raws[first : first + 1000]
            t = clock()
            events = [builder.build(raw) for raw in part]
            spent["build"] += clock() - t
            t = clock()
            store.commit_batch(events, Checkpoint("p", "1:2:fp:0", 1, 2, "fp", part[-1].end))
            spent["commit"] += clock() - t
            t = clock()
            items = store.claim("hook", limit=1000, max_bytes=1 << 30)
            spent["claim"] += clock() - t
            t = clock()
            webhook_body(items)
            spent["body"] += clock() - t
            t = clock()
            store.ack("hook", [item.seq for item in items])
            spent["ack"] += clock() - t
            claimed += len(items)
    store.close()
    if claimed != lines:
        raise SystemExit(f"claimed {claimed:,} of {lines:,} entries: the stages did not all run")
    return dict(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = burst(args.lines)
    runs = [run(data, args.lines) for _ in range(args.runs)]
    total = [sum(r.values()) for r in runs]
    print(f"{args.lines:,} single-line entries, {args.runs} runs; medians, us per entry")
    for stage in STAGES:
        print(f"  {stage:<9} {statistics.median(r[stage] for r in runs) / args.lines * 1e6:6.2f}")
    median = statistics.median(total)
    print(
        f"  {'total':<9} {median / args.lines * 1e6:6.2f}  = {args.lines / median:,.0f} entries/s"
    )


if __name__ == "__main__":
    main()
