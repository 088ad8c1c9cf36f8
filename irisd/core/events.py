"""Classified entries become `Event` values with ids that survive re-reads.

`event_id` is derived from the host, the source file's identity and the entry's byte offset, so
reading the same bytes again (after a crash, a restart, a replayed checkpoint) yields the same id and
a receiver can deduplicate. `trace_id` is the W3C trace-context id that follows the event through
the daemon; it is the event id rearranged (`model.trace_id`), so it too is stable across re-reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from irisd.core.classify import UNPARSED, Classifier
from irisd.core.lines import RawEntry
from irisd.core.logline import LocalClock, header_tail, parse, parse_tail
from irisd.core.model import Classification, Event, LogEntry, Unparsed, trace_id

_MEMO_MAX: Final = 4096  # tails remembered per source (about 1.5 MiB at most)
_MEMO_TAIL_MAX: Final = 512  # longer tails (banners, dumps) are parsed each time
_Parts = tuple[str | None, str, int, Classification]  # category, message, repeat, classification
_Labels = tuple[tuple[str, str], ...]


def event_id(host: str, source: str, offset: int) -> str:
    digest = hashlib.blake2b(f"{host}\0{source}\0{offset}".encode(), digest_size=16)
    return digest.hexdigest()


class EventBuilder:
    """Parses, classifies and wraps entries of one source file. Holds the clock's DST state."""

    def __init__(
        self, *, host: str, instance: str, source: str, clock: LocalClock, classifier: Classifier
    ) -> None:
        self.host = host
        self.instance = instance
        self.source = source
        self.clock = clock
        self._classifier = classifier
        # event_id's hash with host and source already fed in: each id copies it and adds the
        # offset, the same bytes as `event_id` hashes in one go.
        self._id_base = hashlib.blake2b(f"{host}\0{source}\0".encode(), digest_size=16)
        # What follows the pid → (category, message, repeat, classification): a message seen
        # before skips the header parse and the classifier (see `logline.header_tail`).
        self._memo: dict[str, _Parts] = {}

    @property
    def classifier(self) -> Classifier:
        return self._classifier

    @classifier.setter
    def classifier(self, classifier: Classifier) -> None:
        """A reloaded rule table: what was remembered under the old one is forgotten."""
        self._classifier = classifier
        self._memo.clear()

    def build(self, raw: RawEntry) -> Event:
        """`from_entry(parse(raw))`, with the common case inlined: a well-formed header goes
        straight to an Event without the intermediate LogEntry, and a header whose message was
        seen before reuses what it gave then (this runs once per entry read)."""
        text = raw.text
        split = header_tail(text)
        known = self._tail_parts(split[1]) if split is not None else None
        if split is not None and known is not None:
            when = self.clock.to_epoch(text[:14], text[15:17], text[18:21])
            if when is not None:
                return self._make(raw.offset, when, int(split[0]), known, _labels(raw))
        # No header (the WIJ recovery block, a line without an entry before it) or a date that
        # does not exist: header_tail and parse_tail refuse exactly what parse_header refuses, so
        # the reference path says what the entry is.
        return self.from_entry(parse(raw, self.clock))

    def _tail_parts(self, tail: str) -> _Parts | None:
        """What a header's tail says, remembered by tail; None if it is not a header's tail."""
        known = self._memo.get(tail)
        if known is not None:
            return known
        fields = parse_tail(tail)
        if fields is None:
            return None
        severity, category, message, repeat = fields
        known = (category, message, repeat, self._classifier.classify(category, message, severity))
        if len(tail) <= _MEMO_TAIL_MAX:
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            self._memo[tail] = known
        return known

    def _make(
        self, offset: int, when: float | None, pid: int | None, parts: _Parts, labels: _Labels
    ) -> Event:
        """The one place an Event is put together, for `build` and `from_entry` alike."""
        category, message, repeat, c = parts
        hasher = self._id_base.copy()
        hasher.update(b"%d" % offset)
        eid = hasher.hexdigest()
        return Event(eid, trace_id(eid), self.host, self.instance, self.source, offset, when,
                     c.severity, c.code, c.error_type, category, pid, message, repeat,
                     labels)  # fmt: skip

    def from_entry(self, entry: LogEntry | Unparsed) -> Event:
        """The reference path: an entry `parse` gave, classified and wrapped."""
        if isinstance(entry, Unparsed):
            parts: _Parts = (None, entry.raw, 1, UNPARSED)
            return self._make(entry.offset, None, None, parts, (("reason", entry.reason),))
        c = self._classifier.classify(entry.category, entry.text, entry.severity)
        parts = (entry.category, entry.text, entry.repeat, c)
        return self._make(entry.offset, entry.timestamp, entry.pid, parts, _labels(entry))


@dataclass(slots=True)
class Tally:
    """What a batch of entries and the events built from them add to a tailer's counters."""

    lines: int = 0
    decode_errors: int = 0
    cut_lines: int = 0
    unparsed: int = 0
    by_code: dict[tuple[str, int], int] = field(default_factory=dict)  # occurrences (repeats)


def tally(raws: Sequence[RawEntry], events: Sequence[Event]) -> Tally:
    """Count a batch once per entry read, here in the compiled hot path rather than in the
    tailer's loop: occurrences by (code, severity), with IRIS's repeat counts added."""
    t = Tally()
    for raw in raws:
        t.lines += raw.lines
        t.decode_errors += raw.decode_errors
        t.cut_lines += raw.cut_lines
    by_code = t.by_code
    for e in events:
        key = (e.code, int(e.severity))
        by_code[key] = by_code.get(key, 0) + e.repeat
        if e.code == UNPARSED.code:
            t.unparsed += 1
    return t


def _labels(entry: LogEntry | RawEntry) -> _Labels:
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
