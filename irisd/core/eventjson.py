"""The one JSON form of an `Event`, shared by the API, every sink, the jsonl file and the outbox.

Keys, in this order: event_id, trace_id, host, instance, source, offset, timestamp (ISO 8601 in
UTC with milliseconds and a `Z`, or null), severity (0-3), severity_name, code, error_type,
category, pid, message, repeat, labels. `event_from_dict` reads it back, so a round trip gives
an equal event (timestamps to the millisecond, which is what messages.log records).

The events table stores `stored_event`: this form less what the row keeps in columns of its own
(event id, offset, timestamp) and the trace id derived from the event id, about a third of the
bytes. `restore_event` puts them back, byte for byte what `dumps_event` writes. A stored form
starts with `"host"`, the whole form with `{`, so rows of both kinds read back alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from irisd.core.model import SEVERITY_NAMES, Event, Severity, iso, trace_id

JsonObject = dict[str, object]
_q: Callable[[str], str] = encode_basestring  # a JSON string literal, as json.dumps writes it


def event_to_dict(event: Event) -> JsonObject:
    return {
        "event_id": event.event_id,
        "trace_id": event.trace_id,
        "host": event.host,
        "instance": event.instance,
        "source": event.source,
        "offset": event.offset,
        "timestamp": iso(event.timestamp),
        "severity": int(event.severity),
        "severity_name": SEVERITY_NAMES[event.severity],
        "code": event.code,
        "error_type": event.error_type,
        "category": event.category,
        "pid": event.pid,
        "message": event.message,
        "repeat": event.repeat,
        "labels": dict(event.labels),
    }


def dumps_event(event: Event) -> str:
    """Compact JSON of `event_to_dict(event)`, non-ASCII kept as UTF-8, byte for byte what
    `json.dumps(..., ensure_ascii=False, separators=(",", ":"))` writes (a test holds it to
    that). Joined from its pieces because it runs once per stored event: four times as fast as
    json.dumps, and a `%` template parses itself on every call where a join does not. The
    runs of fields that repeat from event to event (host, instance, source; severity, code,
    error type, category) are rendered once and kept."""
    e = event
    return "".join(
        (
            '{"event_id":',
            _q(e.event_id),
            ',"trace_id":',
            _q(e.trace_id),
            ",",
            _origin(e),
            ',"offset":',
            str(e.offset),
            ',"timestamp":',
            _timestamp(e.timestamp),
            ",",
            _rest(e),
        )
    )


def stored_event(event: Event) -> str:
    """What the events table keeps of `dumps_event(event)`, given the row's event id, offset and
    timestamp columns: the origin (host, instance, source) and everything from the severity on.
    An event whose trace id is not the one its event id gives is kept whole."""
    e = event
    if e.trace_id != trace_id(e.event_id):
        return dumps_event(e)
    return "".join((_origin(e), ",", _rest(e)))


def restore_event(stored: str, event_id: str, offset: int, timestamp: float | None) -> str:
    """`dumps_event` of the event whose row holds `stored` and these columns."""
    if stored[:1] == "{":
        return stored
    # JSON strings escape every quote, so `,"severity":` first occurs where the origin ends.
    cut = stored.index(_AFTER_ORIGIN)
    return "".join(
        (
            '{"event_id":',
            _q(event_id),
            ',"trace_id":',
            _q(trace_id(event_id)),
            ",",
            stored[:cut],
            ',"offset":',
            str(offset),
            ',"timestamp":',
            _timestamp(timestamp),
            stored[cut:],
        )
    )


_AFTER_ORIGIN = ',"severity":'


def _origin(e: Event) -> str:
    origin = (e.host, e.instance, e.source)
    return _ORIGINS.get(origin) or _remember(_ORIGINS, origin, _ORIGIN % tuple(map(_q, origin)))


def _timestamp(timestamp: float | None) -> str:
    return "null" if timestamp is None else f'"{iso(timestamp)}"'


def _rest(e: Event) -> str:
    """From the severity to the end."""
    kind = (e.severity, e.code, e.error_type, e.category)
    return "".join(
        (
            _KINDS.get(kind) or _remember(_KINDS, kind, _kind(*kind)),
            ',"pid":',
            "null" if e.pid is None else str(e.pid),
            ',"message":',
            _quote_message(e.message),
            ',"repeat":',
            str(e.repeat),
            ',"labels":{',
            ",".join(f"{_q(k)}:{_q(v)}" for k, v in dict(e.labels).items()) if e.labels else "",
            "}}",
        )
    )


_ORIGIN = '"host":%s,"instance":%s,"source":%s'
_ORIGINS: dict[tuple[str, str, str], str] = {}
_KINDS: dict[tuple[int, str, str, str | None], str] = {}


def _kind(severity: int, code: str, error_type: str, category: str | None) -> str:
    cat = "null" if category is None else _q(category)
    return (
        f'"severity":{severity:d},"severity_name":"{SEVERITY_NAMES[severity]}",'
        f'"code":{_q(code)},"error_type":{_q(error_type)},"category":{cat}'
    )


_MESSAGES: dict[str, str] = {}
_MESSAGE_KEEP = 512  # messages up to this long are remembered quoted: in a log most repeat


def _quote_message(message: str) -> str:
    if len(message) > _MESSAGE_KEEP:
        return _q(message)
    return _MESSAGES.get(message) or _remember(_MESSAGES, message, _q(message))


def _remember(cache: dict[Any, str], key: Any, text: str) -> str:
    if len(cache) >= 4096:
        cache.clear()
    cache[key] = text
    return text


def parse_timestamp(text: str) -> float:
    """ISO 8601 with a zone → POSIX seconds; exact to the millisecond `iso` writes."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no zone")
    return moment.timestamp()


def event_from_dict(data: Mapping[str, object]) -> Event:
    """The inverse of `event_to_dict`; raises KeyError, TypeError or ValueError if malformed."""
    stamp = data["timestamp"]
    labels = data.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise TypeError("labels must be an object")
    return Event(
        event_id=_str(data, "event_id"),
        trace_id=_str(data, "trace_id"),
        host=_str(data, "host"),
        instance=_str(data, "instance"),
        source=_str(data, "source"),
        offset=_int(data, "offset"),
        timestamp=None if stamp is None else parse_timestamp(str(stamp)),
        severity=Severity(_int(data, "severity")),
        code=_str(data, "code"),
        error_type=_str(data, "error_type"),
        category=None if data.get("category") is None else _str(data, "category"),
        pid=None if data.get("pid") is None else _int(data, "pid"),
        message=_str(data, "message"),
        repeat=_int(data, "repeat"),
        labels=tuple((str(k), str(v)) for k, v in labels.items()),
    )


def loads_event(text: str | bytes) -> Event:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise TypeError("an event is a JSON object")
    return event_from_dict(data)


def _str(data: Mapping[str, object], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string")
    return value


def _int(data: Mapping[str, object], key: str) -> int:
    value = data[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{key} must be an integer")
    return value
