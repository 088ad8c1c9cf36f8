"""`irisd classify --summary` counts what the daemon would store for the same bytes: the summary's
shortcuts (no ids, no timestamps, counts by classification) must never change a number."""

from __future__ import annotations

import io
import itertools
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irisd.core.events import EventBuilder
from irisd.core.lines import Limits, assemble
from irisd.core.logline import LocalClock
from irisd.core.model import SEVERITY_NAMES
from irisd.core.summary import Scanner, Summary, summarize
from irisd.offline import classify_files
from irisd.rules import default_classifier

ROOT = Path(__file__).resolve().parents[1]
LOGS = [ROOT / "tests/data/messages.log", *sorted((ROOT / "log_samples").glob("*.log"))]
LINES = [
    "11/14/25-07:45:55:657 (4120) 0 [Generic.Event] Allocated 504MB shared memory",
    "11/14/25-07:45:55:657 (4120) 1 [Utility.Event] Journal file has reached its maximum size",
    "11/14/25-07:46:00:001 (4121) 2 [Generic.Event] Lock table full...(repeated 12 times)",
    "02/30/25-07:45:55:657 (4120) 1 [Generic.Event] a date that does not exist",
    "11/14/25-25:99:00:000 (4120) 0 [Generic.Event] an hour that does not exist",
    "11/14/25-07:47:00:000 (4122) 3 no category here",
    "*** Recovery started at Fri Nov 14 09:46:08 2025",
    "   a continuation line",
    "an orphan or continuation line",
    "11/14/25-07:48:00:000 (4123) 0 ",
    "ERROR #5001: Error 28=(No space left on device)",
]


def daemon_counts(data: bytes) -> dict[str, object]:
    raws = assemble(data)
    builder = EventBuilder(host="h", instance="IRIS", source="s", clock=LocalClock(UTC),
                           classifier=default_classifier())  # fmt: skip
    by_code: dict[str, int] = {}
    by_severity = dict.fromkeys(SEVERITY_NAMES, 0)
    for event in map(builder.build, raws):
        by_code[event.code] = by_code.get(event.code, 0) + event.repeat
        by_severity[SEVERITY_NAMES[event.severity]] += event.repeat
    unparsed = by_code.get("unknown.unparsed", 0)
    return {"entries": len(raws), "unparsed": unparsed, "by_code": dict(sorted(by_code.items())),
            "by_severity": by_severity}  # fmt: skip


def summary_counts(path: Path) -> dict[str, object]:
    doc = classify_files([str(path)], io.StringIO(), zone=UTC, rules_dir=None, mode="summary")
    return {k: doc[k] for k in ("entries", "unparsed", "by_code", "by_severity")}


@pytest.mark.parametrize("log", LOGS, ids=[p.name for p in LOGS])
def test_summary_equals_daemon_counts_on_real_logs(log: Path) -> None:
    assert summary_counts(log) == daemon_counts(log.read_bytes())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=40))
def test_summary_equals_daemon_counts_on_any_mix(tmp_path_factory: pytest.TempPathFactory,
                                                 lines: list[str]) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("mix") / "messages.log"
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(data)
    assert summary_counts(path) == daemon_counts(data)


# -- the summary scanner against the reference path --------------------------------------------------

PIECES = [
    *(line + "\n" for line in LINES),
    "11/14/25-07:49:00:000 (4124) 0 [Generic.Event] caf\u00e9 \u2014 non-ASCII\n",
    "11/14/25-07:49:01:000 (4124) 0 [Generic.Event] CRLF line\r\n",
    "11/14/25-07:49:02:000 (4124) 1 [Generic.Event] two lines\n   then the rest...(repeated 3 times)\n",
    "11/14/25-07:49:03:000 (4125) 0 [Generic.Event] \n   a banner form\n   second banner line\n",
    "11/14/25-07:49:04:000 (4126) 2 [Generic.Event] long " + "x" * 300 + "\n",
    "   " + "y" * 90 + "\n",
    "bad \udcff\n",
    # Tails the summary's memo has seen, behind prefixes that must not reach it.
    "*** Recovery startedx (4120) 0 [Generic.Event] Allocated 504MB shared memory\n",
    "11/14/25-07:45:55:657 (\u0664\u0661) 0 [Generic.Event] Allocated 504MB shared memory\n",
    "11/14/25-07:45:55:657 (41\u00b2) 0 [Generic.Event] Allocated 504MB shared memory\n",
    "02/30/25-07:45:55:657 (4120) 0 [Generic.Event] Allocated 504MB shared memory\n",
    "11/14/25-07:45:55:657 (4120)0 [Generic.Event] Allocated 504MB shared memory\n",
    "11/14/25-07:49:05:000 (4127) 0 [Generic.Event] no newline at the end",
]


def reference(data: bytes, limits: Limits) -> dict[str, object]:
    summary = Summary()
    raws = assemble(data, limits=limits)
    summarize(raws, LocalClock(UTC), default_classifier(), summary)
    summary.bytes = len(data)
    return summary.document()


def scanned(data: bytes, cuts: list[int], limits: Limits, carry_max: int) -> dict[str, object]:
    summary = Summary()
    scanner = Scanner(LocalClock(UTC), default_classifier(), summary, limits=limits,
                      carry_max=carry_max)  # fmt: skip
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        scanner.feed(data[start:end])
    scanner.finish()
    return summary.document()


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(PIECES), min_size=0, max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
    small=st.booleans(),
    carry_max=st.sampled_from([64, 1024, 4 << 20]),
)
def test_scanner_counts_equal_the_reference_in_any_chunking(
    pieces: list[str], cuts: list[int], small: bool, carry_max: int
) -> None:
    """Small caps push entries over them (the scanner must fall back); a small carry_max switches
    a file to the reference path midway; chunk cuts land anywhere, mid-line included."""
    data = "".join(pieces).encode("utf-8", errors="surrogateescape")
    limits = (
        Limits(max_line_bytes=120, max_entry_lines=2, max_entry_bytes=200) if small else Limits()
    )
    assert scanned(data, cuts, limits, carry_max) == reference(data, limits)


@pytest.mark.parametrize("log", LOGS, ids=[p.name for p in LOGS])
def test_scanner_counts_equal_the_reference_on_real_logs(log: Path) -> None:
    data = log.read_bytes()
    assert scanned(data, [4096, 70_000, 1 << 20], Limits(), 4 << 20) == reference(data, Limits())
