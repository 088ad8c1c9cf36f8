"""The seam between the API and the daemon: the `Services` Protocol and the values it trades in.

The daemon implements `Services`; the API only calls it. An `EventQuery` reaches the daemon
already validated and resolved (relative times turned into instants, the cursor decoded), so an
implementation only filters and orders. `EventQuery.matches` is the reference meaning of every
filter: an in-memory implementation applies it as is, a SQLite one may pre-filter in SQL but
must agree with it (run both through the same tests).

Ordering is newest first by `seq`, the store's commit order (an increasing integer, the SQLite
rowid of the events table). `after` is a `seq`: a page holds only rows with a smaller one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from irisd.core.metrics import MetricsRegistry
from irisd.core.model import Event, Severity

MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class CodePattern:
    """A taxonomy code to match: exactly, or every code under a prefix (`lock.*` → `lock.`)."""

    text: str
    prefix: bool = False

    @classmethod
    def parse(cls, pattern: str) -> CodePattern:
        if pattern.endswith(".*"):
            return cls(pattern[:-1], prefix=True)
        return cls(pattern)

    def matches(self, code: str) -> bool:
        return code.startswith(self.text) if self.prefix else code == self.text


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which stored events to return. Every given filter must hold (they are ANDed).

    `codes`: any of these patterns (empty: all codes). `severities`: exactly one of these
    (empty: all). `min_severity`: at least this. `since` is inclusive, `until` exclusive, both
    POSIX seconds like `Event.timestamp`; an event with no timestamp is left out as soon as
    either is given. `limit` rows at most, and
    only rows with `seq < after` when `after` is given.
    """

    codes: tuple[CodePattern, ...] = ()
    min_severity: Severity | None = None
    severities: frozenset[Severity] = frozenset()
    since: float | None = None
    until: float | None = None
    limit: int = DEFAULT_LIMIT
    after: int | None = None

    def matches(self, event: Event) -> bool:
        """Whether `event` passes every filter (paging aside: `after` and `limit` are on seq)."""
        return (
            self._code_ok(event.code)
            and self._severity_ok(event.severity)
            and self._time_ok(event.timestamp)
        )

    def _code_ok(self, code: str) -> bool:
        return not self.codes or any(p.matches(code) for p in self.codes)

    def _severity_ok(self, severity: Severity) -> bool:
        if self.min_severity is not None and severity < self.min_severity:
            return False
        return not self.severities or severity in self.severities

    def _time_ok(self, stamp: float | None) -> bool:
        if self.since is None and self.until is None:
            return True
        if stamp is None:
            return False
        return (self.since is None or stamp >= self.since) and (
            self.until is None or stamp < self.until
        )


@dataclass(frozen=True, slots=True)
class EventRow:
    """A stored event and its place in commit order."""

    seq: int
    event: Event


class Services(Protocol):
    """What the daemon gives the API. Each call is short; none may block the event loop."""

    async def status(self) -> Mapping[str, object]:
        """A JSON-ready summary of what the daemon is doing (datetimes are allowed)."""
        ...

    def metrics(self) -> MetricsRegistry:
        """The daemon's one registry, rendered as is by `GET /metrics`."""
        ...

    async def events(self, query: EventQuery) -> Sequence[EventRow]:
        """At most `query.limit` rows passing `query`, newest (highest seq) first."""
        ...


def select_rows(rows: Sequence[EventRow], query: EventQuery) -> list[EventRow]:
    """Apply `query` to rows in any order: the reference an in-memory implementation can use."""
    newest_first = sorted(rows, key=lambda row: row.seq, reverse=True)
    out: list[EventRow] = []
    for row in newest_first:
        if query.after is not None and row.seq >= query.after:
            continue
        if query.matches(row.event):
            out.append(row)
            if len(out) == query.limit:
                break
    return out
