"""The jsonl sink's file: append a batch, fsync it, rotate by size.

Theory of operation. `JsonlFile` keeps the file open with O_APPEND and, before every batch, checks
that the path still names the file it holds (another rotator, such as logrotate, may have renamed
or removed it) and reopens if not. A batch is written whole, then fsynced, and only then reported
delivered, so an acked event is on disk. A crash between the write and the ack duplicates the
batch on restart (at-least-once; `event_id` dedupes); a crash in the middle of a write can leave a
torn last line, so a reopened file that does not end in a newline gets one first and the torn
line stands alone instead of corrupting the next. A failed write closes the file, so the same
holds for a write that stopped part-way while the daemon runs on. Rotation renames numbered files
(`irisd.core.sinks.jsonl.rotation_moves`) and fsyncs the directory.

Disk writes block, so the driver runs them in a worker thread, one batch at a time (the sink's
concurrency is 1: lines stay in order and rotation never races a write).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from irisd.core.sinks.jsonl import jsonl_lines, needs_rotation, rotation_moves
from irisd.shell.durable import fsync_dir
from irisd.shell.outbox import OutboxItem
from irisd.shell.publisher import Answer, Send, SinkOptions


class JsonlFile:
    def __init__(self, path: Path, *, max_bytes: int = 100 << 20, keep: int = 5) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._fd: int | None = None

    def append(self, data: bytes) -> None:
        """Write `data` whole and fsync it, rotating first if it would overflow the file."""
        fd = self._current()
        if needs_rotation(os.fstat(fd).st_size, len(data), max_bytes=self.max_bytes):
            self._rotate()
            fd = self._current()
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError:
            # A write stopped part-way (disk full) leaves a torn line, as a crash does; reopening
            # puts it on a line of its own, so the retried batch's first line is not glued to it.
            self.close()
            raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _current(self) -> int:
        if self._fd is not None and not self._still_ours(self._fd):
            self.close()
        if self._fd is None:
            self._fd = self._open()
        return self._fd

    def _still_ours(self, fd: int) -> bool:
        try:
            on_disk = self.path.stat()
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            _write_all(fd, b"\n")  # a torn last line from a crash stands alone
        return fd

    def _rotate(self) -> None:
        self.close()
        for old, new in rotation_moves(str(self.path), keep=self.keep):
            try:
                if new is None:
                    Path(old).unlink()
                else:
                    Path(old).rename(new)
            except FileNotFoundError:
                continue
        fsync_dir(self.path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class JsonlDriver:
    """The publisher's driver for a `JsonlFile`; a failed write (disk full, permissions) retries."""

    def __init__(self, options: SinkOptions, file: JsonlFile) -> None:
        self.options = replace(options, concurrency=1)
        self.file = file
        self._lock = asyncio.Lock()

    def prepare(self, items: Sequence[OutboxItem]) -> Send:
        data = jsonl_lines(items)

        async def send() -> Answer:
            async with self._lock:
                try:
                    await asyncio.to_thread(self.file.append, data)
                except OSError as exc:
                    return Answer(None, error=f"{self.file.path}: {exc.strerror or exc}")
            return Answer(200)

        return send

    async def tick(self) -> None:
        return None

    def close(self) -> None:
        self.file.close()
