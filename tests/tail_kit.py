"""What the tailer, store and outbox tests share: a clock they set by hand, an EventBuilder made as
the daemon makes one, and stored events numbered `n`."""

from __future__ import annotations

from datetime import UTC

from irisd.core.events import EventBuilder
from irisd.core.logline import LocalClock
from irisd.core.model import Event, Severity, trace_id
from irisd.rules import default_classifier


class Clock:
    """A monotonic clock that moves only when a test sets `now`."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def builder(source: str) -> EventBuilder:
    """The builder of one source file, as `irisd run` makes it (host db1, instance IRIS, UTC)."""
    return EventBuilder(
        host="db1",
        instance="IRIS",
        source=source,
        clock=LocalClock(UTC),
        classifier=default_classifier(),
    )


def event(n: int, **changes: object) -> Event:
    """Event number `n` of one source: its own ids, offset, time and pid; severity and code
    cycle through four kinds. `changes` replaces fields."""
    base = Event(
        event_id=f"{n:032x}",
        trace_id=trace_id(f"{n:032x}"),  # as the daemon derives it
        host="db1",
        instance="IRIS",
        source="803:1a2b:fp:0",
        offset=n * 100,
        timestamp=1_763_106_355.0 + n,
        severity=Severity(n % 4),
        code=("journal.error", "journal.switch", "database.mounted", "unknown.info")[n % 4],
        error_type="resource",
        category="Generic.Event",
        pid=4000 + n,
        message=f"message {n}",
    )
    return base._replace(**changes)  # type: ignore[arg-type]
