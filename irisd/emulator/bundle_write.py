"""Puts incident bundles on disk, never half-written.

Theory of operation. The output directory is checked before any bundle is built: it must be new
or empty, and creatable or writable (tried for real, so a read-only file system or a path under a
file is caught even for root). Each bundle is written into a hidden temporary directory beside
its final name, every file and the directory fsynced, then renamed into place and the parent
fsynced: a reader sees a whole bundle or none. A failure removes the temporary directory, and
`abandon()` removes the output directory again if this run created it and it is still empty.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from irisd.emulator.bundle import Bundle
from irisd.errors import EmulatorError, UsageError
from irisd.shell.durable import fsync_dir


class Output:
    def __init__(self, root: Path, created: list[Path]) -> None:
        self.root = root
        self._created = created  # directories this run made, outermost first

    @classmethod
    def prepare(cls, root: Path) -> Output:
        """Check `--out` and create it if needed; UsageError (naming the flag) if unusable."""
        if root.exists() or root.is_symlink():
            _check_existing(root)
            return cls(root, [])
        missing = [p for p in (root, *root.parents) if not p.exists()][::-1]
        try:
            root.mkdir(parents=True)
        except OSError as exc:
            _remove_empty(missing)
            raise UsageError(f"--out {root}: cannot create it: {exc.strerror}") from None
        return cls(root, missing)

    def write(self, bundle: Bundle) -> Path:
        target = self.root / bundle.name
        partial = self.root / f".{bundle.name}.{os.getpid()}.partial"
        try:
            partial.mkdir()
            for name, data in bundle.artifacts.items():
                _write_file(partial / name, data)
            fsync_dir(partial)
            partial.rename(target)
            fsync_dir(self.root)
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise EmulatorError(f"--out {self.root}: writing {bundle.name} failed: "
                                f"{exc.strerror or exc}") from None  # fmt: skip
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return target

    def abandon(self) -> None:
        """After a failure: remove the directories this run created, if nothing is in them."""
        _remove_empty(self._created)


def _check_existing(root: Path) -> None:
    if not root.is_dir():
        raise UsageError(f"--out {root}: not a directory")
    try:
        if any(root.iterdir()):
            raise UsageError(f"--out {root}: not empty (bundles go into a new or empty directory)")
        probe = root / f".irisd-bundle-probe.{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise UsageError(f"--out {root}: not writable: {exc.strerror}") from None


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _remove_empty(created: list[Path]) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()
