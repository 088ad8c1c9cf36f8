"""/openapi.json is valid OpenAPI 3.1, describes every route and parameter, and what the API
really sends validates against the schemas it names."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from api_fakes import AUTH
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from irisd.api.params import EventParams

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def doc(client: Client) -> dict[str, Any]:
    resp = await client.get("/openapi.json", headers=AUTH)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    return body


def _validate(doc: dict[str, Any], schema: dict[str, Any], instance: object) -> None:
    # Local $refs point into the document, so validate against a root that carries components.
    root = {**schema, "components": doc["components"]}
    Draft202012Validator(root).validate(instance)


def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # raises on any structural error


def test_every_route_of_the_app_is_described(doc: dict[str, Any], app: web.Application) -> None:
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None
    }
    described = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert routes == described


def test_every_event_parameter_is_described(doc: dict[str, Any]) -> None:
    params = doc["paths"]["/events"]["get"]["parameters"]
    assert [p["name"] for p in params] == list(EventParams.model_fields)
    assert all(p["in"] == "query" and p["description"] for p in params)
    by_name = {p["name"]: p for p in params}
    assert by_name["limit"]["schema"]["maximum"] == 1000
    assert by_name["code"]["explode"] is True


def test_health_alone_is_public(doc: dict[str, Any]) -> None:
    assert doc["security"] == [{"bearer": []}]
    for path, ops in doc["paths"].items():
        op = ops["get"]
        if path == "/health":
            assert op["security"] == []
            assert "401" not in op["responses"]
        else:
            assert "security" not in op
            assert "401" in op["responses"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/health", "200"),
        ("/events", "200"),
        ("/events?limit=2", "200"),
        ("/events?limit=0", "400"),
        ("/status", "200"),
    ],
)
async def test_real_responses_match_their_schemas(
    client: Client, doc: dict[str, Any], path: str, status: str
) -> None:
    resp = await client.get(path, headers=AUTH)
    assert str(resp.status) == status
    route = path.partition("?")[0]
    schema = doc["paths"][route]["get"]["responses"][status]["content"]["application/json"]
    _validate(doc, schema["schema"], await resp.json())


async def test_401_matches_its_schema(client: Client, doc: dict[str, Any]) -> None:
    resp = await client.get("/events")
    schema = doc["paths"]["/events"]["get"]["responses"]["401"]["content"]["application/json"]
    _validate(doc, schema["schema"], await resp.json())


async def test_event_schema_rejects_what_is_not_an_event(doc: dict[str, Any]) -> None:
    schema = {"$ref": "#/components/schemas/EventOut"}
    with pytest.raises(Exception, match="severity"):
        _validate(doc, schema, {"severity": 9})
