"""GET /events: every filter really filters, paging walks everything once, bad input is a 400
naming the field."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from api_fakes import AUTH, FILTER_CASES, NOW, FakeServices

from irisd.api.params import encode_cursor

Client = TestClient  # type: ignore[type-arg]


async def _get(client: Client, query: str) -> dict[str, object]:
    resp = await client.get(f"/events?{query}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert isinstance(body, dict)
    return body


async def _ids(client: Client, query: str) -> list[str]:
    events = (await _get(client, query))["events"]
    assert isinstance(events, list)
    return [e["event_id"] for e in events]


async def test_no_filter_returns_all_newest_first(client: Client) -> None:
    assert await _ids(client, "") == [f"ev{n:04d}" for n in range(10, 0, -1)]


@pytest.mark.parametrize(("query", "expected"), FILTER_CASES)
async def test_filters(client: Client, query: str, expected: list[int]) -> None:
    assert await _ids(client, query) == [f"ev{n:04d}" for n in expected]


async def test_time_filters_leave_out_events_without_timestamp(client: Client) -> None:
    assert "ev0006" not in await _ids(client, "since=1d")
    assert "ev0006" in await _ids(client, "")


async def test_paging_walks_every_event_once(client: Client) -> None:
    seen: list[str] = []
    query = "limit=3"
    pages = 0
    while True:
        page = await _get(client, query)
        events = page["events"]
        assert isinstance(events, list)
        seen += [e["event_id"] for e in events]
        pages += 1
        if page["next"] is None:
            break
        query = f"limit=3&after={page['next']}"
    assert seen == [f"ev{n:04d}" for n in range(10, 0, -1)]
    assert pages == 4


async def test_paging_keeps_filters(client: Client) -> None:
    first = await _get(client, "min_severity=2&limit=2")
    assert [e["event_id"] for e in first["events"]] == ["ev0010", "ev0009"]  # type: ignore[union-attr]
    rest = await _ids(client, f"min_severity=2&limit=2&after={first['next']}")
    assert rest == ["ev0008", "ev0007"]


async def test_last_full_page_has_no_next(client: Client) -> None:
    page = await _get(client, "limit=10")
    assert page["next"] is None


async def test_service_is_asked_one_more_than_the_limit(
    client: Client, services: FakeServices
) -> None:
    await _get(client, "limit=5")
    assert services.queries[-1].limit == 6


async def test_events_are_the_one_json_form(client: Client) -> None:
    page = await _get(client, "code=journal.error")
    assert page["events"] == [
        {
            "event_id": "ev0010",
            "trace_id": f"{10:032x}",
            "host": "db1",
            "instance": "IRIS",
            "source": "/usr/irissys/mgr/messages.log",
            "offset": 1000,
            "timestamp": "2026-03-01T11:55:00.000Z",
            "severity": 2,
            "severity_name": "severe",
            "code": "journal.error",
            "error_type": "journal",
            "category": "Utility.Event",
            "pid": 4010,
            "message": "message 10 for journal.error\nsecond line",
            "repeat": 1,
            "labels": {"scenario": "test"},
        }
    ]


BAD = [
    ("limit=0", "limit"),
    ("limit=1001", "limit"),
    ("limit=ten", "limit"),
    ("limit=5&limit=6", "limit"),
    ("min_severity=4", "min_severity"),
    ("min_severity=error", "min_severity"),
    ("severity=2,9", "severity"),
    ("severity=", "severity"),
    ("code=", "code"),
    ("code=lock table", "code"),
    ("code=lock.*.x", "code"),
    ("code=*", "code"),
    ("since=yesterday", "since"),
    ("since=2026-03-01T12:00:00", "since"),
    ("since=15y", "since"),
    ("since=-5m", "since"),
    ("until=2026-13-01T00:00:00Z", "until"),
    ("since=1h&until=2h", "until"),
    ("since=1h&until=1h", "until"),
    ("after=not-a-cursor", "after"),
    ("after=" + encode_cursor(5)[:-1], "after"),
    ("serverity=3", "serverity"),
]


@pytest.mark.parametrize(("query", "field"), BAD, ids=[q for q, _ in BAD])
async def test_bad_parameter_is_400_naming_the_field(
    client: Client, services: FakeServices, query: str, field: str
) -> None:
    resp = await client.get(f"/events?{query}", headers=AUTH)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["field"] == field
    assert body["error"]["reason"]
    assert services.queries == []  # nothing reached the daemon


async def test_reasons_are_worded_for_an_operator(client: Client) -> None:
    resp = await client.get("/events?since=2026-03-01T12:00:00", headers=AUTH)
    assert (await resp.json())["error"]["reason"] == "needs a zone, e.g. Z or +01:00"


async def test_relative_time_uses_the_injected_clock(
    client: Client, services: FakeServices
) -> None:
    await _get(client, "since=2h&until=15m")
    query = services.queries[-1]
    assert query.since == NOW.timestamp() - 7200
    assert query.until == NOW.timestamp() - 900


async def test_a_failing_service_is_a_json_500_without_detail(
    client: Client, services: FakeServices
) -> None:
    services.fail_with = RuntimeError("database is locked at /var/lib/irisd/secret-path")
    resp = await client.get("/status", headers=AUTH)
    assert resp.status == 500
    body = await resp.json()
    assert body == {"error": {"field": None, "reason": "internal error; see the daemon's log"}}


async def test_status_is_the_services_status_as_json(client: Client) -> None:
    resp = await client.get("/status", headers=AUTH)
    assert await resp.json() == {
        "state": "tailing",
        "since": NOW.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "tail": {"lag_bytes": 0, "offset": 1234},
    }
