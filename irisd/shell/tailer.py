"""Follow messages.log through writes, rotations, truncations and deletions; commit what it reads.

Theory of operation
-------------------
* The truth is `os.stat`/`os.fstat`; inotify (`logfile.watch`) only wakes the loop early. Without a
  wake-up the loop still checks every `poll_interval`.
* A file is identified by device + inode + a fingerprint of its first line, so an inode reused by a
  new file, or a file truncated and rewritten in place, is a new source. `source` (used in event ids)
  is built from the three and from a truncation count, and is kept in the checkpoint.
* Reading is by byte offset, in chunks; `LineAssembler` holds partial lines and the open entry. After
  each chunk the entries it completed and the checkpoint (`assembler.pending_offset`: the first byte
  not yet in an entry) are committed in one transaction, so a crash neither skips nor repeats.
* Rotation by rename: the path now names another file. The old descriptor is read to its end, its
  last entry and partial line are flushed (`final=True`), then the new file is read from 0.
* Rotations while irisd was down (or during a crash mid-rotation): the checkpoint names a file no
  longer at the path. It is looked for among the log's siblings (`messages.old_*`,
  `messages.log.N`) by device + inode + fingerprint and read on from its offset; every sibling
  newer than it (by mtime, then by name) is queued and read from 0, oldest first, then the live
  file. If it is gone, that is reported, and the siblings written after its checkpoint are read.
  The queue of files waiting their turn is `irisd.shell.rotated.Backlog`.
* Copytruncate: the file's size drops below our offset (or its first line changed): restart at 0
  as a new source.
* Deleted while open (no link left, path gone): read to the end, flush, close, wait for the path.
* Missing or unreadable log (or not a regular file): reported once (and again when it changes),
  retried every `retry_interval`, never fatal; the heartbeat goes on, since a restart would not help.
* A commit the store refuses (locked by another process, disk full) keeps what was read in memory
  (`_unsaved`, at most one chunk), reads nothing more, and retries every `retry_interval`: the tail
  is stalled and the heartbeat stops, so the watchdog lapses. Damage (SQLITE_CORRUPT) is not
  retried: it ends the daemon, and the next start recovers the database (`irisd.shell.recovery`).
* Backpressure: while the outbox is full nothing is read; the log file is the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from irisd.core.classify import Classifier
from irisd.core.events import EventBuilder, tally
from irisd.core.lines import Limits, LineAssembler, RawEntry
from irisd.core.model import Event
from irisd.errors import StateError
from irisd.shell.logfile import FP_MAX, fingerprint, first_line, head_fingerprint, open_log
from irisd.shell.recovery import is_corruption
from irisd.shell.rotated import Backlog
from irisd.shell.store import Checkpoint, Store

log = logging.getLogger("irisd.tailer")


@dataclass(frozen=True, slots=True)
class TailPolicy:
    poll_interval: float = 1.0
    entry_linger: float = 0.5
    read_chunk_bytes: int = 64 << 10  # as [tail] read_chunk_bytes: memory follows the read size
    retry_interval: float = 5.0
    limits: Limits = field(default_factory=Limits)
    rotate_wait: float = 1.0
    batch_max_events: int = 4096


@dataclass(slots=True)
class TailStats:
    lines: int = 0
    bytes: int = 0
    entries: int = 0
    unparsed: int = 0
    decode_errors: int = 0
    truncated_lines: int = 0
    cut_lines: int = 0
    rotations: int = 0
    truncations: int = 0
    lag_bytes: int = 0
    state: str = "starting"
    heartbeat: float = 0.0
    by_code: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(slots=True)
class _Open:
    fd: int
    dev: int
    ino: int
    fingerprint: str
    source: str
    assembler: LineAssembler
    builder: EventBuilder | None
    last_data: float = 0.0
    generation: int = 0


@dataclass(slots=True)
class _Unsaved:
    """Read and built but not yet committed: the slices with their checkpoints, then the counts."""

    slices: list[tuple[list[Event], Checkpoint]]
    raws: list[RawEntry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    nbytes: int = 0


BuilderFactory = Callable[[str], EventBuilder]


def source_name(dev: int, ino: int, fp: str, generation: int) -> str:
    """How a file is named in checkpoints and event ids (see the module docstring)."""
    return f"{dev:x}:{ino:x}:{fp}:{generation}"


def _generation(source: str) -> int:
    tail = source.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class Tailer:
    def __init__(
        self,
        path: Path,
        store: Store,
        builders: BuilderFactory,
        policy: TailPolicy,
        *,
        on_events: Callable[[list[Event]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.store = store
        self.builders = builders
        self.policy = policy
        self.stats = TailStats()
        self._on_events = on_events
        self._clock = clock
        self._wake = asyncio.Event()
        self._file: _Open | None = None
        self._problem: str | None = None
        self._backlog = Backlog(path)  # files seen at the path (or beside it), not yet read
        self._file_rotated = False
        self._unsaved: list[_Unsaved] = []  # oldest first; see _save
        self._stalled: str | None = None

    def set_classifier(self, classifier: Classifier) -> None:
        """New rules (a reload) apply from the next entry on."""
        if self._file is not None and self._file.builder is not None:
            self._file.builder.classifier = classifier

    def wake(self) -> None:
        """Called (from the loop thread) when the file system says something changed."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                progressed = self.step()
                if self._stalled is None:  # a round the store refused is no progress
                    self.stats.heartbeat = self._clock()
                if progressed:
                    # One chunk read and committed: let the rest of the daemon run before the
                    # next (the API, the publisher, signals, the watchdog ping), or a backlog of
                    # millions of lines would hold the event loop for as long as it takes.
                    await asyncio.sleep(0)
                else:
                    await self._sleep(self._idle_timeout())
        finally:
            self.close()

    def step(self) -> bool:
        """One round: open if needed, read what is there, handle rotation. True if it did work."""
        if self._unsaved and not self._save():
            return False
        if self.store.full:
            self.stats.state = "backpressure: outbox full"
            return False
        if self._file is None and not self._open():
            return False
        assert self._file is not None
        self._backlog.discover((self._file.dev, self._file.ino))
        if self._read_chunk(self._file):
            return True
        return self._at_end(self._file)

    # -- opening ----------------------------------------------------------------------------------

    def _open(self) -> bool:
        checkpoint = self.store.checkpoint(str(self.path))
        backlog = self._backlog
        if not backlog.files and checkpoint is not None and self._resume_rotated(checkpoint):
            return True
        if backlog.files:
            fd, st = backlog.pop()
        else:
            try:
                fd = open_log(self.path)
            except OSError as exc:
                code = "tail.missing" if exc.errno == errno.ENOENT else "tail.unreadable"
                self._report(f"cannot open {self.path}: {exc.strerror}", code)
                return False
            st = os.fstat(fd)
        first = first_line(fd)
        # A file without a complete first line yet is held open all the same: if it is rotated
        # away before its first line arrives, the descriptor still reads it to its end.
        fp = fingerprint(first) if first is not None else ""
        same = checkpoint is not None and (checkpoint.dev, checkpoint.ino) == (st.st_dev, st.st_ino)
        if (
            same
            and fp
            and checkpoint
            and checkpoint.fingerprint == fp
            and checkpoint.offset <= st.st_size
        ):
            self._attach(
                fd, st.st_dev, st.st_ino, fp, source=checkpoint.source, offset=checkpoint.offset
            )
            return True
        # A new file, or the same inode with other content (truncated, or reused): a new source.
        # Its generation grows on the same inode so that event ids never repeat an old source's.
        generation = _generation(checkpoint.source) + 1 if same and checkpoint else 0
        self._attach(fd, st.st_dev, st.st_ino, "", source="", offset=0, generation=generation)
        return True

    def _resume_rotated(self, checkpoint: Checkpoint) -> bool:
        """The checkpoint names a file no longer at the path: rotated while irisd was down or in
        the middle of a rotation. Read it on from its offset if it has more (True), else let the
        backlog and then the path take their turn (False)."""
        found = self._backlog.resume(checkpoint, self._checkpoint_time)
        if found is None:
            return False
        fd, rotated = found
        log.info(
            "resuming rotated file %s at %d",
            rotated.path,
            checkpoint.offset,
            extra={"irisd_code": "tail.resume_rotated"},
        )
        st = rotated.st
        self._attach(
            fd,
            st.st_dev,
            st.st_ino,
            checkpoint.fingerprint,
            source=checkpoint.source,
            offset=checkpoint.offset,
        )
        self._file_rotated = True
        return True

    def _checkpoint_time(self) -> float:
        """When the checkpoint was last written (wall clock); infinity when unknown."""
        try:
            updated = self.store.checkpoint_updated(str(self.path))
        except StateError:
            updated = None
        return float("inf") if updated is None else updated

    def _attach(
        self, fd: int, dev: int, ino: int, fp: str, *, source: str, offset: int, generation: int = 0
    ) -> None:
        """Follow `fd`. An empty `source` means not identified yet (see `_identify`)."""
        self._file_rotated = False
        assembler = LineAssembler(offset=offset, limits=self.policy.limits)
        builder = self.builders(source) if source else None
        self._file = _Open(fd, dev, ino, fp, source, assembler, builder, self._clock(), generation)
        if self._problem is not None:
            log.info("reading %s again", self.path, extra={"irisd_code": "tail.recovered"})
        self._problem = None
        self.stats.state = "following"
        log.info(
            "following %s from offset %d", self.path, offset, extra={"irisd_code": "tail.open"}
        )

    # -- reading ----------------------------------------------------------------------------------

    def _identify(self, f: _Open, *, final: bool = False) -> bool:
        """Fingerprint the file by its first line (or, for a file that ends without one, by what
        it holds) and name its source: only then can its entries get ids."""
        first = first_line(f.fd)
        if first is None:
            if not final:
                return False
            first = os.pread(f.fd, FP_MAX, 0)
            if not first:
                return False
        f.fingerprint = fingerprint(first)
        f.source = source_name(f.dev, f.ino, f.fingerprint, f.generation)
        f.builder = self.builders(f.source)
        return True

    def _read_chunk(self, f: _Open) -> bool:
        if not f.source and not self._identify(f):
            return False
        offset = f.assembler.position
        data = os.pread(f.fd, self.policy.read_chunk_bytes, offset)
        if not data:
            return False
        if offset and head_fingerprint(f.fd) != f.fingerprint:
            # Truncated and rewritten past our offset since we last looked (copytruncate under a
            # busy writer): these bytes are the middle of new content, read from its start instead.
            self._truncated(f, "first line changed")
            return True
        f.last_data = self._clock()
        self._commit(f, f.assembler.feed(data), len(data))
        self.stats.lag_bytes = max(0, os.fstat(f.fd).st_size - f.assembler.position)
        return True

    def _commit(
        self,
        f: _Open,
        raws: list[RawEntry],
        nbytes: int,
        *,
        final: bool = False,
        reset: bool = False,
    ) -> None:
        """Store `raws` with the checkpoint after them; `reset` forgets the file's offset instead."""
        builder = f.builder
        assert builder is not None, "entries are only read from an identified file"
        events = [builder.build(raw) for raw in raws]
        offset = f.assembler.position if final else f.assembler.pending_offset
        fp, offset = ("", 0) if reset else (f.fingerprint, offset)
        size = self.policy.batch_max_events
        slices = []
        # At most batch_max_events per transaction; every earlier slice checkpoints just past its
        # last entry (where the next one starts), so each commit is a valid restart point.
        for start in range(0, max(len(events), 1), size):
            part = events[start : start + size]
            last = start + size >= len(events)
            at = offset if last or reset else raws[start + size - 1].end
            slices.append((part, Checkpoint(str(self.path), f.source, f.dev, f.ino, fp, at)))
        self._unsaved.append(_Unsaved(slices, raws, events, nbytes))
        self._save()

    def _save(self) -> bool:
        """Commit what was read, oldest first; False while the store refuses (see the module
        docstring). What is still unsaved when the tailer closes is read again from the
        checkpoint by the next process."""
        while self._unsaved:
            item = self._unsaved[0]
            while item.slices:
                try:
                    self.store.commit_batch(*item.slices[0])
                except StateError as exc:
                    if is_corruption(exc):
                        raise
                    self._stall(str(exc))
                    return False
                item.slices.pop(0)
            self._unsaved.pop(0)
            self._count(item.raws, item.events, item.nbytes)
            if self._on_events is not None and item.events:
                self._on_events(item.events)
        if self._stalled is not None:
            self._stalled = None
            self.stats.state = "following"
            log.info("committing again", extra={"irisd_code": "tail.unstalled"})
        return True

    def _stall(self, reason: str) -> None:
        self.stats.state = f"stalled: {reason}; retrying every {self.policy.retry_interval:g}s"
        if self._stalled is None:
            log.warning("tailing %s", self.stats.state, extra={"irisd_code": "tail.stalled"})
        self._stalled = reason

    def _count(self, raws: list[RawEntry], events: list[Event], nbytes: int) -> None:
        s, t = self.stats, tally(raws, events)
        s.bytes += nbytes
        s.entries += len(raws)
        s.lines += t.lines
        s.decode_errors += t.decode_errors
        s.cut_lines += t.cut_lines
        s.unparsed += t.unparsed
        for key, n in t.by_code.items():
            s.by_code[key] = s.by_code.get(key, 0) + n
        if self._file is not None:
            s.truncated_lines = self._file.assembler.truncated_lines

    def _at_end(self, f: _Open) -> bool:
        """At end of file: decide between waiting, flushing, rotating and restarting."""
        st = os.fstat(f.fd)
        if st.st_size < f.assembler.position:
            self._truncated(f, "size fell below the read offset")
            return True
        try:
            now = self.path.stat()
            moved = (now.st_dev, now.st_ino) != (f.dev, f.ino)
        except FileNotFoundError:
            moved = True
        if moved or self._file_rotated:
            # A writer that still holds the renamed file open may append to it for a moment:
            # keep reading it until it has been quiet for rotate_wait, then move on.
            if st.st_nlink and self._clock() - f.last_data < self.policy.rotate_wait:
                self.stats.state = "draining a rotated file"
                return False
            self._finish(f, "rotated" if st.st_nlink else "deleted")
            return True
        first = first_line(f.fd) if f.source else None
        if first is not None and fingerprint(first) != f.fingerprint:
            self._truncated(f, "first line changed")
            return True
        if f.assembler.has_open_entry and self._clock() - f.last_data >= self.policy.entry_linger:
            self._commit(f, f.assembler.flush(), 0)
            return True
        return False

    def _finish(self, f: _Open, why: str) -> None:
        if f.source or self._identify(f, final=True):
            while not self._unsaved and self._read_chunk(f):
                pass
            if self._unsaved:
                return  # stalled: finish it once the store takes commits again
            self._commit(f, f.assembler.flush(final=True), 0, final=True)
        self.stats.rotations += 1
        log.info("%s was %s; read to its end", self.path, why, extra={"irisd_code": f"tail.{why}"})
        self._backlog.done = (f.dev, f.ino)
        self._close()

    def _truncated(self, f: _Open, why: str) -> None:
        self.stats.truncations += 1
        # The entry still open was read in full lines from the old content: store it, or it is
        # lost. (A line still without its newline is not: its end, like the rest of what was not
        # read, exists only in the copy.) In the same transaction forget the old offset
        # durably, so a restart cannot resume the new content there.
        if f.builder is not None:
            self._commit(f, f.assembler.flush(), 0, reset=True)
        else:  # never identified, so nothing was read from it
            reset = Checkpoint(str(self.path), f.source, f.dev, f.ino, "", 0)
            self._unsaved.append(_Unsaved([([], reset)]))
            self._save()
        log.warning(
            "%s was truncated (%s); reading it again from the start",
            self.path,
            why,
            extra={"irisd_code": "tail.truncated"},
        )
        self._close()

    def close(self) -> None:
        """Release every descriptor (the current file and those waiting their turn)."""
        self._close()
        self._backlog.close()

    def _close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.close(self._file.fd)
            self._file = None

    # -- waiting ----------------------------------------------------------------------------------

    def _idle_timeout(self) -> float:
        f = self._file
        if self._stalled is not None:
            return self.policy.retry_interval
        if f is None:
            return self.policy.retry_interval if self._problem else self.policy.poll_interval
        if f.assembler.has_open_entry:
            remaining = self.policy.entry_linger - (self._clock() - f.last_data)
            return max(0.0, min(self.policy.poll_interval, remaining))
        if self.stats.state == "draining a rotated file":
            return min(self.policy.poll_interval, self.policy.rotate_wait)
        return self.policy.poll_interval

    async def _sleep(self, timeout: float) -> None:  # noqa: ASYNC109 - it is the wait itself
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    def _report(self, problem: str, code: str) -> None:
        self.stats.state = problem
        if problem != self._problem:
            log.warning(
                "%s; retrying every %gs",
                problem,
                self.policy.retry_interval,
                extra={"irisd_code": code},
            )
        self._problem = problem
