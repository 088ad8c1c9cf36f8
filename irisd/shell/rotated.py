"""The rotated files beside a log, oldest first: what a tailer still has to read after an outage.

IRIS renames `messages.log` to `messages.old_YYYYMMDD`; logrotate makes `messages.log.1`,
`messages.log.2`, … (the higher the number, the older). Both are `<stem>.*` beside the log. Age is
the modification time (the last write), and between files of equal mtime the name decides.
Compressed rotations and editor backups are not logs to read.

Theory of operation (`Backlog`)
-------------------------------
* The backlog is the files a tailer must read, oldest first, before the one now at the path. Each
  is held by an open descriptor from the moment it is seen, so a file rotated away (or deleted)
  before its turn is still read whole.
* While one file is read, `discover` adds whatever new file appears at the path.
* At start-up, when the checkpoint names a file no longer at the path (rotated while irisd was
  down, or during a crash mid-rotation), `resume` finds it among the siblings by device + inode +
  fingerprint and queues every sibling newer than it; the caller reads it on from its offset. If
  it is gone, that is reported once, and the siblings written after its checkpoint are queued.
* `done` is the last file read to its end (or found gone): its absence is no loss.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from irisd.shell.logfile import head_fingerprint, open_log, rotation_prefix
from irisd.shell.store import Checkpoint

log = logging.getLogger("irisd.tailer")

_COMPRESSED: Final = frozenset({".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z"})
_NUMBERED: Final = re.compile(r"\.(\d+)$")

Identity = tuple[int, int]  # st_dev, st_ino


@dataclass(frozen=True, slots=True)
class Sibling:
    path: Path
    st: os.stat_result

    @property
    def identity(self) -> Identity:
        return self.st.st_dev, self.st.st_ino


def rotated_siblings(log: Path, live: os.stat_result | None) -> list[Sibling]:
    """Regular files beside `log` named like its rotations, oldest first; never the file that is
    live at the path (`live`, its stat, if there is one)."""
    found = []
    for path in log.parent.glob(glob.escape(rotation_prefix(log)) + "*"):
        if path == log or path.suffix in _COMPRESSED or path.name.endswith("~"):
            continue
        try:
            st = path.stat()
        except OSError:  # vanished since the listing, or a dangling link
            continue
        is_live = live is not None and (st.st_dev, st.st_ino) == (live.st_dev, live.st_ino)
        if stat.S_ISREG(st.st_mode) and not is_live:
            found.append(Sibling(path, st))
    return sorted(found, key=_age)


def _age(sibling: Sibling) -> tuple[int, int, str]:
    name = sibling.path.name
    m = _NUMBERED.search(name)
    return sibling.st.st_mtime_ns, -int(m.group(1)) if m else 0, name


class Backlog:
    """Files to read before the one at `path`, each held open, oldest first (see above)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: list[tuple[int, os.stat_result]] = []
        self.done: Identity | None = None

    def pop(self) -> tuple[int, os.stat_result]:
        return self.files.pop(0)

    def discover(self, current: Identity) -> None:
        """While one file is read, a new one may appear at the path and even be rotated away
        before we get to it: open each as soon as it is seen, so its descriptor keeps it."""
        try:
            st = self.path.stat()
        except OSError:
            return
        known = {current} | {(q.st_dev, q.st_ino) for _, q in self.files}
        if (st.st_dev, st.st_ino) in known:
            return
        try:
            fd = open_log(self.path)
        except OSError:
            return
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) in known:
            os.close(fd)
            return
        self.files.append((fd, opened))

    def resume(
        self, checkpoint: Checkpoint, written: Callable[[], float]
    ) -> tuple[int, Sibling] | None:
        """The checkpoint names a file no longer at the path: queue the rotated files newer than
        it, and return it (a descriptor and where it is) if it has more to read from the
        checkpoint's offset. `written` tells when the checkpoint was (wall clock), in case the
        file is gone."""
        try:
            live: os.stat_result | None = self.path.stat()
        except OSError:
            live = None
        ours = (checkpoint.dev, checkpoint.ino)
        if live is not None and (live.st_dev, live.st_ino) == ours:
            return None
        siblings = rotated_siblings(self.path, live)
        at = next((i for i, s in enumerate(siblings) if s.identity == ours), None)
        fd = None if at is None else _open_checkpointed(siblings[at].path, checkpoint)
        if at is None or fd is None:
            self._lost(checkpoint, siblings, written)
            return None
        self._queue(siblings[at + 1 :])
        if siblings[at].st.st_size <= checkpoint.offset:  # already read to its end
            os.close(fd)
            return None
        return fd, siblings[at]

    def close(self) -> None:
        """Release every descriptor still waiting its turn."""
        for fd, _ in self.files:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.files.clear()

    def _lost(
        self, checkpoint: Checkpoint, siblings: list[Sibling], written: Callable[[], float]
    ) -> None:
        """The checkpoint's file is gone: say so once, and queue the rotated files written after
        the checkpoint was. (A file the tailer read to its end and then saw deleted is no loss.)"""
        if (checkpoint.dev, checkpoint.ino) == self.done:
            return
        log.warning(
            "the file last read as %s (inode %d, to offset %d) is gone, neither at the path "
            "nor beside it; anything written to it after that offset cannot be read",
            self.path,
            checkpoint.ino,
            checkpoint.offset,
            extra={"irisd_code": "tail.rotated_missing"},
        )
        since = written() - 1.0  # coarse file-system clocks lag a little
        self._queue([s for s in siblings if s.st.st_mtime > since])
        self.done = (checkpoint.dev, checkpoint.ino)

    def _queue(self, files: list[Sibling]) -> None:
        """Hold each file open (a descriptor keeps it if it is deleted), in the order given."""
        if files:
            log.info(
                "rotated files of %s to read before it: %s",
                self.path,
                ", ".join(f.path.name for f in files),
                extra={"irisd_code": "tail.rotated_backlog"},
            )
        for path in (f.path for f in files):
            try:
                fd = open_log(path)
            except OSError as exc:
                log.warning(
                    "rotated file %s vanished before it was read (%s); skipping it",
                    path,
                    exc.strerror,
                    extra={"irisd_code": "tail.rotated_missing"},
                )
                continue
            self.files.append((fd, os.fstat(fd)))


def _open_checkpointed(path: Path, checkpoint: Checkpoint) -> int | None:
    """A descriptor on the checkpoint's file, if it still holds what the checkpoint read."""
    try:
        fd = open_log(path)
    except OSError:
        return None
    if head_fingerprint(fd) == checkpoint.fingerprint:
        return fd
    if not checkpoint.fingerprint and checkpoint.offset == 0:
        return fd  # a reset checkpoint (truncated, nothing read yet): the inode is enough
    os.close(fd)
    return None
