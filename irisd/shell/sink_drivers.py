"""The HTTP sinks (webhook, Alertmanager) as publisher drivers, and drivers built from config.

`HttpClient` is the one place aiohttp is spoken and its exceptions are translated: every
connection error, timeout or malformed answer becomes `Answer(None, error=...)`, which the
decision table retries. Redirects are not followed: a signed batch goes only where the operator
pointed it, and a 3xx is retried (and counted) until the configuration is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiohttp

from irisd import __version__
from irisd.config import AlertmanagerSink, JsonlSink, Sink, WebhookSink
from irisd.core.model import Severity
from irisd.core.retry import Backoff
from irisd.core.sinks import HttpRequest
from irisd.core.sinks.alertmanager import AlertBook, AlertPolicy, alerts_request, expire, observe
from irisd.core.sinks.webhook import batch_id, webhook_body, webhook_headers
from irisd.shell.jsonl_sink import JsonlDriver, JsonlFile
from irisd.shell.outbox import OutboxItem
from irisd.shell.publisher import BODY_KEEP, Answer, Clock, Driver, Send, SinkOptions

log = logging.getLogger("irisd.publish")


class HttpClient:
    """One aiohttp session shared by every HTTP sink, created on first use inside the loop."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    # aiohttp's ClientTimeout is the right tool here (it also covers reading the answer).
    async def post(self, request: HttpRequest, *, timeout: float) -> Answer:  # noqa: ASYNC109
        try:
            async with self._client().post(
                request.url,
                data=request.body,
                headers=dict(request.headers),
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                body = await _read_prefix(response.content, BODY_KEEP)
                retry_after = response.headers.get("Retry-After")
                return Answer(response.status, body.decode("utf-8", "replace"), retry_after)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return Answer(None, error=f"{type(exc).__name__}: {exc}".rstrip(": "))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),  # each sink bounds its own concurrency
                headers={"User-Agent": f"irisd/{__version__}"},
            )
        return self._session


async def _read_prefix(stream: aiohttp.StreamReader, limit: int) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = await stream.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data


class WebhookDriver:
    def __init__(
        self, options: SinkOptions, *, url: str, secret: str | None, http: HttpClient, clock: Clock
    ) -> None:
        self.options = options
        self._url = url
        self._secret = secret or None
        self._http = http
        self._clock = clock

    def prepare(self, items: Sequence[OutboxItem]) -> Send:
        body = webhook_body(items)
        key = batch_id(item.event_id for item in items)

        async def send() -> Answer:
            stamp = int(self._clock.time())
            headers = webhook_headers(body, key=key, secret=self._secret, timestamp=stamp)
            request = HttpRequest(self._url, headers, body)
            return await self._http.post(request, timeout=self.options.timeout)

        return send

    async def tick(self) -> None:
        return None


class AlertmanagerDriver:
    """Carries the `AlertBook` between batches; one batch at a time, so the book stays ordered.

    A batch's new book is kept only once Alertmanager accepted its alerts, so a retried, split or
    dead-lettered batch never leaves the book claiming alerts were sent that were not.
    """

    def __init__(
        self,
        options: SinkOptions,
        *,
        url: str,
        policy: AlertPolicy,
        http: HttpClient,
        clock: Clock,
    ) -> None:
        self.options = replace(options, concurrency=1)
        self.policy = policy
        self.book = AlertBook()
        self._url = url
        self._http = http
        self._clock = clock

    def prepare(self, items: Sequence[OutboxItem]) -> Send | None:
        events = (item.event for item in items)
        book, alerts = observe(self.book, events, now=self._now(), policy=self.policy)
        if not alerts:
            self.book = book
            return None
        request = alerts_request(self._url, alerts)

        async def send() -> Answer:
            answer = await self._http.post(request, timeout=self.options.timeout)
            if answer.status is not None and 200 <= answer.status < 300:
                self.book = book
            return answer

        return send

    async def tick(self) -> None:
        """Post resolutions for conditions that stopped; one try (endsAt resolves them anyway)."""
        self.book, resolved = expire(self.book, now=self._now(), policy=self.policy)
        if not resolved:
            return
        request = alerts_request(self._url, resolved)
        answer = await self._http.post(request, timeout=self.options.timeout)
        if answer.status is None or not 200 <= answer.status < 300:
            log.warning(
                "sink %s: posting %d resolved alerts failed (%s); Alertmanager resolves them "
                "at their endsAt",
                self.options.name,
                len(resolved),
                answer.status or answer.error,
                extra={"irisd_code": "publish.resolve_failed", "irisd_sink": self.options.name},
            )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.time(), UTC)


def sink_options(sink: Sink) -> SinkOptions:
    return SinkOptions(
        name=sink.name,
        min_severity=Severity(_min_severity(sink)),
        batch_max_events=sink.batch_max_events,
        batch_max_bytes=sink.batch_max_bytes,
        linger=sink.linger_ms / 1000,
        concurrency=sink.concurrency,
        timeout=sink.timeout,
        backoff=Backoff(base=sink.backoff_base, cap=sink.backoff_cap),
    )


def _min_severity(sink: Sink) -> int:
    # An Alertmanager page for every info line would be noise: unless the operator chose a
    # floor, alerts start at "severe".
    if isinstance(sink, AlertmanagerSink) and "min_severity" not in sink.model_fields_set:
        return Severity.SEVERE
    return sink.min_severity


def build_drivers(
    sinks: Sequence[Sink],
    *,
    http: HttpClient,
    clock: Clock,
    generator_url: str = "http://127.0.0.1:8737",
) -> list[Driver]:
    """A driver per enabled sink of the configuration, in its order."""
    return [
        build_driver(s, http=http, clock=clock, generator_url=generator_url)
        for s in sinks
        if s.enabled
    ]


def build_driver(sink: Sink, *, http: HttpClient, clock: Clock, generator_url: str) -> Driver:
    options = sink_options(sink)
    match sink:
        case WebhookSink():
            secret = sink.secret_value()
            return WebhookDriver(options, url=sink.url, secret=secret, http=http, clock=clock)
        case AlertmanagerSink():
            policy = _alert_policy(sink, options, generator_url)
            return AlertmanagerDriver(options, url=sink.url, policy=policy, http=http, clock=clock)
        case JsonlSink():
            return JsonlDriver(
                options, JsonlFile(sink.path, max_bytes=sink.max_bytes, keep=sink.keep)
            )


def _alert_policy(sink: AlertmanagerSink, options: SinkOptions, generator_url: str) -> AlertPolicy:
    return AlertPolicy(
        min_severity=options.min_severity,
        resolve_after=timedelta(seconds=sink.resolve_after),
        resend_interval=timedelta(seconds=sink.resend_interval),
        generator_url=generator_url,
    )
