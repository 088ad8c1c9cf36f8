"""The daemon's own logging: journald's native protocol, sd-daemon `<N>` lines, human lines, JSON.

Theory of operation. `setup_logging` installs exactly one irisd handler on the root logger (a
second call, as on SIGHUP, replaces it) and picks the output:

- journal: each record becomes one datagram of `KEY=value\\n` fields sent to journald's socket
  (`/run/systemd/journal/socket`). A value holding a newline uses the binary-safe form
  `KEY\\n<64-bit little-endian length><value>\\n`. A datagram too large for the socket
  (EMSGSIZE/ENOBUFS) is written to a sealed memfd whose descriptor is passed with SCM_RIGHTS, as
  sd_journal_send does. If the socket cannot be reached or stays busy past a short timeout, the
  record is written to stderr in the `<N>` form instead, so no line is lost.
- stderr: `<N>message key=value…`, the priority prefix that systemd and sd-daemon(3) understand,
  on every line of a multi-line message.
- human (a terminal): `time level message key=value…`.
- json: one object per line.

Fields. Besides MESSAGE, PRIORITY (syslog numbers), SYSLOG_IDENTIFIER=irisd, CODE_FILE/LINE/FUNC
and LOGGER, a record's `extra` adds irisd's own: `irisd_code` (or `code`) → IRISD_CODE, likewise
`event_id`, `trace_id`, `command_id`, and any other `irisd_*` key upper-cased.

Every value in every format passes through the redactor first, so secrets never reach a sink.
"""

from __future__ import annotations

import array
import errno
import fcntl
import json
import logging
import os
import re
import socket
import struct
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, TextIO

from irisd.core.redact import Redactor

JOURNAL_SOCKET: Final = Path("/run/systemd/journal/socket")
IDENTIFIER: Final = "irisd"
SEND_TIMEOUT: Final = 0.25  # a stalled journald must not stall the event loop for long
OutputFormat = Literal["journal", "stderr", "human", "json"]

_ALIASES: Final = {
    "code": "IRISD_CODE",
    "event_id": "IRISD_EVENT_ID",
    "trace_id": "IRISD_TRACE_ID",
    "command_id": "IRISD_COMMAND_ID",
}
_INVALID_NAME: Final = re.compile(r"[^A-Z0-9_]")
_SEALS: Final = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
_PLAIN: Final = re.compile(r"[^\s\"=\\]*")
_EXPLICIT: Final[dict[str, OutputFormat]] = {
    "journal": "journal",
    "stderr": "stderr",
    "human": "human",
    "json": "json",
}


def priority(levelno: int) -> int:
    """Python level → syslog priority: debug 7, info 6, warning 4, error 3, critical 2."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    return 6 if levelno >= logging.INFO else 7


def irisd_fields(record: logging.LogRecord) -> dict[str, str]:
    """The record's irisd fields, named as in the journal (IRISD_CODE, ...), values as text."""
    out: dict[str, str] = {}
    for key, value in record.__dict__.items():
        name = _ALIASES.get(key) or (key.upper() if key.startswith("irisd_") else None)
        if name and value is not None:
            out[journal_name(name)] = str(value)
    return out


def journal_name(name: str) -> str:
    """A valid journal field name: A-Z, 0-9 and "_", not starting with "_" or a digit, ≤ 64."""
    return _INVALID_NAME.sub("_", name.upper()).lstrip("_0123456789")[:64]


def message_text(record: logging.LogRecord) -> str:
    """The formatted message with any traceback or stack appended, as logging would print it."""
    text = record.getMessage()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    extras = [part for part in (record.exc_text, record.stack_info) if part]
    return "\n".join([text, *extras])


def encode_field(name: str, value: str) -> bytes:
    """One field in journald's native form; the binary-safe form when the value has a newline."""
    data = value.encode("utf-8", "replace")
    key = name.encode("ascii")
    if b"\n" in data:
        return key + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return key + b"=" + data + b"\n"


def journal_fields(record: logging.LogRecord, redactor: Redactor) -> Iterator[tuple[str, str]]:
    yield "MESSAGE", redactor(message_text(record))
    yield "PRIORITY", str(priority(record.levelno))
    yield "SYSLOG_IDENTIFIER", IDENTIFIER
    yield "CODE_FILE", record.pathname
    yield "CODE_LINE", str(record.lineno)
    yield "CODE_FUNC", record.funcName
    yield "LOGGER", record.name
    for name, value in irisd_fields(record).items():
        yield name, redactor.field(name, value)


class JournalSocket:
    """Sends one encoded entry to journald: a datagram, or a sealed memfd when too large."""

    def __init__(self, path: Path = JOURNAL_SOCKET) -> None:
        self.path = str(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.settimeout(SEND_TIMEOUT)

    def send(self, payload: bytes) -> None:
        """Raises OSError when journald cannot take it (absent, refusing, too busy)."""
        try:
            self._sock.sendto(payload, self.path)
        except OSError as exc:
            if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                raise
            self._send_memfd(payload)

    def _send_memfd(self, payload: bytes) -> None:
        fd = os.memfd_create("irisd-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            # Sealed, journald can map it knowing we can no longer change it underneath.
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
            self._sock.sendmsg([], rights, 0, self.path)
        finally:
            os.close(fd)

    def close(self) -> None:
        self._sock.close()


class JournalHandler(logging.Handler):
    """Logs each record to journald natively; falls back to `fallback` if journald is away."""

    def __init__(
        self, *, redactor: Redactor, fallback: logging.Handler, path: Path = JOURNAL_SOCKET
    ) -> None:
        super().__init__()
        self.redactor = redactor
        self.fallback = fallback
        self.journal = JournalSocket(path)
        self._failing = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = journal_fields(record, self.redactor)
            payload = b"".join(encode_field(name, value) for name, value in fields)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)
            return
        try:
            self.journal.send(payload)
        except OSError as exc:
            self._fall_back(record, exc)
        else:
            self._failing = False

    def _fall_back(self, record: logging.LogRecord, exc: OSError) -> None:
        if not self._failing:  # say once per outage why lines now go to stderr
            self._failing = True
            notice = logging.makeLogRecord(
                {
                    "msg": "journal unreachable at %s (%s); logging to stderr",
                    "args": (self.journal.path, exc.strerror or exc),
                    "levelno": logging.WARNING,
                    "levelname": "WARNING",
                    "irisd_code": "log.journal_unreachable",
                }
            )
            self.fallback.handle(notice)
        self.fallback.handle(record)

    def close(self) -> None:
        self.journal.close()
        self.fallback.close()
        super().close()


def _pairs(fields: Mapping[str, str], redactor: Redactor) -> str:
    """` code=tail.rotated trace_id=…`: short lower-case names, values quoted when needed."""
    parts = []
    for name, value in fields.items():
        shown = redactor.field(name, value)
        quoted = shown if _PLAIN.fullmatch(shown) and shown else json.dumps(shown)
        parts.append(f" {_short(name)}={quoted}")
    return "".join(parts)


def _short(name: str) -> str:
    return name.removeprefix("IRISD_").lower()


class _RedactingFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor


class PrefixFormatter(_RedactingFormatter):
    """`<6>message code=x`: sd-daemon(3) priority prefixes, on every line of the message."""

    def format(self, record: logging.LogRecord) -> str:
        first, *rest = self.redactor(message_text(record)).split("\n")
        prefix = f"<{priority(record.levelno)}>"
        first += _pairs(irisd_fields(record), self.redactor)
        return "\n".join(prefix + line for line in (first, *rest))


class HumanFormatter(_RedactingFormatter):
    """`2025-01-02 03:04:05.678 WARNING message code=x`, local time, for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).astimezone()
        stamp = when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}"
        text = self.redactor(message_text(record))
        pairs = _pairs(irisd_fields(record), self.redactor)
        first, sep, rest = text.partition("\n")
        return f"{stamp} {record.levelname:<8} {first}{pairs}{sep}{rest}"


class JsonFormatter(_RedactingFormatter):
    """One JSON object per line: time (UTC), level, logger, message, irisd fields, source."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        body: dict[str, object] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "priority": priority(record.levelno),
            "logger": record.name,
            "message": self.redactor(message_text(record)),
        }
        for name, value in irisd_fields(record).items():
            body[_short(name)] = self.redactor.field(name, value)
        body["source"] = f"{record.pathname}:{record.lineno}"
        return json.dumps(body, ensure_ascii=False)


def under_journal(env: Mapping[str, str], stream: TextIO) -> bool:
    """True when systemd connected `stream` to the journal (JOURNAL_STREAM=dev:inode matches)."""
    dev, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    try:
        stat = os.fstat(stream.fileno())
        return (int(dev), int(inode)) == (stat.st_dev, stat.st_ino)
    except (ValueError, OSError, AttributeError):  # no fd (a StringIO), or a malformed variable
        return False


def choose_format(requested: str, *, env: Mapping[str, str], stream: TextIO) -> OutputFormat:
    """Resolve `[log] format`; "auto" is journal under systemd, human on a tty, else stderr."""
    explicit = _EXPLICIT.get(requested)
    if explicit:
        return explicit
    if under_journal(env, stream):
        return "journal"
    return "human" if stream.isatty() else "stderr"


def build_handler(
    output: OutputFormat,
    *,
    redactor: Redactor,
    stream: TextIO,
    journal_socket: Path = JOURNAL_SOCKET,
) -> logging.Handler:
    def on_stream(formatter: logging.Formatter) -> logging.Handler:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        return handler

    if output == "journal":
        fallback = on_stream(PrefixFormatter(redactor))
        return JournalHandler(redactor=redactor, fallback=fallback, path=journal_socket)
    formatters = {"stderr": PrefixFormatter, "human": HumanFormatter, "json": JsonFormatter}
    return on_stream(formatters[output](redactor))


def setup_logging(
    level: str = "info",
    output: str = "auto",
    *,
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    journal_socket: Path = JOURNAL_SOCKET,
    logger: logging.Logger | None = None,
) -> logging.Handler:
    """Install irisd's one handler on `logger` (the root logger), replacing an earlier one."""
    target = logger or logging.getLogger()
    out = stream or sys.stderr
    chosen = choose_format(output, env=os.environ if env is None else env, stream=out)
    handler = build_handler(
        chosen, redactor=redactor or Redactor(), stream=out, journal_socket=journal_socket
    )
    handler.set_name("irisd")
    for old in [h for h in target.handlers if h.get_name() == "irisd"]:
        target.removeHandler(old)
        old.close()
    target.addHandler(handler)
    target.setLevel(level.upper())
    return handler
