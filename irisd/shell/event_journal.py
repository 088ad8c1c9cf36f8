"""Severe and fatal IRIS entries in irisd's own log (the journal), but not the log's past.

Theory of operation
-------------------
* Each severe (2) or fatal (3) event the tailer has committed is logged once, at error or
  critical priority, under its taxonomy code (`EventJournal.__call__`, the tailer's `on_events`).
* The backlog is what messages.log held when irisd began to follow it from nothing (no checkpoint
  for the path): a `BacklogMark`, the file as the tailer names it (device, inode, first-line
  fingerprint, generation 0) and its size then. An entry of that file that starts before that
  byte offset is backlog: counted, not logged one by one. Offsets are exact where the log's
  clock is not; another file (a rotation, a truncation, a file that did not exist then) holds
  no backlog.
* The mark is taken at start-up before the tailer reads a byte, and kept in `MARK_FILE` in the
  state directory (written atomically), so a restart in the middle of the backlog keeps the same
  boundary. A start without a checkpoint takes a new mark: from the state database's point of
  view nothing of this log has been logged yet, so everything in it now is the past.
* Once the tailer's committed checkpoint is past the mark (or an entry past it arrives, which is
  then logged after the count), one info line says how many backlog entries were not logged and
  where to see them. A stop before that says how many so far; the next start counts the rest.
* Sinks and `/events` are not concerned: the store and the outbox get every event.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import TypeAdapter, ValidationError

from irisd.core.model import Event, Severity
from irisd.shell.durable import fsync_dir
from irisd.shell.logfile import fingerprint, first_line, open_log
from irisd.shell.store import Checkpoint
from irisd.shell.tailer import source_name

MARK_FILE: Final = "journal-backlog.json"
CODE: Final = "log.backlog_not_journaled"
_HINT: Final = "see them with `irisd events --min-severity severe` or in the sinks"
_ENDED: Final = (
    "%s held %d severe and %d fatal entries when irisd began to follow it:"
    " stored, not logged one by one; " + _HINT
)
_STOPPED: Final = (
    "stopping before the end of what %s held when irisd began to follow it: so far %d severe and"
    " %d fatal entries of it stored, not logged one by one (the next start counts the rest); "
    + _HINT
)

log = logging.getLogger("irisd.event")


@dataclass(frozen=True, slots=True)
class BacklogMark:
    """The entries of `source` before byte `offset` were in `path` when irisd began to follow it.
    An empty `source` holds nothing (the log was missing, or had no complete first line)."""

    path: str
    source: str
    offset: int

    def holds(self, event: Event) -> bool:
        return event.source == self.source and event.offset < self.offset

    def passed(self, checkpoint: Checkpoint) -> bool:
        """The tailer has committed everything the mark holds (or left its file for good)."""
        return checkpoint.source != self.source or checkpoint.offset >= self.offset


_MARK_JSON: Final = TypeAdapter(BacklogMark)


def take_mark(path: Path) -> BacklogMark:
    """What `path` holds now, named as the tailer will name it when it reads it from the start."""
    try:
        fd = open_log(path)
    except OSError:
        return BacklogMark(str(path), "", 0)  # the tailer reports it; a later file is all new
    try:
        st, first = os.fstat(fd), first_line(fd)
    finally:
        os.close(fd)
    if first is None:
        return BacklogMark(str(path), "", 0)
    source = source_name(st.st_dev, st.st_ino, fingerprint(first), 0)
    return BacklogMark(str(path), source, st.st_size)


def save_mark(file: Path, mark: BacklogMark) -> None:
    """Replace `file` with `mark`, durably: a crash leaves the old mark or the new, whole."""
    fd, name = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_MARK_JSON.dump_json(mark))
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(file.parent)


def load_mark(file: Path, path: Path) -> BacklogMark | None:
    """The mark saved for `path`, or None (none saved, another log's, or unreadable)."""
    try:
        mark = _MARK_JSON.validate_json(file.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        log.warning(
            "ignoring %s (%s): every severe entry read is logged",
            file,
            exc.__class__.__name__,
            extra={"irisd_code": "log.backlog_mark_unreadable"},
        )
        return None
    return mark if mark.path == str(path) else None


def start_mark(file: Path, path: Path, *, fresh: bool) -> BacklogMark | None:
    """At start-up: a new mark when the tailer starts `path` from nothing (`fresh`), else the one
    saved. A mark that cannot be saved still holds for this run."""
    if not fresh:
        return load_mark(file, path)
    mark = take_mark(path)
    try:
        save_mark(file, mark)
    except OSError as exc:
        log.warning(
            "cannot save %s (%s): a restart before the end of the backlog logs the rest of it",
            file,
            exc.strerror,
            extra={"irisd_code": "log.backlog_mark_unsaved"},
        )
    return mark


Committed = Callable[[], Checkpoint | None]


class EventJournal:
    """The tailer's `on_events`: logs severe and fatal events, holding back the backlog under
    `mark` (None: hold back nothing). `committed` reads the tailer's checkpoint from the store."""

    def __init__(self, mark: BacklogMark | None, committed: Committed) -> None:
        self._mark = mark if mark is not None and mark.source else None
        self._committed = committed
        self._held = {Severity.SEVERE: 0, Severity.FATAL: 0}

    def __call__(self, events: Sequence[Event]) -> None:
        for e in events:
            if e.severity < Severity.SEVERE:
                continue
            if self._mark is not None and self._mark.holds(e):
                self._held[e.severity] += 1
            else:
                self._end_backlog()
                journal_event(e)
        if self._mark is not None and self._is_passed(self._mark):
            self._end_backlog()

    def close(self) -> None:
        """At stop: say what was held back so far, if the backlog is not over."""
        if self._mark is not None and any(self._held.values()):
            self._say(_STOPPED)

    def _is_passed(self, mark: BacklogMark) -> bool:
        checkpoint = self._committed()
        return checkpoint is not None and mark.passed(checkpoint)

    def _end_backlog(self) -> None:
        if self._mark is None:
            return
        if any(self._held.values()):
            self._say(_ENDED)
        self._mark = None

    def _say(self, template: str) -> None:
        assert self._mark is not None
        severe, fatal = self._held[Severity.SEVERE], self._held[Severity.FATAL]
        log.info(
            template,
            self._mark.path,
            severe,
            fatal,
            extra={"irisd_code": CODE, "irisd_severe": severe, "irisd_fatal": fatal},
        )


def journal_event(e: Event) -> None:
    """One severe or fatal event, under its taxonomy code, so an operator can
    `journalctl -u irisd IRISD_CODE=journal.error`."""
    level = logging.CRITICAL if e.severity == Severity.FATAL else logging.ERROR
    log.log(
        level,
        "%s: %s",
        e.code,
        e.message.partition("\n")[0],
        extra={"irisd_code": e.code, "event_id": e.event_id, "trace_id": e.trace_id},
    )
