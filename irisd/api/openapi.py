"""The OpenAPI 3.1 document of the API, generated from the pydantic models it serves.

Schemas come from `irisd.api.models` and the query parameters of `GET /events` from
`EventParams`, so changing a model changes the document. OpenAPI 3.1 speaks JSON Schema 2020-12,
which is what pydantic writes; only the `$ref` prefix needs to point into `components`.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from irisd import __version__
from irisd.api.models import ErrorBody, EventPage, Health
from irisd.api.params import LIST_FIELDS, EventParams
from irisd.core.metrics import CONTENT_TYPE as METRICS_TYPE

JsonDict = dict[str, object]
REF: Final = "#/components/schemas/{model}"


def build_openapi() -> JsonDict:
    _, defs = models_json_schema(
        [(m, "serialization") for m in (Health, ErrorBody, EventPage)], ref_template=REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "irisd local control API",
            "version": __version__,
            "description": "Read what irisd sees on this host. Every route but /health wants "
            "`Authorization: Bearer <token>` (the token file the daemon creates at first start).",
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _paths() -> JsonDict:
    return {
        "/health": {"get": _health()},
        "/status": {"get": _status()},
        "/metrics": {"get": _metrics()},
        "/events": {"get": _events()},
        "/openapi.json": {"get": _openapi()},
    }


def _health() -> JsonDict:
    return {
        "operationId": "health",
        "summary": "Liveness; needs no token and tells nothing about the host.",
        "security": [],
        "responses": {"200": _json_response("The API answers.", Health)},
    }


def _status() -> JsonDict:
    free_form = {"type": "object", "additionalProperties": True}
    return _guarded(
        "status",
        "What the daemon is doing: pipeline position, lag, counts, last errors.",
        {"200": {"description": "Status", "content": {"application/json": {"schema": free_form}}}},
    )


def _metrics() -> JsonDict:
    text = {METRICS_TYPE: {"schema": {"type": "string"}}}
    return _guarded(
        "metrics",
        "Prometheus text exposition format 0.0.4.",
        {"200": {"description": "Metrics", "content": text}},
    )


def _events() -> JsonDict:
    op = _guarded(
        "events",
        "Recent events, newest first, filtered; page with `after`.",
        {
            "200": _json_response("One page of events.", EventPage),
            "400": _json_response("A parameter is invalid; `field` names it.", ErrorBody),
        },
    )
    op["parameters"] = event_parameters()
    return op


def _openapi() -> JsonDict:
    doc = {"type": "object", "description": "This document."}
    return _guarded(
        "openapi",
        "This OpenAPI 3.1 document.",
        {"200": {"description": "OpenAPI", "content": {"application/json": {"schema": doc}}}},
    )


def event_parameters() -> list[JsonDict]:
    properties = EventParams.model_json_schema(ref_template=REF)["properties"]
    return [_parameter(name, dict(schema)) for name, schema in properties.items()]


def _parameter(name: str, schema: JsonDict) -> JsonDict:
    schema.pop("title", None)
    schema = _without_null(schema)
    param: JsonDict = {
        "name": name,
        "in": "query",
        "required": False,
        "description": schema.pop("description", ""),
        "schema": schema,
    }
    if name in LIST_FIELDS:
        param.update(style="form", explode=True)
    return param


def _without_null(schema: JsonDict) -> JsonDict:
    """A query parameter is absent, never null: `X | None` in the model is just `X` here."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    rest = [o for o in options if o != {"type": "null"}]
    if len(rest) != 1 or not isinstance(rest[0], dict):
        return schema
    out = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**rest[0], **out}


def _guarded(op_id: str, summary: str, responses: JsonDict) -> JsonDict:
    unauthorized = _json_response("Missing or wrong bearer token.", ErrorBody)
    unauthorized["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return {
        "operationId": op_id,
        "summary": summary,
        "responses": {**responses, "401": unauthorized},
    }


def _json_response(description: str, model: type[BaseModel]) -> JsonDict:
    ref = REF.format(model=model.__name__)
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}
