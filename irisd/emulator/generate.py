"""`irisd generate`: realistic messages.log entries by category and severity, offline and
deterministic for a seed.

The pool is what the scenarios and the start-up/shutdown sequences really write (so every line
is one the emulator itself would produce and one irisd's parser reads); entries are drawn from
it with a seeded generator, stamped with sequential timestamps from an anchor, and given pids
that stay stable within the session (one pid per writer in the pool).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from irisd.emulator import offline, scenarios
from irisd.emulator.logfmt import Line, render, timestamp

DEFAULT_ANCHOR = datetime(2025, 3, 1, 9, 0, 0)


@dataclass(frozen=True, slots=True)
class Generated:
    at: datetime
    line: Line

    @property
    def category(self) -> str:
        return self.line.code.partition(".")[0]

    def as_json(self) -> dict[str, object]:
        return {"timestamp": timestamp(self.at), "pid": self.line.pid,
                "severity": self.line.severity, "category": self.line.category,
                "code": self.line.code, "message": self.line.text}  # fmt: skip


@lru_cache(maxsize=1)
def pool() -> tuple[Line, ...]:
    """Every distinct line the scenarios write (with their fixes), de-duplicated by text."""
    seen: dict[tuple[int, str], Line] = {}
    for name in scenarios.names():
        play = offline.new_play(name, seed=0, anchor=DEFAULT_ANCHOR)
        offline.start(play)
        list(offline.run_ticks(play, 24))
        offline.apply(play, play.scenario.fix)
        list(offline.run_ticks(play, 4))
        for stamped in play.entries:
            line = stamped.line
            if line.code and not line.raw:
                seen.setdefault((line.severity, line.text), line)
    return tuple(seen.values())


def categories() -> tuple[str, ...]:
    return tuple(sorted({line.code.partition(".")[0] for line in pool()}))


def select(category: str | None, low: int, high: int) -> tuple[Line, ...]:
    return tuple(
        line
        for line in pool()
        if low <= line.severity <= high
        and (category is None or line.code.partition(".")[0] == category)
    )


def generate(
    *, category: str | None, count: int, low: int, high: int, seed: int,
    anchor: datetime = DEFAULT_ANCHOR,
) -> list[Generated]:  # fmt: skip
    """`count` entries; raises ValueError when the category/severity range selects nothing."""
    choices = select(category, low, high)
    if not choices:
        raise ValueError(f"no entries of category {category!r} with severity {low}-{high}")
    rng = random.Random(seed)  # noqa: S311 - seeded simulation, not security
    at = anchor
    out: list[Generated] = []
    for _ in range(count):
        line = rng.choice(choices)
        at += timedelta(milliseconds=rng.randrange(1, 4000))
        out.append(Generated(at, line))
    return out


def render_log(entries: list[Generated]) -> str:
    return "".join(render(e.line, e.at) for e in entries)
