"""A/B of the file → SQLite path: this tree against another revision, in alternating runs.

On a shared VM the speed of the machine drifts by up to half between minutes, so two figures
taken at different times say little about a change. This checks REV out in a scratch git
worktree, builds one 1,000,000-line backlog (as bench/ingest.py does), and times Tailer + Store
over it alternately with REV's code and this tree's, each run in a fresh process, in CPU time.

    .venv/bin/python bench/ab.py REV [--runs 4] [--lines 1000000]

Both trees must have `Tailer(path, store, builder, TailPolicy(entry_linger=..., read_chunk_bytes=...))`
and `Store(path)` (true since the outbox landed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "bench"))

import ingest  # noqa: E402 - a sibling script, found through the path set just above

# Run in a fresh interpreter with the tree to test first on sys.path. The editable install of
# this checkout answers imports of `irisd` through a finder of its own, ahead of sys.path: it is
# dropped so that REV's code is the one imported.
CHILD = """
import sys, tempfile, time
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, sys.argv[1])
from datetime import UTC
from pathlib import Path
import irisd
assert Path(irisd.__file__).is_relative_to(sys.argv[1]), irisd.__file__
from irisd.core.events import EventBuilder
from irisd.core.logline import LocalClock
from irisd.rules import default_classifier
from irisd.shell import gctune
from irisd.shell.store import Store
from irisd.shell.tailer import Tailer, TailPolicy
gctune.settle()
work = tempfile.TemporaryDirectory()
store = Store(Path(work.name) / "ab.sqlite3")
classifier = default_classifier()
def builder(source):
    return EventBuilder(host="ab", instance="IRIS", source=source, clock=LocalClock(UTC),
                        classifier=classifier)
tailer = Tailer(Path(sys.argv[2]), store, builder, TailPolicy(entry_linger=0.0))
start = time.process_time()
while tailer.step():
    pass
print(time.process_time() - start)
"""


def run(tree: Path, log: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), str(log)],
        check=True,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", help="the revision to compare this tree with (a commit, a tag)")
    parser.add_argument("--runs", type=int, default=4, help="runs of each tree")
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="irisd-ab-") as tmp:
        work = Path(tmp)
        other = work / "rev"
        subprocess.run(
            ["git", "-C", str(HERE), "worktree", "add", "--detach", "-q", str(other), args.rev],
            check=True,
        )
        try:
            log = work / "messages.log"
            lines = ingest.make_backlog(log, args.lines)
            rates: dict[str, list[float]] = {args.rev: [], "this tree": []}
            for n in range(args.runs):
                for name, tree in ((args.rev, other), ("this tree", HERE)):
                    rate = lines / run(tree, log)
                    rates[name].append(rate)
                    print(f"run {n + 1}  {name:<12} {rate:>10,.0f} lines/s", flush=True)
            print()
            for name, seen in rates.items():
                print(
                    f"{name:<12} median {statistics.median(seen):>10,.0f}"
                    f"  best {max(seen):>10,.0f} lines/s"
                )
            ratio = statistics.median(rates["this tree"]) / statistics.median(rates[args.rev])
            print(f"this tree / {args.rev}: {ratio:.2f}x at the median")
        finally:
            subprocess.run(
                ["git", "-C", str(HERE), "worktree", "remove", "--force", str(other)], check=True
            )


if __name__ == "__main__":
    main()
