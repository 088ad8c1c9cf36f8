"""The rotated files beside a log, oldest first: what a tailer still has to read after an outage.

IRIS renames `messages.log` to `messages.old_YYYYMMDD`; logrotate makes `messages.log.1`,
`messages.log.2`, … (the higher the number, the older). Both are `<stem>.*` beside the log. Age is
the modification time (the last write), and between files of equal mtime the name decides.
Compressed rotations and editor backups are not logs to read.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_COMPRESSED: Final = frozenset({".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z"})
_NUMBERED: Final = re.compile(r"\.(\d+)$")


@dataclass(frozen=True, slots=True)
class Sibling:
    path: Path
    st: os.stat_result

    @property
    def identity(self) -> tuple[int, int]:
        return self.st.st_dev, self.st.st_ino


def rotated_siblings(log: Path, live: os.stat_result | None) -> list[Sibling]:
    """Regular files beside `log` named like its rotations, oldest first; never the file that is
    live at the path (`live`, its stat, if there is one)."""
    found = []
    for path in log.parent.glob(log.stem + ".*"):
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
