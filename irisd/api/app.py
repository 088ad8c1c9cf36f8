"""`make_app(services, token=...)`: the aiohttp application of the local control API.

Handlers are thin: parse, ask `Services`, render. Two middlewares wrap them. The outer one
checks the bearer token before anything else runs, so without the token every path (known or
not, any method) gets the same 401 and learns nothing; only `/health` is public. The inner one
turns aiohttp's 404/405 and any unexpected exception into the JSON error shape
`{"error": {"field": ..., "reason": ...}}`. Every response says `Cache-Control: no-store` and
names its server `irisd`, without versions.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from functools import partial
from typing import Final

from aiohttp import web

from irisd.api.openapi import build_openapi
from irisd.api.params import ParamError, encode_cursor, parse_event_params
from irisd.api.services import EventRow, Services
from irisd.core.eventjson import event_to_dict
from irisd.core.metrics import CONTENT_TYPE as METRICS_TYPE

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SERVICES: Final = web.AppKey("services", Services)
TOKEN: Final = web.AppKey("token", str)
CLOCK: Final[web.AppKey[Clock]] = web.AppKey("clock")
OPENAPI: Final = web.AppKey("openapi", bytes)

PUBLIC_PATHS: Final = frozenset({"/health"})
log = logging.getLogger("irisd.api")


def utc_now() -> datetime:
    return datetime.now(UTC)


def make_app(services: Services, *, token: str, clock: Clock = utc_now) -> web.Application:
    if not token:
        raise ValueError("the API needs a non-empty token")
    app = web.Application(middlewares=[auth_middleware, error_middleware])
    app[SERVICES] = services
    app[TOKEN] = token
    app[CLOCK] = clock
    app[OPENAPI] = json.dumps(build_openapi(), separators=(",", ":")).encode()
    app.router.add_get("/health", get_health, allow_head=False)
    app.router.add_get("/status", get_status, allow_head=False)
    app.router.add_get("/metrics", get_metrics, allow_head=False)
    app.router.add_get("/events", get_events, allow_head=False)
    app.router.add_get("/openapi.json", get_openapi, allow_head=False)
    app.on_response_prepare.append(_common_headers)
    return app


async def get_health(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "time": request.app[CLOCK]()})


async def get_status(request: web.Request) -> web.Response:
    return json_response(dict(await request.app[SERVICES].status()))


async def get_metrics(request: web.Request) -> web.Response:
    text = request.app[SERVICES].metrics().render()
    return web.Response(body=text.encode(), headers={"Content-Type": METRICS_TYPE})


async def get_events(request: web.Request) -> web.Response:
    params = parse_event_params(list(request.query.items()), now=request.app[CLOCK]())
    # One row more than shown tells whether a next page exists without a second query.
    rows = await request.app[SERVICES].events(params.to_query(extra=1))
    return json_response(page_body(rows, params.limit))


def page_body(rows: Sequence[EventRow], limit: int) -> dict[str, object]:
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return {
        "events": [event_to_dict(row.event) for row in shown],
        "next": encode_cursor(shown[-1].seq) if more else None,
    }


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS or _token_ok(request):
        return await handler(request)
    # %r: the path is the client's text, so newlines in it must not forge log lines.
    log.warning("api: refused %s %.200r: missing or wrong token", request.method, request.path)
    response = error_response(401, "authorization", "missing or wrong bearer token")
    response.headers["WWW-Authenticate"] = 'Bearer realm="irisd"'
    return response


def _token_ok(request: web.Request) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = request.app[TOKEN].encode()
    # compare_digest on bytes: constant time in the length of the expected token.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ParamError as exc:
        return error_response(400, exc.field, exc.reason)
    except web.HTTPMethodNotAllowed as exc:
        response = error_response(405, None, "method not allowed")
        response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return response
    except web.HTTPException as exc:
        return error_response(exc.status, None, exc.reason.lower())
    except Exception:
        log.exception("api: %s %s failed", request.method, request.path)
        return error_response(500, None, "internal error; see the daemon's log")


async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Set before aiohttp's default so the header names no software versions.
    response.headers["Server"] = "irisd"


def error_response(status_code: int, field: str | None, reason: str) -> web.Response:
    return json_response({"error": {"field": field, "reason": reason}}, status=status_code)


def json_response(data: object, *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"), default=_default)
