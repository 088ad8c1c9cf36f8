"""Bytes in, entries out: cut a messages.log byte stream into entries (header + continuation lines).

Theory of operation
-------------------
IRIS writes one *entry* per header line (`MM/DD/YY-HH:MM:SS:mmm (pid) S [Category] text`); lines that do
not start with a timestamp continue the entry before them (banners, journal messages, process dumps).
The WIJ recovery program writes a timestamp-less block that starts `*** Recovery started at …`; that
line starts an entry of its own.

`LineAssembler.feed(data)` takes any slice of the stream and returns the entries it completed. An entry
is complete only when the next entry's first line has arrived, because until then more continuation
lines may follow; `flush()` closes the open entry (the tailer calls it once the file has been quiet for
a linger interval, and at end of input). Invariants:

* Feeding the same bytes in any chunking (one byte at a time included) yields the same entries.
* A partial last line (no newline yet) is never emitted by `feed` or `flush()`; only
  `flush(final=True)` (a rotated-away file read to its end) emits it.
* Offsets are file byte offsets. `RawEntry.end` is where the next entry starts, so after an entry is
  stored, `end` is a safe checkpoint: restarting there reads nothing twice and skips nothing.
* Memory is bounded: a line longer than `max_line_bytes` keeps its first `max_line_bytes` bytes and is
  flagged `truncated`; an entry keeps at most `max_entry_lines` lines and `max_entry_bytes` bytes, and
  counts what it cut. Nothing here raises on input: every byte ends up in some entry or is counted.
* Invalid UTF-8 is replaced (U+FFFD) and counted per entry.

The common case (an entry wholly inside one fed chunk, under the caps) takes a fast path that slices
the chunk once; only the entry still open at the end of a chunk is accumulated piece by piece.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, NamedTuple

# A line starts an entry if it starts with an IRIS timestamp or with the WIJ recovery banner.
# The literal "\n" prefix lets the regex engine skip ahead with a fast character search.
_TIMESTAMP: Final = rb"\d\d/\d\d/\d\d-\d\d:\d\d:\d\d[:.]\d\d\d"
_RECOVERY: Final = rb"\*\*\* Recovery started"
_NEXT_START: Final = re.compile(rb"\n(?=" + _TIMESTAMP + rb"|" + _RECOVERY + rb")")
_IS_START: Final = re.compile(_TIMESTAMP + rb"|" + _RECOVERY)
# The same two patterns, public for the summary scanner, which finds entries the same way.
NEXT_ENTRY_START: Final = _NEXT_START
ENTRY_START: Final = _IS_START
_REPLACEMENT: Final = "\ufffd"
_REPLACEMENT_BYTES: Final = _REPLACEMENT.encode()


class RawEntry(NamedTuple):
    """One entry cut from the stream. A NamedTuple, not a dataclass: one is built per entry on the
    hot path, and tuple construction is several times cheaper than a frozen dataclass."""

    offset: int
    end: int
    text: str
    lines: int = 1
    cut_lines: int = 0
    cut_bytes: int = 0
    truncated: bool = False
    decode_errors: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    max_line_bytes: int = 64 * 1024
    max_entry_lines: int = 200
    max_entry_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if min(self.max_line_bytes, self.max_entry_lines, self.max_entry_bytes) < 1:
            raise ValueError("limits must be positive")


@dataclass(slots=True)
class _Open:
    """The entry still receiving continuation lines."""

    offset: int
    parts: list[bytes] = field(default_factory=list)
    kept_bytes: int = 0
    kept_lines: int = 0
    lines: int = 0
    cut_lines: int = 0
    cut_bytes: int = 0
    truncated: bool = False
    end: int = 0


def decode(data: bytes) -> tuple[str, int]:
    """UTF-8 with invalid bytes replaced; returns the text and how many replacements were made."""
    try:
        return data.decode(), 0
    except UnicodeDecodeError:
        text = data.decode(errors="replace")
        return text, text.count(_REPLACEMENT) - data.count(_REPLACEMENT_BYTES)


def _clean(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text.rstrip()


class LineAssembler:
    """Feed bytes, get `RawEntry` values. See the module docstring for the invariants."""

    def __init__(self, *, offset: int = 0, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._fast_max = min(self.limits.max_line_bytes, self.limits.max_entry_bytes)
        self._open: _Open | None = None
        self._partial = b""  # the incomplete last line, at most max_line_bytes of it
        self._partial_offset = offset
        self._partial_dropped = 0  # bytes of an over-long incomplete line beyond max_line_bytes
        self.truncated_lines = 0

    @property
    def pending_offset(self) -> int:
        """Offset of the first byte not yet returned in an entry: a safe restart point."""
        return self._open.offset if self._open is not None else self._partial_offset

    @property
    def has_open_entry(self) -> bool:
        return self._open is not None

    @property
    def position(self) -> int:
        """Offset just past the last byte fed."""
        return self._partial_offset + len(self._partial) + self._partial_dropped

    def feed(self, data: bytes) -> list[RawEntry]:
        out: list[RawEntry] = []
        if self._partial_dropped:
            nl = data.find(b"\n")
            if nl < 0:
                self._partial_dropped += len(data)
                return out
            end = self.position + nl + 1
            self._end_overlong_line(end, out)
            data = data[nl + 1 :]
        buf = self._partial + data if self._partial else data
        nl = buf.rfind(b"\n")
        if nl < 0:
            self._keep_partial(buf)
            return out
        offset = self._partial_offset
        self._partial_offset = offset + nl + 1
        self._partial = b""
        self._keep_partial(buf[nl + 1 :])
        self._split(buf[: nl + 1], offset, out)
        return out

    def flush(self, *, final: bool = False) -> list[RawEntry]:
        """Close the open entry. With `final`, an incomplete last line is emitted too."""
        out: list[RawEntry] = []
        if final and (self._partial or self._partial_dropped):
            self._end_overlong_line(self.position, out)
        if self._open is not None:
            out.append(self._close(self._open))
            self._open = None
        return out

    # -- the incomplete last line --------------------------------------------------------------

    def _keep_partial(self, rest: bytes) -> None:
        cap = self.limits.max_line_bytes
        if len(rest) > cap:
            self._partial_dropped = len(rest) - cap
            self._partial = rest[:cap]
            self.truncated_lines += 1
        else:
            self._partial = rest

    def _end_overlong_line(self, end: int, out: list[RawEntry]) -> None:
        """The held line is complete (or final): pass its kept head on as one line ending at `end`."""
        line, offset, truncated = (
            self._partial + b"\n",
            self._partial_offset,
            self._partial_dropped > 0,
        )
        self._partial, self._partial_dropped, self._partial_offset = b"", 0, end
        if _IS_START.match(line):
            self._start(offset, out)
        elif self._open is None:  # a continuation with nothing to continue: it opens an entry
            self._open = _Open(offset)
        assert self._open is not None
        self._append(self._open, line, end, truncated=truncated)

    # -- complete lines ------------------------------------------------------------------------

    def _split(self, chunk: bytes, offset: int, out: list[RawEntry]) -> None:
        starts = [m.end() for m in _NEXT_START.finditer(chunk)]
        if _IS_START.match(chunk):
            starts.insert(0, 0)
        head_end = starts[0] if starts else len(chunk)
        if head_end:
            self._continue(chunk[:head_end], offset)
        if not starts:
            return
        if self._open is not None:
            out.append(self._close(self._open))
            self._open = None
        last = len(starts) - 1
        for i, start in enumerate(starts):
            if i < last:
                out.append(self._entry(chunk[start : starts[i + 1]], offset + start))
            else:
                self._open = _Open(offset + start)
                self._append(self._open, chunk[start:], offset + len(chunk))

    def _continue(self, seg: bytes, offset: int) -> None:
        # Continuation lines with nothing to continue (start of input, or after a flush) open an
        # entry of their own, held open like any other so that later ones join it in any chunking.
        if self._open is None:
            self._open = _Open(offset)
        self._append(self._open, seg, offset + len(seg))

    def _start(self, offset: int, out: list[RawEntry]) -> None:
        if self._open is not None:
            out.append(self._close(self._open))
        self._open = _Open(offset)

    def _entry(self, seg: bytes, offset: int) -> RawEntry:
        lines = seg.count(b"\n")
        if len(seg) <= self._fast_max and lines <= self.limits.max_entry_lines:
            text, errors = decode(seg)
            return RawEntry(offset, offset + len(seg), _clean(text), lines, 0, 0, False, errors)
        entry = _Open(offset)
        self._append(entry, seg, offset + len(seg))
        return self._close(entry)

    def _append(self, entry: _Open, seg: bytes, end: int, *, truncated: bool = False) -> None:
        limits = self.limits
        lines = seg.count(b"\n")
        entry.lines += lines
        entry.end = end
        if truncated:
            entry.truncated = True
        if (
            len(seg) <= limits.max_line_bytes
            and entry.kept_bytes + len(seg) <= limits.max_entry_bytes
            and entry.kept_lines + lines <= limits.max_entry_lines
        ):
            entry.parts.append(seg)
            entry.kept_bytes += len(seg)
            entry.kept_lines += lines
            return
        pos, bulk_checked = 0, False
        while pos < len(seg):
            if entry.kept_lines >= limits.max_entry_lines and not bulk_checked:
                # Nothing more will be kept: count the rest in one go unless a line in it is
                # over-long (that line must be flagged, exactly as if fed line by line).
                bulk_checked = True
                rest = seg[pos:]
                if not self._has_overlong(rest):
                    entry.cut_lines += rest.count(b"\n")
                    entry.cut_bytes += len(rest)
                    return
            nl = seg.index(b"\n", pos)
            self._append_line(entry, seg[pos:nl])
            pos = nl + 1

    def _has_overlong(self, data: bytes) -> bool:
        """Whether `data` (starting at a line's start) holds a line of more than max_line_bytes.
        Each step looks at the next max_line_bytes + 1 bytes from a line start: without a
        newline among them that line is over-long; else every line up to the last newline found
        fits, and the next step starts after it. A dump of thousands of short lines takes one
        step per 64 KiB, not one per line."""
        cap = self.limits.max_line_bytes
        pos, size = 0, len(data)
        while size - pos > cap:
            nl = data.rfind(b"\n", pos, pos + cap + 1)
            if nl < 0:
                return True
            pos = nl + 1
        return False

    def _append_line(self, entry: _Open, line: bytes) -> None:
        limits = self.limits
        if len(line) > limits.max_line_bytes:
            line = line[: limits.max_line_bytes]
            entry.truncated = True
            self.truncated_lines += 1
        size = len(line) + 1
        fits = entry.kept_lines < limits.max_entry_lines and (
            entry.kept_bytes + size <= limits.max_entry_bytes or entry.kept_lines == 0
        )
        if fits:
            entry.parts.append(line + b"\n")
            entry.kept_bytes += size
            entry.kept_lines += 1
        else:
            entry.cut_lines += 1
            entry.cut_bytes += size

    @staticmethod
    def _close(entry: _Open) -> RawEntry:
        text, errors = decode(b"".join(entry.parts))
        return RawEntry(
            entry.offset,
            entry.end,
            _clean(text),
            entry.lines,
            entry.cut_lines,
            entry.cut_bytes,
            entry.truncated,
            errors,
        )


def assemble(data: bytes, *, limits: Limits | None = None) -> list[RawEntry]:
    """Every entry of a complete byte string (a whole file, read to its end), last line too."""
    assembler = LineAssembler(limits=limits)
    return assembler.feed(data) + assembler.flush(final=True)
