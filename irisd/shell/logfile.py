"""How the tailer opens, identifies and watches a log file.

A file is identified by device and inode plus a fingerprint of its first line (its first 256 bytes
while it has no complete line), so an inode reused for new content is a new file. inotify (through
watchdog) only wakes the tailer early; a `stat` on each round is the truth.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("irisd.tailer")

FP_MAX = 256


def fingerprint(first_line: bytes) -> str:
    return hashlib.blake2b(first_line, digest_size=8).hexdigest()


def head_fingerprint(fd: int) -> str:
    """The fingerprint the file would be identified by now (see `Tailer._identify`)."""
    first = first_line(fd)
    return fingerprint(first if first is not None else os.pread(fd, FP_MAX, 0))


def rotation_prefix(log: Path) -> str:
    """Files beside `log` named `<stem>.*` are its rotations: IRIS renames messages.log to
    messages.old_YYYYMMDD, logrotate makes messages.log.1, messages.log.2, ..."""
    return log.stem + "."


def names_log_or_rotation(log: Path, name: str) -> bool:
    """True if a file called `name` in the log's directory is the log or one of its rotations."""
    return name == log.name or name.startswith(rotation_prefix(log))


def open_log(path: Path) -> int:
    """Open for reading without ever blocking: a plain open of a FIFO waits for a writer, and
    would hold up the whole event loop. Only a regular file is a log."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd


def first_line(fd: int) -> bytes | None:
    head = os.pread(fd, FP_MAX, 0)
    nl = head.find(b"\n")
    if nl >= 0:
        return head[: nl + 1]
    return head if len(head) >= FP_MAX else None


def watch(
    path: Path, wake: Callable[[], None], loop: asyncio.AbstractEventLoop
) -> Callable[[], None]:
    """Wake the tailer when the log, or a file named like its rotations, is written, created,
    renamed or deleted in the log's directory. Returns a function to stop.

    Only a hint: if the directory is missing or inotify fails, the poll interval still applies.
    Opens and closes (the tailer's own among them) are not asked for; other files in the
    directory (an IRIS `mgr/` holds the IRISSYS database, alerts.log, iris.ids, ...) do not wake
    it; and a burst of events while one wake-up is pending on the loop adds nothing to it.
    """
    from watchdog.events import (
        FileCreatedEvent,
        FileDeletedEvent,
        FileModifiedEvent,
        FileMovedEvent,
        FileSystemEvent,
        FileSystemEventHandler,
    )
    from watchdog.observers import Observer

    pending = threading.Event()

    def concerns(name: bytes | str) -> bool:
        return names_log_or_rotation(path, Path(os.fsdecode(name)).name)

    def fire() -> None:  # on the loop thread
        pending.clear()  # before waking: an event from now on schedules another wake-up
        wake()

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if pending.is_set() or event.is_directory:
                return
            if concerns(event.src_path) or (event.dest_path and concerns(event.dest_path)):
                pending.set()
                loop.call_soon_threadsafe(fire)

    wanted = [FileModifiedEvent, FileCreatedEvent, FileMovedEvent, FileDeletedEvent]
    observer = Observer()
    try:
        observer.schedule(_Handler(), str(path.parent), recursive=False, event_filter=wanted)
        observer.start()
    except OSError as exc:
        log.warning(
            "no inotify wake-ups for %s (%s); polling only",
            path.parent,
            exc,
            extra={"irisd_code": "tail.no_inotify"},
        )
        return lambda: None

    def stop() -> None:
        observer.stop()
        observer.join(timeout=5)

    return stop
