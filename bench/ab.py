"""A/B of the file → SQLite path: this tree against another revision, in alternating runs.

On a shared VM the speed of the machine drifts by up to half between minutes, so two figures
taken at different times say little about a change. This checks REV out in a scratch git
worktree, builds one 1,000,000-line backlog (as bench/ingest.py does), and times Tailer + Store
over it alternately with REV's code and this tree's, each run in a fresh process (REV's hot path compiled
first where its setup.py does so, as this tree's is by its install), with
bench/ingest.py's own measurement (`bench_daemon_path`, which runs from this tree against REV's
irisd).

    .venv/bin/python bench/ab.py REV [--runs 4] [--lines 1000000]

Both trees must have `Tailer(path, store, builder, TailPolicy(entry_linger=...))`, `Store(path)`
and `Store.event_count()` (true since the outbox landed).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "bench"))

import ingest  # noqa: E402 - a sibling script, found through the path set just above


def run(tree: Path, log: Path) -> tuple[float, str]:
    """Seconds of one file → SQLite run with `tree`'s irisd, as bench/ingest.py times it, and
    the hot path it ran."""
    seconds, _, hot = ingest.bench_daemon_path_child(log, tree)
    return seconds, hot


def build(tree: Path) -> None:
    """Compile REV's hot path in place as its install would (setup.py, where it has one), so
    the two trees are compared as they ship, not compiled against plain."""
    if (tree / "setup.py").exists():
        subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
            cwd=tree,
            check=True,
            stdout=subprocess.DEVNULL,
        )


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
            build(other)
            log = work / "messages.log"
            lines = ingest.make_backlog(log, args.lines)
            rates: dict[str, list[float]] = {args.rev: [], "this tree": []}
            for n in range(args.runs):
                for name, tree in ((args.rev, other), ("this tree", HERE)):
                    seconds, hot = run(tree, log)
                    rates[name].append(lines / seconds)
                    print(
                        f"run {n + 1}  {name:<12} {lines / seconds:>10,.0f} lines/s  ({hot})",
                        flush=True,
                    )
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
