"""The edge cases an incident bundle can carry, as reshapings of one offline play. Pure.

    clock-skew      alerts.log and metrics.prom stamped by a clock that is off by a stated offset
    partial-outage  metrics.prom misses a run of scrapes around the primary entry
    retry-storm     the first entries of an operation that keeps failing repeat in bursts, each
                    burst closed by an entry with IRIS's `...(repeated N times)` suffix
    rotation        messages.log rolls over in the middle of the incident (`messages.old_YYYYMMDD`
                    plus a new messages.log, as IRIS renames and starts an empty file)

Each takes the play's entries and where the incident is (`Focus`) and returns a `Shape`: the
entries to write and how the other sources are to be bent. Offsets and sizes are drawn from a
string-seeded generator, so a variant is as reproducible as the play.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from irisd.emulator.logfmt import Line

VARIANTS = ("clock-skew", "partial-outage", "retry-storm", "rotation")
STORMS = 4  # failing entries that each get a burst
_MS = timedelta(milliseconds=1)


class Origin(StrEnum):
    STARTUP = "start-up"  # IRIS's start-up sequence
    SCENARIO = "scenario"  # what the armed scenario's ticks wrote
    NOISE = "noise"  # background entries, never part of the incident


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime  # messages.log's clock (the emulated host's local time, UTC)
    line: Line
    origin: Origin = Origin.SCENARIO
    storm: str = ""  # "copy" or "summary" for entries a retry storm added
    folded: int = 0  # a summary's N in `...(repeated N times)`


@dataclass(frozen=True, slots=True)
class Focus:
    """Where the incident is in a list of entries (indices into it)."""

    members: tuple[int, ...] = ()  # the incident: root cause and symptom entries, no noise
    failing: tuple[int, ...] = ()  # root-cause entries of severity 2 or more
    primary: int | None = None
    recurring: tuple[int, ...] = ()  # failing entries written while running, not at start-up


@dataclass(frozen=True, slots=True)
class Shape:
    entries: tuple[Entry, ...]
    roll_at: int | None = None  # index of the first entry of the new messages.log
    skew: timedelta = timedelta(0)  # alerts.log and metrics.prom time minus messages.log time
    gap: tuple[datetime, datetime] | None = None  # metrics.prom has no scrape in [from, until)


def shape(
    variant: str | None,
    entries: Sequence[Entry],
    focus: Focus,
    rng: random.Random,
    scrapes: Sequence[datetime],
) -> Shape:
    if variant == "clock-skew":
        sign = rng.choice((-1, 1))
        return Shape(tuple(entries), skew=sign * rng.randrange(30_000, 300_000) * _MS)
    if variant == "partial-outage":
        return Shape(tuple(entries), gap=_gap(entries, focus, rng, scrapes))
    if variant == "retry-storm":
        return Shape(_storm(entries, focus, rng))
    if variant == "rotation":
        return Shape(tuple(entries), roll_at=_roll_index(entries, focus))
    return Shape(tuple(entries))


def _gap(
    entries: Sequence[Entry], focus: Focus, rng: random.Random, scrapes: Sequence[datetime]
) -> tuple[datetime, datetime]:
    missing = rng.randrange(4, 9)
    at = entries[focus.primary].at if focus.primary is not None else scrapes[len(scrapes) // 2]
    first = next((n for n, t in enumerate(scrapes) if t >= at), len(scrapes) // 2)
    first = min(max(first, 1), len(scrapes) - missing - 1)  # keep scrapes on both sides
    return scrapes[first], scrapes[first + missing]


def _storm(entries: Sequence[Entry], focus: Focus, rng: random.Random) -> tuple[Entry, ...]:
    chosen = set(focus.recurring[:STORMS])
    out: list[Entry] = []
    for n, entry in enumerate(entries):
        out.append(entry)
        if n in chosen:
            after = entries[n + 1].at if n + 1 < len(entries) else entry.at + timedelta(seconds=1)
            out += _burst(entry, after, rng)
    return tuple(out)


def _burst(entry: Entry, limit: datetime, rng: random.Random) -> list[Entry]:
    """Literal retries a millisecond apart, then IRIS's summary of the ones it folded (never
    stamped after the entry that follows in the log)."""
    copies = rng.randrange(3, 7)
    folded = rng.randrange(5, 60)
    stamps = [min(entry.at + k * _MS, limit) for k in range(1, copies + 2)]
    burst = [Entry(at, entry.line, storm="copy") for at in stamps[:-1]]
    text = f"{entry.line.text}...(repeated {folded} times)"
    burst.append(Entry(stamps[-1], replace(entry.line, text=text), storm="summary", folded=folded))
    return burst


def _roll_index(entries: Sequence[Entry], focus: Focus) -> int:
    """Mid-incident: before its middle entry, or just after a one-entry incident."""
    if len(focus.members) >= 2:
        return focus.members[len(focus.members) // 2]
    if focus.members:
        return min(focus.members[0] + 1, len(entries) - 1)
    return len(entries) // 2


def old_name(entries: Sequence[Entry], roll_at: int) -> str:
    """IRIS names the rolled file after the day it rolled."""
    return f"messages.old_{entries[roll_at].at:%Y%m%d}"
