"""A fake of the `Services` Protocol (a fake of our own seam, not a mock) and sample events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest

from irisd.api.services import EventQuery, EventRow, select_rows
from irisd.core.metrics import MetricsRegistry
from irisd.core.model import Event, Severity

TOKEN = "test-token-0123456789abcdefghijklmnop"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# (code, severity, minutes before NOW or None for no timestamp)
SAMPLE: tuple[tuple[str, Severity, int | None], ...] = (
    ("lifecycle.startup", Severity.INFO, 120),
    ("memory.shm_allocated", Severity.INFO, 119),
    ("lock.table_full", Severity.SEVERE, 90),
    ("lock.upload", Severity.INFO, 60),
    ("journal.switch", Severity.INFO, 45),
    ("wij.recovery", Severity.WARNING, None),
    ("lock.table_full", Severity.SEVERE, 30),
    ("license.limit_exceeded", Severity.SEVERE, 20),
    ("writedaemon.died", Severity.FATAL, 10),
    ("journal.error", Severity.SEVERE, 5),
)


def make_event(seq: int, code: str, severity: Severity, minutes_ago: int | None) -> Event:
    stamp = None if minutes_ago is None else NOW.timestamp() - 60 * minutes_ago
    return Event(
        event_id=f"ev{seq:04d}",
        trace_id=f"{seq:032x}",
        host="db1",
        instance="IRIS",
        source="/usr/irissys/mgr/messages.log",
        offset=seq * 100,
        timestamp=stamp,
        severity=severity,
        code=code,
        error_type=code.partition(".")[0],
        category="Utility.Event",
        pid=4000 + seq,
        message=f"message {seq} for {code}\nsecond line",
        repeat=1,
        labels=(("scenario", "test"),),
    )


def sample_rows() -> list[EventRow]:
    return [EventRow(seq, make_event(seq, *spec)) for seq, spec in enumerate(SAMPLE, start=1)]


class FakeServices:
    """In-memory `Services`: `select_rows` is the reference meaning of a query."""

    def __init__(self, rows: Sequence[EventRow] = ()) -> None:
        self.rows = list(rows)
        self.registry = MetricsRegistry()
        self.registry.counter("irisd_lines_total", "Lines read.").inc(42)
        self.queries: list[EventQuery] = []
        self.fail_with: Exception | None = None

    async def status(self) -> Mapping[str, object]:
        if self.fail_with is not None:
            raise self.fail_with
        return {"state": "tailing", "since": NOW, "tail": {"lag_bytes": 0, "offset": 1234}}

    def metrics(self) -> MetricsRegistry:
        return self.registry

    async def events(self, query: EventQuery) -> Sequence[EventRow]:
        self.queries.append(query)
        return select_rows(self.rows, query)


# `GET /events` query → seqs of SAMPLE expected, newest first. Shared by every Services
# implementation the tests run, so they all mean the same thing by a filter.
FILTER_CASES = [
    pytest.param("code=lock.table_full", [7, 3], id="exact-code"),
    pytest.param("code=lock.*", [7, 4, 3], id="code-prefix"),
    pytest.param("code=lock", [], id="bare-subsystem-is-exact-not-prefix"),
    pytest.param("code=lock.*&code=journal.*", [10, 7, 5, 4, 3], id="repeated-code"),
    pytest.param("code=wij.*,writedaemon.*", [9, 6], id="comma-codes"),
    pytest.param("min_severity=2", [10, 9, 8, 7, 3], id="min-severity-digit"),
    pytest.param("min_severity=fatal", [9], id="min-severity-name"),
    pytest.param("severity=1", [6], id="exact-severity"),
    pytest.param("severity=warning,fatal", [9, 6], id="severity-list"),
    pytest.param("severity=0&severity=3", [9, 5, 4, 2, 1], id="severity-repeated"),
    pytest.param("since=15m", [10, 9], id="relative-since"),
    pytest.param("since=1h", [10, 9, 8, 7, 5, 4], id="since-is-inclusive"),
    pytest.param("until=1h", [3, 2, 1], id="until-is-exclusive"),
    pytest.param("since=2h&until=30m", [5, 4, 3, 2, 1], id="window"),
    pytest.param("since=2026-03-01T11:00:00Z", [10, 9, 8, 7, 5, 4], id="absolute-utc"),
    pytest.param("since=2026-03-01T12:00:00%2B01:00", [10, 9, 8, 7, 5, 4], id="absolute-offset"),
    pytest.param("since=2026-03-01T12:00:00+01:00", [10, 9, 8, 7, 5, 4], id="unencoded-plus"),
    pytest.param("code=lock.*&min_severity=severe&since=1h", [7], id="filters-combine"),
]
