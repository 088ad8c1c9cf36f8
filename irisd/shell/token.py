"""The local API's bearer token file: created once, 0600, never readable by anyone else.

Theory of operation. At first start there is no file: the token is written to a private temp
file (mkstemp: O_EXCL, 0600) in the same directory, fsynced, then hard-linked to its final name.
`link` fails if the name exists, so of two daemons starting at once exactly one creates the file
and the other reads it, and nobody ever sees a half-written token (an O_EXCL create of the final
name would show an empty file for a moment). On filesystems without hard links the final name is
created with O_EXCL directly. The directory is made 0700 if missing.

A token file that group or others may read is refused (`StateError`), not repaired: someone
changed it, and an operator should know the token may have leaked.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Final

from irisd.errors import StateError
from irisd.shell.durable import fsync_dir

TOKEN_BYTES: Final = 32
MIN_LENGTH: Final = 16
_NO_LINKS: Final = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV})


def load_or_create_token(path: Path) -> str:
    """The token in `path`, creating the file (and its directory) first if there is none."""
    try:
        return read_token(path, private=True)
    except FileNotFoundError:
        pass
    _create(path, secrets.token_urlsafe(TOKEN_BYTES))
    return read_token(path, private=True)


def read_token(path: Path, *, private: bool) -> str:
    """Read a token file; with `private`, refuse one that group or others can read.

    Raises FileNotFoundError if there is none, StateError if it cannot be used.
    """
    fd = _open_no_follow(path)
    try:
        _check_mode(path, os.fstat(fd).st_mode, private=private)
        return _valid(path, os.read(fd, 4096))
    finally:
        os.close(fd)


def _open_no_follow(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise
        raise StateError(f"token file {path}: {exc.strerror}") from exc


def _check_mode(path: Path, mode: int, *, private: bool) -> None:
    if not stat.S_ISREG(mode):
        raise StateError(f"token file {path}: not a regular file")
    if private and mode & 0o077:
        raise StateError(
            f"token file {path} is open to group or others (mode {stat.S_IMODE(mode):04o}); "
            "the token may have leaked: delete the file to get a new one, or chmod 600 it"
        )


def _valid(path: Path, data: bytes) -> str:
    token = data.decode("ascii", errors="replace").strip()
    if len(token) < MIN_LENGTH or not token.isprintable() or any(c.isspace() for c in token):
        raise StateError(f"token file {path}: not a token (need {MIN_LENGTH}+ printable ASCII)")
    return token


def _create(path: Path, token: str) -> None:
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = _write_temp(directory, token)
    except OSError as exc:
        raise StateError(f"cannot create token file {path}: {exc.strerror}") from exc
    try:
        _publish(tmp, path, token)
    finally:
        tmp.unlink(missing_ok=True)


def _write_temp(directory: Path, token: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=".token-", dir=directory)
    with os.fdopen(fd, "wb") as f:
        f.write(token.encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return Path(name)


def _publish(tmp: Path, path: Path, token: str) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        return  # another starter won; its token is the one
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise StateError(f"cannot create token file {path}: {exc.strerror}") from exc
        _create_exclusive(path, token)
    fsync_dir(path.parent)


def _create_exclusive(path: Path, token: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as f:
        f.write(token.encode() + b"\n")
        os.fsync(f.fileno())
