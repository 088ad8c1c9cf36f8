"""The Alertmanager payload and the alert book: streaks fire, re-send while repeating, resolve."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from irisd.core.model import Event, Severity
from irisd.core.sinks.alertmanager import (
    AlertBook,
    AlertPolicy,
    alert_json,
    alertname,
    alerts_request,
    expire,
    observe,
)

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
POLICY = AlertPolicy(
    min_severity=Severity.SEVERE,
    resolve_after=timedelta(minutes=5),
    resend_interval=timedelta(minutes=1),
    generator_url="http://127.0.0.1:8737/",
)


def event(
    at: timedelta | None, *, code: str = "lock.table_full", sev: int = 2, n: int = 0
) -> Event:
    return Event(
        event_id=f"{n:032x}",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        host="db1",
        instance="IRIS",
        source="/iris/mgr/messages.log",
        offset=n * 100,
        timestamp=None if at is None else (T0 + at).timestamp(),
        severity=Severity(sev),
        code=code,
        error_type="resource",
        category="Utility.Event",
        pid=42,
        message=f"Lock table full (occurrence {n})\nsecond line",
    )


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("lock.table_full", "IrisLockTableFull"),
        ("writedaemon.died", "IrisWritedaemonDied"),
        ("unknown.2", "IrisUnknown2"),
        ("security.certificate_expired", "IrisSecurityCertificateExpired"),
    ],
)
def test_alertname_is_camel_case_from_the_code(code: str, name: str) -> None:
    assert alertname(code) == name


def test_first_occurrence_fires_with_labels_annotations_and_times() -> None:
    book, alerts = observe(AlertBook(), [event(s(0))], now=T0, policy=POLICY)
    [alert] = alerts
    body = alert_json(alert)
    assert body["labels"] == {
        "alertname": "IrisLockTableFull",
        "code": "lock.table_full",
        "error_type": "resource",
        "host": "db1",
        "instance": "IRIS",
        "severity": "severe",
    }
    annotations = body["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["summary"] == "IRIS on db1: Lock table full (occurrence 0)"
    assert annotations["description"].endswith("second line")
    assert annotations["event_id"] == f"{0:032x}"
    assert body["startsAt"] == "2026-11-01T12:00:00.000Z"
    assert body["endsAt"] == "2026-11-01T12:05:00.000Z"
    assert body["generatorURL"] == "http://127.0.0.1:8737/events?code=lock.table_full"
    assert len(book.streaks) == 1


def test_events_below_min_severity_make_no_alert() -> None:
    book, alerts = observe(
        AlertBook(), [event(s(0), sev=1), event(s(1), sev=0)], now=T0, policy=POLICY
    )
    assert alerts == []
    assert not book.streaks


def test_a_batch_posts_one_alert_per_label_set_with_the_latest_state() -> None:
    batch = [event(s(0), n=1), event(s(10), n=2), event(s(5), code="journal.error", n=3)]
    _, alerts = observe(AlertBook(), batch, now=T0, policy=POLICY)
    assert sorted(dict(a.labels)["code"] for a in alerts) == ["journal.error", "lock.table_full"]


def test_repeats_within_resend_interval_update_the_book_but_post_nothing() -> None:
    book, _ = observe(AlertBook(), [event(s(0))], now=T0, policy=POLICY)
    book, alerts = observe(book, [event(s(30))], now=T0 + s(30), policy=POLICY)
    assert alerts == []
    [streak] = book.streaks.values()
    assert streak.last_seen == T0 + s(30)


def test_repeats_past_resend_interval_re_post_with_same_start_and_later_end() -> None:
    book, _ = observe(AlertBook(), [event(s(0))], now=T0, policy=POLICY)
    book, _ = observe(book, [event(s(30))], now=T0, policy=POLICY)
    book, [alert] = observe(book, [event(s(90))], now=T0, policy=POLICY)
    assert alert.starts_at == T0
    assert alert.ends_at == T0 + s(90) + timedelta(minutes=5)


def test_a_gap_longer_than_resolve_after_starts_a_new_streak() -> None:
    book, _ = observe(AlertBook(), [event(s(0))], now=T0, policy=POLICY)
    _, [alert] = observe(book, [event(s(301))], now=T0, policy=POLICY)
    assert alert.starts_at == T0 + s(301)


def test_expire_resolves_stopped_conditions_and_keeps_running_ones() -> None:
    book, _ = observe(
        AlertBook(), [event(s(0)), event(s(200), code="journal.error")], now=T0, policy=POLICY
    )
    book, resolved = expire(book, now=T0 + s(300), policy=POLICY)
    assert [dict(a.labels)["code"] for a in resolved] == ["lock.table_full"]
    assert resolved[0].ends_at == T0 + s(300)  # in the past or now: Alertmanager shows it resolved
    assert [dict(k)["code"] for k in book.streaks] == ["journal.error"]
    book, resolved = expire(book, now=T0 + s(499), policy=POLICY)
    assert resolved == []
    book, resolved = expire(book, now=T0 + s(500), policy=POLICY)
    assert len(resolved) == 1
    assert not book.streaks


def test_an_event_without_timestamp_takes_now() -> None:
    now = T0 + s(42)
    _, [alert] = observe(AlertBook(), [event(None)], now=now, policy=POLICY)
    assert alert.starts_at == now


def test_observe_does_not_change_the_book_it_was_given() -> None:
    book = AlertBook()
    observe(book, [event(s(0))], now=T0, policy=POLICY)
    assert not book.streaks


def test_alerts_request_targets_api_v2_with_a_json_list() -> None:
    _, alerts = observe(AlertBook(), [event(s(0))], now=T0, policy=POLICY)
    request = alerts_request("http://127.0.0.1:9093/", alerts)
    assert request.url == "http://127.0.0.1:9093/api/v2/alerts"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == [alert_json(alerts[0])]
