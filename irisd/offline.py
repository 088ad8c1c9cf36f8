"""`irisd classify`: parse and classify whole files without a daemon, at the pipeline's speed.

The same assembler, parser and rule table as the daemon. `--summary` skips what counting does not
need (timestamps, event ids, JSON, and for the plain case the entry objects: `irisd.core.summary`)
but takes every entry through the same header parse and the same classifier, so its counts equal
what the daemon would record for the same bytes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import IO, Literal

from irisd.core.classify import Classifier
from irisd.core.lines import LineAssembler, RawEntry
from irisd.core.logline import LocalClock
from irisd.core.model import Classification, LogEntry, Unparsed, iso
from irisd.core.pipeline import classify_entry
from irisd.core.summary import Scanner, Summary
from irisd.errors import UsageError
from irisd.rules import build_classifier

CHUNK = 1 << 20
Mode = Literal["text", "json", "summary"]


def read_chunks(path: str) -> Iterator[bytes]:
    """The bytes of one file (or stdin for "-"), a chunk at a time."""
    try:
        stream: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from exc
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def read_entries(path: str) -> Iterator[tuple[list[RawEntry], int]]:
    """Entries of one file (or stdin for "-"), a chunk at a time, with the bytes read."""
    assembler = LineAssembler()
    for chunk in read_chunks(path):
        yield assembler.feed(chunk), len(chunk)
    yield assembler.flush(final=True), 0


def classify_files(
    files: Sequence[str], out: IO[str], *, zone: tzinfo, rules_dir: Path | None, mode: Mode
) -> dict[str, object]:
    classifier = build_classifier(rules_dir)
    summary = Summary()
    for path in files:
        clock = LocalClock(zone)
        summary.files += 1
        if mode == "summary":
            scanner = Scanner(clock, classifier, summary)
            for chunk in read_chunks(path):
                scanner.feed(chunk)
            scanner.finish()
            continue
        for raws, nbytes in read_entries(path):
            summary.raw(raws)
            summary.bytes += nbytes
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
        entry, c = classify_entry(raw, clock, classifier)
        record = _record(entry, c)
        if isinstance(entry, Unparsed):
            summary.unparsed += 1
        summary.add(c.code, c.severity, 1 if isinstance(entry, Unparsed) else entry.repeat)
        if as_json:
            lines.append(json.dumps(record, ensure_ascii=False))
        else:
            first = str(record["message"]).partition("\n")[0]
            lines.append(f"{record['timestamp'] or '-':24} {c.severity} {c.code:28} {first}")
    if lines:
        out.write("\n".join(lines) + "\n")


def _record(entry: LogEntry | Unparsed, c: Classification) -> dict[str, object]:
    """One entry as `irisd classify --json` prints it (`irisd.contracts.LogEntryModel`)."""
    if isinstance(entry, LogEntry):
        head = (iso(entry.timestamp), entry.pid, entry.category, entry.text, entry.repeat)
    else:
        head = (None, None, None, entry.raw, 1)
    when, pid, category, message, repeat = head
    record: dict[str, object] = {
        "timestamp": when,
        "pid": pid,
        "severity": int(c.severity),
        "category": category,
        "code": c.code,
        "error_type": c.error_type,
        "message": message,
        "repeat": repeat,
        "offset": entry.offset,
    }
    if isinstance(entry, Unparsed):
        record["reason"] = entry.reason
    return record
