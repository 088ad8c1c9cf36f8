"""The publisher against real loopback receivers: every answer does what the decision table says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from delivery_kit import Behaviour, FastClock, Receiver, closed_port, make_events

from irisd.core.model import Severity
from irisd.core.retry import Backoff
from irisd.core.sinks.webhook import batch_id, verify
from irisd.shell.outbox import MemoryOutbox
from irisd.shell.publisher import Publisher, SinkOptions
from irisd.shell.sink_drivers import HttpClient, WebhookDriver

SECRET = "s3cret"


def options(**kw: object) -> SinkOptions:
    base: dict[str, object] = {
        "name": "hook",
        "batch_max_events": 10,
        "linger": 0.0,
        "concurrency": 2,
        "timeout": 2.0,
        "backoff": Backoff(base=0.05, cap=5.0),
    }
    return SinkOptions(**{**base, **kw})  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def publishing(
    outbox: MemoryOutbox,
    clock: FastClock,
    url: str,
    *,
    rand: Callable[[], float] = random.random,
    **kw: object,
) -> AsyncIterator[Publisher]:
    http = HttpClient()
    driver = WebhookDriver(options(**kw), url=url, secret=SECRET, http=http, clock=clock)
    publisher = Publisher(outbox, [driver], clock=clock, rand=rand)
    task = asyncio.create_task(publisher.run())
    try:
        yield publisher
    finally:
        publisher.close()
        await asyncio.wait_for(task, 10)
        await http.aclose()


def statuses_then_ok(*statuses: int) -> Behaviour:
    """A receiver's behaviour: answer `statuses` in turn, then 200 for good."""
    answers = iter(statuses)

    async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=next(answers, 200))

    return answer


def delivered(publisher: Publisher, what: str = "acked") -> int:
    counters = publisher.counters
    return counters.value(getattr(counters, what), "hook")


async def test_200_delivers_every_event_once_signed_and_empties_the_outbox(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    async with publishing(outbox, clock, receiver.url) as publisher:
        outbox.append(make_events(25))
        await receiver.until(lambda: len(receiver.accepted) == 25)
    assert sorted(receiver.accepted) == [f"{n:032x}" for n in range(25)]
    assert all(len(r.event_ids) <= 10 for r in receiver.requests)
    for request in receiver.requests:
        h = request.headers
        assert h["Idempotency-Key"] == batch_id(request.event_ids)
        stamp, signature = h["X-Irisd-Timestamp"], h["X-Irisd-Signature"]
        assert verify(
            SECRET, timestamp=stamp, signature=signature, body=request.body, now=clock.time()
        )
    assert outbox.stats(now=clock.time()).rows == 0
    assert delivered(publisher) == 25


async def test_batches_are_bounded_by_bytes_too(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    async with publishing(outbox, clock, receiver.url, batch_max_events=1000, batch_max_bytes=4096):
        outbox.append(make_events(40, size=900))  # ~1.2 KiB each: three fit in 4 KiB
        await receiver.until(lambda: len(receiver.accepted) == 40)
    assert max(len(r.body) for r in receiver.requests) <= 4096 + 100
    assert max(len(r.event_ids) for r in receiver.requests) == 3


async def test_linger_gathers_a_burst_into_one_batch(
    outbox: MemoryOutbox, receiver: Receiver
) -> None:
    clock = FastClock(scale=1.0)  # linger for real: 50 ms
    outbox = MemoryOutbox(clock=clock.time)
    async with publishing(outbox, clock, receiver.url, linger=0.05, batch_max_events=100):
        for n in range(20):
            outbox.append(make_events(1, start=n))
        await receiver.until(lambda: len(receiver.accepted) == 20)
    assert len(receiver.requests) == 1


async def test_500_is_retried_until_it_succeeds(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    receiver.behaviour = statuses_then_ok(500, 503, 502)
    async with publishing(outbox, clock, receiver.url, concurrency=1) as publisher:
        outbox.append(make_events(5))
        await receiver.until(lambda: len(receiver.accepted) == 5)
    assert len(receiver.requests) == 4
    assert delivered(publisher, "retried") == 15
    assert delivered(publisher, "dead") == 0
    assert outbox.stats(now=clock.time()).rows == 0


async def test_429_retry_after_is_honoured_up_to_the_cap(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    answers = iter([("7", 429), ("3600", 429), ("Thu, 01 Jan 1970 00:00:00 GMT", 429)])

    async def busy(request: web.Request, body: bytes) -> web.StreamResponse:
        after, status = next(answers, ("", 200))
        return web.Response(status=status, headers={"Retry-After": after} if after else {})

    receiver.behaviour = busy
    capped = Backoff(base=0.05, cap=8.0)
    async with publishing(outbox, clock, receiver.url, concurrency=1, backoff=capped):
        outbox.append(make_events(3))
        await receiver.until(lambda: len(receiver.accepted) == 3)
    backoffs = [s for s in clock.sleeps if s in (7.0, 8.0, 0.0)]
    assert backoffs == [7.0, 8.0, 0.0]  # as asked; capped at 8 s; a past date means now


async def test_408_and_no_retry_after_use_jittered_backoff_within_the_ceiling(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    receiver.behaviour = statuses_then_ok(408, 408, 408)
    draws = iter([0.5, 0.5, 0.5])
    async with publishing(outbox, clock, receiver.url, concurrency=1, rand=lambda: next(draws)):
        outbox.append(make_events(1))
        await receiver.until(lambda: len(receiver.accepted) == 1)
    assert [s for s in clock.sleeps if s in (0.025, 0.05, 0.1)] == [0.025, 0.05, 0.1]


async def test_413_splits_until_batches_fit_and_a_lone_oversized_event_is_dead_lettered(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    async def small_only(request: web.Request, body: bytes) -> web.StreamResponse:
        events = json.loads(body)["events"]
        too_big = len(events) > 2 or any(len(e["message"]) > 1000 for e in events)
        return web.Response(status=413 if too_big else 200)

    receiver.behaviour = small_only
    async with publishing(outbox, clock, receiver.url, concurrency=1) as publisher:
        outbox.append([*make_events(9), *make_events(1, start=9, size=5000)])
        await receiver.until(lambda: len(receiver.accepted) == 9)
        await _until(lambda: delivered(publisher, "dead") == 1)
    assert sorted(receiver.accepted) == [f"{n:032x}" for n in range(9)]
    [letter] = outbox.dead_letters("hook")
    assert letter.event.event_id == f"{9:032x}"
    assert letter.status == 413


async def test_400_dead_letters_with_status_and_first_kib_logged_at_error_and_retry_brings_it_back(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    refuse = True

    async def picky(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=400, text="bad field: " + "y" * 5000) if refuse else await ok()

    async def ok() -> web.StreamResponse:
        return web.Response(status=204)

    receiver.behaviour = picky
    with caplog.at_level(logging.ERROR, logger="irisd.publish"):
        async with publishing(outbox, clock, receiver.url, concurrency=1) as publisher:
            outbox.append(make_events(4))
            await _until(lambda: delivered(publisher, "dead") == 4)
            letters = outbox.dead_letters()
            assert {d.status for d in letters} == {400}
            assert all(len(d.body) == 1024 and d.body.startswith("bad field: ") for d in letters)
            assert outbox.stats(now=clock.time()).sinks["hook"].dead == 4
            refuse = False
            assert outbox.retry_dead_letters() == 4
            await receiver.until(lambda: len(receiver.accepted) == 4)
    [record] = [r for r in caplog.records if getattr(r, "irisd_code", "") == "publish.dead_letter"]
    assert record.levelno == logging.ERROR
    assert record.irisd_status == 400  # type: ignore[attr-defined]
    assert outbox.stats(now=clock.time()).rows == 0


@pytest.mark.parametrize("status", [401, 404, 422, 501])
async def test_other_refusals_dead_letter_without_retrying(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver, status: int
) -> None:
    async def refuse(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=status)

    receiver.behaviour = refuse
    async with publishing(outbox, clock, receiver.url) as publisher:
        outbox.append(make_events(3))
        await _until(lambda: delivered(publisher, "dead") == 3)
    assert len(receiver.requests) == 1
    assert delivered(publisher, "retried") == 0


async def test_a_garbage_http_answer_is_retried(outbox: MemoryOutbox, clock: FastClock) -> None:
    """A peer that answers with bytes that are not HTTP is a connection error: retry."""
    bodies: list[bytes] = []

    async def garbage_then_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(v for k, v in _headers(head) if k == "content-length"))
        bodies.append(await reader.readexactly(length))
        if len(bodies) == 1:
            writer.write(b"\x00\x01 this is not HTTP at all\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage_then_ok, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, publishing(outbox, clock, f"http://127.0.0.1:{port}/") as publisher:
        outbox.append(make_events(2))
        await _until(lambda: delivered(publisher) == 2)
    assert len(bodies) == 2
    assert delivered(publisher, "retried") == 2


async def test_a_garbage_body_on_200_still_acks(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    async def nonsense(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=200, body=b"\xff\xfe<html>{{{", content_type="text/html")

    receiver.behaviour = nonsense
    async with publishing(outbox, clock, receiver.url) as publisher:
        outbox.append(make_events(3))
        await _until(lambda: delivered(publisher) == 3)


async def test_a_hanging_receiver_times_out_and_is_retried(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    calls = 0

    async def hang_once(request: web.Request, body: bytes) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()  # never answers; the client's timeout ends it
        return web.Response(status=200)

    receiver.behaviour = hang_once
    async with publishing(outbox, clock, receiver.url, timeout=0.2, concurrency=1) as publisher:
        outbox.append(make_events(2))
        await receiver.until(lambda: len(receiver.accepted) == 2)
    assert calls == 2
    assert delivered(publisher, "retried") == 2


async def test_connection_refused_is_retried_until_the_receiver_appears(
    outbox: MemoryOutbox, clock: FastClock
) -> None:
    with closed_port() as port:
        async with publishing(
            outbox, clock, f"http://127.0.0.1:{port}/", concurrency=1
        ) as publisher:
            outbox.append(make_events(3))
            await _until(lambda: delivered(publisher, "retried") >= 9)
            assert delivered(publisher) == 0
            runner, site_ids = await _serve_on(port)
            await _until(lambda: delivered(publisher) == 3)
        await runner.cleanup()
    assert sorted(site_ids) == [f"{n:032x}" for n in range(3)]


async def test_events_below_min_severity_are_acked_without_sending(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    async with publishing(outbox, clock, receiver.url, min_severity=Severity.SEVERE) as publisher:
        outbox.append([*make_events(3, severity=0), *make_events(2, start=3, severity=3)])
        await receiver.until(lambda: len(receiver.accepted) == 2)
        await _until(lambda: outbox.stats(now=clock.time()).rows == 0)
    assert delivered(publisher, "filtered") == 3


async def test_concurrency_limits_batches_in_flight(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    gate = asyncio.Event()

    async def held(request: web.Request, body: bytes) -> web.StreamResponse:
        await gate.wait()
        return web.Response(status=200)

    receiver.behaviour = held
    async with publishing(outbox, clock, receiver.url, concurrency=3, batch_max_events=2):
        outbox.append(make_events(20))
        await receiver.until(lambda: receiver.in_flight == 3)
        stats = outbox.stats(now=clock.time()).sinks["hook"]
        assert (stats.in_flight, stats.pending) == (6, 14)  # claimed only what is being sent
        gate.set()
        await receiver.until(lambda: len(receiver.accepted) == 20)
    assert receiver.max_in_flight == 3


async def test_close_during_an_outage_leaves_the_batch_pending_not_half_marked(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    async def down(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=503)

    receiver.behaviour = down
    async with publishing(
        outbox, clock, receiver.url, backoff=Backoff(base=60, cap=60)
    ) as publisher:
        outbox.append(make_events(5))
        await receiver.until(lambda: len(receiver.requests) >= 1)
        publisher.close()  # the drain: the backoff sleep is cut short, the batch released
    stats = outbox.stats(now=clock.time())
    assert (stats.sinks["hook"].pending, stats.sinks["hook"].in_flight, stats.rows) == (5, 0, 5)


async def test_cancellation_mid_request_releases_the_batch(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    async def hang(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    receiver.behaviour = hang
    http = HttpClient()
    driver = WebhookDriver(
        options(timeout=30), url=receiver.url, secret=None, http=http, clock=clock
    )
    publisher = Publisher(outbox, [driver], clock=clock)
    task = asyncio.create_task(publisher.run())
    outbox.append(make_events(15))
    await receiver.until(lambda: receiver.in_flight == 2)
    assert outbox.stats(now=clock.time()).sinks["hook"].in_flight == 15
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await http.aclose()
    stats = outbox.stats(now=clock.time()).sinks["hook"]
    assert (stats.pending, stats.in_flight) == (15, 0)


async def test_a_long_outage_holds_only_the_in_flight_batches_then_catches_up(
    outbox: MemoryOutbox, clock: FastClock, receiver: Receiver
) -> None:
    """Memory stays flat: during an outage the publisher claims no more than concurrency x batch."""
    up = False

    async def outage(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=200 if up else 503)

    receiver.behaviour = outage
    async with publishing(outbox, clock, receiver.url, concurrency=2, batch_max_events=50):
        for start in range(0, 5000, 500):
            outbox.append(make_events(500, start=start))
            seen = len(receiver.requests)
            await receiver.until(lambda: len(receiver.requests) >= seen + 5)  # noqa: B023
            assert outbox.stats(now=clock.time()).sinks["hook"].in_flight <= 100
        assert len(receiver.requests) >= 50  # retried through the outage, nothing given up
        tried = {i for r in receiver.requests for i in r.event_ids}
        assert len(tried) == 100  # the same two batches all along: no claim ran ahead
        up = True
        await receiver.until(lambda: len(set(receiver.accepted)) == 5000, within=30)
    assert outbox.stats(now=clock.time()).rows == 0


async def _until(predicate: object, within: float = 10.0) -> None:
    """For state outside a receiver (counters): poll the loop, not the wall clock."""
    assert callable(predicate)
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - counters have no event to await
            await asyncio.sleep(0.005)


async def _serve_on(port: int) -> tuple[web.AppRunner, list[str]]:
    ids: list[str] = []

    async def take(request: web.Request) -> web.Response:
        ids.extend(e["event_id"] for e in (await request.json())["events"])
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/", take)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, ids


def _headers(head: bytes) -> list[tuple[str, str]]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [(k.strip().lower(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines if ln)]
