"""The SQLite event store answers every `/events` query as the reference `select_rows` does.

The same filter table and paging walk run over two `Services`: the in-memory fake and one that
asks the daemon's `Store.recent_events`, mapping the query the way the daemon does. A filter
that SQL reads differently (prefix, null timestamps, inclusive/exclusive bounds) fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from api_fakes import AUTH, FILTER_CASES, NOW, SAMPLE, TOKEN, FakeServices, make_event, sample_rows

from irisd.api.app import make_app
from irisd.api.services import EventQuery, EventRow
from irisd.core.metrics import MetricsRegistry
from irisd.daemon import store_events
from irisd.shell.store import Checkpoint, Store

Client = TestClient  # type: ignore[type-arg]


class StoreServices:
    """`Services.events` over the real SQLite store, mapped as `irisd.daemon` maps it."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def status(self) -> Mapping[str, object]:
        return {}

    def metrics(self) -> MetricsRegistry:
        return MetricsRegistry()

    async def events(self, query: EventQuery) -> Sequence[EventRow]:
        return store_events(self.store, query)


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "irisd.sqlite3")
    events = [make_event(seq, *spec) for seq, spec in enumerate(SAMPLE, start=1)]
    checkpoint = Checkpoint("messages.log", "messages.log", 1, 1, "fp", 1000)
    assert store.commit_batch(events, checkpoint) == len(events)
    return store


@pytest.fixture(params=["memory", "sqlite"])
async def any_client(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> AsyncIterator[Client]:
    store = _store(tmp_path) if request.param == "sqlite" else None
    services = StoreServices(store) if store else FakeServices(sample_rows())
    yield await aiohttp_client(make_app(services, token=TOKEN, clock=lambda: NOW))
    if store is not None:
        store.close()


async def _page(client: Client, query: str) -> dict[str, object]:
    resp = await client.get(f"/events?{query}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    body: dict[str, object] = await resp.json()
    return body


@pytest.mark.parametrize(("query", "expected"), FILTER_CASES)
async def test_filters_agree(any_client: Client, query: str, expected: list[int]) -> None:
    events = (await _page(any_client, query))["events"]
    assert [e["event_id"] for e in events] == [f"ev{n:04d}" for n in expected]  # type: ignore[union-attr]


async def test_paging_agrees(any_client: Client) -> None:
    seen: list[str] = []
    page = await _page(any_client, "limit=4&code=lock.*,journal.*,wij.*")
    while True:
        seen += [e["event_id"] for e in page["events"]]  # type: ignore[union-attr]
        if page["next"] is None:
            break
        page = await _page(any_client, f"limit=4&code=lock.*,journal.*,wij.*&after={page['next']}")
    assert seen == ["ev0010", "ev0007", "ev0006", "ev0005", "ev0004", "ev0003"]


async def test_events_round_trip_the_store_unchanged(any_client: Client) -> None:
    events = (await _page(any_client, "code=wij.recovery"))["events"]
    assert events == [
        {
            "event_id": "ev0006",
            "trace_id": f"{6:032x}",
            "host": "db1",
            "instance": "IRIS",
            "source": "/usr/irissys/mgr/messages.log",
            "offset": 600,
            "timestamp": None,
            "severity": 1,
            "severity_name": "warning",
            "code": "wij.recovery",
            "error_type": "wij",
            "category": "Utility.Event",
            "pid": 4006,
            "message": "message 6 for wij.recovery\nsecond line",
            "repeat": 1,
            "labels": {"scenario": "test"},
        }
    ]
