"""The publisher over the real SQLite outbox: a database another process holds locked when an ack
is due does not stop delivery; the batch is sent again once the lock is gone."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from aiohttp import web
from delivery_kit import FastClock, Receiver, make_events, serve

from irisd.core.retry import Backoff
from irisd.shell.publisher import Publisher, SinkOptions
from irisd.shell.sink_drivers import HttpClient, WebhookDriver
from irisd.shell.store import Checkpoint, Store


async def test_an_ack_into_a_locked_database_is_retried_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path / "irisd.sqlite3", busy_timeout=0.05)
    store.register_sinks(["hook"])
    store.commit_batch(make_events(3), Checkpoint("/log", "s", 1, 2, "fp", 300))
    other = sqlite3.connect(store.path, isolation_level=None)  # another process's writer
    lock_released = asyncio.Event()

    async def lock_then_unlock(request: web.Request, body: bytes) -> web.StreamResponse:
        if len(receiver.requests) == 1:  # the ack of this answer will find the database locked
            other.execute("BEGIN IMMEDIATE")
        else:  # the batch came back: the lock is gone before this answer's ack
            other.execute("COMMIT")
            lock_released.set()
        return web.json_response({"ok": True})

    receiver = Receiver(behaviour=lock_then_unlock)
    runner = await serve(receiver)
    http, clock = HttpClient(), FastClock()
    opts = SinkOptions(name="hook", linger=0.0, concurrency=1, backoff=Backoff(base=0.05, cap=1))
    driver = WebhookDriver(opts, url=receiver.url, secret="", http=http, clock=clock)
    publisher = Publisher(store, [driver], clock=clock)
    task = asyncio.create_task(publisher.run())
    try:
        with caplog.at_level(logging.ERROR, logger="irisd.publish"):
            await receiver.until(lambda: len(receiver.requests) >= 2, within=10)
            await asyncio.wait_for(lock_released.wait(), 10)
            async with asyncio.timeout(10):
                while store.stats(now=0).rows:  # noqa: ASYNC110 - the store has no "drained" signal
                    await asyncio.sleep(0.01)
    finally:
        publisher.close()
        await asyncio.wait_for(task, 10)
        await http.aclose()
        await runner.cleanup()
        other.close()
    assert not task.cancelled()
    assert task.exception() is None  # the publisher never crashed
    assert receiver.requests[0].event_ids == receiver.requests[1].event_ids  # sent again, whole
    assert "database is locked; the batch will be sent again" in caplog.text
    assert [i.seq for i in store.claim("hook", limit=10, max_bytes=1 << 20)] == []
    store.close()
