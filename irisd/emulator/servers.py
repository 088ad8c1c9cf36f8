"""The instance's listeners: the superserver (each TCP connection is a user session), the web
port (`/api/monitor/metrics`, `/api/monitor/alerts`) and the private control socket bin/iris
uses (`/status`, `/merge`, `/stop`, `/inject`; ours, not IRIS's, on a unix socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from irisd.emulator.instance import Instance

INSTANCE_KEY: web.AppKey[Instance] = web.AppKey("instance")


class Superserver:
    """Accepts connections and holds them open: each one is a user session until it closes."""

    def __init__(self) -> None:
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.changed = asyncio.Event()

    @property
    def sessions(self) -> int:
        return len(self.writers)

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._session, host, port)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        self.changed.set()
        try:
            while await reader.read(4096):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.writers.discard(writer)
            self.changed.set()
            writer.close()

    async def close_sessions(self) -> int:
        """Stop User Jobs: drop every session; returns how many there were."""
        count = len(self.writers)
        for writer in list(self.writers):
            writer.close()
        return count

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.close_sessions()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)


def monitor_app(instance: Instance) -> web.Application:
    app = web.Application()
    app[INSTANCE_KEY] = instance
    app.router.add_get("/api/monitor/metrics", _metrics)
    app.router.add_get("/api/monitor/alerts", _alerts)
    return app


async def _metrics(request: web.Request) -> web.Response:
    text = request.app[INSTANCE_KEY].metrics_text()
    return web.Response(text=text, content_type="text/plain")


async def _alerts(request: web.Request) -> web.Response:
    return web.json_response(request.app[INSTANCE_KEY].writer.take_alerts())


def control_app(instance: Instance) -> web.Application:
    app = web.Application()
    app[INSTANCE_KEY] = instance
    app.router.add_get("/status", _status)
    app.router.add_post("/merge", _merge)
    app.router.add_post("/stop", _stop)
    app.router.add_post("/inject", _inject)
    return app


async def _body(request: web.Request) -> dict[str, object]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="body: not JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body: not an object")
    return data


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[INSTANCE_KEY].status())


async def _merge(request: web.Request) -> web.Response:
    data = await _body(request)
    path = data.get("file")
    if not isinstance(path, str):
        raise web.HTTPBadRequest(text="file: a path is required")
    result = await request.app[INSTANCE_KEY].merge(path)
    return web.json_response(result, status=200 if result.get("ok") else 422)


async def _stop(request: web.Request) -> web.Response:
    data = await _body(request)
    request.app[INSTANCE_KEY].request_stop(user=str(data.get("user") or "irisowner"))
    return web.json_response({"ok": True})


async def _inject(request: web.Request) -> web.Response:
    data = await _body(request)
    result = request.app[INSTANCE_KEY].inject(str(data.get("scenario", "")))
    return web.json_response(result, status=200 if result.get("ok") else 404)


async def start_site(runner: web.AppRunner, **where: object) -> None:
    await runner.setup()
    site: web.BaseSite
    if "path" in where:
        site = web.UnixSite(runner, str(where["path"]))
    else:
        site = web.TCPSite(runner, str(where["host"]), int(str(where["port"])))
    await site.start()


def dumps(data: object) -> str:
    return json.dumps(data, sort_keys=True)
