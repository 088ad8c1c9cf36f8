"""Helpers of the delivery tests: a real loopback receiver, a fast clock, event factories."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import web

from irisd.core.model import Event, Severity, trace_id

Behaviour = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


def make_event(n: int, *, severity: int = 2, code: str = "lock.table_full", size: int = 0) -> Event:
    return Event(
        event_id=f"{n:032x}",
        trace_id=trace_id(f"{n:032x}"),  # as the daemon derives it
        host="db1",
        instance="IRIS",
        source="/iris/mgr/messages.log",
        offset=n * 100,
        timestamp=1_800_000_000.0 + n,
        severity=Severity(severity),
        code=code,
        error_type="resource",
        category="Utility.Event",
        pid=4242,
        message=f"entry {n}" + "x" * size,
    )


def make_events(count: int, start: int = 0, **kw: object) -> list[Event]:
    return [make_event(n, **kw) for n in range(start, start + count)]  # type: ignore[arg-type]


class FastClock:
    """Real wall and monotonic clocks; sleeps recorded and shrunk by `scale` (backoff in ms)."""

    def __init__(self, scale: float = 0.001) -> None:
        self.scale = scale
        self.sleeps: list[float] = []

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(seconds * self.scale)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    event_ids: list[str]


@dataclass
class Receiver:
    """An aiohttp server on 127.0.0.1 that records what arrives and answers per `behaviour`.

    `behaviour` returns the response; `accepted` lists event ids of requests answered 2xx.
    Tests await `until(...)` instead of sleeping.
    """

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    behaviour: Behaviour | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        ids = _event_ids(body)
        self.requests.append(Received(dict(request.headers), body, ids))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await self._notify()
        try:
            response = await (self.behaviour or ok)(request, body)
        finally:
            self.in_flight -= 1
        if 200 <= response.status < 300:
            self.accepted.extend(ids)
        await self._notify()
        return response

    async def until(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


def _event_ids(body: bytes) -> list[str]:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    if isinstance(data, dict):
        return [e["event_id"] for e in data.get("events", [])]
    return [a["annotations"]["event_id"] for a in data]  # Alertmanager's list of alerts


async def ok(request: web.Request, body: bytes) -> web.StreamResponse:
    return web.json_response({"ok": True})


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


async def serve(rec: Receiver) -> web.AppRunner:
    """Start `rec` on a free loopback port; the caller cleans the runner up."""
    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/hook"
    return runner


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A `Receiver` serving on a free loopback port for the duration of the block."""
    rec = Receiver()
    runner = await serve(rec)
    try:
        yield rec
    finally:
        await runner.cleanup()
