"""`EventBuilder.build` inlines parsing for the common case; it must give exactly the event the
reference path (`parse`, then `from_entry`) gives, for every entry of real logs, the odd forms too."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from irisd.core.events import EventBuilder, event_id, trace_id
from irisd.core.lines import LineAssembler
from irisd.core.logline import LocalClock, parse
from irisd.rules import default_classifier

ROOT = Path(__file__).resolve().parents[2]
LOGS = [ROOT / "tests/data/messages.log", *sorted((ROOT / "log_samples").glob("*.log"))]
ODD = (
    b"an orphan continuation line\n"
    b"11/14/25-07:45:55:657 (4120) 0 [Generic.Event] first\n"
    b"no header at all\n"
    b"02/30/25-07:45:55:657 (4120) 1 [Generic.Event] a day that does not exist\n"
    b"*** Recovery started at Fri Nov 14 09:46:08 2025\n"
    b"   Recovering local (c) databases\n"
    b"11/14/25-07:45:56:000 (4121) 2 [Utility.Event] again...(repeated 7 times)\n"
    b"11/14/25-07:45:57:000 (4122) 3 bad \xff byte, no category\n"
)


def builder(tz: str) -> EventBuilder:
    zone = UTC if tz == "UTC" else ZoneInfo(tz)
    return EventBuilder(host="db1", instance="IRIS", source="803:1a2b:fp:0",
                        clock=LocalClock(zone), classifier=default_classifier())  # fmt: skip


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris"])
@pytest.mark.parametrize("data", [p.read_bytes() for p in LOGS] + [ODD],
                         ids=[p.name for p in LOGS] + ["odd-forms"])  # fmt: skip
def test_build_equals_parse_then_from_entry(data: bytes, tz: str) -> None:
    assembler = LineAssembler()
    raws = assembler.feed(data) + assembler.flush(final=True)
    fast, reference = builder(tz), builder(tz)
    built = [fast.build(raw) for raw in raws]
    expected = [reference.from_entry(parse(raw, reference.clock)) for raw in raws]
    assert built == expected
    assert len(built) == len(raws) > 0


def test_ids_are_stable_and_trace_ids_follow_event_ids() -> None:
    assert event_id("db1", "s", 10) == event_id("db1", "s", 10) != event_id("db1", "s", 11)
    assert len(trace_id(event_id("db1", "s", 10))) == 32
