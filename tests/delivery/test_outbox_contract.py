"""One contract for every `Outbox`: the in-memory fake and the SQLite store behave alike."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from delivery_kit import make_events
from tail_kit import Clock

from irisd.core.eventjson import dumps_event, loads_event
from irisd.core.model import Event
from irisd.shell.outbox import MemoryOutbox, Outbox
from irisd.shell.store import Checkpoint, Store


class Harness:
    """An outbox plus the one thing the Protocol leaves to each implementation: storing events."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.clock = Clock(1_000.0)
        self.kind = kind
        self.path = tmp_path / "irisd.sqlite3"
        self.outbox: Outbox = self._open()
        self.offset = 0

    def _open(self) -> Outbox:
        if self.kind == "memory":
            return MemoryOutbox(capacity=10, clock=self.clock)
        return Store(self.path, capacity=10, clock=self.clock)

    def store(self, events: Sequence[Event]) -> None:
        if isinstance(self.outbox, MemoryOutbox):
            self.outbox.append(events)
            return
        assert isinstance(self.outbox, Store)
        self.offset += len(events)
        self.outbox.commit_batch(events, Checkpoint("/log", "/log", 1, 2, "fp", self.offset))

    def reopen(self) -> Outbox:
        assert isinstance(self.outbox, Store)
        self.outbox.close()
        self.outbox = self._open()
        return self.outbox


@pytest.fixture(params=["memory", "sqlite"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(request.param, tmp_path)
    yield h
    if isinstance(h.outbox, Store):
        h.outbox.close()


def ids(items: Sequence[object]) -> list[str]:
    return [item.event.event_id for item in items]  # type: ignore[attr-defined]


def eid(n: int) -> str:
    return f"{n:032x}"


def test_claim_takes_the_oldest_pending_rows_up_to_the_limit(harness: Harness) -> None:
    box = harness.outbox
    box.register_sinks(["a"])
    harness.store(make_events(5))
    first = box.claim("a", limit=2, max_bytes=1 << 20)
    assert ids(first) == [eid(0), eid(1)]
    assert [i.seq for i in first] == sorted(i.seq for i in first)
    assert ids(box.claim("a", limit=10, max_bytes=1 << 20)) == [eid(2), eid(3), eid(4)]
    assert box.claim("a", limit=10, max_bytes=1 << 20) == []  # all in flight


def test_claim_is_bounded_by_bytes_but_always_yields_the_first(harness: Harness) -> None:
    box = harness.outbox
    box.register_sinks(["a"])
    harness.store(make_events(3, size=1000))
    [big] = box.claim("a", limit=10, max_bytes=10)
    assert big.size == len(big.json.encode()) > 1000
    two = box.claim("a", limit=10, max_bytes=2 * big.size + 20)  # offsets differ in length
    assert len(two) == 2


def test_items_carry_the_stored_json_of_their_event(harness: Harness) -> None:
    box = harness.outbox
    box.register_sinks(["a"])
    harness.store(make_events(2))
    for item in box.claim("a", limit=10, max_bytes=1 << 20):
        assert loads_event(item.json) == item.event
        assert item.json == dumps_event(item.event)


def test_release_returns_rows_to_pending_in_order(harness: Harness) -> None:
    box = harness.outbox
    box.register_sinks(["a"])
    harness.store(make_events(4))
    batch = box.claim("a", limit=2, max_bytes=1 << 20)
    box.release("a", [i.seq for i in batch])
    assert ids(box.claim("a", limit=10, max_bytes=1 << 20)) == [eid(n) for n in range(4)]


def test_a_row_leaves_when_every_sink_acked_it(harness: Harness) -> None:
    box = harness.outbox
    box.register_sinks(["a", "b"])
    harness.store(make_events(3))
    seqs = [i.seq for i in box.claim("a", limit=10, max_bytes=1 << 20)]
    box.ack("a", seqs)
    box.ack("a", seqs)  # an ack may repeat
    assert box.stats(now=harness.clock.now).rows == 3  # b still owes them
    assert box.claim("a", limit=10, max_bytes=1 << 20) == []
    box.ack("b", [i.seq for i in box.claim("b", limit=10, max_bytes=1 << 20)])
    stats = box.stats(now=harness.clock.now)
    assert stats.rows == 0
    assert (stats.sinks["a"].pending, stats.sinks["b"].pending) == (0, 0)


def test_release_ignores_rows_already_acked(harness: Harness) -> None:
    box = harness.outbox
    box.register_sinks(["a"])
    harness.store(make_events(2))
    seqs = [i.seq for i in box.claim("a", limit=10, max_bytes=1 << 20)]
    box.ack("a", seqs[:1])
    box.release("a", seqs)
    assert ids(box.claim("a", limit=10, max_bytes=1 << 20)) == [eid(1)]


def test_a_new_sink_sees_only_events_stored_after_it_was_registered(harness: Harness) -> None:
    box = harness.outbox
    box.register_sinks(["a"])
    harness.store(make_events(2))
    box.register_sinks(["a", "b"])
    harness.store(make_events(1, start=2))
    assert sorted(box.sinks()) == ["a", "b"]
    assert ids(box.claim("b", limit=10, max_bytes=1 << 20)) == [eid(2)]
    assert len(box.claim("a", limit=10, max_bytes=1 << 20)) == 3


def test_an_unregistered_sink_forgets_what_it_owed(harness: Harness) -> None:
    box = harness.outbox
    box.register_sinks(["a", "gone"])
    harness.store(make_events(3))
    box.ack("a", [i.seq for i in box.claim("a", limit=10, max_bytes=1 << 20)])
    assert box.stats(now=harness.clock.now).rows == 3
    box.register_sinks(["a"])
    assert box.sinks() == ("a",)
    assert box.stats(now=harness.clock.now).rows == 0


def test_dead_letters_keep_status_body_and_event_and_retry_brings_them_back(
    harness: Harness,
) -> None:
    box = harness.outbox
    box.register_sinks(["a", "b"])
    harness.store(make_events(3))
    batch = box.claim("a", limit=10, max_bytes=1 << 20)
    box.dead_letter("a", [i.seq for i in batch[:2]], status=400, body="no such field")
    box.ack("a", [batch[2].seq])
    letters = box.dead_letters()
    assert [(d.sink, d.status, d.body) for d in letters] == [("a", 400, "no such field")] * 2
    assert [d.event.event_id for d in letters] == [eid(0), eid(1)]
    assert box.dead_letters("b") == []
    stats = box.stats(now=harness.clock.now).sinks["a"]
    assert (stats.pending, stats.in_flight, stats.dead) == (0, 0, 2)
    assert box.retry_dead_letters([letters[1].id]) == 1
    assert ids(box.claim("a", limit=10, max_bytes=1 << 20)) == [eid(1)]
    assert box.retry_dead_letters() == 1
    assert ids(box.claim("a", limit=10, max_bytes=1 << 20)) == [eid(0)]
    assert box.dead_letters() == []


def test_dead_letters_do_not_count_against_capacity(harness: Harness) -> None:
    box = harness.outbox
    box.register_sinks(["a"])
    harness.store(make_events(10))
    assert box.stats(now=harness.clock.now).full
    seqs = [i.seq for i in box.claim("a", limit=10, max_bytes=1 << 20)]
    box.dead_letter("a", seqs, status=422, body="")
    stats = box.stats(now=harness.clock.now)
    assert (stats.rows, stats.full) == (0, False)


def test_stats_report_depth_and_the_oldest_unacknowledged_age(harness: Harness) -> None:
    box = harness.outbox
    box.register_sinks(["a"])
    assert box.stats(now=harness.clock.now).sinks["a"].oldest_age is None
    harness.store(make_events(2))
    harness.clock.now += 30
    harness.store(make_events(2, start=2))
    box.claim("a", limit=1, max_bytes=1 << 20)
    stats = box.stats(now=harness.clock.now + 15)
    assert stats.sinks["a"].oldest_age == pytest.approx(45)
    assert stats.oldest_age == pytest.approx(45)
    assert (stats.sinks["a"].pending, stats.sinks["a"].in_flight) == (3, 1)
    assert (stats.rows, stats.capacity, stats.full) == (4, 10, False)


def test_listeners_hear_appends_releases_and_retries(harness: Harness) -> None:
    box = harness.outbox
    heard: list[int] = []
    box.add_listener(lambda: heard.append(1))
    box.register_sinks(["a"])
    harness.store(make_events(2))
    assert len(heard) == 1
    seqs = [i.seq for i in box.claim("a", limit=10, max_bytes=1 << 20)]
    box.release("a", seqs[:1])
    assert len(heard) == 2
    box.dead_letter("a", seqs[1:], status=400, body="")
    box.retry_dead_letters()
    assert len(heard) == 3


def test_after_a_restart_everything_unacknowledged_is_pending_again(tmp_path: Path) -> None:
    harness = Harness("sqlite", tmp_path)
    box = harness.outbox
    box.register_sinks(["a"])
    harness.store(make_events(4))
    batch = box.claim("a", limit=10, max_bytes=1 << 20)
    box.ack("a", [batch[0].seq])
    box.dead_letter("a", [batch[1].seq], status=400, body="x")
    box = harness.reopen()  # in flight was memory only; acks and dead letters were durable
    assert ids(box.claim("a", limit=10, max_bytes=1 << 20)) == [eid(2), eid(3)]
    assert [d.event.event_id for d in box.dead_letters("a")] == [eid(1)]
    box.close()  # type: ignore[attr-defined]
