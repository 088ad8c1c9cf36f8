"""Parse one messages.log entry (a `RawEntry` from `core.lines`) into a `LogEntry`, or say why not.

The grammar (FACTS.md §1.2): `MM/DD/YY-HH:MM:SS:mmm (pid) S [Category.Sub] text`, the category optional
and possibly containing spaces (`[SYSTEM MONITOR]`). Timestamps are the host's local time without a
zone; `LocalClock` applies a zone, including the hour that repeats when daylight saving time ends.
IRIS folds repeats of a message into one entry ending `...(repeated N times)`; the suffix is removed
and N becomes `repeat`. The WIJ recovery program's block (`*** Recovery started at Fri Nov 14 09:46:08
2025`) has no header; it parses as an entry of its own with no pid.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Final, NamedTuple

from irisd.core.lines import RawEntry
from irisd.core.model import LogEntry, Severity, Unparsed

_HEADER: Final = re.compile(
    r"(\d\d/\d\d/\d\d-\d\d:\d\d):(\d\d)[:.](\d\d\d) \((\d+)\) ([0-3])(?: |$)(?:\[([^\]\n]*)\] ?)?"
)
# The part of a header line before the severity: timestamp and pid, as `_HEADER` reads them.
_PREFIX: Final = re.compile(r"\d\d/\d\d/\d\d-\d\d:\d\d:\d\d[:.]\d\d\d \(\d+\) ")
# Minutes a LocalClock keeps resolved. Entries come in log order, so only the last few are hit
# again; a backlog would otherwise fill thousands with minutes it has passed (about 0.7 MiB).
_MINUTES_MAX: Final = 256
_REPEATED: Final = re.compile(r"\.\.\.\(repeated (\d+) times\)$")
_RECOVERY: Final = re.compile(
    r"\*\*\* Recovery started at \w{3} (\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\d{4})"
)
_MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_SEVERITY: Final = {str(int(s)): s for s in Severity}


class Header(NamedTuple):
    """A header line's fields, before the timestamp is given a zone (cheap; the summary uses it)."""

    minute: str  # "MM/DD/YY-HH:MM", the key LocalClock caches on
    second: str  # "SS"; digits, converted only by those who need them
    millisecond: str  # "mmm"
    pid: str
    severity: Severity
    category: str | None
    message: str  # the text after the header, continuation lines included, repeat suffix removed
    repeat: int


def parse_header(text: str) -> Header | str:
    """Split an entry's text into header fields; on failure return the reason as a string."""
    m = _HEADER.match(text)
    if m is None:
        return _reason(text)
    minute, second, ms, pid, sev, category = m.groups()
    message, repeat = _message(text[m.end() :])
    return Header(minute, second, ms, pid, _SEVERITY[sev], category, message, repeat)


def _message(rest: str) -> tuple[str, int]:
    """(message, repeat) from what follows a header's category: IRIS's repeat suffix taken off."""
    if rest[:1] == "\n":  # an empty header line: the message is the banner that follows
        rest = rest[1:]
    if rest.endswith(" times)"):
        r = _REPEATED.search(rest)
        if r is not None:
            return rest[: r.start()], int(r.group(1))
    return rest, 1


def parse_tail(tail: str) -> tuple[Severity, str | None, str, int] | None:
    """(severity, category, message, repeat) from what follows `(pid) ` (`header_tail`'s tail),
    exactly as `parse_header` reads that part; None where `parse_header` would fail. String
    operations instead of a second regex over the entry: this runs once per entry whose tail
    was not seen before."""
    sev = _SEVERITY.get(tail[:1])
    if sev is None:
        return None
    if len(tail) == 1 or tail[1:] == "\n":  # `$`: the end, or before a final newline
        pos = 1
    elif tail[1] == " ":
        pos = 2
    else:
        return None
    category = None
    if tail[pos : pos + 1] == "[":
        close = tail.find("]", pos + 1)
        if close != -1 and tail.find("\n", pos + 1, close) == -1:
            category = tail[pos + 1 : close]
            pos = close + 2 if tail[close + 1 : close + 2] == " " else close + 1
    message, repeat = _message(tail[pos:])
    return sev, category, message, repeat


def header_tail(text: str, *, cut: bool = False) -> tuple[str, str] | None:
    """(pid, tail) when `text` starts like a header line up to its pid, the tail being all that
    follows `(pid) `; else None. Severity, category, message and repeat count, everything
    `parse_header` gives but the time and the pid, are a function of the tail alone, so a caller
    may remember them by tail (times are parsed from `text[:14]`, `[15:17]`, `[18:21]`).

    `cut`: the caller got `text` from `LineAssembler`'s entry-start pattern, so it starts with
    a timestamp of the header's shape or with the WIJ recovery banner; only the pid is checked.
    """
    if cut:
        if text[21:23] != " (" or text[:1] == "*":
            return None
        close = text.find(") ", 23)
        pid = text[23:close]
        return (pid, text[close + 2 :]) if close > 23 and pid.isdecimal() else None
    m = _PREFIX.match(text)
    if m is None:
        return None
    end = m.end()  # the pid starts at 23, after the timestamp (21) and " ("; ") " ends it
    return text[23 : end - 2], text[end:]


def _reason(text: str) -> str:
    if not text:
        return "empty entry"
    if not text[:1].isdigit():
        return "continuation line without a preceding entry"
    return "starts with a timestamp but the rest is not `(pid) severity [category] text`"


class LocalClock:
    """Turns IRIS's zone-less local timestamps into POSIX seconds, given the host's zone.

    Stateful only to resolve the repeated hour at the end of daylight saving time: within it, a
    timestamp that would go backwards against the previous entry is read as the second occurrence.
    """

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._minutes: dict[str, tuple[float, float] | None] = {}
        self._last = float("-inf")

    def to_epoch(self, minute: str, second: str, millisecond: str) -> float | None:
        bases = self._minutes[minute] if minute in self._minutes else self._minute_bases(minute)
        if bases is None:
            return None
        offset = int(second) + int(millisecond) / 1000
        epoch = bases[0] + offset
        if bases[1] != bases[0] and epoch < self._last - 1:
            epoch = bases[1] + offset
        self._last = epoch
        return epoch

    def valid_minute(self, minute: str) -> bool:
        """Whether "MM/DD/YY-HH:MM" is a real date and time (so `to_epoch` will not say None)."""
        bases = self._minutes[minute] if minute in self._minutes else self._minute_bases(minute)
        return bases is not None

    def _minute_bases(self, minute: str) -> tuple[float, float] | None:
        if len(self._minutes) > _MINUTES_MAX:
            self._minutes.clear()
        try:
            mo, d, y, h, mi = (int(minute[i : i + 2]) for i in (0, 3, 6, 9, 12))
            first = datetime(2000 + y, mo, d, h, mi, tzinfo=self.tz)
        except ValueError:  # 02/30/25 and the like
            self._minutes[minute] = None
            return None
        bases = (first.timestamp(), first.replace(fold=1).timestamp())
        self._minutes[minute] = bases
        return bases


def parse(raw: RawEntry, clock: LocalClock) -> LogEntry | Unparsed:
    """Parse one entry. An entry that is not IRIS's format is an `Unparsed` value, never an error."""
    header = parse_header(raw.text)
    if isinstance(header, str):
        if raw.text.startswith("*** Recovery started"):
            return _recovery(raw, clock)
        return _unparsed(raw, header)
    when = clock.to_epoch(header.minute, header.second, header.millisecond)
    if when is None:
        return _unparsed(raw, "timestamp is not a valid date")
    return LogEntry(
        when,
        int(header.pid),
        header.severity,
        header.category,
        header.message,
        raw.offset,
        raw.end,
        header.repeat,
        raw.lines,
        raw.cut_lines,
        raw.truncated,
        raw.decode_errors,
    )


def _recovery(raw: RawEntry, clock: LocalClock) -> LogEntry | Unparsed:
    m = _RECOVERY.match(raw.text)
    month = _MONTHS.get(m.group(1)) if m else None
    if m is None or month is None:
        return _unparsed(raw, "WIJ recovery banner without a readable date")
    day, hour, minute, second, year = (int(m.group(i)) for i in range(2, 7))
    key = f"{month:02d}/{day:02d}/{year % 100:02d}-{hour:02d}:{minute:02d}"
    when = clock.to_epoch(key, f"{second:02d}", "000")
    if when is None:
        return _unparsed(raw, "WIJ recovery banner with an invalid date")
    return LogEntry(
        when,
        None,
        Severity.INFO,
        None,
        raw.text,
        raw.offset,
        raw.end,
        1,
        raw.lines,
        raw.cut_lines,
        raw.truncated,
        raw.decode_errors,
    )


def _unparsed(raw: RawEntry, reason: str) -> Unparsed:
    return Unparsed(
        raw.text, reason, raw.offset, raw.end, raw.lines, raw.truncated, raw.decode_errors
    )
