"""Pure payload builders: the Event JSON form, webhook batches and signatures, jsonl lines."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from irisd.core.eventjson import (
    dumps_event,
    event_from_dict,
    event_to_dict,
    loads_event,
    restore_event,
    stored_event,
)
from irisd.core.model import Event, Severity, trace_id
from irisd.core.sinks.jsonl import jsonl_lines, needs_rotation, rotation_moves
from irisd.core.sinks.webhook import batch_id, sign, verify, webhook_request

BASE = Event(
    event_id="e" * 32,
    trace_id="0af7651916cd43dd8448eb211c80319c",
    host="db1",
    instance="IRIS",
    source="/usr/irissys/mgr/messages.log",
    offset=4096,
    timestamp=datetime(
        2026, 3, 4, 5, 6, 7, 890000, tzinfo=timezone(timedelta(hours=-5))
    ).timestamp(),
    severity=Severity.SEVERE,
    code="lock.table_full",
    error_type="resource",
    category="Utility.Event",
    pid=12345,
    message="Lock table full",
    repeat=2,
    labels=(("site", "east"),),
)


@dataclass(frozen=True)
class Item:
    event: Event
    json: str

    @property
    def event_id(self) -> str:
        return self.event.event_id


def item(**changes: object) -> Item:
    event = BASE._replace(**changes)
    return Item(event, dumps_event(event))


def test_event_json_has_the_documented_keys_in_order() -> None:
    assert list(event_to_dict(BASE)) == [
        "event_id", "trace_id", "host", "instance", "source", "offset", "timestamp",
        "severity", "severity_name", "code", "error_type", "category", "pid", "message",
        "repeat", "labels",
    ]  # fmt: skip


def test_event_json_timestamp_is_utc_iso8601_with_z() -> None:
    data = event_to_dict(BASE)
    assert data["timestamp"] == "2026-03-04T10:06:07.890Z"
    assert data["severity"] == 2
    assert data["severity_name"] == "severe"


def test_event_json_round_trips_including_nulls_and_unicode() -> None:
    odd = BASE._replace(timestamp=None, pid=None, category=None, message="Ärger\n\t“quoted”")
    assert loads_event(dumps_event(odd)) == odd
    assert event_from_dict(json.loads(dumps_event(BASE))) == BASE


def test_stored_json_never_holds_a_raw_newline() -> None:
    assert "\n" not in dumps_event(BASE._replace(message="line one\nline two"))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param({**event_to_dict(BASE), "offset": "7"}, TypeError, id="offset-not-int"),
        pytest.param(
            {**event_to_dict(BASE), "severity": 9}, ValueError, id="severity-out-of-range"
        ),
        pytest.param({**event_to_dict(BASE), "labels": [1]}, TypeError, id="labels-not-object"),
        pytest.param({"event_id": "x"}, KeyError, id="missing-keys"),
    ],
)
def test_event_from_dict_refuses_malformed_objects(data: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        event_from_dict(data)


def test_webhook_body_is_the_stored_events_joined() -> None:
    items = [item(event_id="a" * 32), item(event_id="b" * 32, offset=5000)]
    request = webhook_request("http://r/hook", items, secret="s3cret", timestamp=1_700_000_000)
    body = json.loads(request.body)
    assert [e["event_id"] for e in body["events"]] == ["a" * 32, "b" * 32]
    assert body["events"][1] == event_to_dict(items[1].event)


def test_webhook_headers_carry_batch_id_timestamp_and_hmac_over_timestamp_dot_body() -> None:
    items = [item(event_id="a" * 32), item(event_id="b" * 32)]
    request = webhook_request("http://r/hook", items, secret="s3cret", timestamp=1_700_000_000)
    headers = request.headers
    assert headers["Idempotency-Key"] == batch_id(["a" * 32, "b" * 32])
    assert headers["X-Irisd-Timestamp"] == "1700000000"
    expected = hmac.new(b"s3cret", b"1700000000." + request.body, hashlib.sha256).hexdigest()
    assert headers["X-Irisd-Signature"] == expected
    assert headers["Content-Type"] == "application/json"


def test_a_retried_batch_keeps_its_key_but_gets_a_fresh_signature() -> None:
    items = [item()]
    first = webhook_request("http://r", items, secret="k", timestamp=100)
    again = webhook_request("http://r", items, secret="k", timestamp=160)
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"]
    assert first.headers["X-Irisd-Signature"] != again.headers["X-Irisd-Signature"]


def test_batch_id_depends_on_every_event_and_their_order() -> None:
    ids = ["a", "b", "c"]
    assert len(batch_id(ids)) == 32
    assert batch_id(ids) != batch_id(["a", "b"])
    assert batch_id(ids) != batch_id(["c", "b", "a"])


def test_no_secret_means_no_signature() -> None:
    request = webhook_request("http://r", [item()], secret=None, timestamp=1)
    assert "X-Irisd-Signature" not in request.headers


@pytest.mark.parametrize(
    ("timestamp", "body", "now", "ok"),
    [
        pytest.param("1000", b"{}", 1000.0, True, id="fresh-and-intact"),
        pytest.param("1000", b"{}", 1299.0, True, id="within-tolerance"),
        pytest.param("1000", b"{}", 1301.0, False, id="too-old-replay"),
        pytest.param("1000", b"{ }", 1000.0, False, id="body-altered"),
        pytest.param("abc", b"{}", 1000.0, False, id="timestamp-garbage"),
    ],
)
def test_verify_as_a_receiver_would(timestamp: str, body: bytes, now: float, ok: bool) -> None:
    signature = sign("k", "1000", b"{}")
    assert verify("k", timestamp=timestamp, signature=signature, body=body, now=now) is ok


def test_jsonl_lines_are_one_object_per_line() -> None:
    data = jsonl_lines([item(offset=1), item(offset=2, message="two\nlines")])
    lines = data.decode().splitlines()
    assert [json.loads(line)["offset"] for line in lines] == [1, 2]
    assert data.endswith(b"\n")


@pytest.mark.parametrize(
    ("size", "incoming", "rotate"),
    [(0, 10_000, False), (500, 500, False), (500, 501, True), (1000, 1, True)],
    ids=["empty-file-takes-any-batch", "exactly-full", "one-byte-over", "full"],
)
def test_needs_rotation(size: int, incoming: int, rotate: bool) -> None:
    assert needs_rotation(size, incoming, max_bytes=1000) is rotate


def test_rotation_moves_shift_numbered_files_oldest_first() -> None:
    assert rotation_moves("ev.jsonl", keep=3) == [
        ("ev.jsonl.3", None),
        ("ev.jsonl.2", "ev.jsonl.3"),
        ("ev.jsonl.1", "ev.jsonl.2"),
        ("ev.jsonl", "ev.jsonl.1"),
    ]
    assert rotation_moves("ev.jsonl", keep=1) == [("ev.jsonl.1", None), ("ev.jsonl", "ev.jsonl.1")]
    assert rotation_moves("ev.jsonl", keep=0) == [("ev.jsonl", None)]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(BASE, id="full"),
        pytest.param(BASE._replace(timestamp=None, pid=None, category=None, labels=()), id="nulls"),
        pytest.param(
            BASE._replace(message='q"uote\\back\nnl\ttab\x00\x1f\u2028 Ärger 😀'), id="escapes"
        ),
        pytest.param(BASE._replace(labels=(('k"', "v\n"), ("b", ""))), id="odd-labels"),
        pytest.param(BASE._replace(timestamp=0.0005, offset=0, repeat=10**12), id="edges"),
    ],
)
def test_dumps_event_writes_exactly_what_json_dumps_writes(event: Event) -> None:
    expected = json.dumps(event_to_dict(event), ensure_ascii=False, separators=(",", ":"))
    assert dumps_event(event) == expected


@given(
    message=st.text(),
    category=st.none() | st.text(max_size=20),
    labels=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=3),
    timestamp=st.none() | st.floats(min_value=0, max_value=4e9),
    pid=st.none() | st.integers(min_value=0, max_value=2**31),
)
def test_dumps_event_matches_json_dumps_for_any_text(
    message: str,
    category: str | None,
    labels: list[tuple[str, str]],
    timestamp: float | None,
    pid: int | None,
) -> None:
    event = BASE._replace(
        message=message, category=category, labels=tuple(labels), timestamp=timestamp, pid=pid
    )
    expected = json.dumps(event_to_dict(event), ensure_ascii=False, separators=(",", ":"))
    assert dumps_event(event) == expected


def test_remembered_quoting_of_messages_gives_what_json_dumps_gives() -> None:
    for message in ["plain", 'quote " and \\ back', "tab\there\nnewline", "caf\u00e9", "x" * 600]:
        event = BASE._replace(message=message)
        first, again = dumps_event(event), dumps_event(event)  # the second from the memo
        expected = json.dumps(event_to_dict(event), ensure_ascii=False, separators=(",", ":"))
        assert first == again == expected


# -- the stored form: what the events table keeps of an event's JSON --------------------------------

DERIVED = BASE._replace(trace_id=trace_id(BASE.event_id))  # as the daemon builds every event


def restored(event: Event) -> str:
    return restore_event(stored_event(event), event.event_id, event.offset, event.timestamp)


@pytest.mark.parametrize(
    "event",
    [
        DERIVED,
        DERIVED._replace(timestamp=None, pid=None, category=None, labels=()),
        DERIVED._replace(host='h,"severity":1', instance='"', source='\\",\\"severity\\":'),
        DERIVED._replace(message=',"severity":0,"x":"\\u0000Ärger\n'),
        DERIVED._replace(event_id='odd "id"', trace_id=trace_id('odd "id"')),
    ],
    ids=["plain", "nulls", "origin-with-the-marker", "message-with-the-marker", "odd-event-id"],
)
def test_the_stored_form_restores_byte_for_byte(event: Event) -> None:
    stored = stored_event(event)
    assert not stored.startswith("{")
    assert len(stored) < len(dumps_event(event))
    assert event.event_id not in stored
    assert event.trace_id not in stored
    assert restored(event) == dumps_event(event)


def test_an_event_whose_trace_id_is_not_derived_is_stored_whole() -> None:
    assert BASE.trace_id != trace_id(BASE.event_id)
    assert stored_event(BASE) == dumps_event(BASE)
    assert restored(BASE) == dumps_event(BASE)


@given(
    st.text(max_size=12),
    st.text(max_size=12),
    st.text(max_size=40),
    st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)),
    st.integers(min_value=0, max_value=2**62),
)
def test_the_stored_form_restores_any_event(
    host: str, source: str, message: str, stamp: float | None, offset: int
) -> None:
    event = DERIVED._replace(host=host, source=source, message=message, timestamp=stamp,
                             offset=offset)  # fmt: skip
    assert restored(event) == dumps_event(event)
