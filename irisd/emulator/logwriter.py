"""Writes the instance's messages.log and alerts.log, and keeps the alert counters behind
`/api/monitor/alerts` and the `iris_system_alerts*` metrics.

Theory of operation. Each entry is written with one `write()` and flushed, so a tailer never sees
half an entry except at a real partial write. Before writing, if the file has reached
`[Startup] MaxConsoleLogSize` MB, it is renamed to `messages.old_YYYYMMDD` (`_1`, `_2` … for a
second roll on the same day) and a new empty messages.log is started: IRIS renames and starts an
empty file (FACTS §1.7; the date suffix is IRIS's, the `_N` form is unverified third-party
lore). Severity 2+ entries are what Log Monitor copies to alerts.log in the same line format.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from irisd.emulator.logfmt import Line, is_alert, render

Clock = Callable[[], datetime]


class LogWriter:
    def __init__(self, messages: Path, alerts: Path, *, max_mb: int, clock: Clock) -> None:
        self.messages = messages
        self.alerts = alerts
        self.max_bytes = max_mb * 1024 * 1024
        self.clock = clock
        self.alerts_total = 0
        self.pending: list[dict[str, str]] = []  # posted since /api/monitor/alerts was read
        self.rotations = 0
        self._handle: TextIO = open(messages, "a", encoding="utf-8")  # noqa: SIM115 - long-lived

    def write(self, line: Line) -> datetime:
        """Write one entry stamped now; returns the stamp."""
        at = self.clock()
        self._roll_if_full()
        text = render(line, at)
        self._handle.write(text)
        self._handle.flush()
        if is_alert(line):
            self._alert(text, line, at)
        return at

    def set_max_mb(self, max_mb: int) -> None:
        """MaxConsoleLogSize applies at once; a smaller limit rolls the file on the next write."""
        self.max_bytes = max_mb * 1024 * 1024

    def _alert(self, text: str, line: Line, at: datetime) -> None:
        with open(self.alerts, "a", encoding="utf-8") as handle:
            handle.write(text)
        self.alerts_total += 1
        stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        message = line.text.split("\n", 1)[0]
        self.pending.append({"time": stamp, "severity": str(line.severity), "message": message})

    def take_alerts(self) -> list[dict[str, str]]:
        """What /api/monitor/alerts returns: the alerts since the last call, then none."""
        taken, self.pending = self.pending, []
        return taken

    def _roll_if_full(self) -> None:
        if self._handle.tell() < self.max_bytes:
            return
        self._handle.close()
        self.messages.rename(self._old_name())
        self.rotations += 1
        self._handle = open(self.messages, "a", encoding="utf-8")  # noqa: SIM115

    def _old_name(self) -> Path:
        base = self.messages.with_name(f"messages.old_{self.clock():%Y%m%d}")
        candidate, n = base, 0
        while candidate.exists():
            n += 1
            candidate = base.with_name(f"{base.name}_{n}")
        return candidate

    def close(self) -> None:
        self._handle.close()
