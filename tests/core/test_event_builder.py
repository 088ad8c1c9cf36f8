"""`EventBuilder.build` inlines parsing for the common case; it must give exactly the event the
reference path (`parse`, then `from_entry`) gives, for every entry of real logs, the odd forms too."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irisd.core.classify import Classifier, load_rules
from irisd.core.events import EventBuilder, event_id
from irisd.core.lines import LineAssembler, RawEntry, assemble
from irisd.core.logline import LocalClock, parse
from irisd.core.model import trace_id
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
    raws = assemble(data)
    fast, reference = builder(tz), builder(tz)
    built = [fast.build(raw) for raw in raws]
    expected = [reference.from_entry(parse(raw, reference.clock)) for raw in raws]
    assert built == expected
    assert len(built) == len(raws) > 0


def test_ids_are_stable_and_trace_ids_follow_event_ids() -> None:
    assert event_id("db1", "s", 10) == event_id("db1", "s", 10) != event_id("db1", "s", 11)
    eid = event_id("db1", "s", 10)
    assert len(trace_id(eid)) == 32
    assert trace_id(eid) == trace_id(eid) != eid
    assert trace_id("0" * 32) == "0" * 31 + "1"  # W3C forbids an all-zero trace id


MIX = [
    "11/14/25-07:45:55:657 (4120) 0 [Generic.Event] Allocated 504MB shared memory",
    "11/14/25-07:45:56:000 (4121) 0 [Generic.Event] Allocated 504MB shared memory",
    "02/30/25-07:45:55:657 (4120) 0 [Generic.Event] Allocated 504MB shared memory",
    "11/14/25-07:45:55:657 (\u0664\u0661) 0 [Generic.Event] Allocated 504MB shared memory",
    "11/14/25-07:45:57:000 (4122) 2 [Generic.Event] Lock table full...(repeated 12 times)",
    "11/14/25-07:45:58:000 (4122) 2 [Generic.Event] Lock table full",
    "11/14/25-07:45:59:000 (4123) 1 ",
    "   a continuation line",
    "*** Recovery startedx (4120) 0 [Generic.Event] Allocated 504MB shared memory",
    "   x (4120) 0 [Generic.Event] Allocated 504MB shared memory",
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(MIX), min_size=1, max_size=30))
def test_remembered_messages_build_what_parsing_builds(lines: list[str]) -> None:
    """Repeats of a message skip the parse; odd prefixes in front of a remembered tail must not."""
    data = ("\n".join(lines) + "\n").encode()
    raws = assemble(data)
    fast, reference = builder("UTC"), builder("UTC")
    assert [fast.build(r) for r in raws] == [
        reference.from_entry(parse(r, reference.clock)) for r in raws
    ]


def test_a_new_rule_table_forgets_what_the_old_one_said() -> None:
    line = b"11/14/25-07:45:55:657 (4120) 0 [Generic.Event] Allocated 504MB shared memory\n"
    assembler = LineAssembler()
    [first, second] = assembler.feed(line + line.replace(b"(4120)", b"(4121)")) + assembler.flush()
    b = builder("UTC")
    assert b.build(first).code == "memory.shm_allocated"
    rules, errors = load_rules([("ops.toml", OPS)])
    assert errors == []
    b.classifier = Classifier(rules)
    assert b.build(second).code == "app.memory"
    assert b.build(second).pid == 4121


OPS = """
[[rule]]
code = "app.memory"
error_type = "none"
match = "^Allocated"
"""


@pytest.mark.parametrize("offset", [0, 7, 123_456_789, 2**40])
def test_built_ids_are_event_id_of_host_source_offset(offset: int) -> None:
    raw = RawEntry(offset, offset + 10, "11/14/25-07:45:55:657 (4120) 0 [Generic.Event] x")
    built = builder("UTC").build(raw)
    assert built.event_id == event_id("db1", "803:1a2b:fp:0", offset)
    assert built.trace_id == trace_id(built.event_id)
