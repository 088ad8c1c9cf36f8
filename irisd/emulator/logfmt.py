"""messages.log lines as IRIS writes them (FACTS §1.2): pure formatting, no clock.

    MM/DD/YY-HH:MM:SS:mmm (pid) S [Category] message

Timestamps are local time without a zone, milliseconds after a colon. A message may span lines:
continuation lines follow the header verbatim. A `Line` is a line-to-be, positioned by its delay
after the previous one, so one script renders both live (wall clock) and offline (an anchor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

HEADER = re.compile(
    r"^(\d\d/\d\d/\d\d-\d\d:\d\d:\d\d:\d\d\d) \((\d+)\) ([0-3]) (\[([^\]]+)\] )?(.*)$"
)


@dataclass(frozen=True, slots=True)
class Line:
    """One entry to write. `code` is the taxonomy code it should classify to ("" = not promised);
    `raw` entries (the WIJ recovery block) are written verbatim, without a header."""

    delay: float
    pid: int
    severity: int
    category: str
    text: str
    code: str = ""
    raw: bool = False


def timestamp(at: datetime) -> str:
    return at.strftime("%m/%d/%y-%H:%M:%S:") + f"{at.microsecond // 1000:03d}"


def render(line: Line, at: datetime) -> str:
    """The text of one entry, ending in a newline."""
    if line.raw:
        return line.text if line.text.endswith("\n") else line.text + "\n"
    return f"{timestamp(at)} ({line.pid}) {line.severity} [{line.category}] {line.text}\n"


def is_alert(line: Line) -> bool:
    """Log Monitor copies severity 2 and above to alerts.log (its default minimum, FACTS §5.4)."""
    return not line.raw and line.severity >= 2
