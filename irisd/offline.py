"""`irisd classify`: parse and classify whole files without a daemon, at the pipeline's speed.

The same assembler, parser and rule table as the daemon. `--summary` skips what counting does not
need (timestamps, event ids, JSON) but takes every entry through the same header parse and the same
classifier, so its counts equal what the daemon would record for the same bytes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import IO, Literal

from irisd.core.classify import UNPARSED, Classifier, key_of
from irisd.core.lines import LineAssembler, RawEntry
from irisd.core.logline import LocalClock, parse, parse_header
from irisd.core.model import SEVERITY_NAMES, Classification, LogEntry, iso
from irisd.errors import UsageError
from irisd.rules import build_classifier

CHUNK = 1 << 20
Mode = Literal["text", "json", "summary"]


def read_entries(path: str) -> Iterator[tuple[list[RawEntry], int]]:
    """Entries of one file (or stdin for "-"), a chunk at a time, with the bytes read."""
    assembler = LineAssembler()
    try:
        stream: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from exc
    with stream:
        while chunk := stream.read(CHUNK):
            yield assembler.feed(chunk), len(chunk)
    yield assembler.flush(final=True), 0


class Summary:
    def __init__(self) -> None:
        self.files = self.lines = self.bytes = self.entries = self.unparsed = 0
        self.occurrences = self.decode_errors = self.cut_lines = self.truncated_entries = 0
        self.by_code: dict[str, int] = {}
        self.by_severity = [0, 0, 0, 0]

    def add(self, code: str, severity: int, repeat: int) -> None:
        self.by_code[code] = self.by_code.get(code, 0) + repeat
        self.by_severity[severity] += repeat
        self.occurrences += repeat

    def raw(self, raws: Sequence[RawEntry], nbytes: int) -> None:
        self.bytes += nbytes
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


def summarize(
    raws: Sequence[RawEntry], clock: LocalClock, classifier: Classifier, summary: Summary
) -> None:
    """Count `raws` as the daemon would store them: what `EventBuilder.build` does, minus what
    counting does not need (ids, timestamps beyond their validity, JSON)."""
    classify_key = classifier.classify_key
    valid_minute = clock.valid_minute
    # Counted per Classification object (by identity: hashing the frozen dataclass by its fields
    # would cost more than the rest of the loop); equal ones from different cache entries add up.
    counts: dict[int, tuple[Classification, int]] = {}
    for raw in raws:
        header = parse_header(raw.text)
        if isinstance(header, str) or not valid_minute(header.minute):
            c, repeat = _odd_entry(raw, clock, classifier, summary)
        else:
            c = classify_key(key_of(header.category, header.message), header.severity)
            repeat = header.repeat
        seen = counts.get(id(c))
        counts[id(c)] = (c, repeat if seen is None else seen[1] + repeat)
    for c, n in counts.values():
        summary.add(c.code, c.severity, n)


def _odd_entry(
    raw: RawEntry, clock: LocalClock, classifier: Classifier, summary: Summary
) -> tuple[Classification, int]:
    """The WIJ recovery banner, or an entry that does not parse (bad header or date)."""
    entry = parse(raw, clock)
    if isinstance(entry, LogEntry):
        return classifier.classify(entry.category, entry.text, entry.severity), entry.repeat
    summary.unparsed += 1
    return UNPARSED, 1


def classify_files(
    files: Sequence[str], out: IO[str], *, zone: tzinfo, rules_dir: Path | None, mode: Mode
) -> dict[str, object]:
    classifier = build_classifier(rules_dir)
    summary = Summary()
    for path in files:
        clock = LocalClock(zone)
        summary.files += 1
        for raws, nbytes in read_entries(path):
            summary.raw(raws, nbytes)
            if mode == "summary":
                summarize(raws, clock, classifier, summary)
            else:
                _print(raws, clock, classifier, out, as_json=mode == "json", summary=summary)
    return summary.document()


def _print(
    raws: Sequence[RawEntry],
    clock: LocalClock,
    classifier: Classifier,
    out: IO[str],
    *,
    as_json: bool,
    summary: Summary,
) -> None:
    lines = []
    for raw in raws:
        entry = parse(raw, clock)
        if isinstance(entry, LogEntry):
            c = classifier.classify(entry.category, entry.text, entry.severity)
            record = {
                "timestamp": iso(entry.timestamp),
                "pid": entry.pid,
                "severity": int(c.severity),
                "category": entry.category,
                "code": c.code,
                "error_type": c.error_type,
                "message": entry.text,
                "repeat": entry.repeat,
                "offset": entry.offset,
            }
        else:
            summary.unparsed += 1
            c = UNPARSED
            record = {
                "timestamp": None,
                "pid": None,
                "severity": int(c.severity),
                "category": None,
                "code": c.code,
                "error_type": c.error_type,
                "message": entry.raw,
                "repeat": 1,
                "offset": entry.offset,
                "reason": entry.reason,
            }
        summary.add(c.code, c.severity, entry.repeat if isinstance(entry, LogEntry) else 1)
        if as_json:
            lines.append(json.dumps(record, ensure_ascii=False))
        else:
            first = str(record["message"]).partition("\n")[0]
            lines.append(f"{record['timestamp'] or '-':24} {c.severity} {c.code:28} {first}")
    if lines:
        out.write("\n".join(lines) + "\n")
