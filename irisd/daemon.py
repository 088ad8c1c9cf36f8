"""The daemon: the one place objects are built, one TaskGroup, signals and sd_notify.

Start-up: logging → rules → state (a damaged database is set aside and salvaged first, see
`irisd.shell.recovery`; then SQLite, token) → API bound → READY=1. Then, in one task group: the
tailer, the publisher (when sinks are configured), the watchdog and status loop, and the signal
waiter. SIGTERM/SIGINT: STOPPING=1, the tailer stops between batches (every batch is committed
whole), the publisher finishes its in-flight batches within `drain_timeout` or leaves them in the
outbox, then the API closes. SIGHUP: RELOADING=1, the configuration is read again and what can
change live (log level and format, rules, status interval) changes; then READY=1. A reload that
fails validation keeps the running configuration and logs why.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import signal
import socket
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from irisd import __version__
from irisd._hot import hot_path
from irisd.api.app import make_app
from irisd.api.server import ApiServer, start_server
from irisd.api.services import EventQuery, EventRow
from irisd.config import Settings, load_settings, parse_listen
from irisd.core.classify import Classifier
from irisd.core.events import EventBuilder
from irisd.core.lines import Limits
from irisd.core.logline import LocalClock
from irisd.core.metrics import Family, MetricsRegistry
from irisd.core.redact import Redactor
from irisd.errors import IrisdError, StateError
from irisd.rules import build_classifier
from irisd.shell import gctune, malloc
from irisd.shell.event_journal import MARK_FILE, EventJournal, start_mark
from irisd.shell.journal import setup_logging
from irisd.shell.logfile import watch
from irisd.shell.recovery import Recovery, recover_state
from irisd.shell.store import Checkpoint, Store
from irisd.shell.systemd import Notifier
from irisd.shell.tailer import Tailer, TailPolicy
from irisd.shell.token import load_or_create_token
from irisd.shell.zone import host_zone

if TYPE_CHECKING:
    from irisd.shell.publisher import Publisher
    from irisd.shell.sink_drivers import HttpClient

log = logging.getLogger("irisd")


def tail_policy(settings: Settings) -> TailPolicy:
    t = settings.tail
    limits = Limits(t.max_line_bytes, t.max_entry_lines, t.max_entry_bytes)
    return TailPolicy(
        t.poll_interval,
        t.entry_linger,
        t.read_chunk_bytes,
        t.retry_interval,
        limits,
        t.rotate_wait,
        t.batch_max_events,
    )


def redactor_for(settings: Settings, token: str = "") -> Redactor:
    return Redactor([s for s in (token, *settings.secrets()) if s])


@dataclass(slots=True)
class Counters:
    """What was last reported to the metrics registry, so counters only ever grow by deltas."""

    seen: dict[str, float] = field(default_factory=dict)

    def add(self, family: Family, key: str, value: float, **labels: str) -> None:
        delta = value - self.seen.get(key, 0.0)
        if delta > 0:
            (family.labels(**labels) if labels else family).inc(delta)
            self.seen[key] = value


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.notifier = notifier or Notifier.from_env()
        self.registry = MetricsRegistry()
        self.started = time.time()
        self.host = settings.instance.host or socket.gethostname()
        self.store: Store | None = None
        self.tailer: Tailer | None = None
        self.api: ApiServer | None = None
        self.publisher: Publisher | None = None
        self._releaser = malloc.Releaser()
        self.classifier: Classifier | None = None
        self.recovery: Recovery | None = None
        self.journal = EventJournal(None, lambda: None)
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._counters = Counters()
        self._token = ""
        self._define_metrics()

    # -- lifecycle ----------------------------------------------------------------------------------

    async def run(self) -> int:
        settings = self.settings
        setup_logging(settings.log.level, settings.log.format, redactor=redactor_for(settings))
        self.classifier = build_classifier(settings.rules.dir)
        database = settings.state.database_path
        self.recovery = recover_state(database)
        if self.recovery is not None:
            self._m["recoveries"].inc()
        self.store = Store(database, capacity=settings.outbox.max_events)
        token = self._token = load_or_create_token(settings.api.token_file)
        setup_logging(
            settings.log.level, settings.log.format, redactor=redactor_for(settings, token)
        )
        self.journal = event_journal(settings, self.store)
        self.tailer = Tailer(
            settings.instance.messages_log,
            self.store,
            self._builder,
            tail_policy(settings),
            on_events=self.journal,
        )
        publisher, http = self._publisher()
        self.api = await start_server(
            make_app(self, token=token), parse_listen(settings.api.listen)
        )
        loop = asyncio.get_running_loop()
        stop_watch = watch(settings.instance.messages_log, self.tailer.wake, loop)
        self._signals(loop)
        gctune.settle()  # start-up is over: see irisd.shell.gctune
        malloc.tune()  # and irisd.shell.malloc
        log.info(
            "irisd %s ready: following %s, API on %s, hot path %s",
            __version__,
            settings.instance.messages_log,
            self.api.listen,
            hot_path(),
            extra={"irisd_code": "daemon.ready"},
        )
        self.notifier.ready(self._status_line())
        try:
            async with asyncio.TaskGroup() as group:
                tail_task = group.create_task(self.tailer.run(), name="tailer")
                pub_task = (
                    group.create_task(publisher.run(), name="publisher") if publisher else None
                )
                housekeeping = group.create_task(self._housekeeping(), name="housekeeping")
                await self._wait_for_stop()
                self.notifier.stopping("stopping: draining")
                log.info("stopping", extra={"irisd_code": "daemon.stopping"})
                tail_task.cancel()
                housekeeping.cancel()
                if publisher is not None and pub_task is not None:
                    await self._drain(publisher, pub_task)
        except* StateError as failed:
            # The database failed under the tailer in a way a retry cannot mend (it is damaged):
            # exit 74 with its one line; systemd restarts irisd, and start-up recovers the file.
            raise failed.exceptions[0] from None
        finally:
            stop_watch()
            if http is not None:
                await http.aclose()
            if self.api is not None:
                await self.api.close()
            self.journal.close()
            self.store.close()
            log.info("stopped", extra={"irisd_code": "daemon.stopped"})
        return 0

    def _publisher(self) -> tuple[Publisher | None, HttpClient | None]:
        sinks = [s for s in self.settings.sinks if s.enabled]
        assert self.store is not None
        if not sinks:
            self.store.register_sinks([])
            return None, None
        from irisd.shell.publisher import Publisher, SystemClock
        from irisd.shell.sink_drivers import HttpClient, build_drivers

        http = HttpClient()
        clock = SystemClock()
        drivers = build_drivers(
            sinks, http=http, clock=clock, generator_url=f"http://{self.host}/irisd"
        )
        self.publisher = Publisher(self.store, drivers, clock=clock, metrics=self.registry)
        return self.publisher, http

    async def _drain(self, publisher: Publisher, task: asyncio.Task[None]) -> None:
        publisher.close()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.settings.daemon.drain_timeout)
        except TimeoutError:
            log.warning(
                "drain timed out; unacknowledged events stay in the outbox",
                extra={"irisd_code": "daemon.drain_timeout"},
            )
            task.cancel()

    def _signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        # `kill -USR1`: every thread's Python stack on stderr (the journal under systemd), written
        # by the interpreter itself, so it answers even when the event loop is stuck.
        faulthandler.register(signal.SIGUSR1, all_threads=True)

    async def _wait_for_stop(self) -> None:
        while not self._stop.is_set():
            reload = asyncio.ensure_future(self._reload.wait())
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({reload, stop}, return_when=asyncio.FIRST_COMPLETED)
            for fut in (reload, stop):
                fut.cancel()
            if self._reload.is_set() and not self._stop.is_set():
                self._reload.clear()
                self.reload()

    def stop(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        self.notifier.reloading("reloading configuration")
        try:
            fresh = load_settings(self.config_path)
            classifier = build_classifier(fresh.rules.dir)
        except IrisdError as exc:
            log.error(  # noqa: TRY400 - the reason is the message; a traceback would be noise
                "reload refused, keeping the running configuration: %s",
                exc,
                extra={"irisd_code": "config.reload_failed"},
            )
        else:
            redactor = redactor_for(fresh, self._token)
            setup_logging(fresh.log.level, fresh.log.format, redactor=redactor)
            self.classifier = classifier
            if self.tailer is not None:
                self.tailer.set_classifier(classifier)
            self.settings = fresh
            log.info("configuration reloaded", extra={"irisd_code": "config.reloaded"})
        self.notifier.ready(self._status_line())

    def _builder(self, source: str) -> EventBuilder:
        assert self.classifier is not None
        clock = LocalClock(host_zone(self.settings.instance.timezone))
        return EventBuilder(
            host=self.host,
            instance=self.settings.instance.name,
            source=source,
            clock=clock,
            classifier=self.classifier,
        )

    # -- watchdog and status ------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        interval = self.notifier.watchdog_interval()
        # At least once a second, so the heap is trimmed soon after a burst (_release_memory).
        period = min(self.settings.daemon.status_interval, interval / 2 if interval else 1.0, 1.0)
        last_status = 0.0
        last_prune = time.monotonic()
        while True:
            self._release_memory()
            now = time.monotonic()
            if interval and self._making_progress(interval):
                self.notifier.watchdog()
            if now - last_status >= self.settings.daemon.status_interval:
                self.notifier.status(self._status_line())
                last_status = now
            if now - last_prune >= 60 and self.store is not None:
                self._prune(self.store)
                last_prune = now
            await asyncio.sleep(period)

    def _release_memory(self) -> None:
        """Once a burst is worked through (read, and delivered where sinks are configured),
        give the heap's free pages back: see irisd.shell.malloc."""
        if self.tailer is None:
            return
        work, caught_up = self.tailer.stats.entries, self.tailer.stats.lag_bytes == 0
        if self.publisher is not None:
            work += self.publisher.acked_total()
            caught_up = caught_up and not self.publisher.draining
        self._releaser.after(work, caught_up=caught_up)

    @staticmethod
    def _prune(store: Store) -> None:
        try:
            store.prune()
        except sqlite3.Error as exc:  # locked by another process, say: it can wait a minute
            log.warning(
                "pruning delivered events skipped: %s",
                exc,
                extra={"irisd_code": "state.prune_skipped"},
            )

    def _making_progress(self, interval: float) -> bool:
        """The tailer's loop turns at least every poll interval, busy or idle, and beats only when
        the store took its commits; a stale heartbeat means it is stuck (or stalled on a refused
        commit), and then systemd should see the watchdog lapse."""
        assert self.tailer is not None
        return time.monotonic() - self.tailer.stats.heartbeat < interval

    def _status_line(self) -> str:
        if self.tailer is None or self.store is None:
            return "starting"
        s = self.tailer.stats
        depth = self.store.stats(now=time.time()).rows
        return f"{s.state}; {s.entries} entries, lag {s.lag_bytes} bytes, outbox {depth}"

    # -- Services (the API's view) ------------------------------------------------------------------

    async def status(self) -> Mapping[str, object]:
        assert self.tailer is not None
        assert self.store is not None
        s = self.tailer.stats
        outbox = self.store.stats(now=time.time())
        return {
            "version": __version__,
            "host": self.host,
            "instance": self.settings.instance.name,
            "uptime_seconds": round(time.time() - self.started, 3),
            "tail": {
                "path": str(self.settings.instance.messages_log),
                "state": s.state,
                "lines": s.lines,
                "bytes": s.bytes,
                "entries": s.entries,
                "unparsed": s.unparsed,
                "decode_errors": s.decode_errors,
                "truncated_lines": s.truncated_lines,
                "rotations": s.rotations,
                "truncations": s.truncations,
                "lag_bytes": s.lag_bytes,
            },
            "state": {
                "database": str(self.store.path),
                "recovered": None if self.recovery is None else self.recovery.as_dict(),
            },
            "outbox": {
                "depth": outbox.rows,
                "capacity": outbox.capacity,
                "full": outbox.full,
                "oldest_age_seconds": outbox.oldest_age,
                "sinks": {
                    name: {"pending": v.pending, "in_flight": v.in_flight, "dead": v.dead}
                    for name, v in outbox.sinks.items()
                },
            },
        }

    def metrics(self) -> MetricsRegistry:
        self._refresh_metrics()
        return self.registry

    async def events(self, query: EventQuery) -> Sequence[EventRow]:
        assert self.store is not None
        return store_events(self.store, query)

    def _define_metrics(self) -> None:
        m = self.registry
        self._m = {
            "lines": m.counter("irisd_lines_total", "Lines read from messages.log"),
            "bytes": m.counter("irisd_bytes_total", "Bytes read from messages.log"),
            "entries": m.counter(
                "irisd_entries_total", "Entries (header plus continuation lines) read"
            ),
            "events": m.counter(
                "irisd_events_total",
                "Events by taxonomy code and severity, with IRIS's repeat counts",
                ("code", "severity"),
            ),
            "unparsed": m.counter(
                "irisd_parse_failures_total",
                "Entries that did not parse (kept as unknown.unparsed)",
            ),
            "decode": m.counter("irisd_decode_errors_total", "Invalid UTF-8 sequences replaced"),
            "truncated": m.counter(
                "irisd_truncated_lines_total", "Lines longer than max_line_bytes, truncated"
            ),
            "rotations": m.counter(
                "irisd_rotations_total", "Log files read to their end after a rotation or deletion"
            ),
            "truncations": m.counter(
                "irisd_truncations_total", "Log files truncated in place (copytruncate)"
            ),
            "lag": m.gauge("irisd_tail_lag_bytes", "Bytes in messages.log not yet read"),
            "depth": m.gauge("irisd_outbox_depth", "Events not yet acknowledged by every sink"),
            "full": m.gauge(
                "irisd_outbox_full", "1 while the outbox is full and reading is paused"
            ),
            "oldest": m.gauge(
                "irisd_outbox_oldest_age_seconds", "Age of the oldest unacknowledged event"
            ),
            "recoveries": m.counter(
                "irisd_state_recoveries_total",
                "Damaged state databases set aside and salvaged at start-up",
            ),
        }

    def _refresh_metrics(self) -> None:
        if self.tailer is None or self.store is None:
            return
        s, m, c = self.tailer.stats, self._m, self._counters
        for name, value in (
            ("lines", s.lines),
            ("bytes", s.bytes),
            ("entries", s.entries),
            ("unparsed", s.unparsed),
            ("decode", s.decode_errors),
            ("truncated", s.truncated_lines),
            ("rotations", s.rotations),
            ("truncations", s.truncations),
        ):
            c.add(m[name], name, value)
        for (code, severity), count in list(s.by_code.items()):
            c.add(
                m["events"], f"events:{code}:{severity}", count, code=code, severity=str(severity)
            )
        stats = self.store.stats(now=time.time())
        m["lag"].set(s.lag_bytes)
        m["depth"].set(stats.rows)
        m["full"].set(1 if stats.full else 0)
        m["oldest"].set(stats.oldest_age or 0.0)


def store_events(store: Store, query: EventQuery) -> list[EventRow]:
    """The API's event query, answered by the store (filters in SQL, newest first)."""
    rows = store.recent_events(
        codes=[(p.text, p.prefix) for p in query.codes],
        min_severity=None if query.min_severity is None else int(query.min_severity),
        severities=sorted(int(s) for s in query.severities),
        since=query.since,
        until=query.until,
        after=query.after,
        limit=query.limit,
    )
    return [EventRow(seq, event) for seq, event in rows]


def event_journal(settings: Settings, store: Store) -> EventJournal:
    """Severe and fatal entries to irisd's log; the backlog found at first start only counted,
    unless `[log] journal_backlog`. Before the tailer reads: the mark is where it starts."""
    path = settings.instance.messages_log
    if settings.log.journal_backlog:
        return EventJournal(None, lambda: None)
    mark_file = settings.state.dir / MARK_FILE
    mark = start_mark(mark_file, path, fresh=store.checkpoint(str(path)) is None)
    return EventJournal(mark, lambda: _committed(store, path))


def _committed(store: Store, path: Path) -> Checkpoint | None:
    try:
        return store.checkpoint(str(path))
    except sqlite3.Error:  # busy, say: the journal asks again after the next batch
        return None


def run(settings: Settings, *, config_path: Path | None = None) -> int:
    daemon = Daemon(settings, config_path=config_path)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(daemon.run())
    return 130
