"""Counting a whole messages.log for `irisd classify --summary`, at the speed an operator expects.

Theory of operation
-------------------
The reference is `summarize`: entries from `LineAssembler`, each taken through the same header parse
and classifier as the daemon's `EventBuilder.build`, counted by code and severity. Its counts equal
what the daemon would store for the same bytes (tests/test_offline.py holds them equal).

`Scanner` gets the same counts without building an entry per log entry. Each chunk is joined to the
bytes carried from the previous one, and one regex pass finds where entries start (the assembler's
own pattern). The entries wholly inside the buffer form a *region*; the last one, which more
continuation lines may still extend, is carried to the next chunk. A region that is ASCII without
CR, whose entries are all under the assembler's caps, is exactly the case the assembler handles by
slicing and stripping, so the scanner slices the decoded region itself and classifies each slice.
Anything else (non-ASCII or CRLF text, an entry over a cap, the continuation lines before a file's
first header, the carried entry at the end) goes through the reference path unchanged. An entry
carried past `carry_max` bytes (a dump of many MiB) switches the rest of the file to the reference
path, so memory stays bounded and no buffer is rescanned over and over.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from irisd.core.classify import Classifier, key_of
from irisd.core.lines import ENTRY_START, NEXT_ENTRY_START, Limits, LineAssembler, RawEntry
from irisd.core.logline import LocalClock, header_tail, parse_header
from irisd.core.model import SEVERITY_NAMES, Classification, LogEntry
from irisd.core.pipeline import classify_entry


class Summary:
    """The counts of `irisd classify --summary` (see `document` for the published form)."""

    def __init__(self) -> None:
        self.files = self.lines = self.bytes = self.entries = self.unparsed = 0
        self.occurrences = self.decode_errors = self.cut_lines = self.truncated_entries = 0
        self.by_code: dict[str, int] = {}
        self.by_severity = [0, 0, 0, 0]

    def add(self, code: str, severity: int, repeat: int) -> None:
        self.by_code[code] = self.by_code.get(code, 0) + repeat
        self.by_severity[severity] += repeat
        self.occurrences += repeat

    def raw(self, raws: Sequence[RawEntry]) -> None:
        self.entries += len(raws)
        for r in raws:
            self.lines += r.lines
            if r.decode_errors or r.cut_lines or r.truncated:
                self.decode_errors += r.decode_errors
                self.cut_lines += r.cut_lines
                self.truncated_entries += r.truncated

    def document(self) -> dict[str, object]:
        return {
            "files": self.files,
            "lines": self.lines,
            "bytes": self.bytes,
            "entries": self.entries,
            "unparsed": self.unparsed,
            "occurrences": self.occurrences,
            "by_code": dict(sorted(self.by_code.items())),
            "by_severity": dict(zip(SEVERITY_NAMES, self.by_severity, strict=True)),
            "decode_errors": self.decode_errors,
            "cut_lines": self.cut_lines,
            "truncated_entries": self.truncated_entries,
        }


class _Tally:
    """Occurrences per Classification object, by identity: hashing the frozen dataclass by its
    fields would cost more than the rest of the loop. Equal ones from different cache entries
    add up when folded into the summary."""

    def __init__(self) -> None:
        self.counts: dict[int, tuple[Classification, int]] = {}

    def add(self, c: Classification, repeat: int) -> None:
        seen = self.counts.get(id(c))
        self.counts[id(c)] = (c, repeat if seen is None else seen[1] + repeat)

    def fold(self, summary: Summary) -> None:
        for c, n in self.counts.values():
            summary.add(c.code, c.severity, n)


def summarize(
    raws: Sequence[RawEntry], clock: LocalClock, classifier: Classifier, summary: Summary
) -> None:
    """The reference: count `raws` as the daemon would store them (what `EventBuilder.build`
    does, minus what counting does not need: ids, timestamps beyond their validity, JSON)."""
    summary.raw(raws)
    tally = _Tally()
    for raw in raws:
        tally.add(*_classify(raw.text, raw, clock, classifier, summary))
    tally.fold(summary)


def _classify(
    text: str,
    raw: RawEntry | None,
    clock: LocalClock,
    classifier: Classifier,
    summary: Summary,
) -> tuple[Classification, int]:
    header = parse_header(text)
    if isinstance(header, str) or not clock.valid_minute(header.minute):
        # The WIJ recovery banner, or an entry that does not parse (bad header or date).
        entry, c = classify_entry(raw or RawEntry(0, 0, text), clock, classifier)
        if isinstance(entry, LogEntry):
            return c, entry.repeat
        summary.unparsed += 1
        return c, 1
    key = key_of(header.category, header.message)
    return classifier.classify_key(key, header.severity), header.repeat


_MEMO_MAX = 16384
_MEMO_TAIL_MAX = 512


def _invalid_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return True
    return False


class Scanner:
    """Feed a file's bytes in chunks, then `finish()`: the same counts as `summarize` over the
    file's entries. See the module docstring."""

    def __init__(
        self,
        clock: LocalClock,
        classifier: Classifier,
        summary: Summary,
        *,
        limits: Limits | None = None,
        carry_max: int = 4 << 20,
    ) -> None:
        self.clock = clock
        self.classifier = classifier
        self.summary = summary
        self.limits = limits or Limits()
        self.carry_max = carry_max
        self._carry = b""
        self._slow: LineAssembler | None = None
        self._memo: dict[str, tuple[Classification, int]] = {}

    def feed(self, chunk: bytes) -> None:
        self.summary.bytes += len(chunk)
        if self._slow is not None:
            self._reference(self._slow.feed(chunk))
            return
        buf = self._carry + chunk if self._carry else chunk
        starts = [m.end() for m in NEXT_ENTRY_START.finditer(buf)]
        if ENTRY_START.match(buf):
            starts.insert(0, 0)
        if starts:
            if starts[0] > 0:  # only at a file's head: continuation lines with no header
                self._reference_bytes(buf[: starts[0]])
            self._region(buf[starts[0] : starts[-1]], starts)
            buf = buf[starts[-1] :]
        self._carry = buf
        if len(buf) > self.carry_max:
            self._slow = LineAssembler(limits=self.limits)
            self._carry = b""
            self._reference(self._slow.feed(buf))

    def finish(self) -> None:
        assembler = self._slow or LineAssembler(limits=self.limits)
        tail = assembler.feed(self._carry) if self._carry else []
        self._reference(tail + assembler.flush(final=True))
        self._carry, self._slow = b"", None

    def _region(self, region: bytes, starts: list[int]) -> None:
        """The entries from `starts[0]` up to `starts[-1]`; each one that is the simple case is
        decoded and classified here, any other goes through the reference path on its own."""
        fast_max = min(self.limits.max_line_bytes, self.limits.max_entry_bytes)
        max_lines = self.limits.max_entry_lines
        small = min(fast_max, max_lines)  # so few bytes cannot hold too many lines or bytes
        plain = region.isascii() and b"\r" not in region
        whole = region.decode("ascii") if plain else ""
        texts: list[str] = []
        slow_lines = 0
        base = starts[0]
        for start, end in pairwise(starts):
            if plain and end - start <= small:  # the common case, in one comparison
                texts.append(whole[start - base : end - base].rstrip())
                continue
            seg = region[start - base : end - base]
            if (
                end - start > fast_max
                or (end - start > max_lines and seg.count(b"\n") > max_lines)
                or b"\r" in seg
                or (not seg.isascii() and _invalid_utf8(seg))
            ):
                self._reference_bytes(seg)
                slow_lines += seg.count(b"\n")
            else:
                texts.append(seg.decode().rstrip())
        self._count(texts)
        self.summary.entries += len(texts)
        self.summary.lines += region.count(b"\n") - slow_lines

    def _count(self, texts: list[str]) -> None:
        """`summarize`'s loop over entry texts, with every lookup bound once, and a memo of what
        follows the pid (`logline.header_tail`, which checks the prefix's shape): severity,
        category and message decide the classification and the repeat count, so an entry whose
        tail was seen before skips the header parse; its date's validity is still checked. Only
        short tails are kept, so the memo stays small."""
        summary, clock, classifier = self.summary, self.clock, self.classifier
        valid_minute, classify_key, memo = clock.valid_minute, classifier.classify_key, self._memo
        counts: dict[int, int] = {}
        seen: dict[int, Classification] = {}
        for text in texts:
            split = header_tail(text, cut=True)
            tail = split[1] if split is not None else None
            known = memo.get(tail) if tail is not None else None
            if known is not None and valid_minute(text[:14]):
                c, repeat = known
            else:
                h = parse_header(text)
                if isinstance(h, str) or not valid_minute(h.minute):
                    c, repeat = _classify(text, None, clock, classifier, summary)
                else:
                    c = classify_key(key_of(h.category, h.message), h.severity)
                    repeat = h.repeat
                    if tail is not None and len(tail) <= _MEMO_TAIL_MAX:
                        if len(memo) >= _MEMO_MAX:
                            memo.clear()
                        memo[tail] = (c, repeat)
            cid = id(c)
            if cid in counts:
                counts[cid] += repeat
            else:
                counts[cid] = repeat
                seen[cid] = c
        for cid, n in counts.items():
            summary.add(seen[cid].code, seen[cid].severity, n)

    def _reference_bytes(self, data: bytes) -> None:
        assembler = LineAssembler(limits=self.limits)
        self._reference(assembler.feed(data) + assembler.flush())

    def _reference(self, raws: list[RawEntry]) -> None:
        summarize(raws, self.clock, self.classifier, self.summary)
