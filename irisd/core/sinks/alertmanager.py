"""The Alertmanager sink: events at or above a severity become alerts (`POST /api/v2/alerts`).

Theory of operation. An alert's identity is its label set: `alertname` (from the code), `code`,
`host`, `instance`, `severity`, `error_type`. A *streak* is one run of a condition: events with the
same labels, each at most `resolve_after` after the previous one. The `AlertBook` (a frozen value
the shell carries from batch to batch) holds the open streaks.

- `observe` takes a batch of events and returns the new book and the alerts to post. A streak's
  first event posts it (startsAt = that event's time); later events re-post it at most every
  `resend_interval`, moving endsAt forward, so the alert stays firing while the condition repeats.
  Every posted alert carries endsAt = its last occurrence + `resolve_after`: if irisd goes quiet or
  away, Alertmanager resolves it by itself on time.
- `expire` takes `now` and closes streaks whose last occurrence is older than `resolve_after`,
  returning them as resolved alerts (endsAt in the past) for the shell to post.

Times are the events' own timestamps (an event without one takes `now`), so a backlog replayed
after an outage produces the alerts it would have produced then, resolved if they are over.
The book lives in memory: after a restart a repeating condition starts a new streak, which
Alertmanager merges into the same alert (same labels, the earliest startsAt wins).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from urllib.parse import urlencode

from irisd.core.model import SEVERITY_NAMES, Event, Severity, iso
from irisd.core.sinks import HttpRequest

API_PATH = "/api/v2/alerts"
SUMMARY_CHARS = 200
DESCRIPTION_CHARS = 4000

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    min_severity: Severity = Severity.SEVERE
    resolve_after: timedelta = timedelta(minutes=5)
    resend_interval: timedelta = timedelta(minutes=1)
    generator_url: str = "http://127.0.0.1:8737"  # the irisd API that can show the events


@dataclass(frozen=True, slots=True)
class Alert:
    labels: Labels
    annotations: Labels
    starts_at: datetime
    ends_at: datetime
    generator_url: str


@dataclass(frozen=True, slots=True)
class Streak:
    alert: Alert  # as last built (labels, latest annotations, startsAt)
    last_seen: datetime
    sent_at: datetime  # the occurrence time at which it was last posted


@dataclass(frozen=True, slots=True)
class AlertBook:
    streaks: Mapping[Labels, Streak] = field(default_factory=lambda: MappingProxyType({}))


def alertname(code: str) -> str:
    """`lock.table_full` → `IrisLockTableFull`: the CamelCase Prometheus alerting rules use."""
    return "Iris" + "".join(part[:1].upper() + part[1:] for part in re.split(r"[._\-]+", code))


def alert_labels(event: Event) -> Labels:
    return (
        ("alertname", alertname(event.code)),
        ("code", event.code),
        ("error_type", event.error_type or "none"),
        ("host", event.host),
        ("instance", event.instance),
        ("severity", SEVERITY_NAMES[event.severity]),
    )


def alert_annotations(event: Event) -> Labels:
    first = event.message.partition("\n")[0].strip() or event.code
    return (
        ("description", event.message[:DESCRIPTION_CHARS]),
        ("event_id", event.event_id),
        ("summary", f"{event.instance} on {event.host}: {first[:SUMMARY_CHARS]}"),
        ("trace_id", event.trace_id),
    )


def observe(
    book: AlertBook, events: Iterable[Event], *, now: datetime, policy: AlertPolicy
) -> tuple[AlertBook, list[Alert]]:
    """Fold a batch into the book; the alerts to post, one per label set touched, latest state."""
    streaks = dict(book.streaks)
    due: dict[Labels, Alert] = {}
    for event in events:
        if event.severity < policy.min_severity:
            continue
        labels = alert_labels(event)
        streak, send = _extend(streaks.get(labels), labels, event, now, policy)
        streaks[labels] = streak
        if send:
            due[labels] = streak.alert
    return AlertBook(MappingProxyType(streaks)), list(due.values())


def _extend(
    streak: Streak | None, labels: Labels, event: Event, now: datetime, policy: AlertPolicy
) -> tuple[Streak, bool]:
    at = now if event.timestamp is None else datetime.fromtimestamp(event.timestamp, UTC)
    url = _generator_url(policy.generator_url, event)
    if streak is None or at - streak.last_seen > policy.resolve_after:
        alert = Alert(labels, alert_annotations(event), at, at + policy.resolve_after, url)
        return Streak(alert, at, at), True
    last = max(streak.last_seen, at)
    alert = replace(
        streak.alert, annotations=alert_annotations(event), ends_at=last + policy.resolve_after
    )
    if at - streak.sent_at >= policy.resend_interval:
        return Streak(alert, last, at), True
    return Streak(alert, last, streak.sent_at), False


def expire(book: AlertBook, *, now: datetime, policy: AlertPolicy) -> tuple[AlertBook, list[Alert]]:
    """Close the streaks that stopped; their resolved alerts (endsAt = last occurrence + hold)."""
    keep: dict[Labels, Streak] = {}
    resolved: list[Alert] = []
    for labels, streak in book.streaks.items():
        ends = streak.last_seen + policy.resolve_after
        if ends <= now:
            resolved.append(replace(streak.alert, ends_at=ends))
        else:
            keep[labels] = streak
    return AlertBook(MappingProxyType(keep)), resolved


def _generator_url(base: str, event: Event) -> str:
    return f"{base.rstrip('/')}/events?{urlencode({'code': event.code})}"


def alert_json(alert: Alert) -> dict[str, object]:
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": iso(alert.starts_at.timestamp()),
        "endsAt": iso(alert.ends_at.timestamp()),
        "generatorURL": alert.generator_url,
    }


def alerts_request(base_url: str, alerts: Sequence[Alert]) -> HttpRequest:
    """The POST for a list of alerts; `base_url` is Alertmanager's root (`http://host:9093`)."""
    body = json.dumps([alert_json(a) for a in alerts], ensure_ascii=False).encode()
    url = base_url.rstrip("/") + API_PATH
    return HttpRequest(url, MappingProxyType({"Content-Type": "application/json"}), body)
