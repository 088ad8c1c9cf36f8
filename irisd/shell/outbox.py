"""The seam between storing events and delivering them: the `Outbox` Protocol and `MemoryOutbox`.

Theory of operation. The outbox holds each stored event once, as a row with an increasing `seq`
(commit order), and for every registered sink a delivery state of that row:

    pending ──claim──▶ in flight ──ack──▶ done (for this sink)
       ▲                  │
       └────release───────┤
                          └──dead_letter──▶ dead ──retry_dead_letters──▶ pending

A row counts against the outbox's capacity while some sink still has it pending or in flight;
dead letters are kept apart (until retried) and do not count, so a refusing receiver cannot stop
the tailer. "In flight" lives in memory only: after a restart everything unacknowledged is
pending again, which makes delivery at-least-once (a receiver dedupes by the stable `event_id`).
Acks and dead letters are durable. A sink registered later sees only the events stored after it
was registered; a sink no longer registered forgets what it owed (the operator removed it).

Every method is synchronous: the real outbox is SQLite on the event loop thread, where each call
is a short transaction. `add_listener` lets the publisher sleep until there is something to claim
instead of polling. `MemoryOutbox` is the fake the publisher tests run on; `Store` in
`irisd.shell.store` is the durable one, and both pass the same contract suite.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple, Protocol

from irisd.core.eventjson import dumps_event, loads_event
from irisd.core.model import Event, Severity

Listener = Callable[[], None]


class OutboxItem(NamedTuple):
    """One event claimed for one sink, as stored: its JSON form (`dumps_event(event)`), which a
    batch joins instead of re-serialising, and the fields delivery decides on. `size` is that
    JSON's length in UTF-8 bytes, for batching by bytes. `event` reads the JSON back, for the
    sinks that build their own payload (Alertmanager) and for logging."""

    seq: int
    event_id: str
    severity: Severity
    size: int
    json: str

    @property
    def event(self) -> Event:
        return loads_event(self.json)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event a sink refused for good (a 4xx other than 408/413/429), kept for an operator.

    `status` is the HTTP status, or None when there was none (a local sink's error); `body` is the
    first KiB of what the receiver said; `at` is when it was dead-lettered (Unix seconds).
    """

    id: int
    sink: str
    seq: int
    event: Event
    status: int | None
    body: str
    at: float


@dataclass(frozen=True, slots=True)
class SinkStats:
    pending: int  # not yet claimed
    in_flight: int  # claimed, neither acked nor released
    dead: int  # dead-lettered, waiting for an operator
    oldest_age: float | None  # seconds since the oldest unacknowledged row was stored


@dataclass(frozen=True, slots=True)
class OutboxStats:
    rows: int  # rows some sink still has pending or in flight (what capacity bounds)
    capacity: int  # the configured bound (`[outbox] max_events`)
    sinks: Mapping[str, SinkStats]
    oldest_age: float | None  # over every sink

    @property
    def full(self) -> bool:
        """The tailer stops reading while this holds: the log file is the buffer."""
        return self.rows >= self.capacity


class Outbox(Protocol):
    def sinks(self) -> Sequence[str]:
        """The registered sink names, in registration order."""
        ...

    def register_sinks(self, names: Sequence[str]) -> None:
        """Make `names` the registered set. New sinks see only events stored from now on;
        sinks left out forget their pending, in-flight and dead rows."""
        ...

    def claim(self, sink: str, *, limit: int, max_bytes: int) -> list[OutboxItem]:
        """The oldest pending rows of `sink`, at most `limit` of them and `max_bytes` in all
        (but always the first, however large, so one big event cannot block the sink), marked
        in flight. An empty list when nothing is pending."""
        ...

    def ack(self, sink: str, seqs: Sequence[int]) -> None:
        """Delivered, durably. Unknown or already acked seqs are ignored (an ack may repeat)."""
        ...

    def release(self, sink: str, seqs: Sequence[int]) -> None:
        """Back to pending, to be claimed again (in seq order with the rest). Seqs not in flight
        (already acked or dead-lettered) are ignored, so releasing a whole batch is always safe."""
        ...

    def dead_letter(self, sink: str, seqs: Sequence[int], *, status: int | None, body: str) -> None:
        """Refused for good: out of the sink's pending set into its dead letters, durably."""
        ...

    def dead_letters(self, sink: str | None = None) -> Sequence[DeadLetter]:
        """Dead letters, oldest first, of one sink or of all."""
        ...

    def retry_dead_letters(self, ids: Sequence[int] | None = None) -> int:
        """Put dead letters (all, or those `ids`) back to pending; returns how many."""
        ...

    def stats(self, *, now: float) -> OutboxStats:
        """Depth per sink and the age of the oldest unacknowledged row, as of `now`."""
        ...

    def add_listener(self, listener: Listener) -> None:
        """Call `listener()` (on the caller's thread) whenever rows become pending: after an
        append, a release or a retry of dead letters. It must be cheap and must not raise."""
        ...


@dataclass(slots=True)
class _Row:
    event: Event
    json: str
    size: int
    stored_at: float
    # sink name -> "pending" | "flight" | "dead"; a sink absent from the map is done.
    owed: dict[str, str] = field(default_factory=dict)


class MemoryOutbox:
    """The `Outbox` in a dict: fast, exact, forgets everything at exit. For tests and the bench."""

    def __init__(self, *, capacity: int = 1_000_000, clock: Callable[[], float]) -> None:
        self._capacity = capacity
        self._clock = clock
        self._rows: dict[int, _Row] = {}
        self._sinks: list[str] = []
        self._dead: dict[int, DeadLetter] = {}
        self._seq = itertools.count(1)
        self._dead_ids = itertools.count(1)
        self._listeners: list[Listener] = []

    def append(self, events: Iterable[Event]) -> list[int]:
        """Store events owed to every registered sink, as `SqliteOutbox` stores a tail batch."""
        seqs: list[int] = []
        now = self._clock()
        for event in events:
            seq = next(self._seq)
            owed = dict.fromkeys(self._sinks, "pending")
            text = dumps_event(event)
            self._rows[seq] = _Row(event, text, len(text.encode()), now, owed)
            seqs.append(seq)
        if seqs:
            self._notify()
        return seqs

    def sinks(self) -> Sequence[str]:
        return tuple(self._sinks)

    def register_sinks(self, names: Sequence[str]) -> None:
        self._sinks = list(dict.fromkeys(names))
        keep = set(self._sinks)
        for row in self._rows.values():
            for sink in [s for s in row.owed if s not in keep]:
                del row.owed[sink]
        self._dead = {k: d for k, d in self._dead.items() if d.sink in keep}
        self._drop_done(list(self._rows))

    def claim(self, sink: str, *, limit: int, max_bytes: int) -> list[OutboxItem]:
        out: list[OutboxItem] = []
        total = 0
        for seq, row in self._rows.items():  # dicts keep insertion order, which is seq order
            if row.owed.get(sink) != "pending":
                continue
            if len(out) >= limit or (out and total + row.size > max_bytes):
                break
            row.owed[sink] = "flight"
            out.append(OutboxItem(seq, row.event.event_id, row.event.severity, row.size, row.json))
            total += row.size
        return out

    def ack(self, sink: str, seqs: Sequence[int]) -> None:
        for seq in seqs:
            row = self._rows.get(seq)
            if row is not None and row.owed.get(sink) in ("pending", "flight"):
                del row.owed[sink]
        self._drop_done(seqs)

    def release(self, sink: str, seqs: Sequence[int]) -> None:
        if self._set_state(sink, seqs, "flight", "pending"):
            self._notify()

    def dead_letter(self, sink: str, seqs: Sequence[int], *, status: int | None, body: str) -> None:
        now = self._clock()
        for seq in seqs:
            row = self._rows.get(seq)
            if row is None or row.owed.get(sink) not in ("pending", "flight"):
                continue
            row.owed[sink] = "dead"
            dead_id = next(self._dead_ids)
            self._dead[dead_id] = DeadLetter(dead_id, sink, seq, row.event, status, body, now)

    def dead_letters(self, sink: str | None = None) -> Sequence[DeadLetter]:
        return [d for d in self._dead.values() if sink is None or d.sink == sink]

    def retry_dead_letters(self, ids: Sequence[int] | None = None) -> int:
        chosen = list(self._dead) if ids is None else [i for i in ids if i in self._dead]
        for dead_id in chosen:
            letter = self._dead.pop(dead_id)
            self._rows[letter.seq].owed[letter.sink] = "pending"
        if chosen:
            self._notify()
        return len(chosen)

    def stats(self, *, now: float) -> OutboxStats:
        per_sink = {sink: self._sink_stats(sink, now) for sink in self._sinks}
        ages = [s.oldest_age for s in per_sink.values() if s.oldest_age is not None]
        owed = sum(1 for row in self._rows.values() if any(v != "dead" for v in row.owed.values()))
        return OutboxStats(
            rows=owed,
            capacity=self._capacity,
            sinks=MappingProxyType(per_sink),
            oldest_age=max(ages, default=None),
        )

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _sink_stats(self, sink: str, now: float) -> SinkStats:
        states = [
            (row.owed[sink], row.stored_at) for row in self._rows.values() if sink in row.owed
        ]
        unacked = [at for state, at in states if state != "dead"]
        return SinkStats(
            pending=sum(1 for state, _ in states if state == "pending"),
            in_flight=sum(1 for state, _ in states if state == "flight"),
            dead=sum(1 for state, _ in states if state == "dead"),
            oldest_age=max(0.0, now - min(unacked)) if unacked else None,
        )

    def _set_state(self, sink: str, seqs: Sequence[int], old: str, new: str) -> bool:
        changed = False
        for seq in seqs:
            row = self._rows.get(seq)
            if row is not None and row.owed.get(sink) == old:
                row.owed[sink] = new
                changed = True
        return changed

    def _drop_done(self, seqs: Iterable[int]) -> None:
        for seq in seqs:
            row = self._rows.get(seq)
            if row is not None and not row.owed:
                del self._rows[seq]

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()
