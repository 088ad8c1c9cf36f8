"""Plain values that flow through the pipeline: bytes → RawEntry → LogEntry | Unparsed → Event.

The published contracts (JSON Schema) are generated from the pydantic twins in `irisd.contracts`;
inside the daemon these frozen dataclasses are what moves, because they are cheap to build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from types import MappingProxyType
from typing import Final

EMPTY_LABELS: Final = MappingProxyType({})


class Severity(IntEnum):
    """IRIS's severity digit, as written in messages.log."""

    INFO = 0
    WARNING = 1
    SEVERE = 2
    FATAL = 3


SEVERITY_NAMES: Final = ("info", "warning", "severe", "fatal")


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as cut from the byte stream: a header line and its continuation lines.

    `offset` is the byte offset of the entry's first byte and `end` the offset just past its last
    newline, so `end` is a safe checkpoint once the entry is stored. `text` is decoded UTF-8 with
    invalid bytes replaced (`decode_errors` counts them) and continuation lines joined by "\\n";
    what exceeded the per-entry caps is dropped and counted in `cut_lines` / `cut_bytes`.
    """

    offset: int
    end: int
    text: str
    lines: int = 1
    cut_lines: int = 0
    cut_bytes: int = 0
    truncated: bool = False
    decode_errors: int = 0


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A parsed messages.log entry. `timestamp` is timezone-aware (the host's zone applied)."""

    timestamp: datetime
    pid: int
    severity: Severity
    category: str | None
    text: str
    offset: int
    end: int
    repeat: int = 1
    lines: int = 1
    cut_lines: int = 0
    truncated: bool = False
    decode_errors: int = 0

    @property
    def first_line(self) -> str:
        return self.text.partition("\n")[0]


@dataclass(frozen=True, slots=True)
class Unparsed:
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


@dataclass(frozen=True, slots=True)
class Event:
    """A classified entry, ready for the outbox. `event_id` is stable across re-reads."""

    event_id: str
    trace_id: str
    host: str
    instance: str
    source: str
    offset: int
    timestamp: datetime | None
    severity: Severity
    code: str
    error_type: str
    category: str | None
    pid: int | None
    message: str
    repeat: int = 1
    labels: MappingProxyType[str, str] = field(default=EMPTY_LABELS)
