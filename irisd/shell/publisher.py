"""Takes events out of the outbox and delivers them to every configured sink, at least once.

Theory of operation. One lane per sink, each a loop (`run_sink`) that:
1. takes a concurrency slot (at most `concurrency` batches of the sink in flight);
2. waits for work: the outbox's listener sets the lane's wake-up, then the lane lingers
   `linger` so a burst fills one batch; after a non-empty claim it claims again at once, so a
   backlog drains in full batches with no linger at all;
3. claims a batch (count- and byte-bounded) and hands it to a delivery task.

A delivery acks the events below the sink's `min_severity` at once (they were never meant for it),
then sends the rest and carries out `irisd.core.retry.decide`'s verdict: ack; retry forever with
full-jitter backoff (Retry-After honoured up to the cap) while holding the batch; split on 413 and
settle each half; dead-letter with the status and the first KiB of the answer.

Invariants. An outbox call never straddles an await, so a row is acked, dead-lettered or pending
and never half-marked. On cancellation a delivery releases its batch (rows already acked stay
acked; release ignores them) before the cancellation goes on. `close()` is the gentle stop for a
drain: lanes stop claiming, batches in flight finish their current attempt, and a batch that
would retry is released instead. Time (wall clock, monotonic clock, sleep) comes from a `Clock`
so tests shorten backoff without sleeping for real.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from irisd.core.metrics import Family, MetricsRegistry
from irisd.core.model import Severity
from irisd.core.retry import Backoff, Verdict, decide, parse_retry_after
from irisd.errors import StateError
from irisd.shell.outbox import Outbox, OutboxItem

log = logging.getLogger("irisd.publish")

BODY_KEEP = 1024  # bytes of a refusal's body kept with the dead letter
IDLE_POLL = 1.0  # seconds: look at the outbox even unprompted (another process may retry)


class Clock(Protocol):
    def time(self) -> float: ...  # wall clock, Unix seconds: headers, Retry-After dates
    def monotonic(self) -> float: ...  # latencies
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a sink said: an HTTP status, or None for no answer at all (`error` says why)."""

    status: int | None
    body: str = ""
    retry_after: str | None = None
    error: str = ""


Send = Callable[[], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class SinkOptions:
    name: str
    min_severity: Severity = Severity.INFO
    batch_max_events: int = 500
    batch_max_bytes: int = 1 << 20
    linger: float = 0.005
    concurrency: int = 10
    timeout: float = 10.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=300.0))


class Driver(Protocol):
    """One sink's payload and transport; the publisher owns the batching and the verdicts."""

    @property
    def options(self) -> SinkOptions: ...

    def prepare(self, items: Sequence[OutboxItem]) -> Send | None:
        """Build the payload once per batch; the returned coroutine function makes one attempt.
        None means there is nothing to send for these events: they count as delivered."""
        ...

    async def tick(self) -> None:
        """Periodic housekeeping (the Alertmanager sink posts resolutions here)."""
        ...


class Counters:
    """The publisher's families in the daemon's registry (or a private one)."""

    def __init__(self, registry: MetricsRegistry) -> None:
        by = ("sink",)
        self.sent = registry.counter("irisd_publish_sent_total", "Events put on the wire.", by)
        self.acked = registry.counter("irisd_publish_acked_total", "Events delivered.", by)
        self.filtered = registry.counter(
            "irisd_publish_filtered_total", "Events below the sink's min_severity, skipped.", by
        )
        self.retried = registry.counter(
            "irisd_publish_retried_total", "Events in attempts that will be retried.", by
        )
        self.dead = registry.counter(
            "irisd_publish_dead_lettered_total", "Events moved to the dead-letter table.", by
        )
        self.requests = registry.counter(
            "irisd_publish_requests_total", "Delivery attempts by verdict.", ("sink", "verdict")
        )
        self.latency_sum = registry.counter(
            "irisd_publish_latency_seconds_sum", "Seconds spent in delivery attempts.", by
        )
        self.latency_count = registry.counter(
            "irisd_publish_latency_seconds_count", "Delivery attempts timed.", by
        )

    def value(self, family: Family, sink: str) -> int:
        return int(family.value(sink=sink))


class Publisher:
    def __init__(
        self,
        outbox: Outbox,
        drivers: Sequence[Driver],
        *,
        clock: Clock,
        metrics: MetricsRegistry | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._outbox = outbox
        self._drivers = list(drivers)
        self._clock = clock
        self._random = rand
        self.counters = Counters(metrics or MetricsRegistry())
        self._closing = asyncio.Event()
        self._wakes = {d.options.name: asyncio.Event() for d in self._drivers}
        self._backlog: dict[str, bool] = {}
        self._wake_all()  # rows may be pending from before the start: look once at once
        outbox.register_sinks([d.options.name for d in self._drivers])
        outbox.add_listener(self._wake_all)

    async def run(self) -> None:
        """Every lane until `close()` (then in-flight batches finish) or cancellation."""
        async with asyncio.TaskGroup() as group:
            for driver in self._drivers:
                group.create_task(self.run_sink(driver), name=f"publish-{driver.options.name}")

    @property
    def draining(self) -> bool:
        """Whether some sink is working through a backlog (its last claim was a full batch)."""
        return any(self._backlog.values())

    def acked_total(self) -> int:
        """Events delivered so far, every sink together."""
        return int(sum(sample.value for sample in self.counters.acked.samples()))

    def close(self) -> None:
        self._closing.set()
        self._wake_all()

    async def run_sink(self, driver: Driver) -> None:
        opts = driver.options
        slots = asyncio.Semaphore(opts.concurrency)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._run_ticks(driver))
            while not self._closing.is_set():
                await slots.acquire()
                items = await self._next_batch(opts)
                if not items:
                    slots.release()
                    break
                group.create_task(self._deliver(driver, items, slots))

    async def _next_batch(self, opts: SinkOptions) -> list[OutboxItem]:
        """The next batch to send; [] once closing. A full batch means a backlog: claim again at
        once. Otherwise sleep until the outbox says there is more (or IDLE_POLL passes), then
        linger so the batch fills. The wake-up is cleared before claiming, so an append that
        lands during a claim is never missed."""
        wake = self._wakes[opts.name]
        while not self._closing.is_set():
            if not self._backlog.get(opts.name, False):
                await self._wait(wake, IDLE_POLL)
                wake.clear()
                if opts.linger > 0 and not self._closing.is_set():
                    await self._clock.sleep(opts.linger)
            items = self._outbox.claim(
                opts.name, limit=opts.batch_max_events, max_bytes=opts.batch_max_bytes
            )
            self._backlog[opts.name] = _is_full(items, opts)
            if items:
                return items
        return []

    async def _deliver(
        self, driver: Driver, items: list[OutboxItem], slots: asyncio.Semaphore
    ) -> None:
        name = driver.options.name
        try:
            floor = driver.options.min_severity
            wanted = [i for i in items if i.severity >= floor]
            if len(wanted) < len(items):
                skipped = [i.seq for i in items if i.severity < floor]
                self._outbox.ack(name, skipped)
                self.counters.filtered.labels(sink=name).inc(len(skipped))
            if wanted:
                await self._settle(driver, wanted)
        except StateError as exc:
            # The outbox could not record an ack or a dead letter (the database is locked by
            # another process, or the disk is full): the batch is sent again later, which a
            # receiver dedupes by event_id. Not a reason to stop the daemon. It stays claimed
            # through the pause: released at once, another slot would send it again at once.
            log.error(  # noqa: TRY400 - a known condition, said in one line; no traceback
                "sink %s: %s; the batch will be sent again",
                name,
                exc,
                extra={"irisd_code": "publish.outbox_error", "irisd_sink": name},
            )
            try:
                await self._wait(self._closing, driver.options.backoff.base)
            finally:
                self._outbox.release(name, [i.seq for i in items])
        except BaseException:
            self._outbox.release(name, [i.seq for i in items])
            raise
        finally:
            slots.release()

    async def _settle(self, driver: Driver, batch: list[OutboxItem]) -> None:
        send = driver.prepare(batch)
        attempt = 0
        while True:
            answer = await self._attempt(driver, send, batch)
            verdict = decide(answer.status, batch_size=len(batch))
            self.counters.requests.labels(sink=driver.options.name, verdict=verdict).inc()
            if verdict is Verdict.ACK:
                return self._ack(driver, batch)
            if verdict is Verdict.SPLIT:
                return await self._split(driver, batch)
            if verdict is Verdict.DEAD:
                return self._dead_letter(driver, batch, answer)
            if not await self._back_off(driver, batch, answer, attempt):
                return None
            attempt += 1

    async def _attempt(self, driver: Driver, send: Send | None, batch: list[OutboxItem]) -> Answer:
        if send is None:
            return Answer(204)
        name = driver.options.name
        self.counters.sent.labels(sink=name).inc(len(batch))
        started = self._clock.monotonic()
        answer = await send()
        self.counters.latency_sum.labels(sink=name).inc(self._clock.monotonic() - started)
        self.counters.latency_count.labels(sink=name).inc()
        return answer

    def _ack(self, driver: Driver, batch: list[OutboxItem]) -> None:
        self._outbox.ack(driver.options.name, [i.seq for i in batch])
        self.counters.acked.labels(sink=driver.options.name).inc(len(batch))

    async def _split(self, driver: Driver, batch: list[OutboxItem]) -> None:
        half = len(batch) // 2
        log.warning(
            "sink %s: batch of %d events too large (413), splitting",
            driver.options.name,
            len(batch),
            extra={"irisd_code": "publish.split", "irisd_sink": driver.options.name},
        )
        await self._settle(driver, batch[:half])
        await self._settle(driver, batch[half:])

    def _dead_letter(self, driver: Driver, batch: list[OutboxItem], answer: Answer) -> None:
        name = driver.options.name
        body = answer.body[:BODY_KEEP]
        self._outbox.dead_letter(name, [i.seq for i in batch], status=answer.status, body=body)
        self.counters.dead.labels(sink=name).inc(len(batch))
        log.error(
            "sink %s refused %d events with status %s; dead-lettered (irisd deadletter list): %s",
            name,
            len(batch),
            answer.status,
            body[:200] or answer.error,
            extra={
                "irisd_code": "publish.dead_letter",
                "irisd_sink": name,
                "irisd_status": answer.status,
                "irisd_event_id": batch[0].event_id,
                "irisd_trace_id": batch[0].event.trace_id,
                "irisd_events": len(batch),
            },
        )

    async def _back_off(
        self, driver: Driver, batch: list[OutboxItem], answer: Answer, attempt: int
    ) -> bool:
        """Wait before the next attempt; False when closing (the batch went back to pending)."""
        name = driver.options.name
        self.counters.retried.labels(sink=name).inc(len(batch))
        if self._closing.is_set():
            self._outbox.release(name, [i.seq for i in batch])
            return False
        now = datetime.fromtimestamp(self._clock.time(), UTC)
        hint = parse_retry_after(answer.retry_after, now=now)
        delay = driver.options.backoff.delay(attempt, self._random, hint)
        self._log_retry(name, answer, attempt, delay)
        await self._wait(self._closing, delay)
        if self._closing.is_set():
            self._outbox.release(name, [i.seq for i in batch])
            return False
        return True

    def _log_retry(self, name: str, answer: Answer, attempt: int, delay: float) -> None:
        # The first failure and then every 10th: an outage must not flood the journal.
        if attempt % 10 == 0:
            log.warning(
                "sink %s: %s; retry %d in %.2fs",
                name,
                f"HTTP {answer.status}" if answer.status is not None else answer.error,
                attempt + 1,
                delay,
                extra={"irisd_code": "publish.retry", "irisd_sink": name},
            )

    async def _run_ticks(self, driver: Driver) -> None:
        while not self._closing.is_set():
            await self._wait(self._closing, IDLE_POLL * 10)
            await driver.tick()

    async def _wait(self, event: asyncio.Event, seconds: float) -> None:
        """Until `event` is set or `seconds` pass on the injected clock."""
        if event.is_set():
            return
        waiter = asyncio.ensure_future(event.wait())
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    def _wake_all(self) -> None:
        for wake in self._wakes.values():
            wake.set()


def _is_full(items: list[OutboxItem], opts: SinkOptions) -> bool:
    # Past half the byte budget the next event may well not have fitted: call it full.
    return (
        len(items) >= opts.batch_max_events or sum(i.size for i in items) * 2 > opts.batch_max_bytes
    )
