"""Plain values that flow through the pipeline: RawEntry (`core.lines`) → LogEntry | Unparsed → Event.

The values built once per log entry (`RawEntry`, `LogEntry`, `Event`) are NamedTuples rather than
frozen dataclasses: both are immutable, but a NamedTuple is built about five times faster, and the
pipeline builds hundreds of thousands per second. Timestamps are POSIX seconds (UTC) as floats for
the same reason; `iso()` renders them. The published contracts (JSON Schema) are the pydantic
models in `irisd.contracts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Final, NamedTuple


class Severity(IntEnum):
    """IRIS's severity digit, as written in messages.log."""

    INFO = 0
    WARNING = 1
    SEVERE = 2
    FATAL = 3


SEVERITY_NAMES: Final = ("info", "warning", "severe", "fatal")


def iso(ts: float | None) -> str | None:
    """POSIX seconds → ISO 8601 UTC with milliseconds, e.g. 2025-11-14T07:45:55.657Z.

    The same text as `datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")` (a
    property test holds it to that): the fraction is rounded to microseconds half to even, as
    CPython does, then cut to milliseconds. It runs once per stored event, so only the date
    comes from `datetime` (once per day seen, cached); the time of day is arithmetic, since a
    POSIX day is 86,400 seconds. (A cache by the second missed on most entries of a real log,
    whose entries are seconds apart, and was half the time of an event's JSON.)
    """
    if ts is None:
        return None
    fraction, whole = _modf(ts)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    day, second = divmod(int(whole), 86_400)
    date = _ISO_DAYS.get(day)
    if date is None:
        if len(_ISO_DAYS) >= _ISO_DAYS_MAX:
            _ISO_DAYS.clear()
        date = _ISO_DAYS[day] = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
    hour, minute = divmod(second // 60, 60)
    return f"{date}T{_TWO[hour]}:{_TWO[minute]}:{_TWO[second % 60]}{_MILLIS[micros // 1000]}"


_modf: Final = math.modf
_MILLIS: Final = tuple(f".{ms:03d}Z" for ms in range(1000))  # half the cost of a format spec
_TWO: Final = tuple(f"{n:02d}" for n in range(60))
_ISO_DAYS: dict[int, str] = {}
_ISO_DAYS_MAX: Final = 64  # events come in log order: the last few days are the ones hit again


class LogEntry(NamedTuple):
    """A parsed messages.log entry. `timestamp` is POSIX seconds: the host's zone already applied."""

    timestamp: float
    pid: int | None  # None for the timestamp-less WIJ recovery block
    severity: Severity
    category: str | None
    text: str  # the message, continuation lines joined by "\n", repeat suffix removed
    offset: int
    end: int
    repeat: int = 1  # IRIS's "...(repeated N times)": this entry stands for N occurrences
    lines: int = 1
    cut_lines: int = 0
    truncated: bool = False
    decode_errors: int = 0


class Unparsed(NamedTuple):
    """An entry irisd could not parse. Kept and published, never dropped."""

    raw: str
    reason: str
    offset: int
    end: int
    lines: int = 1
    truncated: bool = False
    decode_errors: int = 0


@dataclass(frozen=True, slots=True)
class Classification:
    """What the rule table says about one message shape."""

    code: str
    error_type: str
    severity: Severity
    rule: str


class Event(NamedTuple):
    """A classified entry, ready for the outbox. `event_id` is stable across re-reads."""

    event_id: str
    trace_id: str
    host: str
    instance: str
    source: str
    offset: int
    timestamp: float | None
    severity: Severity
    code: str
    error_type: str
    category: str | None
    pid: int | None
    message: str
    repeat: int = 1
    labels: tuple[tuple[str, str], ...] = ()


def trace_id(event_id: str) -> str:
    """An event's 32-hex W3C trace id: its event id (itself a hash) with the halves swapped, so
    it differs from the event id and costs no second hash on a path that runs once per entry
    read. Never all zeros (the spec forbids it). The events table leans on this: a row keeps no
    trace id of its own (`eventjson.stored_event`)."""
    trace = event_id[16:] + event_id[:16]
    return trace if trace != _ZERO_TRACE else "0" * 31 + "1"


_ZERO_TRACE: Final = "0" * 32
