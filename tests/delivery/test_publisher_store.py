"""The publisher over the real SQLite outbox: a database another process holds locked when an ack
is due does not stop delivery; the batch is sent again once the lock is gone, and not before."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from delivery_kit import Behaviour, FastClock, Receiver, make_events, serve

from irisd.core.retry import Backoff
from irisd.shell.publisher import Publisher, SinkOptions
from irisd.shell.sink_drivers import HttpClient, WebhookDriver
from irisd.shell.store import Checkpoint, Store


@contextlib.asynccontextmanager
async def publishing(
    store: Store, behaviour: Behaviour, clock: FastClock, **kw: object
) -> AsyncIterator[tuple[Receiver, asyncio.Task[None]]]:
    """A receiver answering per `behaviour`, and a publisher of `store`'s sink "hook" to it."""
    receiver = Receiver(behaviour=behaviour)
    runner = await serve(receiver)
    http = HttpClient()
    opts = SinkOptions(**{"name": "hook", "linger": 0.0, **kw})  # type: ignore[arg-type]
    driver = WebhookDriver(opts, url=receiver.url, secret="", http=http, clock=clock)
    publisher = Publisher(store, [driver], clock=clock)
    task = asyncio.create_task(publisher.run())
    try:
        yield receiver, task
    finally:
        publisher.close()
        await asyncio.wait_for(task, 10)
        await http.aclose()
        await runner.cleanup()


def locked_store(tmp_path: Path, events: int) -> tuple[Store, sqlite3.Connection]:
    """A store owing `events` to "hook", and another process's writer on the same file."""
    store = Store(tmp_path / "irisd.sqlite3", busy_timeout=0.05)
    store.register_sinks(["hook"])
    store.commit_batch(make_events(events), Checkpoint("/log", "s", 1, 2, "fp", events * 100))
    return store, sqlite3.connect(store.path, isolation_level=None)


async def until_drained(store: Store) -> None:
    async with asyncio.timeout(10):
        while store.stats(now=0).rows:  # noqa: ASYNC110 - the store has no "drained" signal
            await asyncio.sleep(0.01)


async def test_an_ack_into_a_locked_database_is_retried_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, other = locked_store(tmp_path, 3)
    lock_released = asyncio.Event()

    async def lock_then_unlock(request: web.Request, body: bytes) -> web.StreamResponse:
        if not lock_released.is_set() and not other.in_transaction:
            other.execute("BEGIN IMMEDIATE")  # the ack of this answer will find it locked
        else:  # the batch came back: the lock is gone before this answer's ack
            other.execute("COMMIT")
            lock_released.set()
        return web.json_response({"ok": True})

    backoff = Backoff(base=0.05, cap=1)
    with caplog.at_level(logging.ERROR, logger="irisd.publish"):
        async with publishing(
            store, lock_then_unlock, FastClock(), concurrency=1, backoff=backoff
        ) as (receiver, task):
            await receiver.until(lambda: len(receiver.requests) >= 2, within=10)
            await asyncio.wait_for(lock_released.wait(), 10)
            await until_drained(store)
    other.close()
    assert not task.cancelled()
    assert task.exception() is None  # the publisher never crashed
    assert receiver.requests[0].event_ids == receiver.requests[1].event_ids  # sent again, whole
    assert "database is locked; the batch will be sent again" in caplog.text
    assert [i.seq for i in store.claim("hook", limit=10, max_bytes=1 << 20)] == []
    store.close()


class GatedClock(FastClock):
    """Holds the pause after an outbox error (`backoff.base` seconds) until the test opens it."""

    def __init__(self, pause: float) -> None:
        super().__init__()
        self.pause = pause
        self.paused = asyncio.Event()
        self.gate = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        if seconds == self.pause:
            self.paused.set()
            await self.gate.wait()
        await super().sleep(seconds)


async def test_a_batch_whose_ack_failed_waits_out_the_pause_before_it_is_sent_again(
    tmp_path: Path,
) -> None:
    """With free slots, a batch released at once after a failed ack was claimed and sent again at
    once by the next slot, as often as there were slots: the pause held a slot, not the batch."""
    store, other = locked_store(tmp_path, 3)
    clock = GatedClock(pause=7.0)

    async def lock_once(request: web.Request, body: bytes) -> web.StreamResponse:
        if not clock.gate.is_set() and not other.in_transaction:
            other.execute("BEGIN IMMEDIATE")  # every ack fails until the test commits
        return web.json_response({"ok": True})

    backoff = Backoff(base=7.0, cap=60)
    async with publishing(store, lock_once, clock, concurrency=4, backoff=backoff) as (
        receiver,
        _,
    ):
        await asyncio.wait_for(clock.paused.wait(), 10)
        with pytest.raises(TimeoutError):  # nothing else is sent during the pause
            await receiver.until(lambda: len(receiver.requests) > 1, within=0.3)
        assert store.stats(now=0).sinks["hook"].in_flight == 3  # held by the paused delivery
        other.execute("COMMIT")
        clock.gate.set()
        await until_drained(store)
    other.close()
    assert [r.event_ids for r in receiver.requests] == [receiver.requests[0].event_ids] * 2
    store.close()
