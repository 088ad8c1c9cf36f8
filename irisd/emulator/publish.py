"""`irisd generate --publish`: generated entries through the daemon's configured sinks, along
the path real events take.

Theory of operation. The generated text is cut, parsed and classified by the `EventBuilder` the
tailer uses (with the operator's rules directory, as the daemon loads it), under a source of its
own, `generate:<seed>:<digest of the text>`: the same output always gets the same event ids (a
receiver dedupes a re-run) and never collides with the real log's ids or with another run's. The
real `Publisher`, with drivers built from the configuration's `[[sinks]]`, takes the events from
an in-memory outbox. The run ends when the outbox owes nothing to any sink (every event acked,
skipped below a sink's `min_severity`, or dead-lettered) or when the timeout passes; the
publisher is then closed (attempts in flight finish) and the counts per sink are reported.
Nothing is written to the daemon's state: dead letters of this run are reported, not kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from irisd.core.events import EventBuilder
from irisd.core.lines import LineAssembler
from irisd.core.logline import LocalClock
from irisd.core.model import Event
from irisd.core.retry import Verdict
from irisd.errors import ConfigError
from irisd.shell.outbox import MemoryOutbox

if TYPE_CHECKING:
    from irisd.config import Settings
    from irisd.shell.publisher import Publisher


def source_identity(seed: int, text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"generate:{seed}:{digest}"


def build_events(text: str, settings: Settings, *, source: str) -> list[Event]:
    """The events the daemon would build from `text` had it read it from `source`."""
    from irisd.rules import build_classifier
    from irisd.shell.zone import host_zone

    builder = EventBuilder(
        host=settings.instance.host, instance=settings.instance.name, source=source,
        clock=LocalClock(host_zone(settings.instance.timezone)),
        classifier=build_classifier(settings.rules.dir),
    )  # fmt: skip
    assembler = LineAssembler()
    raws = assembler.feed(text.encode()) + assembler.flush(final=True)
    return [builder.build(raw) for raw in raws]


@dataclass(frozen=True, slots=True)
class SinkResult:
    name: str
    delivered: int  # acked by the sink
    skipped: int  # below the sink's min_severity: never sent
    dead_lettered: int  # refused for good
    unsettled: int  # still pending or in flight when the time ran out
    requests: int
    refusal: str = ""  # the first dead letter's status and body


@dataclass(frozen=True, slots=True)
class PublishReport:
    source: str
    events: int
    sinks: tuple[SinkResult, ...]
    seconds: float
    timed_out: bool

    @property
    def ok(self) -> bool:
        return not self.timed_out and all(s.dead_lettered == 0 for s in self.sinks)

    def as_dict(self) -> dict[str, object]:
        return {"source": self.source, "events": self.events, "seconds": round(self.seconds, 3),
                "timed_out": self.timed_out, "ok": self.ok,
                "sinks": {s.name: {"delivered": s.delivered, "skipped": s.skipped,
                                   "dead_lettered": s.dead_lettered, "unsettled": s.unsettled,
                                   "requests": s.requests, "refusal": s.refusal}
                          for s in self.sinks}}  # fmt: skip

    def text(self) -> list[str]:
        out = [f"publish: {self.events} events as {self.source} in {self.seconds:.2f} s"
               + (" (timed out)" if self.timed_out else "")]  # fmt: skip
        for s in self.sinks:
            line = (f"publish: sink {s.name}: delivered {s.delivered}, skipped {s.skipped}, "
                    f"dead-lettered {s.dead_lettered}, unsettled {s.unsettled}, "
                    f"{s.requests} requests")  # fmt: skip
            out.append(line + (f"; refused: {s.refusal}" if s.refusal else ""))
        return out


class SettlingOutbox(MemoryOutbox):
    """A `MemoryOutbox` that sets `settled` once no sink is owed anything, so the run awaits an
    event instead of polling."""

    def __init__(self) -> None:
        super().__init__(clock=time.time)
        self.settled = asyncio.Event()

    def ack(self, sink: str, seqs: Sequence[int]) -> None:
        super().ack(sink, seqs)
        self._check()

    def dead_letter(self, sink: str, seqs: Sequence[int], *, status: int | None, body: str) -> None:
        super().dead_letter(sink, seqs, status=status, body=body)
        self._check()

    def _check(self) -> None:
        if self.stats(now=time.time()).rows == 0:
            self.settled.set()


def load(config: Path | None) -> Settings:
    """The configuration, refused (ConfigError) when it has no enabled sink to publish to."""
    from irisd.config import load_settings

    settings = load_settings(config)
    if not any(sink.enabled for sink in settings.sinks):
        raise ConfigError("sinks", "no enabled [[sinks]] to publish to")
    return settings


def publish(text: str, settings: Settings, *, seed: int, timeout: float) -> PublishReport:
    """Build the events of `text` and deliver them; the report per sink."""
    source = source_identity(seed, text)
    events = build_events(text, settings, source=source)
    return asyncio.run(deliver(events, settings, source=source, within=timeout))


async def deliver(
    events: list[Event], settings: Settings, *, source: str, within: float
) -> PublishReport:
    from irisd.shell.publisher import Publisher, SystemClock
    from irisd.shell.sink_drivers import HttpClient, build_drivers

    started = time.monotonic()
    http = HttpClient()
    clock = SystemClock()
    drivers = build_drivers(settings.sinks, http=http, clock=clock,
                            generator_url=f"http://{settings.instance.host}/irisd")  # fmt: skip
    outbox = SettlingOutbox()
    publisher = Publisher(outbox, drivers, clock=clock)
    outbox.append(events)
    if not events:
        outbox.settled.set()
    try:
        timed_out = await _run_until_settled(publisher, outbox, within)
    finally:
        await http.aclose()
    sinks = tuple(_result(publisher, outbox, d.options.name) for d in drivers)
    return PublishReport(source, len(events), sinks, time.monotonic() - started, timed_out)


async def _run_until_settled(publisher: Publisher, outbox: SettlingOutbox, within: float) -> bool:
    """True when the time ran out first. Either way the publisher is closed gently: attempts in
    flight finish (each bounded by its sink's timeout), batches due a retry are released."""
    task = asyncio.create_task(publisher.run())
    try:
        await asyncio.wait_for(outbox.settled.wait(), within)
        timed_out = False
    except TimeoutError:
        timed_out = True
    publisher.close()
    await task
    return timed_out


def _result(publisher: Publisher, outbox: SettlingOutbox, name: str) -> SinkResult:
    c = publisher.counters
    stats = outbox.stats(now=time.time()).sinks.get(name)
    letters = outbox.dead_letters(name)
    first = letters[0] if letters else None
    refusal = f"{first.status or 'no status'}: {first.body[:200]}" if first else ""
    return SinkResult(
        name, c.value(c.acked, name), c.value(c.filtered, name), c.value(c.dead, name),
        (stats.pending + stats.in_flight) if stats else 0,
        sum(int(c.requests.value(sink=name, verdict=v)) for v in Verdict), refusal,
    )  # fmt: skip
