"""Classified entries become `Event` values with ids that survive re-reads.

`event_id` is derived from the host, the source file's identity and the entry's byte offset, so
reading the same bytes again (after a crash, a restart, a replayed checkpoint) yields the same id and
a receiver can deduplicate. `trace_id` is the W3C trace-context id that follows the event through
the daemon; it is derived from the event id as well, so it too is stable across re-reads.
"""

from __future__ import annotations

import hashlib
from typing import Final

from irisd.core.classify import UNPARSED, Classifier
from irisd.core.lines import RawEntry
from irisd.core.logline import LocalClock, parse, parse_header
from irisd.core.model import Event, LogEntry, Unparsed

_ZERO_TRACE: Final = "0" * 32


def event_id(host: str, source: str, offset: int) -> str:
    digest = hashlib.blake2b(f"{host}\0{source}\0{offset}".encode(), digest_size=16)
    return digest.hexdigest()


def trace_id(event: str) -> str:
    """A 32-hex W3C trace id; never all zeros (the spec forbids it)."""
    digest = hashlib.blake2b(event.encode(), digest_size=16, person=b"irisd-trace").hexdigest()
    return digest if digest != _ZERO_TRACE else "0" * 31 + "1"


class EventBuilder:
    """Parses, classifies and wraps entries of one source file. Holds the clock's DST state."""

    def __init__(
        self, *, host: str, instance: str, source: str, clock: LocalClock, classifier: Classifier
    ) -> None:
        self.host = host
        self.instance = instance
        self.source = source
        self.clock = clock
        self.classifier = classifier

    def build(self, raw: RawEntry) -> Event:
        """`from_entry(parse(raw))`, with the common case inlined: a well-formed header goes
        straight to an Event without the intermediate LogEntry (this runs once per entry read)."""
        header = parse_header(raw.text)
        when = None
        if not isinstance(header, str):
            when = self.clock.to_epoch(header.minute, header.second, header.millisecond)
        if isinstance(header, str) or when is None:  # the WIJ recovery block, or unparsed
            return self.from_entry(parse(raw, self.clock))
        eid = event_id(self.host, self.source, raw.offset)
        c = self.classifier.classify(header.category, header.message, header.severity)
        return Event(eid, trace_id(eid), self.host, self.instance, self.source, raw.offset, when,
                     c.severity, c.code, c.error_type, header.category, int(header.pid),
                     header.message, header.repeat, _labels(raw))  # fmt: skip

    def from_entry(self, entry: LogEntry | Unparsed) -> Event:
        eid = event_id(self.host, self.source, entry.offset)
        if isinstance(entry, Unparsed):
            return self._unparsed(eid, entry)
        return self._event(eid, entry)

    def _event(self, eid: str, entry: LogEntry) -> Event:
        c = self.classifier.classify(entry.category, entry.text, entry.severity)
        return Event(
            eid,
            trace_id(eid),
            self.host,
            self.instance,
            self.source,
            entry.offset,
            entry.timestamp,
            c.severity,
            c.code,
            c.error_type,
            entry.category,
            entry.pid,
            entry.text,
            entry.repeat,
            _labels(entry),
        )

    def _unparsed(self, eid: str, entry: Unparsed) -> Event:
        return Event(
            eid,
            trace_id(eid),
            self.host,
            self.instance,
            self.source,
            entry.offset,
            None,
            UNPARSED.severity,
            UNPARSED.code,
            UNPARSED.error_type,
            None,
            None,
            entry.raw,
            1,
            (("reason", entry.reason),),
        )


def _labels(entry: LogEntry | RawEntry) -> tuple[tuple[str, str], ...]:
    if not (entry.cut_lines or entry.truncated or entry.decode_errors):
        return ()
    labels = []
    if entry.cut_lines:
        labels.append(("cut_lines", str(entry.cut_lines)))
    if entry.truncated:
        labels.append(("truncated", "true"))
    if entry.decode_errors:
        labels.append(("decode_errors", str(entry.decode_errors)))
    return tuple(labels)
