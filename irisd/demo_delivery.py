"""Where `irisd demo` delivers its events: a local webhook receiver, and Alertmanager when present.

Theory of operation. The demo's daemon gets its sinks before it starts, so every event it stores
is owed to them from the first byte:

- `demo-webhook`: a `WebhookReceiver` in this process. It runs aiohttp on 127.0.0.1 (port 0) on an
  event loop of its own, turning in a background thread: the demo's main thread spends the
  scenario blocked in the emulator's synchronous control calls, and a receiver that waited for it
  would leave the daemon's requests hanging. A thread (rather than a child process) keeps the
  tally in memory with no channel to read it back, and cannot outlive the demo. Every request's
  `X-Irisd-Signature` is checked with the secret written into the daemon's configuration, as an
  operator's receiver would: a bad or missing one is counted and answered 401, its events not
  counted; a good one has its events counted (all, and distinct `event_id`s) and is answered 200.
  The tally is only touched on the receiver's loop, so reading it is a call onto that loop.
- `demo-alertmanager`: a real Prometheus Alertmanager, when one is installed, started as a child
  on a free loopback port with clustering off and its configuration and storage in the scratch
  directory. Its alerts are read back through `GET /api/v2/alerts`.

Both are context managers: leaving the `with` (normally, on an error or on Ctrl-C) stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from irisd.core.sinks.webhook import verify
from irisd.errors import IrisdError

WEBHOOK_SINK = "demo-webhook"
ALERTMANAGER_SINK = "demo-alertmanager"
ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")
NOT_INSTALLED = "Alertmanager not installed; skipped (apt-get install prometheus-alertmanager)"

T = TypeVar("T")

_ALERTMANAGER_CONFIG = """\
# Written by irisd demo: Alertmanager holds the alerts irisd posts and notifies no one.
route:
  receiver: nobody
receivers:
  - name: nobody
"""


def sinks_toml(webhook_url: str, secret: str, alertmanager_url: str | None) -> str:
    """The `[[sinks]]` of the demo's configuration. Short retry pacing: a hiccup costs the demo
    a fraction of a second, not the default second-to-minutes backoff of a production host."""
    text = _sink(WEBHOOK_SINK, "webhook", webhook_url) + f'secret = "{secret}"\n'
    if alertmanager_url is not None:
        text += _sink(ALERTMANAGER_SINK, "alertmanager", alertmanager_url)
    return text


def _sink(name: str, kind: str, url: str) -> str:
    return (
        f'\n[[sinks]]\nname = "{name}"\ntype = "{kind}"\nurl = "{url}"\n'
        "backoff_base = 0.1\nbackoff_cap = 1\n"
    )


def start_sinks(
    stack: contextlib.ExitStack, scratch: Path, say: Callable[[str], None]
) -> tuple[WebhookReceiver, LocalAlertmanager | None]:
    """The receiver, and Alertmanager when installed, each stopped when `stack` closes."""
    receiver = stack.enter_context(WebhookReceiver(secrets.token_hex(32)))
    say(f"webhook receiver listening on {receiver.url} (checks every X-Irisd-Signature)")
    binary = find_alertmanager()
    if binary is None:
        say(NOT_INSTALLED)
        return receiver, None
    alertmanager = stack.enter_context(LocalAlertmanager(binary, scratch / "alertmanager"))
    say(f"Alertmanager started (pid {alertmanager.pid}) on {alertmanager.url}")
    return receiver, alertmanager


# -- the webhook receiver ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookTally:
    requests: int = 0  # answered 200
    events: int = 0  # in those requests, a resent event counted again
    ids: frozenset[str] = frozenset()
    bad_signatures: int = 0  # requests refused: signature missing, wrong or stale
    malformed: int = 0  # signed, but not `{"events": [...]}`


@dataclass(slots=True)
class _Counts:
    requests: int = 0
    events: int = 0
    ids: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    malformed: int = 0


class WebhookReceiver:
    """A signature-checking webhook receiver on 127.0.0.1, in a thread with its own event loop."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.url = ""
        self._counts = _Counts()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="demo-webhook", daemon=True
        )
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        try:
            port = self._call(self._serve())
        except BaseException:
            self._halt()
            raise
        self.url = f"http://127.0.0.1:{port}/irisd"
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._runner is not None:
                self._call(self._runner.cleanup())
        finally:
            self._halt()

    def tally(self) -> WebhookTally:
        return self._call(self._snapshot())

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)

    def _halt(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _serve(self) -> int:
        app = web.Application(client_max_size=64 << 20)  # above the sinks' largest batch
        app.router.add_post("/irisd", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port: int = self._runner.addresses[0][1]
        return port

    async def _snapshot(self) -> WebhookTally:
        c = self._counts
        return WebhookTally(c.requests, c.events, frozenset(c.ids), c.bad_signatures, c.malformed)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self._signed(request, body):
            self._counts.bad_signatures += 1
            return web.json_response({"error": "bad signature"}, status=401)
        ids = _event_ids(body)
        if ids is None:
            self._counts.malformed += 1
            return web.json_response({"error": "expected {events: [...]}"}, status=400)
        self._counts.requests += 1
        self._counts.events += len(ids)
        self._counts.ids.update(ids)
        return web.json_response({"accepted": len(ids)})

    def _signed(self, request: web.Request, body: bytes) -> bool:
        return verify(
            self.secret,
            timestamp=request.headers.get("X-Irisd-Timestamp", ""),
            signature=request.headers.get("X-Irisd-Signature", ""),
            body=body,
            now=time.time(),
        )


def _event_ids(body: bytes) -> list[str] | None:
    try:
        return [str(event["event_id"]) for event in json.loads(body)["events"]]
    except (ValueError, KeyError, TypeError):
        return None


# -- Alertmanager --------------------------------------------------------------------------------


def find_alertmanager(path: str | None = None, *, fallback: str = "/usr/bin") -> str | None:
    """The Alertmanager program on `path` (default $PATH) or in `fallback`, or None. The
    fallback covers a PATH without /usr/bin (cron, some sudo set-ups), where Debian puts it."""
    where = os.environ.get("PATH", "") if path is None else path
    search = os.pathsep.join(part for part in (where, fallback) if part)
    found = (shutil.which(name, path=search) for name in ALERTMANAGER_NAMES)
    return next((program for program in found if program), None)


class LocalAlertmanager:
    """A real Alertmanager on a free loopback port, clustering off, its files under `home`."""

    def __init__(self, binary: str, home: Path) -> None:
        self.binary = binary
        self.home = home
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "alertmanager.yml").write_text(_ALERTMANAGER_CONFIG, encoding="utf-8")
        try:
            for _ in range(3):  # a free port can be taken between our probe and its bind
                if self._try_start():
                    return self
        except BaseException:
            self._stop()
            raise
        log = self.home / "alertmanager.log"
        tail = log.read_text(errors="replace")[-2000:]
        raise IrisdError(f"Alertmanager ({self.binary}) did not start; see {log}:\n{tail}")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def alerts(self, instance: str) -> dict[str, int]:
        """Alerts Alertmanager holds for `instance`, counted by alertname."""
        query = urllib.parse.quote(f'instance="{instance}"')
        url = f"{self.url}/api/v2/alerts?filter={query}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - our loopback URL
                alerts: list[dict[str, Any]] = json.load(answer)
        except (OSError, ValueError) as exc:
            raise IrisdError(f"Alertmanager at {self.url} did not answer: {exc}") from exc
        return dict(Counter(str(a["labels"]["alertname"]) for a in alerts).most_common())

    def _try_start(self) -> bool:
        self._stop()
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        with (self.home / "alertmanager.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.home / 'alertmanager.yml'}",
                    f"--storage.path={self.home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",  # no gossip port: a lone, private instance
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops it in order
            )
        return self._ready(self.proc)

    def _ready(self, proc: subprocess.Popen[bytes]) -> bool:
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:  # noqa: S310
                    return bool(answer.status == 200)
            except OSError:
                time.sleep(0.05)  # another process starting: nothing to wait on but its port
        return False

    def _stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the report --------------------------------------------------------------------------------


def delivery_report(
    tally: WebhookTally,
    stored: frozenset[str],
    outbox: Mapping[str, Any],
    alerts: Mapping[str, int] | None,
) -> dict[str, Any]:
    """The `delivered` object: what reached each sink, against what the daemon stored."""
    sinks: Mapping[str, Any] = outbox.get("sinks", {})
    dead = sum(int(s["dead"]) for s in sinks.values())
    webhook = _webhook_part(tally, stored, sinks.get(WEBHOOK_SINK, {}))
    return {
        "drained": outbox.get("depth") == 0,
        "outbox_depth": outbox.get("depth"),
        "dead_letters": dead,
        "webhook": webhook,
        "alertmanager": _alertmanager_part(alerts, sinks.get(ALERTMANAGER_SINK, {})),
        "ok": bool(webhook["complete"]) and outbox.get("depth") == 0 and dead == 0,
    }


def _webhook_part(
    tally: WebhookTally, stored: frozenset[str], sink: Mapping[str, Any]
) -> dict[str, Any]:
    missing, unknown = stored - tally.ids, tally.ids - stored
    return {
        "requests": tally.requests,
        "events": tally.events,
        "distinct_ids": len(tally.ids),
        "stored": len(stored),
        "missing": len(missing),
        "unknown": len(unknown),
        "bad_signatures": tally.bad_signatures,
        "malformed": tally.malformed,
        "dead_letters": sink.get("dead", 0),
        "complete": not missing and not unknown and not tally.bad_signatures,
    }


def _alertmanager_part(alerts: Mapping[str, int] | None, sink: Mapping[str, Any]) -> dict[str, Any]:
    if alerts is None:
        return {"installed": False, "note": NOT_INSTALLED}
    return {
        "installed": True,
        "alerts": dict(alerts),
        "alert_count": sum(alerts.values()),
        "dead_letters": sink.get("dead", 0),
    }


def render_delivered(delivered: Mapping[str, Any], *, instance: str) -> list[str]:
    hook, am = delivered["webhook"], delivered["alertmanager"]
    verdict = "complete" if hook["complete"] else "INCOMPLETE"
    lines = [
        f"  delivered (outbox drained: {'yes' if delivered['drained'] else 'NO'}, "
        f"dead letters: {delivered['dead_letters']}):",
        f"    webhook       {hook['distinct_ids']} distinct event ids of {hook['stored']} stored "
        f"({hook['events']} events in {hook['requests']} requests), "
        f"{hook['bad_signatures']} bad signatures: {verdict}",
    ]
    if not am["installed"]:
        return [*lines, f"    alertmanager  {am['note']}"]
    names = ", ".join(f"{name} {n}" for name, n in am["alerts"].items()) or "none"
    count = am["alert_count"]
    held = f"{count} alert{'' if count == 1 else 's'} for instance {instance}: {names}"
    return [*lines, f"    alertmanager  {held}"]
