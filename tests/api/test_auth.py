"""Only /health answers without the token; everything else, known or not, is the same 401."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from api_fakes import AUTH, TOKEN

Client = TestClient  # type: ignore[type-arg]

GUARDED = ["/status", "/metrics", "/events", "/events?limit=0", "/openapi.json", "/nope", "/"]
BAD_HEADERS = {
    "missing": {},
    "wrong-token": {"Authorization": "Bearer not-the-token"},
    "token-prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "token-plus-one": {"Authorization": f"Bearer {TOKEN}x"},
    "basic-scheme": {"Authorization": f"Basic {TOKEN}"},
    "no-scheme": {"Authorization": TOKEN},
    "empty": {"Authorization": "Bearer "},
}


@pytest.mark.parametrize("headers", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
@pytest.mark.parametrize("path", GUARDED)
async def test_wrong_or_missing_token_is_401_and_nothing_more(
    client: Client, path: str, headers: dict[str, str]
) -> None:
    resp = await client.get(path, headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="irisd"'
    assert await resp.json() == {
        "error": {"field": "authorization", "reason": "missing or wrong bearer token"}
    }


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_other_methods_without_token_are_401_not_405(client: Client, method: str) -> None:
    resp = await client.request(method, "/status")
    assert resp.status == 401


async def test_token_in_the_query_string_is_not_accepted(client: Client) -> None:
    resp = await client.get(f"/status?token={TOKEN}")
    assert resp.status == 401


async def test_health_needs_no_token_and_tells_only_status_and_time(client: Client) -> None:
    resp = await client.get("/health")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "time": "2026-03-01T12:00:00.000Z"}


async def test_the_right_token_opens_every_route(client: Client) -> None:
    for path in ["/status", "/metrics", "/events", "/openapi.json"]:
        resp = await client.get(path, headers=AUTH)
        assert resp.status == 200, path


async def test_scheme_is_case_insensitive(client: Client) -> None:
    resp = await client.get("/status", headers={"Authorization": f"bearer {TOKEN}"})
    assert resp.status == 200


async def test_unknown_path_with_token_is_json_404(client: Client) -> None:
    resp = await client.get("/nope", headers=AUTH)
    assert resp.status == 404
    assert await resp.json() == {"error": {"field": None, "reason": "not found"}}


async def test_wrong_method_with_token_is_json_405_with_allow(client: Client) -> None:
    resp = await client.post("/events", headers=AUTH)
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET"
    assert await resp.json() == {"error": {"field": None, "reason": "method not allowed"}}


@pytest.mark.parametrize("path", ["/health", "/status", "/nope"])
async def test_responses_name_no_software_version_and_are_not_cached(
    client: Client, path: str
) -> None:
    resp = await client.get(path)
    assert resp.headers["Server"] == "irisd"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
