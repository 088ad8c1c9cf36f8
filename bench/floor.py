"""The floor under any Python shipper of IRIS events: the per-entry work alone, nothing stored or sent.

bench/deliver.py measures irisd against syslog-ng, which forwards each line as it is. An event
irisd delivers needs, at the least, per entry: the header split into its fields, the message's
shape looked up for its classification, the stable event id hashed from its source and offset,
and the message escaped into a JSON object; and per batch, the objects joined into one body.
This times exactly that, in the plainest form CPython runs it, over the same single-line
entries bench/deliver.py's burst writes:

  * no SQLite (no outbox, no checkpoint), no HTTP, no HMAC, no metrics, no event loop;
  * a subset of the event's fields (id, offset, the raw timestamp not converted to UTC, severity,
    code, message), one dict lookup per message shape, no rule table behind it.

So its rate is an upper bound for a shipper written in Python that does what the issue asks of
each event, and irisd's own stages (bench/stages.py) are measured against it. Compiling this loop
with mypyc changes little (3 % faster, measured): its time is spent in the C of
bytes.split, str.split, re.sub, blake2b and the JSON escaper, not in the interpreter.

    .venv/bin/python bench/floor.py [--lines 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from json.encoder import encode_basestring

MESSAGE = "[Generic.Event] Allocated 504MB shared memory using Huge Pages"
_DIGITS = re.compile(r"\d+")


def burst(lines: int, message: str = MESSAGE) -> bytes:
    """bench/deliver.py's burst lines (the same format, stamp and mark)."""
    head = "12/02/26-21:00:00:000"
    return "".join(
        f"{head} (4242) 0 {message} bench burst {n} t={time.time_ns()}\n" for n in range(lines)
    ).encode()


def events_body(data: bytes, shapes: dict[str, tuple[str, str]]) -> str:
    """The minimal JSON body of every entry in `data` (single-line entries)."""
    base = hashlib.blake2b(b"host\0source\0", digest_size=16)
    out: list[str] = []
    offset = 0
    for raw in data.split(b"\n")[:-1]:
        text = raw.decode()
        stamp, _pid, severity, rest = text.split(" ", 3)
        _category, message = rest[1:].split("] ", 1)
        shape = _DIGITS.sub("#", message)
        kind = shapes.get(shape)
        if kind is None:
            kind = shapes[shape] = ("memory.shm_allocated", "resource")
        digest = base.copy()
        digest.update(b"%d" % offset)
        out.append(
            "".join(
                (
                    '{"event_id":"',
                    digest.hexdigest(),
                    '","offset":',
                    str(offset),
                    ',"timestamp":"',
                    stamp,
                    '","severity":',
                    severity,
                    ',"code":"',
                    kind[0],
                    '","message":',
                    encode_basestring(message),
                    "}",
                )
            )
        )
        offset += len(raw) + 1
    return '{"events":[' + ",".join(out) + "]}"


def floor_rate(data: bytes, lines: int, runs: int = 3) -> float:
    """Entries per second, the best of `runs` passes over `data`."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        events_body(data, {})
        best = min(best, time.perf_counter() - started)
    return lines / best


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rate = floor_rate(burst(args.lines), args.lines, args.runs)
    print(
        f"floor: {rate:,.0f} entries/s ({1e6 / rate:.2f} us per entry), best of {args.runs};"
        " nothing stored, nothing sent"
    )


if __name__ == "__main__":
    main()
