"""How the tailer opens, identifies and watches a log file.

A file is identified by device and inode plus a fingerprint of its first line (its first 256 bytes
while it has no complete line), so an inode reused for new content is a new file. inotify (read
on the event loop, or through watchdog where that is not available) only wakes the tailer early;
a `stat` on each round is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import hashlib
import logging
import os
import stat
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, Literal

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


Backend = Literal["auto", "inotify", "watchdog"]


def watch(
    path: Path,
    wake: Callable[[], None],
    loop: asyncio.AbstractEventLoop,
    *,
    backend: Backend = "auto",
) -> Callable[[], None]:
    """Wake the tailer when the log, or a file named like its rotations, is written, created,
    renamed or deleted in the log's directory. Returns a function to stop.

    Only a hint: if the directory is missing or inotify fails, the poll interval still applies.
    Opens and closes (the tailer's own among them) are not asked for; other files in the
    directory (an IRIS `mgr/` holds the IRISSYS database, the WIJ, alerts.log, iris.ids, ...) do
    not wake it; and a burst of events while one wake-up is pending adds nothing to it.

    On Linux ("auto") the inotify descriptor is read on the event loop itself (`_Inotify`);
    elsewhere, or if that cannot be set up, watchdog's observer (`_watch_watchdog`). Why: in
    watchdog every write to any file of the directory passes three threads before it can be
    filtered by name, and the writes of the files beside the log in an IRIS `mgr/` (the WIJ, the
    IRISSYS database) cost about 0.4 ms of CPU each that way; `_Inotify` asks the kernel only for
    the log's own writes (docs/configuration.md, "Wake-ups").
    """
    if backend != "watchdog":
        try:
            return _watch_inotify(path, wake, loop)
        except (OSError, AttributeError) as exc:  # AttributeError: a libc without inotify
            if backend == "inotify":
                return _no_wake_ups(path, exc)
    try:
        return _watch_watchdog(path, wake, loop)
    except OSError as exc:
        return _no_wake_ups(path, exc)


def _no_wake_ups(path: Path, exc: BaseException) -> Callable[[], None]:
    log.warning(
        "no inotify wake-ups for %s (%s); polling only",
        path.parent,
        exc,
        extra={"irisd_code": "tail.no_inotify"},
    )
    return lambda: None


# inotify(7): the events asked for, and the layout of one event as read (wd, mask, cookie, len,
# then len bytes of NUL-padded name).
_IN_MODIFY: Final = 0x002
_IN_MOVED_FROM: Final = 0x040
_IN_MOVED_TO: Final = 0x080
_IN_CREATE: Final = 0x100
_IN_DELETE: Final = 0x200
_IN_Q_OVERFLOW: Final = 0x4000
_IN_IGNORED: Final = 0x8000
_IN_ISDIR: Final = 0x40000000
_IN_ONLYDIR: Final = 0x01000000
_DIR_EVENTS: Final = _IN_CREATE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_DELETE | _IN_ONLYDIR
_EVENT: Final = struct.Struct("iIII")


def inotify_events(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(watch descriptor, mask, name) of each inotify event in `data`, as one read() gives."""
    at = 0
    while at + _EVENT.size <= len(data):
        wd, mask, _, size = _EVENT.unpack_from(data, at)
        start = at + _EVENT.size
        yield wd, mask, data[start : start + size].split(b"\0", 1)[0]
        at = start + size


def _checked(result: int) -> int:
    """A libc call's result, or its errno as an OSError."""
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


class _Inotify:
    """inotify read on the event loop, asking the kernel only for what concerns the log: names
    appearing, moving and going in its directory, and writes to the log file itself (a watch on
    its inode, armed again whenever a new file takes the name). Writes to the other files of the
    directory (the WIJ, the IRISSYS database) make no event at all. The watch of the file the
    log was before its last rotation is kept, since a writer may still append to it for a moment;
    older ones are dropped."""

    def __init__(
        self, path: Path, wake: Callable[[], None], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.path, self.wake, self.loop = path, wake, loop
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = _checked(self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        try:
            self.dir = self._add(path.parent, _DIR_EVENTS)
        except OSError:
            os.close(self.fd)
            raise
        self.files: list[int] = []  # watches on the log's inodes, the current one last
        self._arm()
        loop.add_reader(self.fd, self._readable)

    def _add(self, path: Path, mask: int) -> int:
        return _checked(self.libc.inotify_add_watch(self.fd, os.fsencode(path), mask))

    def _arm(self) -> None:
        try:
            wd = self._add(self.path, _IN_MODIFY)
        except OSError:  # not there yet: its creation in the directory arms it
            return
        if wd not in self.files:
            self.files.append(wd)
        if len(self.files) > 2:
            self.libc.inotify_rm_watch(self.fd, self.files.pop(0))

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 64 * 1024)
        except BlockingIOError:
            return
        except OSError:  # the descriptor failed: stop asking, the poll goes on
            self.loop.remove_reader(self.fd)
            return
        woken = arm = False
        for wd, mask, name in inotify_events(data):
            if mask & _IN_Q_OVERFLOW:  # events were lost: any of them may have been the log's
                woken = arm = True
            elif mask & _IN_IGNORED:
                if wd in self.files:
                    self.files.remove(wd)
            elif wd != self.dir:
                woken = True  # a write to the log (or to what it was before its rotation)
            elif not mask & _IN_ISDIR and names_log_or_rotation(self.path, os.fsdecode(name)):
                woken = True  # the log or a rotation of it came, moved or went
                arm = arm or (name == os.fsencode(self.path.name) and not mask & _IN_DELETE)
        if arm:
            self._arm()
        if woken:
            self.wake()

    def stop(self) -> None:
        self.loop.remove_reader(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _watch_inotify(
    path: Path, wake: Callable[[], None], loop: asyncio.AbstractEventLoop
) -> Callable[[], None]:
    return _Inotify(path, wake, loop).stop


def _watch_watchdog(
    path: Path, wake: Callable[[], None], loop: asyncio.AbstractEventLoop
) -> Callable[[], None]:
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
    observer.schedule(_Handler(), str(path.parent), recursive=False, event_filter=wanted)
    observer.start()

    def stop() -> None:
        observer.stop()
        observer.join(timeout=5)

    return stop
